"""What the snapshot tools share: one population's tables, as a study reads them, written into a folder of the
repository whole.

A study (``tools/league.py``, ``tools/spaces_pt_study.py``) runs over sessions as several populations; Tune's
folders and checkpoints stay on the machine that ran each one. A *snapshot* keeps what the study reads of a
population, in a live folder's layout, so that a study reads it as it reads the live folder (and ``raynas
results`` shows its trials):

- ``config.yaml``, the population's config (the trials it planned, its data);
- ``tables/<name>.parquet`` for each table the study reads of it;
- for a study that also reads the ``raynas train`` run of its cells: ``evaluations/<run>/`` with the run's
  ``evaluation.yaml`` and its tables.

Each table is written as the folder holds it now (``raynas.results.load_table``: the consolidated file with
newer parts merged in), so a running population can be snapshot, and again later. The snapshot is written
into a temporary folder beside the destination, read back as the study reads it, and swapped in whole: a
reader sees the old snapshot or the new one. A destination that holds anything but a snapshot of the same
layout is refused, and so is the population's own folder. ``tools/league_snapshot.py`` and
``tools/spaces_pt_snapshot.py`` use this module. Imports neither torch nor Ray.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raynas.errors import ResultsError  # noqa: E402
from raynas.results import EVALUATION_PLAN, EVALUATIONS_DIR  # noqa: E402

CONFIG = "config.yaml"
Read = TypeVar("Read")


@dataclass(frozen=True)
class Layout:
    """What a study reads of one population: its tables and, when ``run_tables`` is not empty, the tables of
    one training run of its cells. ``what`` and ``example`` name the snapshot in error messages."""

    what: str
    example: str
    search_tables: tuple[str, ...]
    run_tables: tuple[str, ...] = ()

    def files(self, run_name: Optional[str] = None) -> list[str]:
        """The files of a snapshot, relative to its folder (``run_name``: the training run's folder name)."""
        files = [CONFIG, *(f"tables/{name}.parquet" for name in self.search_tables)]
        if self.run_tables:
            run = f"{EVALUATIONS_DIR}/{run_name or '<run>'}"
            files += [f"{run}/{EVALUATION_PLAN}", *(f"{run}/tables/{name}.parquet" for name in self.run_tables)]
        return files


def is_snapshot(folder: Path, layout: Layout) -> bool:
    """Whether ``folder`` holds nothing but a snapshot of ``layout`` (one a snapshot tool wrote: it may be
    replaced)."""
    root = folder / EVALUATIONS_DIR
    runs = [run.name for run in root.iterdir()] if root.is_dir() else []
    if len(runs) != (1 if layout.run_tables else 0):
        return False
    files = {str(path.relative_to(folder)) for path in folder.rglob("*") if not path.is_dir()}
    return files == set(layout.files(runs[0] if runs else None))


def stored_table(folder: Path, name: str) -> Any:
    """Table ``name`` of ``folder`` as it holds it now, with the columns of its schema only (the epochs table
    as read also shows each method metric as a column; the stored table keeps them in its ``extra`` maps)."""
    from raynas.results import load_table, schema_for

    schema = schema_for(name)
    return load_table(folder, name).select(schema.names).replace_schema_metadata(schema.metadata)


def _copy(source: Path, folder: Path, tables: tuple[str, ...], plan: str) -> None:
    """``source``'s ``plan`` file and ``tables`` into ``folder`` (a live folder's layout)."""
    import pyarrow.parquet as pq

    (folder / "tables").mkdir(parents=True)
    shutil.copyfile(source / plan, folder / plan)
    for name in tables:
        pq.write_table(stored_table(source, name), folder / "tables" / f"{name}.parquet", compression="zstd")


def check_destination(experiment: Path, dest: Path, layout: Layout) -> None:
    """A :class:`ResultsError` for a population folder that is none, or a destination the snapshot may not
    take: no parent folder, the population's own folder (or one above it), a folder with other files."""
    if not experiment.is_dir():
        raise ResultsError(f"{experiment}: no such folder (name the population's folder)")
    if not (experiment / CONFIG).is_file():
        raise ResultsError(f"{experiment} is not a search folder (no {CONFIG} in it): name a population's folder")
    if not dest.parent.is_dir():
        raise ResultsError(f"{dest}: no folder {str(dest.parent)!r} to write the snapshot into")
    if dest.resolve() == experiment.resolve() or experiment.resolve().is_relative_to(dest.resolve()):
        raise ResultsError(f"{dest}: the snapshot would replace the search folder {experiment}; name a folder of "
                           f"its own, e.g. {layout.example}")
    if dest.exists() and not (dest.is_dir() and (is_snapshot(dest, layout) or not any(dest.iterdir()))):
        raise ResultsError(f"{dest} exists and is not a snapshot of {layout.what} (it holds other files than "
                           f"{', '.join(layout.files())}); name a new folder")


def write_snapshot(experiment: Path, dest: Path, layout: Layout, read: Callable[[Path, Optional[Path]], Read],
                   run: Optional[Path] = None) -> Read:
    """Write the snapshot of ``experiment`` (with its training run ``run`` when ``layout`` has run tables)
    into ``dest``, replacing a snapshot there, and return ``read(snapshot, its run)``: the study's reading of
    it. ``read(experiment, run)`` first refuses what the study refuses. A :class:`ResultsError`, and nothing
    written, for bad input (:func:`check_destination`)."""
    check_destination(experiment, dest, layout)
    if layout.run_tables and run is None:
        raise ResultsError(f"{experiment}: name the training run of its cells")
    read(experiment, run)
    temp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    old = dest.parent / f".{dest.name}.old-{os.getpid()}"
    try:
        _copy(experiment, temp, layout.search_tables, CONFIG)
        copy = None
        if layout.run_tables:
            copy = temp / EVALUATIONS_DIR / run.name
            _copy(run, copy, layout.run_tables, EVALUATION_PLAN)
        result = read(temp, copy)  # it reads as the study reads the live folder
        if dest.exists():
            os.replace(dest, old)  # swapped whole: a reader sees the old snapshot or the new one
        os.replace(temp, dest)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return result


def folder_size(folder: Path) -> int:
    """Bytes of the files under ``folder``."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
