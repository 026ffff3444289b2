"""Result tables never lose rows: lost parts are refused, torn parts repaired from the tables or refused,
and ``raynas results`` (the real CLI, a subprocess) never writes, not even on an error path."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from results_trainable_helper import ALPHA_ROWS, make_report, write_finished_trials

from raynas.errors import ResultsError
from raynas.results import ResultsWriter, load_table, rows_from_report


def _experiment(directory: Path, trials=("t0", "t1"), epochs: int = 3, consolidate: bool = True) -> ResultsWriter:
    (directory / "config.yaml").parent.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text("name: exp\n")
    writer = ResultsWriter(directory, "exp")
    write_finished_trials(writer, trials, epochs)
    if consolidate:
        writer.consolidate()
    return writer


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``directory``: its bytes and modification time."""
    return {str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _rows(writer: ResultsWriter) -> dict[str, int]:
    return {name: pq.read_table(writer.table_path(name)).num_rows
            for name in ("trials", "epochs", "alphas", "genotypes", "decisions")}


def test_consolidating_without_the_parts_is_refused_and_changes_nothing(tmp_path):
    writer = _experiment(tmp_path)
    assert _rows(writer) == {"trials": 2, "epochs": 6, "alphas": 6 * ALPHA_ROWS, "genotypes": 6, "decisions": 0}
    shutil.rmtree(writer.parts_dir)
    before = _snapshot(tmp_path)
    with pytest.raises(ResultsError) as refused:
        writer.consolidate()
    message = str(refused.value)
    assert "\n" not in message
    assert f"(trials 2 -> 0, epochs 6 -> 0, alphas {6 * ALPHA_ROWS} -> 0, genotypes 6 -> 0)" in message
    assert "are missing under" in message and "nothing was changed" in message
    assert _snapshot(tmp_path) == before


def test_one_deleted_part_is_refused_a_replay_without_rows_is_not(tmp_path):
    writer = _experiment(tmp_path)
    part = writer.part_path("epochs", "t0", 2)
    kept = part.read_bytes()
    part.unlink()
    before = _snapshot(tmp_path)
    with pytest.raises(ResultsError, match=r"fewer rows \(epochs 6 -> 5\): parts under .* were deleted"):
        writer.consolidate()
    assert _snapshot(tmp_path) == before
    part.write_bytes(kept)
    report = make_report(3)  # a replayed epoch that no longer derives a genotype: its rows go on purpose
    del report["genotype"]
    writer.write_rows("t0", rows_from_report("t0", report))
    writer.consolidate()
    assert _rows(writer)["genotypes"] == 5 and _rows(writer)["epochs"] == 6


def test_a_torn_part_is_rewritten_from_the_tables_by_a_writer(tmp_path):
    writer = _experiment(tmp_path)
    tables = {name: pq.read_table(writer.table_path(name)) for name in ("alphas", "trials")}
    alphas_part, trial_part = writer.part_path("alphas", "t1", 2), writer.part_path("trials", "t0")
    originals = {path: path.read_bytes() for path in (alphas_part, trial_part)}
    for path, data in originals.items():
        path.write_bytes(data[: len(data) // 2])  # what a crash before the data reached the disk leaves
    warnings: list[str] = []
    ResultsWriter(tmp_path, "exp", warn=warnings.append).consolidate()
    assert len(warnings) == 2 and all("\n" not in line and "rewrote it from" in line for line in warnings)
    for path, data in originals.items():
        assert path.with_name(path.name + ".torn").read_bytes() == data[: len(data) // 2]
        assert pq.read_table(path).num_rows >= 1  # readable again
    for name, table in tables.items():
        assert pq.read_table(writer.table_path(name)).equals(table), name  # no row lost or changed


def test_a_torn_part_without_a_copy_is_refused_with_one_line(tmp_path):
    writer = _experiment(tmp_path, consolidate=False)
    part = writer.part_path("epochs", "t0", 3)
    part.write_bytes(part.read_bytes()[:10])
    before = _snapshot(tmp_path)
    with pytest.raises(ResultsError) as refused:
        writer.consolidate()
    message = str(refused.value)
    assert "\n" not in message and f"result part {part} cannot be read" in message
    assert "(trial t0, epoch 3)" in message and "move the part away" in message
    assert _snapshot(tmp_path) == before


def test_a_reader_uses_the_tables_copy_of_a_torn_part_and_changes_nothing(tmp_path, capsys):
    writer = _experiment(tmp_path)
    writer.write_rows("t0", rows_from_report("t0", make_report(4)))  # parts newer than the tables: a running experiment
    part = writer.part_path("epochs", "t1", 1)
    part.write_bytes(part.read_bytes()[:20])
    before = _snapshot(tmp_path)
    epochs = load_table(tmp_path, "epochs")
    assert sorted(zip(epochs["trial_id"].to_pylist(), epochs["epoch"].to_pylist())) == \
        sorted([("t0", e) for e in (1, 2, 3, 4)] + [("t1", e) for e in (1, 2, 3)])
    assert f"result part {part} cannot be read" in capsys.readouterr().err
    assert _snapshot(tmp_path) == before


def test_a_reader_still_shows_rows_whose_parts_were_deleted(tmp_path, capsys):
    writer = _experiment(tmp_path)
    writer.part_path("epochs", "t1", 2).unlink()
    assert load_table(tmp_path, "epochs").num_rows == 6
    assert "1 row(s) of table epochs have no part" in capsys.readouterr().err


def _results_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raynas.cli", "results", *args], capture_output=True, text=True,
                          timeout=120)


def test_raynas_results_never_writes_even_when_it_fails(tmp_path):
    writer = _experiment(tmp_path)
    # parts newer than every table: the old error path consolidated
    writer.write_rows("t0", rows_from_report("t0", make_report(4)))
    writer.write_trial({"trial_id": "t0", "status": "RUNNING"})
    before = _snapshot(tmp_path)
    failed = _results_cli(str(tmp_path), "--sort", "no_such_column")
    assert failed.returncode == 2 and failed.stderr.startswith("error: ") and len(failed.stderr.splitlines()) == 1
    shown = _results_cli(str(tmp_path), "--table", "epochs", "--format", "csv")
    assert shown.returncode == 0 and len(shown.stdout.strip().splitlines()) == 1 + 7
    board = _results_cli(str(tmp_path))
    assert board.returncode == 0 and "t0" in board.stdout
    assert _snapshot(tmp_path) == before


def test_an_evaluation_run_without_its_parts_is_refused(tmp_path):
    writer = ResultsWriter(tmp_path, "run")
    for trial_id in ("e0", "e1"):
        writer.write_evaluation({"trial_id": trial_id, "status": "TERMINATED"})
    writer.consolidate(["evaluations"])
    writer.part_path("evaluations", "e1").unlink()
    before = _snapshot(tmp_path)
    with pytest.raises(ResultsError, match=r"fewer rows \(evaluations 2 -> 1\)"):
        writer.consolidate(["evaluations"])
    assert _snapshot(tmp_path) == before
