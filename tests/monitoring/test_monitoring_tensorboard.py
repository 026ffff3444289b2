"""Watching a real search: its TensorBoard files (on by default) and its status line, read back and compared with
the epochs table.

One tiny NB201 population (2 trials x 2 epochs, digits) runs through raynas' driver on the session's loopback
Ray; the TensorBoard event files are parsed record by record (tests/monitoring/event_files.py).
"""

from __future__ import annotations

import io
import struct
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from event_files import scalars, value_kinds  # noqa: E402

from raynas.experiment import TUNE_DIR, prepare_experiment, run_experiment  # noqa: E402

SMOKE = Path(__file__).resolve().parents[2] / "raynas" / "configs" / "smoke" / "nb201.yaml"
#: epochs-table columns every search reports, so each must reach TensorBoard
CORE_METRICS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "derived_val_acc", "derived_params",
                "num_skip")


def as_float32(value: float) -> float:
    """``value`` as TensorBoard stores a scalar (a 32-bit float)."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


@pytest.fixture(scope="module")
def searched(ray_local, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    printed = io.StringIO()
    with redirect_stdout(printed):  # the progress and status lines go to stdout as they are printed
        outcome = run_experiment(prepare_experiment(SMOKE, out=out), echo=print)
    assert outcome.num_errors == 0 and outcome.num_trials == 2, printed.getvalue()
    epochs = pq.read_table(outcome.directory / "tables" / "epochs.parquet").to_pylist()
    return outcome.directory, epochs, printed.getvalue()


def trial_folders(directory: Path, trial_ids: set[str]) -> dict[str, Path]:
    """Trial id -> its folder under tune/ (Tune names it <trainable>_<trial id>_<index>_<params>_<time>)."""
    folders = [path for path in (directory / TUNE_DIR).iterdir() if path.is_dir()]
    found = {trial_id: [path for path in folders if f"_{trial_id}_" in path.name] for trial_id in trial_ids}
    assert all(len(paths) == 1 for paths in found.values()), found
    return {trial_id: paths[0] for trial_id, paths in found.items()}


def test_tensorboard_shows_each_trials_metrics_as_the_epochs_table_has_them(searched):
    directory, epochs, _ = searched
    trial_ids = {row["trial_id"] for row in epochs}
    assert len(trial_ids) == 2
    for trial_id, folder in trial_folders(directory, trial_ids).items():
        shown = scalars(folder)
        rows = {row["epoch"]: row for row in epochs if row["trial_id"] == trial_id}
        assert sorted(rows) == [1, 2]
        compared = 0
        for column in {key for row in rows.values() for key in row}:
            values = {epoch: row[column] for epoch, row in rows.items()}
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values()):
                continue
            tag = f"ray/tune/{column}"
            if column in CORE_METRICS:
                assert tag in shown, f"{trial_id}: {column} is missing from TensorBoard"
            if tag not in shown:
                continue
            # stepped by the search's epoch; TensorBoard keeps 32-bit floats
            assert shown[tag] == {epoch: as_float32(float(v)) for epoch, v in values.items()}, (trial_id, column)
            compared += 1
        assert compared >= len(CORE_METRICS)
        # the architecture weights and genotype are table data, not TensorBoard histograms or text
        assert "histo" not in value_kinds(folder)
        assert not any(tag.startswith("ray/tune/alphas") for tag in shown)


def test_no_per_trial_csv_or_json_files_come_back(searched):
    directory, epochs, _ = searched
    for folder in trial_folders(directory, {row["trial_id"] for row in epochs}).values():
        files = {path.name for path in folder.iterdir() if not path.name.startswith("checkpoint_")}
        assert files and all(name.startswith("events.out.tfevents.") for name in files), files


def test_the_last_status_line_names_the_best_trial(searched):
    _, epochs, printed = searched
    lines = [line for line in printed.splitlines() if line.startswith("raynas: population")]
    assert lines and lines[-1].startswith("raynas: population done: 0 running, 2 finished, 0 failed, 0 pending of 2 | ")
    last = {row["trial_id"]: row for row in epochs if row["epoch"] == 2}
    best = max(last.values(), key=lambda row: row["derived_params"])  # tune.metric derived_params, mode max
    assert f"| best derived_params {int(best['derived_params']):,} (" in lines[-1]
    assert ", epoch 2) | epochs 4/4 in " in lines[-1]
    assert "+---" not in printed and "Trial status" not in printed  # Tune's own tables stay off
