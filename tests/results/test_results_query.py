"""load_table, leaderboard and format_table on real Parquet files."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from results_trainable_helper import make_report

from raynas.results import rows_from_report
from raynas.errors import ResultsError
from raynas.results import (ResultsWriter, format_table, leaderboard, leaderboard_columns, load_table, ranking_of,
                            summarise_trial)


def _experiment(tmp_path, seeds=(0, 1, 2), metric="derived_val_acc", mode="max"):
    """Three finished trials; trial t<seed> has higher accuracies and higher val_loss for a larger seed."""
    writer = ResultsWriter(tmp_path, "exp")
    for seed in seeds:
        trial_id = f"t{seed}"
        rows = []
        for epoch in (1, 2, 3):
            report = make_report(epoch, seed, time_total_s=float(epoch))
            writer.write_rows(trial_id, rows_from_report(trial_id, report))
            rows.append({"epoch": epoch, **report})
        writer.write_trial(summarise_trial(trial_id, rows, metric, mode, experiment="exp", status="TERMINATED",
                                           seed=seed, method="darts", space="nb201"))
    writer.consolidate()
    return writer


def test_leaderboard_max_puts_the_highest_first(tmp_path):
    _experiment(tmp_path)
    board = leaderboard(tmp_path)
    assert board.column_names == leaderboard_columns("derived_val_acc")
    assert ranking_of(board) == {"metric": "derived_val_acc", "mode": "max", "scope": "last",
                                 "column": "final_derived_val_acc"}
    assert board["trial_id"].to_pylist() == ["t2", "t1", "t0"]
    assert board["final_derived_val_acc"].to_pylist() == pytest.approx([0.44, 0.42, 0.40])
    assert board["epochs_done"].to_pylist() == [3, 3, 3]


def test_leaderboard_min_and_another_metric(tmp_path):
    _experiment(tmp_path)
    by_loss = leaderboard(tmp_path, metric="val_loss")  # a loss: min by default
    assert by_loss["trial_id"].to_pylist() == ["t0", "t1", "t2"]
    assert by_loss["final_val_loss"].to_pylist() == pytest.approx([2.2 / 3, 2.2 / 3 + 0.1, 2.2 / 3 + 0.2])
    reversed_ = leaderboard(tmp_path, mode="min")
    assert reversed_["trial_id"].to_pylist() == ["t0", "t1", "t2"]
    assert reversed_["final_derived_val_acc"].to_pylist() == pytest.approx([0.4, 0.42, 0.44])  # final epoch's


def test_leaderboard_stored_min_mode_and_missing_values_last(tmp_path):
    writer = _experiment(tmp_path, metric="val_loss", mode="min")
    writer.write_trial({"trial_id": "t9", "status": "ERROR", "metric": "val_loss", "mode": "min",
                        "error": "ValueError: boom", "epochs_done": 0})
    board = leaderboard(tmp_path)
    assert board["trial_id"].to_pylist() == ["t0", "t1", "t2", "t9"]
    assert board["status"].to_pylist()[-1] == "ERROR"


def test_leaderboard_refuses_unknown_metric_and_mode(tmp_path):
    _experiment(tmp_path)
    with pytest.raises(ResultsError,
                       match=r"^--metric 'acc': not a metric this experiment reported; allowed: .*val_acc"):
        leaderboard(tmp_path, metric="acc")
    with pytest.raises(ResultsError, match="mode"):
        leaderboard(tmp_path, mode="best")
    with pytest.raises(ResultsError, match=r"^--scope 'first': not a scope; allowed: last, best$"):
        leaderboard(tmp_path, scope="first")


def test_load_table_merges_newer_parts_without_writing(tmp_path):
    writer = _experiment(tmp_path, seeds=(0,))
    assert load_table(tmp_path, "epochs").num_rows == 3
    writer.write_rows("t0", rows_from_report("t0", make_report(4)))
    before = writer.table_path("epochs").read_bytes()
    assert load_table(tmp_path, "epochs")["epoch"].to_pylist() == [1, 2, 3, 4]
    assert writer.table_path("epochs").read_bytes() == before  # reading never writes
    assert pq.read_table(writer.table_path("epochs")).num_rows == 3


def test_load_table_errors(tmp_path):
    _experiment(tmp_path, seeds=(0,))
    with pytest.raises(ResultsError, match="unknown results table 'runs'; valid tables: trials, epochs"):
        load_table(tmp_path, "runs")
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ResultsError, match="not a raynas experiment folder"):
        load_table(tmp_path / "elsewhere", "trials")
    with pytest.raises(ResultsError, match="does not exist"):
        load_table(tmp_path / "missing", "trials")


def test_load_table_of_an_experiment_without_reports_is_empty(tmp_path):
    (tmp_path / "config.yaml").write_text("name: exp\n")
    table = load_table(tmp_path, "alphas")
    assert table.num_rows == 0 and "alpha" in table.column_names


def test_format_json_parses_back(tmp_path):
    _experiment(tmp_path)
    board = leaderboard(tmp_path)
    records = json.loads(format_table(board, "json"))
    assert records == board.to_pylist()
    epochs = load_table(tmp_path, "epochs")
    records = json.loads(format_table(epochs, "json"))
    assert records[0]["extra"] == {} and len(records) == 9
    assert records[0]["reported_at"] is None  # times stay unix seconds in json (none reported here)


def test_format_csv_has_a_header_and_exact_values(tmp_path):
    _experiment(tmp_path)
    board = leaderboard(tmp_path)
    rows = list(csv.reader(io.StringIO(format_table(board, "csv"))))
    assert rows[0] == leaderboard_columns("derived_val_acc")
    assert len(rows) == 4
    column = "final_derived_val_acc"
    assert float(rows[1][rows[0].index(column)]) == board[column][0].as_py()
    assert rows[1][rows[0].index("connected")] == "true"


def test_format_text_aligns_columns_with_four_significant_digits():
    table = pa.table({"trial_id": ["a", "longer_id"], "value": [0.123456, 12.0], "n": [None, 3]})
    lines = format_table(table, "table").splitlines()
    assert lines[0].split() == ["trial_id", "value", "n"]
    assert lines[2].split() == ["a", "0.1235"]
    assert lines[3].split() == ["longer_id", "12", "3"]
    assert len({len(line) for line in lines[1:2] + lines[3:]}) == 1  # full rows share one width
    assert lines[2].index("0.1235") + len("0.1235") == lines[3].index("12") + 2  # numbers right-aligned


def test_format_refuses_unknown_formats():
    with pytest.raises(ResultsError, match="valid formats: table, csv, json"):
        format_table(pa.table({"a": [1]}), "xml")


def test_leaderboard_where_and_sort(tmp_path):
    _experiment(tmp_path)
    board = leaderboard(tmp_path, where="seed > 0 and method == 'darts'")
    assert board["trial_id"].to_pylist() == ["t2", "t1"]  # ranked best first, filtered
    assert board.schema == leaderboard(tmp_path).schema  # the Arrow types survive the filter
    assert leaderboard(tmp_path, sort=["seed"])["trial_id"].to_pylist() == ["t0", "t1", "t2"]
    assert leaderboard(tmp_path, sort=["-seed"])["trial_id"].to_pylist() == ["t2", "t1", "t0"]
    assert leaderboard(tmp_path, where="seed > 5").num_rows == 0


def test_tables_filter_sort_and_come_as_pandas_on_request(tmp_path):
    import pandas as pd

    _experiment(tmp_path)
    epochs = load_table(tmp_path, "epochs", where="epoch >= 2 and trial_id == 't1'", sort=["-epoch"])
    assert isinstance(epochs, pa.Table) and epochs["epoch"].to_pylist() == [3, 2]
    frame = load_table(tmp_path, "epochs", where="epoch == 1", as_pandas=True)
    assert isinstance(frame, pd.DataFrame) and sorted(frame["trial_id"]) == ["t0", "t1", "t2"]
    assert isinstance(leaderboard(tmp_path, as_pandas=True), pd.DataFrame)


@pytest.mark.parametrize("kwargs, message", [
    ({"where": "sed > 1"}, r"^--where 'sed > 1': unknown column 'sed'; columns: experiment, trial_id"),
    ({"where": "seed +"}, r"^--where 'seed \+': not a valid expression \(.*\); allowed: comparisons"),
    ({"where": "seed + 1"}, r"^--where 'seed \+ 1': arithmetic not allowed \(seed \+ 1\); allowed: comparisons"),
    ({"where": "seed"}, r"^--where 'seed': column 'seed' \(int64\) is not a true/false condition"),
    ({"sort": ["speed"]}, r"^--sort 'speed': no column 'speed'; columns: trial_id"),
])
def test_bad_filters_and_sort_keys_are_one_line_errors(tmp_path, kwargs, message):
    _experiment(tmp_path)
    with pytest.raises(ResultsError, match=message) as info:
        leaderboard(tmp_path, **kwargs)
    assert "\n" not in str(info.value)


def test_results_cli_filters_and_sorts(tmp_path):
    import subprocess
    import sys

    _experiment(tmp_path)
    run = subprocess.run([sys.executable, "-m", "raynas.cli", "results", str(tmp_path), "--format", "csv",
                          "--where", "seed < 2", "--sort", "seed"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert [row["trial_id"] for row in csv.DictReader(io.StringIO(run.stdout))] == ["t0", "t1"]
    bad = subprocess.run([sys.executable, "-m", "raynas.cli", "results", str(tmp_path), "--sort", "nope"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "no column 'nope'" in bad.stderr
