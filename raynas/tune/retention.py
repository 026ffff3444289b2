"""Checkpoint retention that a killed driver cannot outrun: a trial's checkpoint is deleted only once the
experiment state Ray Tune saved in the folder no longer restores from it.

Tune's own retention (``CheckpointConfig(num_to_keep=K)``) deletes a trial's oldest checkpoint the moment
it registers a new one, while the experiment state that a resume restores from (each trial's latest
checkpoint) is saved every 10 seconds or more, and copied into the folder asynchronously. Tune forces a save
once a trial has registered K checkpoints since the last one, but that save comes after the deletion: a
trial that checkpoints K times between two saves has deleted the checkpoint the saved state names, and a
driver killed before the next save leaves a folder whose resume fails that trial on every try ("Could not
recover from checkpoint as it does not exist on storage anymore"). ``tools/fault_injection.py`` found it
with epochs of a fraction of a second; any trial whose epochs are short against Tune's save period meets it.

So Tune keeps every checkpoint (``num_to_keep=None``) and :class:`CheckpointRetention`, a Tune callback in
the driver, deletes them: at most every ``period_s`` seconds, when a trial registers a checkpoint, each
trial keeps its ``keep`` newest checkpoints, the ``keep`` newest at or before the one the saved state in the
folder names (the newest older one is the fallback when that one is torn, :mod:`raynas.tune.checkpoints`)
and everything newer than it, and the ``keep`` at or before the one the state this run was resumed from
names (a resume falls back to that state when the newest is torn, :mod:`raynas.tune.saved_state`). When
the saved state cannot be read (Tune is writing it), nothing is deleted that round. A PBT population uses
none of this: it keeps every checkpoint while it runs (:mod:`raynas.tune.checkpoints`).

An experiment on object storage (:mod:`raynas.remote`) has its Tune folder at a URI: the same rules apply
there through pyarrow's file system, and a listing or deletion that fails is left to the next round.
"""

from __future__ import annotations

import fnmatch
import logging
import posixpath
import re
import shutil
import time
from pathlib import Path
from typing import Any, Iterable, Optional

from ray.tune import Callback

from raynas.errors import StorageError
from raynas.remote import is_remote, names, remove_tree, subfolders, uri_of
from raynas.tune.saved_state import STATE_GLOB

KEEP = 2
"""Checkpoints each trial keeps at least (the latest, and an older one to fall back to when it is torn)."""

PERIOD_S = 30.0
"""Least seconds between two rounds of deletions (each reads Tune's saved state)."""

_CHECKPOINT_NAME = re.compile(r"^checkpoint_(\d+)$")


def checkpoint_index(path: str) -> Optional[int]:
    """The index of a checkpoint folder named as Tune names them (``.../checkpoint_000004`` -> 4), else None."""
    match = _CHECKPOINT_NAME.match(posixpath.basename(str(path).rstrip("/")))
    return int(match.group(1)) if match else None


def checkpoint_folders(trial_dir: Path | str) -> list[tuple[int, Path | str]]:
    """(index, folder) of the checkpoints in a trial folder (a local path or a URI), oldest first."""
    if is_remote(trial_dir):
        try:
            listed = subfolders(str(trial_dir))
        except StorageError:  # not now: the next round
            return []
        return sorted((index, f"{trial_dir}/{name}") for name in listed
                      if (index := checkpoint_index(name)) is not None)
    found: list[tuple[int, Path | str]] = []
    for folder in Path(trial_dir).glob("checkpoint_*"):
        index = checkpoint_index(folder.name)
        if index is not None and folder.is_dir():
            found.append((index, folder))
    return sorted(found)


def saved_checkpoints(tune_dir: Path | str) -> Optional[dict[str, int]]:
    """Trial id -> index of the checkpoint the experiment state saved under ``tune_dir`` restores it from
    ({} when Tune saved no state there yet; trials without a checkpoint are left out); None when that state
    cannot be read now or names a checkpoint in a way this module does not know (then delete nothing)."""
    from ray import tune

    try:
        states = fnmatch.filter(names(tune_dir), STATE_GLOB) if is_remote(tune_dir) else \
            list(Path(tune_dir).glob(STATE_GLOB))
    except StorageError:  # not readable now: delete nothing this round
        return None
    if not states:  # tuner.pkl alone: Tune saved no state yet
        return {}
    quiet = logging.getLogger("ray.tune.analysis.experiment_analysis")  # it warns that result files are off
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        trials = tune.ExperimentAnalysis(str(tune_dir)).trials
    except Exception:  # the state is being written or copied: try again next round
        return None
    finally:
        quiet.setLevel(level)
    saved = {}
    for trial in trials:
        checkpoint = trial.checkpoint
        if checkpoint is None:
            continue
        index = checkpoint_index(checkpoint.path)
        if index is None:
            return None
        saved[trial.trial_id] = index
    return saved


def kept_indices(indices: list[int], keep: int, saved: Optional[int], resumed_from: Optional[int]) -> set[int]:
    """Which of a trial's checkpoint ``indices`` (oldest first) to keep (see the module docstring)."""
    kept = set(indices[-keep:])
    for named in (saved, resumed_from):
        if named is not None:
            kept |= set([i for i in indices if i <= named][-keep:])
    if saved is not None:
        kept |= {i for i in indices if i > saved}
    return kept


def prune_checkpoints(tune_dir: Path | str, trial_dirs: Iterable[tuple[str, Path | str]], keep: int = KEEP,
                      resumed_from: Optional[dict[str, int]] = None) -> int:
    """Delete the checkpoints of each ``(trial id, trial folder)`` that no saved state can restore from and
    that are not among the ``keep`` newest (see the module docstring); returns how many were deleted
    (0 when the saved state cannot be read now)."""
    saved = saved_checkpoints(tune_dir if is_remote(tune_dir) else Path(tune_dir))
    if saved is None:
        return 0
    removed = 0
    for trial_id, trial_dir in trial_dirs:
        folders = checkpoint_folders(trial_dir)
        kept = kept_indices([index for index, _ in folders], keep, saved.get(trial_id),
                            (resumed_from or {}).get(trial_id))
        for index, folder in folders:
            if index not in kept:
                removed += remove_folder(folder)
    return removed


def remove_folder(folder: Path | str) -> int:
    """Delete a checkpoint folder (a local path or a URI); 1 when it went, 0 when that failed for now."""
    if not is_remote(folder):
        shutil.rmtree(folder, ignore_errors=True)
        return 1
    try:
        remove_tree(folder)
    except StorageError:  # the next round (or the next run) tries again
        return 0
    return 1


def trial_folders(trials: Iterable[Any]) -> list[tuple[str, Path | str]]:
    """(trial id, trial folder) of Tune trials that have a folder: a local path, or a URI when the trial's
    storage is remote."""
    return [(trial.trial_id, trial_folder(trial)) for trial in trials if getattr(trial, "path", None)]


def trial_folder(trial: Any) -> Path | str:
    """A Tune trial's folder: a local path, or a URI for remote storage (:func:`raynas.remote.uri_of`)."""
    storage = getattr(trial, "storage", None)
    filesystem = getattr(storage, "storage_filesystem", None)
    return Path(trial.path) if filesystem is None else uri_of(filesystem, trial.path)


class CheckpointRetention(Callback):
    """Deletes superseded checkpoints of the experiment under ``tune_dir`` without outrunning Tune's saved
    state (see the module docstring); Tune itself must keep every checkpoint (``num_to_keep=None``)."""

    def __init__(self, tune_dir: str | Path, keep: int = KEEP, period_s: float = PERIOD_S) -> None:
        super().__init__()
        self.tune_dir = tune_dir if is_remote(tune_dir) else Path(tune_dir)
        self.keep = keep
        self.period_s = period_s
        self._resumed_from: Optional[dict[str, int]] = None
        self._next_round = 0.0

    def setup(self, stop: Any = None, num_samples: Optional[int] = None, total_num_samples: Optional[int] = None,
              **info: Any) -> None:
        """Remember the checkpoints of the state this run starts from (a resume's; none for a new run)."""
        self._resumed_from = saved_checkpoints(self.tune_dir)
        self._next_round = time.monotonic() + self.period_s

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        """Delete superseded checkpoints, at most every ``period_s`` seconds (and 5% of the time at most)."""
        start = time.monotonic()
        if start < self._next_round or self._resumed_from is None:  # state unreadable at setup: keep all
            return
        try:
            prune_checkpoints(self.tune_dir, trial_folders(trials), self.keep, self._resumed_from)
        finally:
            self._next_round = time.monotonic() + max(self.period_s, 20 * (time.monotonic() - start))
