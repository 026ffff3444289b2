"""The benchmark table: one row per (unique cell, seed) trained under the protocol, as Parquet.

Columns: the cell's representative arch string and id, the seed, per-epoch train/test loss and accuracy,
the final test accuracy, parameters, FLOPs, training time and the protocol's hash. The table that ships with
raynas lives in ``raynas/benchmark/data/``; builds and on-demand trainings write part files beside it (in a
build folder or a cache folder) with the same schema, and :func:`read_rows` merges any of them, keeping one
row per (cell, seed, protocol).
"""

from __future__ import annotations

import os
import uuid
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from raynas.errors import ConfigError
from raynas.files import atomic_path

SHIPPED_TABLE = "nb201_digits.parquet"
SHIPPED_CELLS = "nb201_cells.parquet"
#: the per-epoch curves of a row, as in raynas.results.schema.EVALUATION_CURVES
CURVES = ("train_loss", "train_acc", "test_loss", "test_acc")
KEY = ("cell_id", "seed", "protocol_hash")
ROWS_FILE = "rows.parquet"
"""File name of a build trial's finished rows inside its Tune checkpoint."""

SCHEMA = pa.schema([
    pa.field("arch", pa.string(), nullable=False),
    pa.field("cell_id", pa.int32(), nullable=False),
    pa.field("seed", pa.int32(), nullable=False),
    pa.field("epochs", pa.int32(), nullable=False),
    *(pa.field(f"epoch_{name}", pa.list_(pa.float64()), nullable=False) for name in CURVES),
    pa.field("test_acc", pa.float64(), nullable=False),
    pa.field("params", pa.int64(), nullable=False),
    pa.field("flops", pa.int64(), nullable=False),
    pa.field("train_time_s", pa.float64(), nullable=False),
    pa.field("protocol_hash", pa.string(), nullable=False),
], metadata={"raynas.table": "benchmark"})


def shipped_table_path() -> Path:
    """Where the table that ships with raynas lies (inside the installed package)."""
    return Path(str(resources.files("raynas.benchmark").joinpath("data").joinpath(SHIPPED_TABLE)))


def rows_to_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """``rows`` (dicts with the schema's columns) as a table of :data:`SCHEMA`."""
    return pa.Table.from_pylist([{name: row[name] for name in SCHEMA.names} for row in rows], schema=SCHEMA)


def write_table(table: pa.Table, path: str | os.PathLike) -> Path:
    """Write ``table`` (benchmark rows) to ``path`` atomically: never half-written."""
    return _write_atomically(table.cast(SCHEMA), path)


def _write_atomically(table: pa.Table, path: str | os.PathLike) -> Path:
    """Write ``table`` atomically and durably (:func:`raynas.files.atomic_path`), readable as the umask
    allows (a shipped file must not stay private to its writer, as mkstemp's files are)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def write_part(rows: Sequence[Mapping[str, Any]], folder: str | os.PathLike, stem: str | None = None) -> Path:
    """Write ``rows`` as a new part file ``<folder>/<stem>.parquet`` (a fresh name unless ``stem``)."""
    name = stem or uuid.uuid4().hex
    return write_table(rows_to_table(rows), Path(folder) / f"{name}.parquet")


def read_file(path: str | os.PathLike) -> pa.Table:
    """One benchmark Parquet file, checked to have the benchmark schema."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ConfigError(f"benchmark table '{path}' cannot be read: {exc}") from None
    missing = [name for name in SCHEMA.names if name not in table.schema.names]
    if missing:
        raise ConfigError(f"benchmark table '{path}' lacks the column(s) {', '.join(missing)}; it is not a raynas "
                          "benchmark table")
    return table.select(SCHEMA.names).cast(SCHEMA)


def is_benchmark_file(path: Path) -> bool:
    """Whether ``path`` is a Parquet file of benchmark rows (by its schema's ``raynas.table`` metadata)."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return False
    return metadata.get(b"raynas.table") == b"benchmark"


def table_files(sources: Iterable[str | os.PathLike]) -> list[Path]:
    """The Parquet files of ``sources``: files as given, and in folders (recursively) every benchmark-rows
    file (other Parquet files there, such as the cells map, are not rows)."""
    files: list[Path] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            files.extend(sorted(p for p in source.rglob("*.parquet")
                                if not p.name.startswith(".") and is_benchmark_file(p)))
        elif source.exists():
            files.append(source)
    return files


def read_rows(sources: Iterable[str | os.PathLike], protocol_hash: str | None = None) -> pa.Table:
    """The rows of every benchmark file under ``sources``, one per (cell, seed, protocol), sorted by cell and
    seed; only ``protocol_hash``'s rows when given. A missing source is skipped."""
    tables = [read_file(path) for path in table_files(sources)]
    table = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    if protocol_hash is not None:
        table = table.filter(pc.equal(table["protocol_hash"], protocol_hash))
    return unique_rows(table)


def unique_rows(table: pa.Table) -> pa.Table:
    """One row per (cell, seed, protocol) of ``table`` (the first one read wins), sorted by cell and seed."""
    if table.num_rows == 0:
        return table
    indexed = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
    first = indexed.select([*KEY, "_row"]).group_by(list(KEY), use_threads=False).aggregate([("_row", "min")])
    kept = table.take(first["_row_min"])
    return kept.sort_by([("cell_id", "ascending"), ("seed", "ascending"), ("protocol_hash", "ascending")])


def done_pairs(table: pa.Table) -> set[tuple[int, int]]:
    """The (cell id, seed) pairs ``table`` holds."""
    return set(zip(table["cell_id"].to_pylist(), table["seed"].to_pylist()))


CELLS_SCHEMA = pa.schema([
    pa.field("arch", pa.string(), nullable=False),
    pa.field("cell_id", pa.int32(), nullable=False),
    pa.field("representative", pa.string(), nullable=False),
], metadata={"raynas.table": "benchmark_cells"})


def cells_table() -> pa.Table:
    """Every NB201 arch string (in the space's enumeration order) with its unique cell id and the cell's
    representative: the map from any arch string to the benchmark's rows."""
    from raynas.benchmark.cells import unique_cells

    cells = unique_cells()
    return pa.table({"arch": list(cells.arch_strings), "cell_id": list(cells.cell_of),
                     "representative": [cells.representatives[c] for c in cells.cell_of]}, schema=CELLS_SCHEMA)


def write_cells_table(path: str | os.PathLike) -> Path:
    """Write :func:`cells_table` to ``path`` atomically."""
    return _write_atomically(cells_table(), path)
