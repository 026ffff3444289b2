"""Checkpoints of trials: loading the newest one that is intact, and the retention of PBT populations
(every checkpoint is kept while the population runs, each trial's last one after it finished).

:func:`load_newest_intact` restores a trial from its latest checkpoint, or, when that one cannot be read
(torn by a crash or a full disk after Tune registered it), from the newest older checkpoint of the same
trial folder that loads (each trial keeps two, :mod:`raynas.tune.retention`; all of them under PBT), and
says so; a trial with no loadable checkpoint starts from the beginning, and says so.

Tune's retention (``CheckpointConfig.num_to_keep``) is per trial: each trial's checkpoint manager deletes
its oldest checkpoints as it registers new ones. Under population based training a trial's checkpoint is
also another trial's: an exploit points the exploiting trial at the source's checkpoint folder, and the
exploiting trial restores from it only when it starts again, which can be many of the source's epochs
later (it may wait for a CPU, or be exploited again and again while the source is paused). The source's
manager cannot see that and deletes the folder; the exploiting trial then fails ("No such file or
directory: .../checkpoint_000002/search_state.pt"), and a resume of a trial whose latest checkpoint is gone
fails the same way. PBT also makes Tune register a top trial's checkpoint twice (PBT's own save of it and
Tune's), so the manager deleted that folder twice: the second deletion raised ``FileNotFoundError`` out of
``register_checkpoint`` ("Error handling checkpoint" with the whole result dict), which also skipped the
update of the trial's checkpoint index, so the trial's next checkpoint went into a folder name it had used
before and a later deletion removed its newest checkpoint.

So a PBT experiment keeps every checkpoint (:func:`raynas.tune.tune_setup.checkpoints_to_keep`; no
experiment leaves deletions to Tune, :mod:`raynas.tune.retention`): nothing is deleted while any trial may
still need a checkpoint. Once every trial has finished,
:func:`prune_superseded_checkpoints` removes all but the checkpoint each trial registers as its latest.
"""

from __future__ import annotations

import os
import pickle
import posixpath
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Optional

#: What a torn or missing state file raises when loaded (torch.load's truncated zip, a short pickle, ...).
UNREADABLE = (RuntimeError, OSError, EOFError, pickle.UnpicklingError, ValueError)

_CHECKPOINT_NAME = re.compile(r"^checkpoint_(\d+)$")


def older_checkpoints(checkpoint: Any) -> list[Any]:
    """The checkpoints in ``checkpoint``'s trial folder older than it (by Tune's index), newest first."""
    from pyarrow.fs import FileSelector, FileType
    from ray import tune

    parent, name = posixpath.split(checkpoint.path.rstrip("/"))
    own = _CHECKPOINT_NAME.match(name)
    if own is None:
        return []
    try:
        infos = checkpoint.filesystem.get_file_info(FileSelector(parent))
    except OSError:
        return []
    found = []
    for info in infos:
        match = _CHECKPOINT_NAME.match(info.base_name)
        if info.type == FileType.Directory and match and int(match.group(1)) < int(own.group(1)):
            found.append((int(match.group(1)), info.path))
    return [tune.Checkpoint(path, filesystem=checkpoint.filesystem) for _, path in sorted(found, reverse=True)]


def load_newest_intact(checkpoint: Any, state_file: str,
                       load: Callable[[str], dict[str, Any]]) -> tuple[Optional[dict[str, Any]], Optional[str]]:
    """``load`` the ``state_file`` of ``checkpoint`` (a Tune checkpoint), else of the newest older
    checkpoint of its trial folder that loads; returns the state and, after a fallback, the one line that
    says so (None when the latest loaded). When none loads, the state is None and the line says the trial
    starts from the beginning: its epochs run again and rewrite their rows, where failing would leave a
    trial that fails on every resume."""
    reason = ""
    tried = 0
    for candidate in [checkpoint, *older_checkpoints(checkpoint)]:
        tried += 1
        try:
            with candidate.as_directory() as folder:
                state = load(os.path.join(folder, state_file))
        except UNREADABLE as exc:
            if not reason:
                reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:200]
            continue
        if candidate is checkpoint:
            return state, None
        return state, (f"checkpoint {checkpoint.path} cannot be loaded ({reason}); continuing from "
                       f"{posixpath.basename(candidate.path)}, the newest older checkpoint that loads")
    return None, (f"no checkpoint of this trial loads: {checkpoint.path} ({reason})"
                  + (f" and {tried - 1} older one(s)" if tried > 1 else ", and it has no older one")
                  + "; starting the trial from the beginning")


def prune_superseded_checkpoints(tune_dir: Path | str) -> int:
    """Delete every checkpoint folder under ``tune_dir``'s trial folders but each trial's latest one (the
    checkpoint Tune's saved state restores it from); call it only when every trial has finished. Returns
    how many folders were removed. ``tune_dir`` may be a storage URI (:mod:`raynas.remote`)."""
    from ray import tune

    from raynas.remote import is_remote

    trials = tune.ExperimentAnalysis(str(tune_dir)).trials
    if is_remote(str(tune_dir)):
        return _prune_superseded_remote(trials)
    keep = {Path(trial.checkpoint.path).resolve() for trial in trials if trial.checkpoint is not None}
    removed = 0
    for trial in trials:
        assert trial.path is not None  # a trial read back from a saved experiment has its folder
        for folder in sorted(Path(trial.path).glob("checkpoint_*")):
            if folder.is_dir() and folder.resolve() not in keep:
                shutil.rmtree(folder)
                removed += 1
    return removed


def _prune_superseded_remote(trials: list[Any]) -> int:
    """:func:`prune_superseded_checkpoints` of trials whose folders are on object storage."""
    from raynas.remote import uri_of
    from raynas.tune.retention import checkpoint_folders, remove_folder, trial_folder

    keep = {uri_of(trial.checkpoint.filesystem, trial.checkpoint.path) for trial in trials
            if trial.checkpoint is not None}
    removed = 0
    for trial in trials:
        for _, folder in checkpoint_folders(trial_folder(trial)):
            if folder not in keep:
                removed += remove_folder(folder)
    return removed
