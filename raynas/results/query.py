"""Read the result tables of an experiment folder: whole tables, a leaderboard of trials, text renderings.

Reading never writes: when parts are newer than the consolidated file (a running or killed experiment),
they are merged in memory, so a reader sees every report written so far and leaves the folder as it was.
Nothing here imports torch or ray.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import pyarrow as pa
import pyarrow.parquet as pq

from raynas.errors import ResultsError
from raynas.results.method_columns import with_method_columns
from raynas.results.schema import UNIX_TIME_COLUMNS, check_schema, conform, schema_for
from raynas.results.select import select_rows
from raynas.results.writer import ResultsWriter

FORMATS = ("table", "csv", "json")


EVALUATION_PLAN = "evaluation.yaml"
"""The resolved plan that marks an evaluation run folder (``raynas train``)."""

EVALUATIONS_DIR = "evaluations"
"""Sub-folder of a search experiment that holds the evaluation runs of its genotypes."""


def _experiment(experiment_dir: Union[str, Path]) -> Path:
    path = Path(experiment_dir)
    if not path.is_dir():
        raise ResultsError(f"experiment folder {path} does not exist")
    if (not (path / "tables").is_dir() and not (path / "config.yaml").is_file()
            and not (path / EVALUATION_PLAN).is_file()):
        raise ResultsError(f"{path} is not a raynas experiment folder: expected config.yaml or tables/ in it "
                           "(pass <out>/<experiment name>)")
    return path


def evaluation_runs(directory: Union[str, Path]) -> list[Path]:
    """The evaluation run folders of ``directory``: itself when it is one, else those under its ``evaluations/``."""
    path = Path(directory)
    if (path / EVALUATION_PLAN).is_file():
        return [path]
    root = path / EVALUATIONS_DIR
    if not root.is_dir():
        return []
    return sorted(run for run in root.iterdir() if (run / EVALUATION_PLAN).is_file())


def load_table(experiment_dir: Union[str, Path], name: str, *, where: Optional[str] = None,
               sort: Sequence[str] = (), as_pandas: bool = False) -> Any:
    """Table ``name`` (trials, epochs, alphas, genotypes, decisions, evaluations) of an experiment, with the
    parts newer than its consolidated file merged in (in memory: reading writes nothing): a pyarrow Table,
    or a pandas DataFrame with ``as_pandas``. ``where`` keeps the rows an expression holds for and ``sort``
    orders them (:mod:`raynas.results.select`).

    ``evaluations`` of a search experiment gathers every evaluation run under its ``evaluations/`` folder
    (``raynas train`` of that experiment's genotypes); of an evaluation run folder, that run's rows.
    ``events`` is what happened to the folder besides reports (:mod:`raynas.results.events`). ``epochs``
    shows each method metric of its ``extra`` map as a column of its own
    (:mod:`raynas.results.method_columns`), so ``where`` and ``sort`` can name it."""
    if name == "events":
        from raynas.results.events import read_events

        table = read_events(_experiment(experiment_dir))
    else:
        table = _load_evaluations(experiment_dir) if name == "evaluations" else _load_table(experiment_dir, name)
    if name == "epochs":
        table = with_method_columns(table)
    return select_rows(table, where_expression=where, sort_keys=sort, as_pandas=as_pandas)


def _load_evaluations(directory: Union[str, Path]) -> pa.Table:
    _experiment(directory)
    schema = schema_for("evaluations")
    tables = [_load_table(run, "evaluations") for run in evaluation_runs(directory)]
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables).sort_by([("experiment", "ascending"), ("trial_id", "ascending")])


def _load_table(experiment_dir: Union[str, Path], name: str) -> pa.Table:
    """Table ``name`` as the folder holds it now; reads only, never writes.

    The consolidated file when it is current; when parts are newer (a running or killed experiment) or it
    is missing, the parts merged in memory (:meth:`ResultsWriter.read_current`: rows whose parts were
    deleted or lost still show). Only the drivers (search, resume, train) write tables.
    """
    schema_for(name)  # an unknown name fails before the folder is looked at
    writer = ResultsWriter(_experiment(experiment_dir), Path(experiment_dir).name, read_only=True)
    path = writer.table_path(name)
    changed = writer.parts_changed_ns(name)
    # ">=": a part written within the same clock tick as the consolidated file may be missing from it
    if not path.exists() or (changed is not None and changed >= path.stat().st_mtime_ns):
        return writer.read_current(name)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        if changed is None:  # no parts to fall back on
            raise ResultsError(f"cannot read results table {path}: {exc}") from None
        writer.warn(f"cannot read results table {path} ({' '.join(str(exc).split())[:200]}); showing its parts")
        return writer.read_current(name)
    check_schema(table.schema, name, path)
    return conform(table, name)


def _plain(value: Any, type_: pa.DataType) -> Any:
    """A cell as a JSON-ready value: maps as dicts, NaN and infinities as None."""
    if pa.types.is_map(type_) and value is not None:
        return {key: _plain(v, type_.item_type) for key, v in value}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _text(value: Any, type_: pa.DataType, float_format: Optional[str]) -> str:
    """A cell as text; ``float_format`` None writes floats exactly (repr)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if float_format is None else _short_number(value, float_format)
    if pa.types.is_map(type_):
        return json.dumps(_plain(value, type_), sort_keys=True)
    return str(value)


def _short_number(value: float, float_format: str) -> str:
    """``value`` to ``float_format`` (4 significant digits), but a whole or large number in plain digits:
    ``69666`` parameters, not ``6.967e+04``."""
    if math.isfinite(value) and abs(value) >= 1e4:
        return f"{value:.0f}"
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    return format(value, float_format)


def unix_time_text(value: float) -> str:
    """A unix time as ISO-8601 in UTC to the second: ``2026-11-27T14:03:12Z``."""
    return datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_table(table: pa.Table, fmt: str, *, empty: str = "0 rows") -> str:
    """Render a table as ``table`` (aligned columns; floats to 4 significant digits, whole and large numbers
    in plain digits; the unix times of :data:`UNIX_TIME_COLUMNS` as ISO-8601 UTC), ``csv`` or ``json`` (every
    value exact, times as unix seconds). A table without rows prints its header and, as ``table``, the line
    ``empty``."""
    types = [field.type for field in table.schema]
    columns = table.column_names
    records = [[row[name] for name in columns] for row in table.to_pylist()]
    if fmt == "json":
        plain = [{name: _plain(v, t) for name, v, t in zip(columns, values, types)} for values in records]
        return json.dumps(plain, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_text(v, t, None) for v, t in zip(values, types)] for values in records)
        return out.getvalue()
    if fmt == "table":
        times = [name in UNIX_TIME_COLUMNS and pa.types.is_floating(t) for name, t in zip(columns, types)]
        cells = [[unix_time_text(v) if is_time and v is not None and math.isfinite(v) else _text(v, t, ".4g")
                  for v, t, is_time in zip(values, types, times)] for values in records]
        widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
        numeric = [(pa.types.is_integer(t) or pa.types.is_floating(t)) and not is_time
                   for t, is_time in zip(types, times)]

        def line(values: list[str]) -> str:
            return "  ".join(v.rjust(w) if num else v.ljust(w)
                             for v, w, num in zip(values, widths, numeric)).rstrip()

        lines = [line(columns), line(["-" * w for w in widths]), *(line(row) for row in cells)]
        return "\n".join(lines + ([empty] if not records else [])) + "\n"
    raise ResultsError(f"unknown output format {fmt!r}; valid formats: {', '.join(FORMATS)}")
