"""raynas.files: one atomic, durable write helper for every writer; modes follow the umask; temp names unique.

Each writer of the package (result parts and tables, plots, benchmark tables, configs, reports, state
files) is run for real under umask 022 and 002, and its files must come out ``0666 & ~umask`` (not
mkstemp's private 0600). Two writers of one path hold their temporary files at the same time by
construction (both blocks open, interleaved), so a shared temporary name would show as a torn or wrong
result without any race.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "results"))
from results_trainable_helper import make_report  # noqa: E402

from raynas.results import rows_from_report
from raynas.files import atomic_path, replace_together, torch_save_atomically, write_bytes_atomically  # noqa: E402


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def test_every_writer_honours_the_umask(tmp_path, umask):
    import matplotlib.figure

    from raynas.benchmark.table import write_cells_table
    from raynas.plots.style import save_figure
    from raynas.results import ResultsWriter, summarise_trial

    writer = ResultsWriter(tmp_path / "exp", "exp")
    report = make_report(1)
    writer.write_rows("t0", rows_from_report("t0", report))
    writer.write_trial(summarise_trial("t0", [report], "derived_val_acc", "max", experiment="exp"))
    tables = writer.consolidate()
    figure = matplotlib.figure.Figure()
    figure.add_subplot().plot([0, 1], [1, 0])
    pictures = save_figure(figure, tmp_path / "plots" / "curve", ["png", "svg"])
    write_bytes_atomically(tmp_path / "report.html", b"<html></html>")
    torch_save_atomically({"epoch": 1}, tmp_path / "state.pt")
    cells = write_cells_table(tmp_path / "bench" / "cells.parquet")
    written = [*writer.part_files("epochs"), *writer.part_files("trials"), *tables.values(), *pictures,
               tmp_path / "report.html", tmp_path / "state.pt", cells]
    expected = 0o666 & ~umask
    assert {str(path.relative_to(tmp_path)): oct(_mode(path)) for path in written} == \
        {str(path.relative_to(tmp_path)): oct(expected) for path in written}
    leftovers = [path for path in tmp_path.rglob("*") if path.name.endswith(".tmp")]
    assert leftovers == []


def test_two_writers_of_one_path_never_share_a_temporary_file(tmp_path):
    target = tmp_path / "table.parquet"
    first, second = b"a" * 100_000, b"b" * 50_000
    with atomic_path(target) as tmp_a, atomic_path(target) as tmp_b:  # both writers are mid-write
        assert tmp_a != tmp_b and tmp_a.parent == tmp_b.parent == tmp_path
        tmp_a.write_bytes(first)
        tmp_b.write_bytes(second)  # would overwrite the first writer's half with a fixed '<path>.tmp'
        assert not target.exists()  # nothing is renamed before a writer finishes
    # the inner (second) writer finished first, the outer one last: the file is the last writer's, whole
    assert target.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.parquet"]


def test_a_failing_writer_changes_no_target_of_its_group(tmp_path):
    targets = [tmp_path / "trials.parquet", tmp_path / "sub" / "epochs.parquet"]
    targets[0].write_bytes(b"old trials")
    with pytest.raises(RuntimeError, match="second table failed"):
        with replace_together(targets) as temps:
            temps[0].write_bytes(b"new trials")
            raise RuntimeError("second table failed")
    assert targets[0].read_bytes() == b"old trials" and not targets[1].exists()
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["trials.parquet"]  # no temp left
    with replace_together(targets) as temps:
        for tmp, data in zip(temps, (b"new trials", b"new epochs")):
            tmp.write_bytes(data)
    assert [t.read_bytes() for t in targets] == [b"new trials", b"new epochs"]


def test_parts_tables_and_their_folders_are_flushed_before_and_after_the_renames(tmp_path, monkeypatch):
    """Issue 24: a part renamed without an fsync could reach the disk torn. Every part and table is flushed
    under its temporary name (so before its rename), and each folder of a rename is flushed after it.
    os.fsync and os.replace are the real ones, wrapped to record the path of each call in order."""
    from raynas.results import ResultsWriter, summarise_trial

    events: list[tuple[str, Path]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", Path(os.readlink(f"/proc/self/fd/{fd}"))))
        real_fsync(fd)

    def replace(source, target) -> None:
        real_replace(source, target)
        events.append(("rename", Path(target)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    writer = ResultsWriter(tmp_path / "exp", "exp")
    report = make_report(1)
    writer.write_rows("t0", rows_from_report("t0", report))
    writer.write_trial(summarise_trial("t0", [report], "derived_val_acc", "max", experiment="exp"))
    tables = writer.consolidate()
    monkeypatch.undo()
    renamed = [(i, path) for i, (what, path) in enumerate(events) if what == "rename"]
    targets = {path for _, path in renamed}
    assert {*writer.part_files("epochs"), *writer.part_files("trials"), *tables.values()} <= targets
    for at, target in renamed:
        flushed_before = [path for what, path in events[:at] if what == "fsync"]
        assert any(p.parent == target.parent and p.name.startswith(f".{target.name}.") for p in flushed_before), \
            f"{target} was renamed without its temporary file flushed first"
        assert ("fsync", target.parent) in events[at + 1:], f"{target.parent} not flushed after the rename"
