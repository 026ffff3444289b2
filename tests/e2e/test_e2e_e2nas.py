"""``raynas e2nas pretrain`` as a subprocess: progress lines, metrics, a loadable file; usage errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def raynas(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raynas.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def test_pretrain_prints_progress_and_saves_a_loadable_autoencoder(tmp_path):
    import torch

    from raynas.e2nas import ArchVGAE, evaluate, load, sample_choices

    path = tmp_path / "nb201.pt"
    run = raynas("e2nas", "pretrain", "nb201", "--epochs", "2", "--samples", "1500", "--hidden", "32",
                 "--out", str(path), "--json")
    assert run.returncode == 0, run.stderr[-2000:]
    assert [line for line in run.stdout.splitlines() if line.startswith("epoch ")][1].startswith("epoch 2/2: loss ")
    metrics = json.loads(run.stdout[run.stdout.index("{"):])
    cells = metrics["train_cells"] + metrics["holdout_cells"]
    assert metrics["path"] == str(path) and 1300 < cells <= 1500  # 1,500 draws, duplicates dropped
    assert metrics["prior_validity"] == 1.0
    model = load(path)
    assert model.config()["hidden"] == 32
    cells = sample_choices("nb201", 300, seed=5)
    torch.manual_seed(0)
    fresh = ArchVGAE("nb201", hidden=32).eval()
    # trained, not a fresh model: measured 0.50 against 0.2 (chance, 5 ops per edge)
    assert evaluate(model, cells)["edge_acc"] > evaluate(fresh, cells)["edge_acc"] + 0.15


@pytest.mark.parametrize("args, message", [
    (["nb999"], "unknown search space 'nb999'"),
    (["nb201", "--epochs", "-1"], "--epochs = -1: must be >= 0"),
    (["nb201", "--holdout", "1.5"], "--holdout = 1.5: must be a share in [0, 1)"),
])
def test_bad_pretrain_arguments_are_one_line_usage_errors(tmp_path, args, message):
    run = raynas("e2nas", "pretrain", *args, "--out", str(tmp_path / "x.pt"))
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and message in run.stderr, run.stderr
    assert list(tmp_path.iterdir()) == []
