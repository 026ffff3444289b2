"""End to end: ``raynas resume`` of a ``raynas train`` run whose driver was SIGKILLed mid-training.

The resumed trial continues from its last checkpoint, and its whole history (one value per epoch, the
epochs before the kill included) equals an uninterrupted in-process training of the same config, number
for number: checkpoints hold the RNG states and batches are seeded by (seed, epoch). The trial is held after
epoch ``HELD`` (:mod:`raynas.tune.hold`) until the kill, so the kill comes mid-run by construction.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import SAVE_STATE_EVERY_SECOND, BackgroundRun, Hold, saved_checkpoint_epoch  # noqa: E402

pytestmark = pytest.mark.slow

CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
EPOCHS = 16
HELD = 4  # the training waits after this epoch until the kill
EPOCH_LINE = re.compile(r"^\[\S+ seed=0\] epoch +(\d+)/", re.M)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("train-resume")
    run_dir = out / "run"
    args = ("train", CONV, "--epochs", str(EPOCHS), "--set", "channels=8", "--set", "layers=1", "--set",
            "batch_size=32", "--out", str(out), "--name", "run", "--num-cpus", "2")
    hold = Hold(out / "hold", HELD)
    with BackgroundRun(*args, hold=hold, env=SAVE_STATE_EVERY_SECOND) as first:
        # Held, the trial stays at HELD while Tune's saved state catches up with its checkpoint of HELD.
        first.wait_until(lambda run: list(hold.held().values()) == [HELD]
                         and saved_checkpoint_epoch(run_dir / "tune") == HELD
                         and max(map(int, EPOCH_LINE.findall(run.stdout)), default=0) == HELD)
        first.kill_driver()
        before = first.stdout
    with BackgroundRun("resume", str(run_dir)) as second:
        code = second.wait(timeout=300)
        after, errors = second.stdout, second.stderr
    return {"run_dir": run_dir, "before": before, "after": after, "code": code, "stderr": errors}


def test_resumed_training_continues_from_its_checkpoint(resumed):
    assert resumed["code"] == 0, resumed["stderr"][-3000:]
    assert "resuming evaluation 'run' (1 of 1 trial(s) unfinished, 0 not started)" in resumed["after"]
    killed_at = max(map(int, EPOCH_LINE.findall(resumed["before"])))
    first_new = min(map(int, EPOCH_LINE.findall(resumed["after"])))
    assert killed_at == HELD and first_new == HELD + 1, (first_new, killed_at)  # from the saved checkpoint


def test_resumed_history_equals_an_uninterrupted_training(resumed):
    from raynas.config import train_config_from_dict
    from raynas.train import ScratchTraining

    rows = pq.read_table(resumed["run_dir"] / "tables" / "evaluations.parquet").to_pylist()
    assert len(rows) == 1 and rows[0]["status"] == "TERMINATED" and rows[0]["epochs_done"] == EPOCHS
    training = ScratchTraining(train_config_from_dict(json.loads(rows[0]["config_json"])))
    while not training.done:
        report = training.run_epoch()
    for name in ("epoch_train_loss", "epoch_test_acc", "epoch_test_loss"):
        assert rows[0][name] == report[name], name


def test_resume_of_a_run_killed_before_tune_saved_state_starts_it_over(tmp_path):
    # What `raynas train` leaves when killed while Ray or Tune started: its plan, no saved state, no results.
    # It used to be refused ("run raynas train again in a new folder"): a person had to clean up.
    from raynas.evaluation.plan import plan_evaluation, write_plan

    prepared = plan_evaluation([CONV], epochs=2, overrides=["channels=8", "layers=1", "batch_size=32"],
                               name="early", out=str(tmp_path), num_cpus=2)
    prepared.directory.mkdir()
    write_plan(prepared.plan, prepared.directory)
    with BackgroundRun("resume", str(prepared.directory)) as run:
        code = run.wait(timeout=300)
        out, err = run.stdout, run.stderr
    assert code == 0, err[-3000:]
    assert f"raynas: evaluation '{prepared.directory}' stopped before Ray Tune saved any state" in out
    assert sorted(map(int, EPOCH_LINE.findall(out))) == [1, 2]
    rows = pq.read_table(prepared.directory / "tables" / "evaluations.parquet").to_pylist()
    assert [(row["status"], row["epochs_done"]) for row in rows] == [("TERMINATED", 2)]
    (trial,) = [d for d in (prepared.directory / "tune").iterdir() if d.is_dir()]
    assert [d.name for d in trial.glob("checkpoint_*")] == ["checkpoint_000001"]  # its last one only, at the end
