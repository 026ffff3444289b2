"""End to end: ``raynas train`` as a Ray Tune population (real CLI, real local Ray on 2 CPUs, digits).

One run trains the best genotype of a search experiment folder and a genotype from a file, each with two
seeds, for two epochs; the evaluations table, ``raynas results`` and ``raynas resume`` are checked on it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raynas.config import dump_config, load_config
from raynas.results import ResultsWriter, summarise_trial

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import LOOPBACK, ROOT, raynas, run_watching_sockets  # noqa: E402

CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
POOL = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
EPOCHS = 2


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    exp = tmp_path_factory.mktemp("train") / "smoke-nb201"
    exp.mkdir()
    # ranked by derived_val_acc, the metric its trials rows are summarised by (as a search's config says)
    dump_config(load_config(ROOT / "search_configs/smoke/nb201.yaml",
                            ["data.limit=300", "tune.metric=derived_val_acc"]),
                exp / "config.yaml")
    writer = ResultsWriter(exp, exp.name)
    for trial_id, genotype, value in (("t_a", CONV, 0.4), ("t_b", POOL, 0.8)):
        row = {"epoch": 2, "derived_val_acc": value, "genotype": genotype, "num_skip": 1, "connected": True}
        writer.write_trial(summarise_trial(trial_id, [row], "derived_val_acc", "max", experiment=exp.name,
                                           status="TERMINATED", space="nb201", method="darts", seed=0))
    writer.consolidate()
    listing = exp.parent / "genotypes.txt"
    listing.write_text(f"# from a paper\n{CONV}\n")
    run = run_watching_sockets("train", str(exp), str(listing), "--seeds", "0,1", "--epochs", str(EPOCHS),
                               "--set", "channels=4", "--set", "layers=1", "--set", "batch_size=64",
                               "--set", "data.noise_std=0", "--name", "run", "--num-cpus", "2")
    return {"exp": exp, "listing": listing, "run": run, "folder": exp / "evaluations" / "run"}


def test_train_runs_every_architecture_with_every_seed(trained):
    run = trained["run"]
    assert run.returncode == 0, run.stderr[-3000:]
    assert "2 architecture(s) x 2 seed(s) = 4 trial(s)" in run.stdout
    assert run.stdout.count(f"epoch   {EPOCHS}/{EPOCHS}") == 4
    assert "mean test_acc over seeds (" in run.stdout and run.stdout.count("(n=2)") == 2
    assert run.listening and run.listening <= LOOPBACK, run.listening


def test_evaluations_table_has_one_complete_row_per_architecture_and_seed(trained):
    rows = pq.read_table(trained["folder"] / "tables" / "evaluations.parquet").to_pylist()
    assert sorted((r["genotype"], r["seed"]) for r in rows) == sorted((g, s) for g in (CONV, POOL) for s in (0, 1))
    for row in rows:
        assert row["status"] == "TERMINATED" and row["error"] is None and row["experiment"] == "run"
        assert row["epochs"] == row["epochs_done"] == EPOCHS and row["dataset"] == "digits"
        assert len(row["epoch_test_acc"]) == len(row["epoch_train_loss"]) == EPOCHS
        assert row["test_acc"] == row["epoch_test_acc"][-1] and row["best_test_acc"] == max(row["epoch_test_acc"])
        assert 0.2 < row["test_acc"] <= 1.0  # two epochs on digits learn something
        assert row["flops"] == 2 * row["macs"] > 0 and row["params"] > 0
        config = json.loads(row["config_json"])
        assert (config["lr"], config["channels"], config["data"]["limit"]) == (0.1, 4, 300)  # protocol + search data
    by_genotype = {r["genotype"]: r for r in rows}
    assert (by_genotype[POOL]["source"], by_genotype[POOL]["source_trial"]) == (str(trained["exp"]), "t_b")
    assert (by_genotype[CONV]["source"], by_genotype[CONV]["source_trial"]) == (str(trained["listing"]), None)
    assert by_genotype[CONV]["params"] != by_genotype[POOL]["params"]


def test_results_lists_the_evaluations_of_the_run_and_of_the_search_folder(trained):
    of_run = raynas("results", str(trained["folder"]), "--format", "json")
    of_search = raynas("results", str(trained["exp"]), "--table", "evaluations", "--where", "seed == 1",
                       "--format", "json")
    assert of_run.returncode == 0 and of_search.returncode == 0, of_run.stderr + of_search.stderr
    assert len(json.loads(of_run.stdout)) == 4
    assert sorted(r["genotype"] for r in json.loads(of_search.stdout)) == sorted([CONV, POOL])


def test_resume_of_a_finished_run_says_so(trained):
    result = raynas("resume", str(trained["folder"]))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "had already finished; nothing to resume" in result.stdout
    assert result.stdout.count("TERMINATED") == 0 and "mean test_acc over seeds (" in result.stdout


def test_bad_source_is_a_usage_error_and_writes_nothing(tmp_path):
    result = raynas("train", "|nor_conv_3x3~0|+|", "--out", str(tmp_path), "--name", "x")
    assert result.returncode == 2 and result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


@pytest.mark.slow  # moved from the default tier to keep it under 10 minutes; make test-all runs it
def test_exported_network_reproduces_the_evaluations_test_accuracy(trained, tmp_path):
    import torch

    from raynas.config import train_config_from_dict
    from raynas.data import EpochLoader, load_data

    rows = pq.read_table(trained["folder"] / "tables" / "evaluations.parquet").to_pylist()
    row = next(r for r in rows if r["genotype"] == POOL and r["seed"] == 1)
    result = raynas("export", str(trained["exp"]), "--trial", row["trial_id"], "--format", "pt2",
                    "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"exporting trial {row['trial_id']}" in result.stdout and "(pt2: re-imported outputs within" in result.stdout
    program = torch.export.load(tmp_path / "network.pt2").module()
    data = load_data(train_config_from_dict(json.loads(row["config_json"])).data)
    correct = seen = 0
    with torch.no_grad():
        for x, y in EpochLoader(data.test, 64, shuffle=False, seed=0).epoch(0):
            correct += int((program(x).argmax(1) == y).sum())
            seen += len(y)
    assert correct / seen == pytest.approx(row["test_acc"], abs=1e-9)
