"""Ray Tune's saved experiment state (``<folder>/tune/experiment_state-<time>.json``), checked before a resume.

Tune writes that file in place (no temporary file, no fsync), so a crash or a full disk while it writes
leaves it truncated; a resume then failed with a JSON traceback. Tune restores from the newest such file
(by name, which is its start time). :func:`usable_experiment_state` reads them newest first: when the newest
cannot be parsed and an older one can, the unreadable ones are set aside as ``<name>.torn`` (Tune no longer
sees them) and one line says which state the resume goes on from; when none can be parsed, a one-line
:class:`ConfigError`. Imports neither Ray nor torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from raynas.errors import ConfigError
from raynas.remote import is_remote, names

STATE_GLOB = "experiment_state-*.json"
"""Tune's saved experiment states (``TuneController.CKPT_FILE_TMPL``)."""

TORN_SUFFIX = ".torn"


def _problem(path: Path) -> str | None:
    """Why ``path`` is not a readable saved state (None when it parses as a JSON object)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:200]
    if not isinstance(data, dict) or "trial_data" not in data:
        return "not a Ray Tune experiment state (no trial_data)"
    return None


def usable_experiment_state(tune_dir: Path, what: str, again: str, warn: Callable[[str], None]) -> None:
    """Make sure the state Tune will restore under ``tune_dir`` can be read (see the module docstring).

    ``what`` names the folder in messages (``experiment 'DIR'``), ``again`` says how to start over.
    Does nothing when there is no state file (the caller says so in its own words).
    """
    states = sorted(tune_dir.glob(STATE_GLOB), key=lambda path: path.name, reverse=True)
    torn: list[tuple[Path, str]] = []
    for path in states:
        problem = _problem(path)
        if problem is None:
            break
        torn.append((path, problem))
    else:
        if torn:
            newest, problem = torn[0]
            raise ConfigError(f"{what} cannot be resumed: Ray Tune's saved state {newest} cannot be read ({problem}; "
                              f"torn by a crash while Tune wrote it) and there is no older state to go on from; "
                              f"the results written so far stay readable (raynas results); {again} in a new folder")
        return
    if not torn:
        return
    for path, _ in torn:
        os.replace(path, path.with_name(path.name + TORN_SUFFIX))
    newest, problem = torn[0]
    warn(f"Ray Tune's saved state {newest.name} cannot be read ({problem}); set aside as {newest.name}{TORN_SUFFIX}, "
         f"resuming from the older state {states[len(torn)].name} (epochs after it run again)")


def never_saved(tune_dir: Path | str) -> bool:
    """Whether Ray Tune saved no experiment state under ``tune_dir`` (none there, none set aside as torn).

    Tune saves its first state in its first step, before any trial can report: a folder without one was
    left by a driver that died while it started (Ray starting, Tune setting up), so no trial had run.
    ``tune_dir`` may be a storage URI (:mod:`raynas.remote`).
    """
    if is_remote(tune_dir):
        import fnmatch

        return not fnmatch.filter(names(tune_dir), STATE_GLOB)
    tune_dir = Path(tune_dir)
    return not any(tune_dir.glob(STATE_GLOB)) and not any(tune_dir.glob(STATE_GLOB + TORN_SUFFIX))
