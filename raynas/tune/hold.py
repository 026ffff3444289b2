"""An off-by-default run control: hold every trial at one epoch boundary until a file releases it.

Set both variables in the environment of ``raynas search``, ``raynas train`` or ``raynas resume``:

- ``RAYNAS_HOLD_DIR``: a folder (shared by every node of the cluster the trials run on);
- ``RAYNAS_HOLD_EPOCH``: the epoch after whose report a trial waits.

A trial that has reported that epoch (its checkpoint included) and has epochs left writes
``<RAYNAS_HOLD_DIR>/held-<trial id>`` holding the epoch, then waits until ``<RAYNAS_HOLD_DIR>/release``
exists; with the release file already there it goes straight on. Nothing else changes: the driver, the
other trials and Tune's own saving of the experiment state run on while a trial is held.

This is what lets a test (or a person debugging a resume) stop a population at a known state instead of
racing a running one: the held trial cannot finish before it is killed, whatever the machine's speed.
Unset (the default), :func:`hold_point` returns at once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

from raynas.files import write_text_atomically

#: The folder of held markers and of the release file.
HOLD_DIR_ENV = "RAYNAS_HOLD_DIR"
#: The epoch after whose report trials are held.
HOLD_EPOCH_ENV = "RAYNAS_HOLD_EPOCH"
#: The file whose existence releases every held trial.
RELEASE_FILE = "release"
#: How often a held trial looks for the release file (seconds).
POLL_S = 0.05


def hold_settings() -> Optional[tuple[Path, int]]:
    """The hold folder and epoch from the environment, or None when the control is off (either unset)."""
    folder, epoch = os.environ.get(HOLD_DIR_ENV), os.environ.get(HOLD_EPOCH_ENV)
    if not folder or not epoch:
        return None
    try:
        return Path(folder), int(epoch)
    except ValueError:
        raise ValueError(f"{HOLD_EPOCH_ENV}: {epoch!r} is not an epoch; expected a whole number") from None


def hold_env() -> dict[str, str]:
    """The control's variables as set in this process, for a job's runtime environment (empty when off)."""
    return {name: os.environ[name] for name in (HOLD_DIR_ENV, HOLD_EPOCH_ENV) if os.environ.get(name)}


#: The prefix of a held trial's marker file (followed by the trial id).
MARKER_PREFIX = "held-"


def held_marker(folder: Path, trial_id: str) -> Path:
    """The file a trial writes when it is held."""
    return folder / f"{MARKER_PREFIX}{trial_id}"


def held_trials(folder: Path) -> dict[str, int]:
    """Trial id -> epoch of every trial that was held in ``folder`` (for watchers: tests, benchmarks)."""
    if not folder.is_dir():
        return {}
    return {path.name.removeprefix(MARKER_PREFIX): int(path.read_text())
            for path in folder.glob(f"{MARKER_PREFIX}*")}


def hold_point(trial_id: str, epoch: int, done: bool) -> None:
    """Called by a trainable after reporting ``epoch``: wait here if the control holds this epoch.

    A trial with no epochs left (``done``) is never held, so a short trial of a grid finishes normally.
    """
    settings = hold_settings()
    if settings is None or done:
        return
    folder, hold_epoch = settings
    if epoch != hold_epoch:
        return
    release = folder / RELEASE_FILE
    if release.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    marker = held_marker(folder, trial_id)
    write_text_atomically(marker, f"{epoch}\n")  # a watcher sees the marker whole or not at all
    while not release.exists():
        time.sleep(POLL_S)
