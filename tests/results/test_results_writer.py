"""ResultsWriter: idempotent atomic parts, consolidation, schema versions, report conversion, summaries."""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from results_trainable_helper import ALPHA_ROWS, make_report, write_finished_trials

from raynas.errors import ResultsError
from raynas.results import KEYS, SCHEMA_VERSION, TABLES, ResultsWriter, load_table, summarise_trial, rows_from_report
from raynas.results.schema import VERSION_KEY
from raynas.results.writer import _atomic_write


def _keys(table: pa.Table, name: str) -> list[tuple]:
    return list(zip(*(table[k].to_pylist() for k in KEYS[name])))


def test_same_report_twice_gives_one_row_per_key(tmp_path):
    writer = ResultsWriter(tmp_path, "exp")
    for _ in range(2):
        writer.write_rows("t0", rows_from_report("t0", make_report(1)))
        writer.write_trial({"trial_id": "t0", "status": "RUNNING"})
    tables = {name: pq.read_table(path) for name, path in writer.consolidate().items()}
    assert tables["epochs"].num_rows == 1
    assert tables["genotypes"].num_rows == 1
    assert tables["trials"].num_rows == 1
    assert tables["alphas"].num_rows == ALPHA_ROWS
    for name, table in tables.items():
        assert len(set(_keys(table, name))) == table.num_rows, name


def test_replayed_epoch_replaces_the_old_rows(tmp_path):
    writer = ResultsWriter(tmp_path, "exp")
    for epoch in (1, 2, 3):
        writer.write_rows("t0", rows_from_report("t0", make_report(epoch)))
    genotype = "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    writer.write_rows("t0", rows_from_report("t0", make_report(2, val_acc=0.99, genotype=genotype, num_skip=6)))
    writer.consolidate()
    epochs = load_table(tmp_path, "epochs")
    assert epochs["epoch"].to_pylist() == [1, 2, 3]
    assert epochs["val_acc"].to_pylist()[1] == 0.99
    genotypes = load_table(tmp_path, "genotypes")
    assert genotypes["num_skip"].to_pylist()[1] == 6
    assert load_table(tmp_path, "alphas").num_rows == 3 * ALPHA_ROWS


def test_replay_without_genotype_removes_the_stale_part(tmp_path):
    writer = ResultsWriter(tmp_path, "exp")
    writer.write_rows("t0", rows_from_report("t0", make_report(1)))
    writer.consolidate()
    report = make_report(1)
    del report["genotype"], report["alphas"]
    writer.write_rows("t0", rows_from_report("t0", report))
    assert load_table(tmp_path, "genotypes").num_rows == 0
    assert load_table(tmp_path, "alphas").num_rows == 0
    assert load_table(tmp_path, "epochs").num_rows == 1


def test_parts_are_named_by_table_trial_and_epoch(tmp_path):
    writer = ResultsWriter(tmp_path, "exp")
    writer.write_rows("t0", rows_from_report("t0", make_report(7)))
    for name in ("epochs", "alphas", "genotypes"):
        assert (tmp_path / "tables" / "parts" / name / "t0" / "00007.parquet").is_file()


def test_atomic_writes_leave_no_temp_files(tmp_path):
    writer = ResultsWriter(tmp_path, "exp")
    write_finished_trials(writer, ["t0", "t1"])
    writer.consolidate()
    bad = pa.table({"a": pa.array([None], pa.month_day_nano_interval())})  # Parquet cannot store it
    target = tmp_path / "tables" / "parts" / "epochs" / "t0" / "00001.parquet"
    before = target.read_bytes()
    with pytest.raises(pa.ArrowNotImplementedError):
        _atomic_write(bad, target)
    assert target.read_bytes() == before
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and all(p.suffix == ".parquet" and not p.name.startswith(".") for p in files)


def test_consolidate_two_trials_three_epochs(tmp_path):
    writer = ResultsWriter(tmp_path, "exp")
    write_finished_trials(writer, ["t0", "t1"])
    written = writer.consolidate()
    assert set(written) == set(TABLES)
    counts = {name: pq.read_table(path).num_rows for name, path in written.items()}
    assert counts == {"trials": 2, "epochs": 6, "alphas": 6 * ALPHA_ROWS, "genotypes": 6, "decisions": 0}
    epochs = pq.read_table(written["epochs"])
    assert _keys(epochs, "epochs") == [(t, e) for t in ("t0", "t1") for e in (1, 2, 3)]
    alphas = pq.read_table(written["alphas"])
    first_edge = alphas.slice(0, 5)["op"].to_pylist()
    assert first_edge == make_report(1)["alphas"]["op"][:5]  # the space's op order, not alphabetical


def test_empty_tables_are_written_with_their_schema(tmp_path):
    written = ResultsWriter(tmp_path, "exp").consolidate()
    for name, path in written.items():
        table = pq.read_table(path)
        assert table.num_rows == 0
        assert table.schema.equals(TABLES[name])


def test_schema_version_is_stored_and_a_newer_one_is_refused(tmp_path):
    writer = ResultsWriter(tmp_path, "exp")
    write_finished_trials(writer, ["t0"])
    path = writer.consolidate()["epochs"]
    schema = pq.read_schema(path)
    assert schema.metadata[VERSION_KEY] == str(SCHEMA_VERSION).encode()
    assert schema.metadata[b"raynas.table"] == b"epochs"
    table = pq.read_table(path)
    newer = table.replace_schema_metadata({**schema.metadata, VERSION_KEY: str(SCHEMA_VERSION + 1).encode()})
    pq.write_table(newer, path)
    with pytest.raises(ResultsError, match="newer"):
        load_table(tmp_path, "epochs")
    pq.write_table(newer, writer.part_path("epochs", "t0", 1))
    with pytest.raises(ResultsError, match="newer"):
        writer.consolidate()


def test_a_file_without_raynas_metadata_is_refused(tmp_path):
    writer = ResultsWriter(tmp_path, "exp")
    writer.consolidate()
    pq.write_table(pa.table({"trial_id": ["x"]}), writer.table_path("trials"))
    with pytest.raises(ResultsError, match="not a raynas 'trials' table"):
        load_table(tmp_path, "trials")


def test_extra_numeric_keys_go_to_the_map_and_tune_keys_do_not(tmp_path):
    writer = ResultsWriter(tmp_path, "exp")
    writer.write_rows("t0", rows_from_report("t0", make_report(1, reg_loss=0.25, beta_entropy=1, time_total_s=12.5,
                                          training_iteration=1, timestamp=1700000000, hostname="h")))
    row = load_table(tmp_path, "epochs").to_pylist()[0]
    assert dict(row["extra"]) == {"reg_loss": 0.25, "beta_entropy": 1.0}
    assert row["wall_time_s"] == 12.5


@pytest.mark.parametrize("change, message", [
    ({"alphas": {"cell": ["c"], "edge": [0, 1], "src": [0], "dst": [1], "op": ["none"], "alpha": [0.0],
                 "weight": [1.0]}}, "unequal length"),
    ({"alphas": {"cell": ["c"]}}, "lacks edge"),
    ({"val_acc": "high"}, "'val_acc' must be a number"),
    ({"epoch": None}, "no 'epoch'"),
])
def test_malformed_reports_are_refused(tmp_path, change, message):
    report = {**make_report(1), **change}
    with pytest.raises(ResultsError, match=message):
        ResultsWriter(tmp_path, "exp").write_rows("t0", rows_from_report("t0", report))


def test_bad_trial_ids_and_rows_are_refused(tmp_path):
    writer = ResultsWriter(tmp_path, "exp")
    with pytest.raises(ResultsError, match="file name"):
        writer.write_rows("../escape", rows_from_report("../escape", make_report(1)))
    with pytest.raises(ResultsError, match="status"):
        writer.write_trial({"trial_id": "t0", "status": "DONE"})
    with pytest.raises(ResultsError, match="unknown trials column"):
        writer.write_trial({"trial_id": "t0", "status": "RUNNING", "acc": 1.0})
    assert not (tmp_path / "tables" / "parts" / "trials").exists()


def test_summarise_trial_reports_final_result_and_best_values():
    rows = [{"epoch": e, **make_report(e)} for e in (1, 2, 3)]
    rows[2]["derived_val_acc"] = float("nan")  # not measured: must not count as best nor as final
    rows.append({"epoch": 2, **make_report(2, derived_val_acc=0.95, genotype="best-genotype", num_skip=0)})
    best = summarise_trial("t0", rows, "derived_val_acc", "max", experiment="exp", overrides={"search.seed": 0})
    # The trial's result is what it hands over: the last epoch's genotype and metric (here not measured).
    assert (best["best_epoch"], best["metric_value"], best["genotype"], best["num_skip"]) == \
        (2, None, rows[2]["genotype"], rows[2]["num_skip"])
    assert best["epochs_done"] == 3 and best["final_derived_val_acc"] is None
    assert best["final_val_acc"] == pytest.approx(0.5)
    assert best["best_derived_val_acc"] == 0.95
    assert best["overrides_json"] == '{"search.seed": 0}'
    lowest = summarise_trial("t0", rows, "val_loss", "min", experiment="exp")
    assert lowest["best_epoch"] == 3 and math.isclose(lowest["metric_value"], 2.2 / 3)
    finished = summarise_trial("t0", rows[:2] + rows[3:], "derived_val_acc", "max", experiment="exp")
    assert finished["metric_value"] == pytest.approx(0.95) and finished["genotype"] == "best-genotype"
    with pytest.raises(ResultsError, match="mode"):
        summarise_trial("t0", rows, "val_loss", "lowest", experiment="exp")


def test_summarise_trial_names_the_scheduler_that_ended_a_trial_before_its_epochs():
    rows = [{"epoch": e, **make_report(e)} for e in (1, 2)]

    def summary(status: str, planned, scheduler="asha"):
        row = summarise_trial("t0", rows, "derived_val_acc", "max", experiment="exp", status=status,
                              epochs_planned=planned, scheduler=scheduler)
        return row["epochs_done"], row["epochs_planned"], row["stopped_by"]

    assert summary("TERMINATED", 12) == (2, 12, "asha")  # ASHA stopped it at the rung after epoch 2
    assert summary("TERMINATED", 2) == (2, 2, None)  # it ran its whole search
    assert summary("RUNNING", 12) == (2, 12, None)  # still going
    assert summary("ERROR", 12) == (2, 12, None)  # failed: the error says why, not a scheduler
    assert summary("TERMINATED", 12, scheduler=None) == (2, 12, None)  # fifo stops nothing
    assert summary("TERMINATED", None) == (2, None, None)  # length unknown (a config this version cannot read)


def _decisions(ops: list[str], kept: str, round_index: int = 0) -> dict[str, list]:
    n = len(ops)
    return {"round": [round_index] * n, "cell": ["cell"] * n, "kind": ["op"] * n, "step": [0] * n,
            "node": [1] * n, "edge": [0] * n, "src": [0] * n, "dst": [1] * n, "op": ops, "criterion": ["acc"] * n,
            "acc": [0.5 + 0.1 * i for i in range(n)], "loss": [1.0] * n,
            "decision": ["keep" if op == kept else None for op in ops]}


def test_decisions_become_rows_of_their_table_once_per_key(tmp_path):
    writer = ResultsWriter(tmp_path, "exp")
    report = {**make_report(3), "decisions": _decisions(["none", "skip_connect", "nor_conv_3x3"], "skip_connect")}
    writer.write_rows("t1", rows_from_report("t1", report))
    writer.write_rows("t1", rows_from_report("t1", report))  # a replayed epoch
    writer.write_rows("t1", rows_from_report("t1", make_report(4)))  # an epoch without a decision adds nothing
    table = load_table(str(tmp_path), "decisions")
    assert table.num_rows == 3 and table.schema.equals(TABLES["decisions"], check_metadata=False)
    rows = table.to_pylist()
    assert [r["op"] for r in rows] == ["none", "skip_connect", "nor_conv_3x3"]  # reported order kept
    assert [r["decision"] for r in rows] == [None, "keep", None] and {r["epoch"] for r in rows} == {3}
    with pytest.raises(ResultsError, match="report key 'decisions' lacks loss"):
        bad = _decisions(["none"], "none")
        del bad["loss"]
        writer.write_rows("t1", rows_from_report("t1", {**make_report(5), "decisions": bad}))
