"""End to end: ``raynas resume`` of a ``raynas train`` run whose driver was SIGKILLed mid-training.

The resumed trial continues from its last checkpoint, and its whole history (one value per epoch, the
epochs before the kill included) equals an uninterrupted in-process training of the same config, number
for number: checkpoints hold the RNG states and batches are seeded by (seed, epoch).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import BackgroundRun  # noqa: E402

pytestmark = pytest.mark.slow

CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
EPOCHS = 16
EPOCH_LINE = re.compile(r"^\[\S+ seed=0\] epoch +(\d+)/", re.M)


def checkpointed_epochs(run_dir: Path) -> int:
    """The epoch of the trial's checkpoint that Tune's saved experiment state knows of (0: none yet)."""
    from ray import tune

    try:
        trials = tune.ExperimentAnalysis(str(run_dir / "tune")).trials
    except Exception:  # the state file is being written, or not yet there
        return 0
    results = [trial.run_metadata.checkpoint_manager.latest_checkpoint_result for trial in trials]
    return max((r.metrics.get("epoch", 0) for r in results if r is not None), default=0)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("train-resume")
    run_dir = out / "run"
    args = ("train", CONV, "--epochs", str(EPOCHS), "--set", "channels=8", "--set", "layers=1", "--set",
            "batch_size=32", "--out", str(out), "--name", "run", "--num-cpus", "2")
    with BackgroundRun(*args) as first:
        first.wait_until(lambda run: 3 <= checkpointed_epochs(run_dir) and
                         max(map(int, EPOCH_LINE.findall(run.stdout)), default=0) <= EPOCHS - 4)
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
    assert 3 < first_new <= killed_at + 1, (first_new, killed_at)


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
