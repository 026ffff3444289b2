"""Checkpoint retention never deletes the checkpoint Ray Tune's saved experiment state restores a trial from
(raynas.tune.retention), where Tune's own retention does: a real Tune run on the session's local Ray whose
trial checkpoints faster than Tune saves its state, checked at every checkpoint it registers."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from raynas.tune.retention import (CheckpointRetention, checkpoint_folders, kept_indices, prune_checkpoints,
                                   saved_checkpoints)

ITERATIONS = 12
MAX_STEPS = 400
"""The most steps a trial that waits to see its first checkpoint pruned takes (see :func:`_trainable`)."""


def test_kept_indices_keep_the_newest_and_what_saved_states_name():
    indices = list(range(10))
    assert kept_indices(indices, 2, None, None) == {8, 9}
    assert kept_indices(indices, 2, 4, None) == {3, 4, 5, 6, 7, 8, 9}  # named, its fallback, all newer
    assert kept_indices(indices, 2, 7, 1) == {0, 1, 6, 7, 8, 9}  # the state a resume started from too
    assert kept_indices([5, 6], 2, 3, None) == {5, 6}  # the named one is gone already: nothing more to keep


def _trainable(config):
    """Checkpoints ITERATIONS steps; with ``until_pruned`` (the experiment's Tune folder) it goes on, up to
    MAX_STEPS, until its first checkpoint is gone from that folder: the retention's rounds are throttled by
    how long they take, so on a busy machine twelve fast steps can end before a round deletes anything."""
    from ray import tune

    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            start = int(Path(folder, "step.txt").read_text())
    watched = config.get("until_pruned")
    step = start
    while step < ITERATIONS or (watched and step < MAX_STEPS
                                and any(Path(watched).glob("*/checkpoint_000000"))):
        step += 1
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "step.txt").write_text(str(step))
            tune.report({"step": step}, checkpoint=tune.Checkpoint.from_directory(folder))


class _Watch:
    """Right after Tune registered each checkpoint (and its own retention deleted the oldest), before it saves
    its experiment state again: does the checkpoint that the saved state names for each trial still exist?
    The answers, in order (a driver killed at that moment leaves what was checked)."""

    def __init__(self, tune_dir: Path) -> None:
        self.tune_dir = tune_dir
        self.named_exists: list[bool] = []

    def callback(self):
        from ray.tune import Callback

        watch = self

        class Check(Callback):
            def on_trial_save(self, iteration, trials, trial, **info):
                saved = saved_checkpoints(watch.tune_dir) or {}
                for trial_id, index in saved.items():
                    folder = next(Path(t.path) for t in trials if t.trial_id == trial_id)
                    watch.named_exists.append((folder / f"checkpoint_{index:06d}").is_dir())

        return Check()


def _ship_this_module() -> None:
    from ray import cloudpickle

    # Ray workers cannot import modules from the tests folder: the trainable travels by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _run(tmp_path: Path, num_to_keep, retention: bool) -> _Watch:
    from ray import tune

    _ship_this_module()

    tune_dir = tmp_path / "tune"
    watch = _Watch(tune_dir)
    callbacks = [CheckpointRetention(tune_dir, keep=2, period_s=0)] if retention else []
    param_space = {"until_pruned": str(tune_dir)} if retention else {}
    tuner = tune.Tuner(_trainable, param_space=param_space, run_config=tune.RunConfig(
        name="tune", storage_path=str(tmp_path), verbose=0, callbacks=[*callbacks, watch.callback()],
        checkpoint_config=tune.CheckpointConfig(num_to_keep=num_to_keep)))
    tuner.fit()
    return watch


def test_tunes_own_retention_deletes_the_checkpoint_its_saved_state_names(ray_local, tmp_path, monkeypatch):
    # Tune saves its experiment state every 10 s or more, and after K checkpoints of a trial (K = num_to_keep)
    # once the K-th has deleted the checkpoint the last save named. Its period made long, only those saves
    # remain, so every K-th checkpoint of this fast trial opens that window.
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "3600")
    watch = _run(tmp_path, num_to_keep=2, retention=False)
    assert watch.named_exists and not all(watch.named_exists)  # the failure the retention exists for


def test_retention_keeps_what_the_saved_state_names_and_prunes_the_rest(ray_local, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "0")  # a state saved at every step: one names a checkpoint
    watch = _run(tmp_path, num_to_keep=None, retention=True)
    assert watch.named_exists and all(watch.named_exists)
    trial_dir = next(d for d in (tmp_path / "tune").iterdir() if d.is_dir())
    left = [index for index, _ in checkpoint_folders(trial_dir)]
    assert 0 not in left  # pruned while it ran (the trial went on until it was, MAX_STEPS at most)
    named = saved_checkpoints(tmp_path / "tune")  # the final state: the last checkpoint
    last = left[-1]
    assert list(named.values()) == [last] and last >= ITERATIONS - 1
    prune_checkpoints(tmp_path / "tune", [(next(iter(named)), trial_dir)], keep=2)
    assert [index for index, _ in checkpoint_folders(trial_dir)] == [last - 1, last]


def test_prune_keeps_checkpoints_newer_than_the_saved_state(ray_local, tmp_path):
    from ray import tune

    _ship_this_module()
    tune.Tuner(_trainable, run_config=tune.RunConfig(name="tune", storage_path=str(tmp_path), verbose=0,
                                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=None))).fit()
    trial_dir = next(d for d in (tmp_path / "tune").iterdir() if d.is_dir())
    for index in (ITERATIONS, ITERATIONS + 1):  # registered after the state was saved, as at a kill
        (trial_dir / f"checkpoint_{index:06d}").mkdir()
    trial_id = next(iter(saved_checkpoints(tmp_path / "tune")))
    prune_checkpoints(tmp_path / "tune", [(trial_id, trial_dir)], keep=2)
    assert [index for index, _ in checkpoint_folders(trial_dir)] == [ITERATIONS - 2, ITERATIONS - 1, ITERATIONS,
                                                                       ITERATIONS + 1]
    assert os.listdir(trial_dir / f"checkpoint_{ITERATIONS - 1:06d}")  # the named one, intact
