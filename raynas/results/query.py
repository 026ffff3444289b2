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
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import pyarrow as pa
import pyarrow.parquet as pq

from raynas.errors import ResultsError
from raynas.results.schema import EPOCH_METRICS, TRIALS, check_schema, conform, schema_for
from raynas.results.select import select_rows
from raynas.results.writer import ResultsWriter, check_mode, merge_history, summarise_trial

LEADERBOARD_COLUMNS = ("trial_id", "status", "stopped_by", "seed", "method", "metric_value", "best_derived_val_acc",
                       "best_val_acc", "num_skip", "connected", "epochs_done", "epochs_planned", "wall_time_s",
                       "genotype")
"""The leaderboard's columns; ``stopped_by`` names the scheduler (asha) that ended a trial before
``epochs_planned``, so a trial stopped at a rung is told apart from one that ran its whole search."""

LEADERBOARD_GT_COLUMNS = ("final_gt_test_acc", "final_gt_percentile", "final_gt_regret")
"""The leaderboard's ground-truth columns (after ``metric_value``), shown when some trial was scored."""

FORMATS = ("table", "csv", "json")


EVALUATION_PLAN = "evaluation.yaml"
"""The resolved plan that marks an evaluation run folder (``raynas train``)."""

EVALUATIONS_DIR = "evaluations"
"""Sub-folder of a search experiment that holds the evaluation runs of its genotypes."""


def _experiment(experiment_dir: Union[str, Path]) -> Path:
    path = Path(experiment_dir)
    if not path.is_dir():
        raise ResultsError(f"experiment folder {path} does not exist")
    if not (path / "tables").is_dir() and not (path / "config.yaml").is_file() and not (path / EVALUATION_PLAN).is_file():
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
    ``events`` is what happened to the folder besides reports (:mod:`raynas.results.events`)."""
    if name == "events":
        from raynas.results.events import read_events

        table = read_events(_experiment(experiment_dir))
    else:
        table = _load_evaluations(experiment_dir) if name == "evaluations" else _load_table(experiment_dir, name)
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


def _default_mode(metric: str) -> str:
    return "min" if metric.endswith("loss") else "max"


def leaderboard(experiment_dir: Union[str, Path], metric: Optional[str] = None, mode: Optional[str] = None, *,
                where: Optional[str] = None, sort: Sequence[str] = (), as_pandas: bool = False) -> Any:
    """Trials ranked best first by the final value of ``metric`` (default: the experiment's ranking metric).

    ``where`` keeps the trials an expression holds for (any column of the trials table, e.g. ``"method ==
    'darts' and seed > 0"``) and ``sort`` reorders them (``-column`` descending); a pyarrow Table, or a pandas
    DataFrame with ``as_pandas``. Scored searches (``benchmark.score``) also show each trial's final
    genotype's ground truth (:data:`LEADERBOARD_GT_COLUMNS`).

    With another metric or mode than the one the trials were ranked by during the search, each trial's
    ``metric_value`` and genotype are recomputed from its epochs. ``mode`` defaults to the experiment's
    mode for its own metric, otherwise to ``min`` for a metric ending in ``loss`` and ``max`` for others.
    Trials without a value sort last.
    """
    if mode is not None:
        check_mode(mode)
    rows = _load_table(experiment_dir, "trials").to_pylist()
    stored_metric = rows[0]["metric"] if rows else None
    stored_mode = rows[0]["mode"] if rows else None
    metric = metric or stored_metric or "derived_val_acc"
    if mode is None:
        mode = stored_mode if metric == stored_metric and stored_mode else _default_mode(metric)
    stale = [row for row in rows if (row["metric"], row["mode"]) != (metric, mode)]
    if stale:
        epochs = _load_table(experiment_dir, "epochs")
        _check_metric(metric, epochs)
        history = merge_history(epochs.to_pylist(), _load_table(experiment_dir, "genotypes").to_pylist())
        for row in stale:
            summary = summarise_trial(row["trial_id"], history.get(row["trial_id"], []), metric, mode,
                                      experiment=row["experiment"])
            for key in ("metric", "mode", "metric_value", "best_epoch", "genotype", "num_skip", "connected"):
                row[key] = summary[key]
    table = pa.Table.from_pylist(rows, schema=TRIALS)
    order = "descending" if mode == "max" else "ascending"
    table = table.sort_by([("metric_value", order), ("trial_id", "ascending")])  # nulls sort last
    if where:
        table = select_rows(table, where_expression=where)
    return select_rows(table.select(leaderboard_columns(table)), sort_keys=sort, as_pandas=as_pandas)


def leaderboard_columns(trials: pa.Table) -> list[str]:
    """:data:`LEADERBOARD_COLUMNS`, with :data:`LEADERBOARD_GT_COLUMNS` after ``metric_value`` when a trial of
    ``trials`` has a ground truth (a scored NB201 search); unscored experiments keep their narrower board."""
    columns = list(LEADERBOARD_COLUMNS)
    if trials.num_rows and trials["final_gt_test_acc"].null_count < trials.num_rows:
        at = columns.index("metric_value") + 1
        columns[at:at] = LEADERBOARD_GT_COLUMNS
    return columns


def _check_metric(metric: str, epochs: pa.Table) -> None:
    known = set(EPOCH_METRICS)
    for extra in epochs["extra"].to_pylist():
        known.update(key for key, _ in extra or ())
    if metric not in known:
        raise ResultsError(f"unknown metric {metric!r}; reported metrics: {', '.join(sorted(known))}")


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
        return repr(value) if float_format is None else format(value, float_format)
    if pa.types.is_map(type_):
        return json.dumps(_plain(value, type_), sort_keys=True)
    return str(value)


def format_table(table: pa.Table, fmt: str) -> str:
    """Render a table as ``table`` (aligned columns, floats to 4 significant digits), ``csv`` or ``json``."""
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
        cells = [[_text(v, t, ".4g") for v, t in zip(values, types)] for values in records]
        widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
        numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) for t in types]

        def line(values: list[str]) -> str:
            return "  ".join(v.rjust(w) if num else v.ljust(w)
                             for v, w, num in zip(values, widths, numeric)).rstrip()

        return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(row) for row in cells)]) + "\n"
    raise ResultsError(f"unknown output format {fmt!r}; valid formats: {', '.join(FORMATS)}")
