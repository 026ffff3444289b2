"""The ranking metrics' epochs-table columns (raynas.ranking): real columns, not ``extra``; a leaderboard ranks
by them; a table written before they existed reads them as nulls. Real Parquet files."""

from __future__ import annotations

import pyarrow.parquet as pq
from results_trainable_helper import make_report

from raynas.ranking import RANK_METRIC_COLUMNS, TIME_COLUMNS
from raynas.results import ResultsWriter, leaderboard, load_table, summarise_trial, rows_from_report

NEW = (*RANK_METRIC_COLUMNS, *TIME_COLUMNS)


def _experiment(tmp_path, with_ranking: bool = True):
    writer = ResultsWriter(tmp_path, "exp")
    for seed in (0, 1, 2):
        rows = []
        for epoch in (1, 2):
            report = make_report(epoch, seed, time_total_s=float(epoch))
            if with_ranking:
                report.update({column: 0.1 * (epoch + 3 - seed) for column in NEW})  # seed 0 ranks first
            writer.write_rows(f"t{seed}", rows_from_report(f"t{seed}", report))
            rows.append({"epoch": epoch, **report})
        writer.write_trial(summarise_trial(f"t{seed}", rows, "derived_finetune_val_acc", "max", experiment="exp",
                                           status="TERMINATED", seed=seed, method="darts", space="nb201"))
    writer.consolidate()
    return writer


def test_rank_metrics_are_epochs_columns_and_rank_the_leaderboard(tmp_path):
    _experiment(tmp_path)
    epochs = load_table(tmp_path, "epochs")
    for column in NEW:
        assert column in epochs.column_names and epochs[column].null_count == 0, column
    assert all(not {key for key, _ in extra} & set(NEW) for extra in epochs["extra"].to_pylist())
    board = leaderboard(tmp_path).to_pylist()
    assert [row["trial_id"] for row in board] == ["t0", "t1", "t2"]
    assert board[0]["final_derived_finetune_val_acc"] == 0.1 * (2 + 3)
    by_loss = leaderboard(tmp_path, metric="derived_neighborhood_val_loss").to_pylist()  # a loss: min first
    assert [row["trial_id"] for row in by_loss] == ["t2", "t1", "t0"]


def test_a_table_from_before_the_columns_reads_them_as_nulls(tmp_path):
    writer = _experiment(tmp_path, with_ranking=False)
    path = writer.table_path("epochs")
    old = pq.read_table(path)
    old = old.drop_columns(list(NEW))  # the layout before the ranking metrics (schema metadata kept)
    assert all(column not in old.column_names for column in NEW) and old.schema.metadata
    pq.write_table(old, path)
    assert writer.parts_changed_ns("epochs") < path.stat().st_mtime_ns  # the old file is what is read
    epochs = load_table(tmp_path, "epochs")
    assert epochs.num_rows == 6
    for column in NEW:
        assert epochs[column].null_count == 6, column
    assert epochs["derived_val_acc"].null_count == 0
