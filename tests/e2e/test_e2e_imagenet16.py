"""End to end: NB201 search and training on ImageNet16-120 (real CLI, real local Ray on 2 CPUs, real Parquet).

The data are small files in the official downsampled-ImageNet pickle format written here (labels 1..1000;
the reader keeps 1..120), so the search and the network it trains must be sized for 120 classes of 3x16x16.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from cli_helpers import LOOPBACK, raynas, run_watching_sockets  # noqa: E402
from imagenet16_files import write_imagenet16  # noqa: E402

EPOCHS = 2


def _config(root: Path, folder: Path) -> Path:
    cfg = {"name": "in16", "space": "nb201", "data": {"name": "imagenet16", "root": str(root)},
           "supernet": {"channels": 4, "layers": 1}, "search": {"epochs": EPOCHS, "batch_size": 32, "arch_lr": 0.01},
           "tune": {"grid": {"search.seed": [0]}}}
    path = folder / "in16.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("imagenet16")
    write_imagenet16(base / "data")
    out = base / "out"
    run = run_watching_sockets("search", str(_config(base / "data", base)), "--out", str(out),
                               "--set", "ray.num_cpus=2")
    return {"run": run, "exp": out / "in16", "base": base}


@pytest.mark.slow  # a CLI search with its own Ray (about 20 s); a search epoch runs in process in the default
# tier (tests/data/test_data_imagenet16.py)
def test_nb201_search_runs_on_imagenet16(searched: dict) -> None:
    run, exp = searched["run"], searched["exp"]
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"epoch   {EPOCHS}/{EPOCHS}" in run.stdout and "|+|" in run.stdout
    assert run.listening and run.listening <= LOOPBACK, run.listening
    trials = pq.read_table(exp / "tables" / "trials.parquet").to_pylist()
    assert [t["status"] for t in trials] == ["TERMINATED"]
    epochs = pq.read_table(exp / "tables" / "epochs.parquet").to_pylist()
    assert len(epochs) == EPOCHS
    # an untrained 120-way classifier starts near ln(120) = 4.79 (ln(10) = 2.30 for 10 classes)
    assert abs(epochs[0]["train_loss"] - math.log(120)) < 0.5, epochs[0]["train_loss"]


@pytest.mark.slow  # the CLI search above; the default tier checks the sizes in process
def test_the_supernet_is_sized_for_120_classes_of_3_channels(searched: dict) -> None:
    checkpoints = sorted(searched["exp"].glob("tune/*/checkpoint_*/search_state.pt"))
    assert checkpoints, "no search checkpoint was written"
    model = torch.load(checkpoints[-1], weights_only=True)["model"]
    assert tuple(model["classifier.weight"].shape) == (120, 16)  # 4C channels after the last stage
    assert tuple(model["stem.0.weight"].shape) == (4, 3, 3, 3)


def test_a_folder_without_the_files_is_one_line_before_anything_runs(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    result = raynas("search", str(_config(empty, tmp_path)), "--out", str(out))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {tmp_path / 'in16.yaml'}: data.root = {str(empty)!r}: no ImageNet16 files "
                               "there; expected train_data_batch_1 .. train_data_batch_10 and val_data"), lines[0]
    assert not out.exists()


@pytest.mark.slow  # a second CLI run with its own Ray
def test_raynas_train_trains_the_found_cell_on_imagenet16(searched: dict) -> None:
    from raynas.networks import count_flops, count_parameters
    from raynas.spaces import get_space

    assert searched["run"].returncode == 0, searched["run"].stderr[-3000:]
    run = run_watching_sockets("train", str(searched["exp"]), "--epochs", "1", "--seeds", "0",
                               "--set", "channels=4", "--set", "layers=1", "--set", "batch_size=64",
                               "--name", "run", "--num-cpus", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    rows = pq.read_table(searched["exp"] / "evaluations" / "run" / "tables" / "evaluations.parquet").to_pylist()
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "TERMINATED" and row["dataset"] == "imagenet16" and row["epochs_done"] == 1
    space = get_space("nb201")
    network = space.build_network(space.parse_genotype(row["genotype"]), channels=4, layers=1, num_classes=120,
                                  in_channels=3, auxiliary=False, drop_path_prob=0.0)
    assert row["params"] == count_parameters(network)
    assert row["flops"] == count_flops(network, (3, 16, 16))
    assert 0.0 <= row["test_acc"] <= 1.0
