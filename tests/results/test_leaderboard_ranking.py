"""The leaderboard names its ranking metric and scope (final_<metric> / best_<metric>), ranks by a method metric
of the epochs' extra map, takes its defaults from config.yaml; method metrics are epochs columns; times print as
times and an empty result says so. Real Parquet experiments written through the results writer; the CLI as a
subprocess."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from results_trainable_helper import make_report

from raynas.results import rows_from_report
from raynas.errors import ResultsError
from raynas.results import (ResultsWriter, format_table, leaderboard, leaderboard_columns, load_table, ranking_of,
                            summarise_trial)

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_796_000_000.0  # reported_at of epoch 1 (unix seconds): 2026-11-30T00:53:20Z
# derived_val_acc per epoch: t0 peaks at epoch 2 and degrades; t1 rises; t2 stays low
ACCURACY = {"t0": (0.5, 0.9, 0.3), "t1": (0.2, 0.4, 0.6), "t2": (0.1, 0.2, 0.25)}
GAP = {"t0": 0.7, "t1": 0.1, "t2": 0.4}  # discretization_gap: a method metric, stored in the extra map


def _experiment(folder: Path, config: str | None = None) -> Path:
    writer = ResultsWriter(folder, folder.name)
    for seed, (trial_id, accs) in enumerate(ACCURACY.items()):
        rows = []
        for epoch, acc in enumerate(accs, 1):
            report = make_report(epoch, seed, derived_val_acc=acc, discretization_gap=GAP[trial_id] * epoch / 3,
                                 reported_at=T0 + 60 * (epoch - 1) + seed)
            writer.write_rows(trial_id, rows_from_report(trial_id, report))
            rows.append({"epoch": epoch, **report})
        writer.write_trial(summarise_trial(trial_id, rows, "derived_val_acc", "max", experiment=folder.name,
                                           status="TERMINATED", seed=seed, method="darts", space="nb201"))
    writer.consolidate()
    if config is not None:
        (folder / "config.yaml").write_text(config)
    return folder


def test_scope_last_ranks_the_returned_genotype_and_names_the_column(tmp_path):
    board = leaderboard(_experiment(tmp_path / "exp"))
    assert ranking_of(board) == {"metric": "derived_val_acc", "mode": "max", "scope": "last",
                                 "column": "final_derived_val_acc"}
    assert "metric_value" not in board.column_names and "metric" not in board.column_names
    assert board.column_names[5] == "final_derived_val_acc"
    assert board["trial_id"].to_pylist() == ["t1", "t0", "t2"]
    assert board["final_derived_val_acc"].to_pylist() == pytest.approx([0.6, 0.3, 0.25])
    assert board["genotype"].to_pylist()[0] == make_report(3, 1)["genotype"]  # the last epoch's


def test_scope_best_ranks_by_the_best_epoch_with_its_genotype(tmp_path):
    board = leaderboard(_experiment(tmp_path / "exp"), scope="best")
    assert ranking_of(board)["column"] == "best_derived_val_acc"
    assert board.column_names == leaderboard_columns("derived_val_acc", "best")
    assert board.column_names.count("best_derived_val_acc") == 1  # the ranking column is that column
    assert board.column_names[5:7] == ["best_derived_val_acc", "best_epoch"]
    rows = board.to_pylist()
    assert [row["trial_id"] for row in rows] == ["t0", "t1", "t2"]  # t0's peak at epoch 2 wins now
    assert (rows[0]["best_derived_val_acc"], rows[0]["best_epoch"]) == (pytest.approx(0.9), 2)
    assert rows[0]["genotype"] == make_report(2, 0)["genotype"] != make_report(3, 0)["genotype"]
    assert rows[0]["num_skip"] == make_report(2, 0)["num_skip"]
    by_loss = leaderboard(tmp_path / "exp", "val_loss", scope="best")  # a loss: min, the lowest of any epoch
    assert ranking_of(by_loss)["mode"] == "min" and by_loss["trial_id"].to_pylist() == ["t0", "t1", "t2"]
    assert by_loss["best_val_loss"].to_pylist() == pytest.approx([2.2 / 3, 2.2 / 3 + 0.1, 2.2 / 3 + 0.2])


def test_a_method_metric_ranks_and_filters(tmp_path):
    folder = _experiment(tmp_path / "exp")
    board = leaderboard(folder, "discretization_gap", "min")
    assert board["trial_id"].to_pylist() == ["t1", "t2", "t0"]
    assert board["final_discretization_gap"].to_pylist() == pytest.approx([0.1, 0.4, 0.7])
    kept = leaderboard(folder, where="final_derived_val_acc > 0.28 and seed < 2")  # the ranking column filters
    assert kept["trial_id"].to_pylist() == ["t1", "t0"]
    with pytest.raises(ResultsError, match=r"unknown column 'discretization_gap'; columns: .*final_derived_val_acc"
                                           r".* \(per-epoch metrics, .*--table epochs; --metric NAME ranks"):
        leaderboard(folder, where="discretization_gap > 0.5")


def test_method_metrics_are_epochs_columns(tmp_path):
    folder = _experiment(tmp_path / "exp")
    epochs = load_table(folder, "epochs", where="discretization_gap > 0.5", sort=["trial_id", "epoch"])
    assert [(row["trial_id"], row["epoch"]) for row in epochs.to_pylist()] == [("t0", 3)]
    assert epochs.schema.field("discretization_gap").type == pa.float64()
    assert dict(epochs["extra"][0].as_py())["discretization_gap"] == pytest.approx(0.7)  # the map stays too
    ordered = load_table(folder, "epochs", sort=["-discretization_gap"])
    assert ordered["discretization_gap"][0].as_py() == pytest.approx(0.7)


def test_a_metric_stored_in_extra_by_an_older_raynas_fills_its_column(tmp_path):
    """derived_params went to the extra map before it had a column: an old table reads it in the column."""
    writer = ResultsWriter(tmp_path, "old")
    report = make_report(1, 0, derived_params=48162.0)
    writer.write_rows("t0", rows_from_report("t0", report))
    path = writer.part_path("epochs", "t0", 1)
    old = pq.read_table(path)
    index = old.column_names.index("derived_params")
    old = old.set_column(index, "derived_params", pa.nulls(1, pa.float64()))
    old = old.set_column(old.column_names.index("extra"), "extra",
                         pa.array([[("derived_params", 48162.0)]], old.schema.field("extra").type))
    pq.write_table(old, path)
    epochs = load_table(tmp_path, "epochs")
    assert epochs["derived_params"].to_pylist() == [48162.0]
    assert epochs.column_names.count("derived_params") == 1


def test_defaults_come_from_config_yaml(tmp_path):
    folder = _experiment(tmp_path / "exp", config="name: exp\ntune:\n  metric: val_loss\n  mode: min\n")
    board = leaderboard(folder)  # the trials rows were ranked by derived_val_acc: re-ranked from the epochs
    assert ranking_of(board)["column"] == "final_val_loss" and board["trial_id"].to_pylist() == ["t0", "t1", "t2"]
    other = leaderboard(folder, "derived_val_acc")  # not the search's metric: its own default mode
    assert ranking_of(other)["mode"] == "max"


def test_empty_results_say_so_and_times_print_as_times(tmp_path):
    folder = _experiment(tmp_path / "exp")
    epochs = load_table(folder, "epochs", sort=["reported_at"])
    lines = format_table(epochs.select(["trial_id", "epoch", "reported_at", "derived_params"]), "table").splitlines()
    first = datetime.fromtimestamp(T0, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first == "2026-11-30T00:53:20Z" and lines[2].split()[2] == first
    assert json.loads(format_table(epochs, "json"))[0]["reported_at"] == T0  # json keeps unix seconds
    empty = format_table(leaderboard(folder, where="seed > 5"), "table", empty="0 rows (--where 'seed > 5')")
    assert empty.splitlines()[-1] == "0 rows (--where 'seed > 5')" and len(empty.splitlines()) == 3
    assert format_table(pa.table({"n": [69666.0, 0.123456, 3.0]}), "table").split()[2:] == ["69666", "0.1235", "3"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raynas.cli", "results", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_cli_metric_mode_scope(tmp_path):
    folder = str(_experiment(tmp_path / "exp"))
    run = _cli(folder, "--scope", "best", "--format", "csv")
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert [row["trial_id"] for row in rows] == ["t0", "t1", "t2"] and rows[0]["best_epoch"] == "2"
    run = _cli(folder, "--metric", "discretization_gap", "--mode", "min")
    assert run.returncode == 0, run.stderr
    header, _, first, *_ = run.stdout.splitlines()
    assert "final_discretization_gap" in header.split() and first.startswith("t1 ")
    epochs = _cli(folder, "--table", "epochs", "--where", "discretization_gap > 0.5")
    assert epochs.returncode == 0, epochs.stderr
    assert "extra" not in epochs.stdout.split() and "2026-11-30T00:55:20Z" in epochs.stdout  # t0, epoch 3


def test_cli_empty_results(tmp_path):
    folder = str(_experiment(tmp_path / "exp"))
    run = _cli(folder, "--where", "seed > 5")
    assert run.returncode == 0 and run.stdout.splitlines()[-1] == "0 rows (--where 'seed > 5')"
    as_csv = _cli(folder, "--where", "seed > 5", "--format", "csv")
    assert as_csv.stdout.splitlines() == [",".join(leaderboard_columns("derived_val_acc"))]
    assert as_csv.stderr.strip() == "raynas: 0 rows (--where 'seed > 5')"  # stdout stays parseable


@pytest.mark.parametrize("args, words", [
    (["--scope", "first"], ["'--scope'", "'first'", "'last'", "'best'"]),
    (["--mode", "top"], ["'--mode'", "'top'", "'max'", "'min'"]),
    (["--metric", "acc"], ["--metric 'acc'", "allowed:", "discretization_gap", "derived_val_acc"]),
    (["--table", "epochs", "--scope", "best"], ["--scope best", "--table epochs", "allowed with --table"]),
])
def test_cli_refuses_bad_ranking_options_in_one_line(tmp_path, args, words):
    folder = _experiment(tmp_path / "exp")
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    run = _cli(str(folder), *args)
    assert run.returncode == 2 and run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1 and run.stderr.startswith("error: ")
    for word in words:
        assert word in run.stderr, (word, run.stderr)
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before  # nothing written


def test_a_population_of_variants_shows_and_filters_each_trials_variant(tmp_path):
    # two variants share the method darts (tune.variants): only the variant tells their trials apart
    folder = tmp_path / "variants"
    writer = ResultsWriter(folder, folder.name)
    for seed, (trial_id, variant, acc) in enumerate((("v0", "sd-1ep", 0.7), ("v1", "sd", 0.5), ("v2", "sd", 0.6))):
        report = make_report(1, seed, derived_val_acc=acc, reported_at=T0)
        writer.write_rows(trial_id, rows_from_report(trial_id, report))
        writer.write_trial(summarise_trial(trial_id, [{"epoch": 1, **report}], "derived_val_acc", "max",
                                           experiment=folder.name, status="TERMINATED", seed=seed, method="darts",
                                           space="nb201", overrides={"search.seed": seed, "variant": variant}))
    writer.consolidate()
    board = leaderboard(folder, where="variant == 'sd'")
    assert board.column_names[:6] == ["trial_id", "status", "stopped_by", "seed", "method", "variant"]
    assert board["trial_id"].to_pylist() == ["v2", "v1"] and board["variant"].to_pylist() == ["sd", "sd"]
    # a population without variants has no such column
    assert "variant" not in leaderboard(_experiment(tmp_path / "plain")).column_names


def test_a_trial_without_epochs_keeps_its_genotype_when_ranked_by_another_metric(tmp_path):
    # its trials row was summarised by derived_val_acc, the config ranks by derived_params: without epochs rows
    # there is no value to rank by, but the genotype the trial returned is still the one it recorded
    folder = tmp_path / "no-epochs"
    writer = ResultsWriter(folder, folder.name)
    row = {"epoch": 2, "derived_val_acc": 0.8, "genotype": make_report(2, 0)["genotype"], "num_skip": 1,
           "connected": True}
    writer.write_trial(summarise_trial("t0", [row], "derived_val_acc", "max", experiment=folder.name,
                                       status="TERMINATED", seed=0, method="darts", space="nb201"))
    writer.consolidate()
    (folder / "config.yaml").write_text("tune:\n  metric: derived_params\n  mode: max\n")
    [shown] = leaderboard(folder).to_pylist()
    assert shown["final_derived_params"] is None
    assert (shown["genotype"], shown["num_skip"], shown["connected"]) == (row["genotype"], 1, True)
