"""``raynas e2nas pretrain`` as a subprocess: progress lines, metrics, a loadable file; usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from raynas.e2nas import load

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import raynas as raynas_in_repo  # noqa: E402


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
    pytest.param(["nb201", "--epochs", "-1"], "--epochs = -1: must be >= 0", marks=pytest.mark.slow),  # budget
    pytest.param(["nb201", "--holdout", "1.5"], "--holdout = 1.5: must be a share in [0, 1)", marks=pytest.mark.slow),
])
def test_bad_pretrain_arguments_are_one_line_usage_errors(tmp_path, args, message):
    run = raynas("e2nas", "pretrain", *args, "--out", str(tmp_path / "x.pt"))
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and message in run.stderr, run.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # a CLI search (about 35 s here): make test-all runs it
def test_search_pretrains_its_autoencoder_into_the_experiment_and_logs_exploration(tmp_path):
    import pyarrow.parquet as pq
    import yaml

    run = raynas_in_repo("search", "search_configs/smoke/e2nas.yaml", "--out", str(tmp_path),
                         "--set", "ray.num_cpus=2")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "pretraining the nb201 cell autoencoder for E2NAS (1 epochs" in run.stdout
    exp = tmp_path / "smoke-e2nas"
    saved = exp / "e2nas_autoencoder.pt"
    assert load(saved).space.name == "nb201"
    resolved = yaml.safe_load((exp / "config.yaml").read_text())
    assert resolved["e2nas"]["autoencoder"] == str(saved.resolve())  # every trial and a resume read this file
    table = pq.read_table(exp / "tables" / "epochs.parquet").sort_by("epoch")
    extras = [dict(pairs) for pairs in table.column("extra").to_pylist()]
    assert len(extras) == 2 and extras[-1]["e2nas_distinct"] >= 1 and extras[0]["e2nas_eta"] > 0.99
    gaps = (table.column("discretization_gap").to_pylist() if "discretization_gap" in table.column_names
            else [row["discretization_gap"] for row in extras])
    assert gaps == [0.0, 0.0]  # the supernet runs the decoded cell: no discretization gap


def test_search_refuses_e2nas_with_perturbation_selection_as_a_usage_error(tmp_path):
    run = raynas_in_repo("search", "search_configs/smoke/e2nas.yaml", "--out", str(tmp_path),
                         "--set", "selection.name=perturbation")
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "selection.name = 'perturbation': must be 'magnitude'" in lines[0]
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("case", ["darts-space", "latent-16"])
def test_search_refuses_the_released_estimator_where_it_cannot_run_as_a_usage_error(tmp_path, case):
    """The released estimator reads softmax(z) as an NB201 cell's 6 x 5 table: another space is refused when
    the config is read, an autoencoder with another latent size when its file is read; one line, exit 2,
    nothing written."""
    settings = ["--set", "e2nas.estimator=released"]
    if case == "darts-space":
        settings += ["--set", "space=darts"]
        message = "e2nas.estimator = 'released': runs on NB201 cells only"
    else:
        from raynas.e2nas import pretrain, save

        model, _ = pretrain("nb201", samples=200, epochs=1, latent=16, hidden=8, seed=0, prior_samples=2)
        save(model, tmp_path / "latent16.pt")
        settings += ["--set", f"e2nas.autoencoder={tmp_path / 'latent16.pt'}"]
        message = "the latent needs 30 dimensions; the autoencoder has 16 (pretrain with --latent 30)"
    out = tmp_path / "out"
    run = raynas_in_repo("search", "search_configs/smoke/e2nas.yaml", "--out", str(out), *settings)
    assert run.returncode == 2, run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], run.stderr
    assert not out.exists() or not any(out.iterdir())  # nothing written
