"""A torn latest checkpoint: the trial goes on from the newest older one that loads, and says so; Tune's
torn saved experiment state: the older state, or one line (real state files, real torch.save/load)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raynas.errors import ConfigError
from raynas.runtime import load_state, save_state
from raynas.tune.checkpoints import load_newest_intact, older_checkpoints
from raynas.tune.saved_state import usable_experiment_state
from raynas.tune.trainable import STATE_FILE


def _trial_folder(root: Path, epochs: int) -> list[Path]:
    """A trial folder with one checkpoint per epoch, named as Tune names them (checkpoint_000000, ...)."""
    folders = []
    for epoch in range(1, epochs + 1):
        folder = root / f"checkpoint_{epoch - 1:06d}"
        folder.mkdir(parents=True)
        save_state({"epoch": epoch}, str(folder / STATE_FILE))
        folders.append(folder)
    return folders


def _checkpoint(folder: Path):
    from ray import tune

    return tune.Checkpoint.from_directory(str(folder))


def _tear(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # what a crash in the middle of copying it leaves


def test_the_latest_checkpoint_loads_when_intact(tmp_path):
    folders = _trial_folder(tmp_path, 3)
    state, note = load_newest_intact(_checkpoint(folders[-1]), STATE_FILE, load_state)
    assert state["epoch"] == 3 and note is None
    assert [Path(c.path).name for c in older_checkpoints(_checkpoint(folders[-1]))] == \
        ["checkpoint_000001", "checkpoint_000000"]


def test_a_torn_latest_checkpoint_falls_back_to_the_newest_that_loads(tmp_path):
    folders = _trial_folder(tmp_path, 4)
    _tear(folders[3] / STATE_FILE)
    (folders[2] / STATE_FILE).unlink()  # and the one before it is gone
    state, note = load_newest_intact(_checkpoint(folders[3]), STATE_FILE, load_state)
    assert state["epoch"] == 2
    assert note.startswith(f"checkpoint {folders[3]} cannot be loaded (") and "\n" not in note
    assert note.endswith("continuing from checkpoint_000001, the newest older checkpoint that loads")


def test_a_checkpoint_restored_before_a_newer_one_never_jumps_ahead(tmp_path):
    folders = _trial_folder(tmp_path, 3)  # Tune restores checkpoint_000001 (its saved state lagged)
    _tear(folders[1] / STATE_FILE)
    state, note = load_newest_intact(_checkpoint(folders[1]), STATE_FILE, load_state)
    assert state["epoch"] == 1 and "checkpoint_000000" in note  # never the newer checkpoint_000002


def test_no_loadable_checkpoint_starts_the_trial_over_in_one_line(tmp_path):
    # Failing the trial would fail it again on every resume: a person would have to delete the checkpoints.
    folders = _trial_folder(tmp_path, 2)
    for folder in folders:
        _tear(folder / STATE_FILE)
    state, note = load_newest_intact(_checkpoint(folders[-1]), STATE_FILE, load_state)
    assert state is None and "\n" not in note
    assert note.startswith(f"no checkpoint of this trial loads: {folders[-1]} (")
    assert note.endswith("and 1 older one(s); starting the trial from the beginning")


def _state(path: Path, trials: int) -> None:
    path.write_text(json.dumps({"trial_data": [[f"trial {i}", {}] for i in range(trials)], "runner_data": {}}))


def test_a_torn_newest_experiment_state_gives_way_to_an_older_one(tmp_path):
    older, newer = tmp_path / "experiment_state-2026-01-01_10-00-00.json", \
        tmp_path / "experiment_state-2026-01-02_10-00-00.json"
    _state(older, 2)
    _state(newer, 2)
    _tear(newer)
    said: list[str] = []
    usable_experiment_state(tmp_path, "experiment 'x'", "run raynas search again", warn=said.append)
    assert len(said) == 1 and "\n" not in said[0] and older.name in said[0] and newer.name in said[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [older.name, newer.name + ".torn"]


def test_a_torn_only_experiment_state_is_one_line(tmp_path):
    only = tmp_path / "experiment_state-2026-01-01_10-00-00.json"
    _state(only, 2)
    _tear(only)
    with pytest.raises(ConfigError) as refused:
        usable_experiment_state(tmp_path, "experiment 'x'", "run raynas search again", warn=print)
    message = str(refused.value)
    assert "\n" not in message and message.startswith("experiment 'x' cannot be resumed: Ray Tune's saved state")
    assert "no older state" in message and only.exists()  # nothing set aside when nothing can replace it


def test_a_folder_left_before_tune_saved_any_state_is_started_over_and_no_other(tmp_path):
    # What a driver killed while Ray or Tune started leaves (tune/tuner.pkl only) is started from the
    # beginning by a resume; a saved state, even one set aside as torn, or any result part means it ran.
    # The whole resume of such a folder runs in the slow tier (tests/e2e/test_e2e_resume.py).
    from raynas.experiment import nothing_ran, start_over_line

    tune = tmp_path / "tune"
    tune.mkdir()
    (tune / "tuner.pkl").write_bytes(b"")
    assert nothing_ran(tmp_path)
    assert start_over_line("experiment 'x'") == ("raynas: experiment 'x' stopped before Ray Tune saved any state "
                                                 "(no trial had reported): starting it from the beginning")
    part = tmp_path / "tables" / "parts" / "epochs" / "t_00000" / "00001.parquet"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"PAR1")
    assert not nothing_ran(tmp_path)
    part.unlink()
    state = tune / "experiment_state-2026-01-01_10-00-00.json"
    _state(state, 1)
    assert not nothing_ran(tmp_path)
    state.rename(state.with_name(state.name + ".torn"))
    assert not nothing_ran(tmp_path)
