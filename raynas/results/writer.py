"""Turn per-epoch trial reports into Parquet parts and consolidate the parts into one file per table.

Layout of an experiment folder::

    <experiment>/tables/parts/<table>/<trial_id>/<epoch:05d>.parquet   epochs, alphas, genotypes, decisions
    <experiment>/tables/parts/trials/<trial_id>.parquet                 one row per trial
    <evaluation run>/tables/parts/evaluations/<trial_id>.parquet        one row per training from scratch
    <experiment>/tables/<table>.parquet                                 consolidated (sorted, one row per key)

A part is named by its key, so a replayed report (a resumed trial re-reports the epochs after its last
checkpoint) overwrites the part instead of adding a duplicate. Every file is written through
:func:`raynas.files.replace_together` (a fresh temporary file flushed to disk, renamed into place, its
folder flushed), so neither a reader nor a crash sees half a file; the consolidated tables are renamed
together once all are written, and never replaced by tables with fewer rows (:meth:`ResultsWriter.consolidate`).
Nothing here imports torch or ray.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, SupportsInt, Union, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from raynas.errors import ResultsError
from raynas.files import atomic_path, replace_together
from raynas.results.schema import (ALPHA_COLUMNS, DECISION_COLUMNS, EPOCH_METRICS, EVALUATIONS, KEYS, TABLES,
                                   TRIAL_STATUSES, TRIALS, check_schema, conform, schema_for)

PER_EPOCH_TABLES = ("epochs", "alphas", "genotypes", "decisions")
PER_TRIAL_TABLES = ("trials", "evaluations")
"""Tables with one part per trial, rewritten with every report."""

TORN_SUFFIX = ".torn"
"""An unreadable part that a writer replaced keeps its bytes as ``<part>.torn`` (never read again)."""

# Keys of a report that have their own columns or tables, and keys Ray Tune adds to every result; every
# other numeric key goes to the epochs table's ``extra`` map.
_CONTRACT_KEYS = frozenset({"epoch", *EPOCH_METRICS, "genotype", "num_skip", "connected", "alphas", "decisions",
                            "reported_at",
                            "restored_from",
                            "space", "method", "seed"})
_TUNE_KEYS = frozenset({"training_iteration", "time_total_s", "time_this_iter_s", "timestamp",
                        "time_since_restore", "timesteps_total", "timesteps_since_restore",
                        "iterations_since_restore", "episodes_total", "pid", "done", "should_checkpoint",
                        "experiment_id", "date", "hostname", "node_ip", "trial_id", "experiment_tag",
                        "config", "checkpoint_dir_name", "__duplicate__"})

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_trial_id(trial_id: object) -> str:
    if not isinstance(trial_id, str) or not _SAFE_ID.match(trial_id):
        raise ResultsError(f"trial id {trial_id!r} is not usable as a file name; allowed: letters, digits, '_', "
                           "'.', '-' (not first)")
    return trial_id


def _float(key: str, value: Any) -> Optional[float]:
    """A report value as a float; None stays None (a metric the trial did not measure)."""
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise ResultsError(f"report key {key!r} must be a number, got {value!r}")


def _int(key: str, value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
        # numbers.Real declares no __int__; the reals reports hold (float, NumPy floats) define it
        return int(cast(SupportsInt, value))
    raise ResultsError(f"report key {key!r} must be an integer, got {value!r}")


def _bool(key: str, value: Any) -> Optional[bool]:
    if value is None:
        return None
    if isinstance(value, bool) or type(value).__name__ == "bool_":  # numpy.bool_, without importing numpy
        return bool(value)
    raise ResultsError(f"report key {key!r} must be a boolean, got {value!r}")


def _finite(value: Optional[float]) -> Optional[float]:
    """None for a missing or NaN value: summaries skip what was not measured."""
    return None if value is None or math.isnan(value) else value


def report_epoch(result: Mapping[str, Any]) -> int:
    """The epoch a report belongs to: its ``epoch`` key, else Tune's ``training_iteration``."""
    for key in ("epoch", "training_iteration"):
        if result.get(key) is not None:
            epoch = _int(key, result[key])
            if epoch is None or epoch < 0:
                raise ResultsError(f"report key {key!r} must be >= 0, got {result[key]!r}")
            return epoch
    raise ResultsError("a trial report has no 'epoch' (nor Tune's 'training_iteration') key")


def _optional_str(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def rows_from_report(trial_id: str, result: Mapping[str, Any]) -> dict[str, pa.Table]:
    """Split one trial report into its rows of the epochs, alphas, genotypes and decisions tables.

    The epochs table gets one row (named metrics, ``wall_time_s`` from Tune's ``time_total_s``, every other
    numeric key in ``extra``); genotypes gets one row when the report has a ``genotype``; alphas and
    decisions get one row per entry of the report's ``alphas`` / ``decisions`` lists (none without them).
    """
    _check_trial_id(trial_id)
    epoch = report_epoch(result)
    extra = {key: _float(key, value) for key, value in result.items()
             if key not in _CONTRACT_KEYS and key not in _TUNE_KEYS and isinstance(key, str)
             and isinstance(value, numbers.Real) and not isinstance(value, bool)}
    epoch_row = {"trial_id": trial_id, "epoch": epoch,
                 **{name: _float(name, result.get(name)) for name in EPOCH_METRICS},
                 "wall_time_s": _float("time_total_s", result.get("time_total_s")),
                 "reported_at": _float("reported_at", result.get("reported_at")),
                 "node_ip": _optional_str(result.get("node_ip")),
                 "restored_from": _optional_str(result.get("restored_from")),
                 "extra": extra}
    tables = {"epochs": pa.Table.from_pylist([epoch_row], schema=TABLES["epochs"])}

    genotype_rows = []
    if result.get("genotype") is not None:
        genotype_rows.append({"trial_id": trial_id, "epoch": epoch, "genotype": str(result["genotype"]),
                              "num_skip": _int("num_skip", result.get("num_skip")),
                              "connected": _bool("connected", result.get("connected"))})
    tables["genotypes"] = pa.Table.from_pylist(genotype_rows, schema=TABLES["genotypes"])
    tables["alphas"] = _long_table("alphas", ALPHA_COLUMNS, trial_id, epoch, result.get("alphas"))
    tables["decisions"] = _long_table("decisions", DECISION_COLUMNS, trial_id, epoch, result.get("decisions"))
    return tables


def _long_table(name: str, names: Sequence[str], trial_id: str, epoch: int, lists: Any) -> pa.Table:
    """Rows of table ``name`` from a report's dict of equal-length lists (one list per column ``names``)."""
    schema = TABLES[name]
    if lists is None:
        return schema.empty_table()
    if not isinstance(lists, Mapping):
        raise ResultsError(f"report key {name!r} must be a dict of lists, got {type(lists).__name__}")
    missing = [column for column in names if column not in lists]
    if missing:
        raise ResultsError(f"report key {name!r} lacks {', '.join(missing)}; expected lists {', '.join(names)}")
    lengths = {column: len(lists[column]) for column in names}
    if len(set(lengths.values())) != 1:
        raise ResultsError(f"report key {name!r} has lists of unequal length: {lengths}")
    n = lengths[names[0]]
    columns = {"trial_id": [trial_id] * n, "epoch": [epoch] * n, **{column: list(lists[column]) for column in names}}
    try:
        return pa.table(columns, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ResultsError(f"report key {name!r} has values of the wrong type: {exc}") from None


def metric_of(row: Mapping[str, Any], metric: str) -> Optional[float]:
    """The value of ``metric`` in an epoch row: a named column, else an entry of ``extra``."""
    if metric in row:
        value = row[metric]
    else:
        extra = row.get("extra") or {}
        value = dict(extra).get(metric)  # a table's map column reads back as a list of pairs
    return _finite(_float(metric, value))


def check_mode(mode: str) -> str:
    """``mode`` itself when it is 'max' or 'min'; a :class:`ResultsError` otherwise."""
    if mode not in ("max", "min"):
        raise ResultsError(f"mode must be 'max' or 'min', got {mode!r}")
    return mode


def _to_json(value: Optional[Mapping[str, Any]]) -> Optional[str]:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def summarise_trial(trial_id: str, epoch_rows: Iterable[Mapping[str, Any]], metric: str, mode: str, *,
                    experiment: str, status: str = "RUNNING", space: Optional[str] = None,
                    method: Optional[str] = None, seed: Optional[int] = None,
                    overrides: Optional[Mapping[str, Any]] = None, config: Optional[Mapping[str, Any]] = None,
                    wall_time_s: Optional[float] = None, error: Optional[str] = None,
                    epochs_planned: Optional[int] = None, scheduler: Optional[str] = None) -> dict[str, Any]:
    """Build a trials-table row from a trial's epoch rows (see :func:`merge_history`).

    Each epoch row holds ``epoch`` and metric columns (an epochs-table row) and, when the epoch derived one,
    ``genotype``, ``num_skip`` and ``connected``; a later row with the same epoch replaces an earlier one.
    A trial's result is what its search hands over: the genotype derived at its last epoch, and
    ``metric_value`` is ``metric`` at that epoch (NaN counts as not measured), so trials are ranked by the
    architectures they return. ``best_epoch`` is the epoch where ``metric`` was best under ``mode`` (ties go
    to the earlier epoch) and ``best_*`` columns the best values seen, for spotting degradation over a
    search. ``wall_time_s`` defaults to the last epoch's.

    ``epochs_planned`` is the trial's length (search and selection epochs); a trial that Tune finished
    (TERMINATED) before it gets ``stopped_by`` = ``scheduler``, the scheduler that ended it early (ASHA at a
    rung): raynas' searches never end themselves early, so nothing else finishes a trial short.
    """
    check_mode(mode)
    rows = sorted({int(row["epoch"]): row for row in epoch_rows}.items())
    best_epoch, best_value = None, None
    for epoch, row in rows:
        value = metric_of(row, metric)
        if value is not None and (best_value is None or (value > best_value if mode == "max"
                                                         else value < best_value)):
            best_epoch, best_value = epoch, value
    derived = [row for _, row in rows if row.get("genotype") is not None]
    chosen = derived[-1] if derived else {}

    def best_of(name: str) -> Optional[float]:
        values = [v for v in (_finite(row.get(name)) for _, row in rows) if v is not None]
        return max(values) if values else None

    last = rows[-1][1] if rows else {}
    done = rows[-1][0] if rows else 0
    stopped_early = status == "TERMINATED" and epochs_planned is not None and done < epochs_planned
    return {
        "experiment": experiment, "trial_id": trial_id, "status": status, "space": space, "method": method,
        "seed": seed, "overrides_json": _to_json(overrides), "config_json": _to_json(config),
        "genotype": chosen.get("genotype"), "num_skip": chosen.get("num_skip"),
        "connected": chosen.get("connected"),
        "epochs_done": done, "epochs_planned": epochs_planned,
        "stopped_by": scheduler if stopped_early else None,
        "best_epoch": best_epoch, "metric": metric, "mode": mode,
        "metric_value": metric_of(last, metric) if rows else None, "best_val_acc": best_of("val_acc"),
        "best_derived_val_acc": best_of("derived_val_acc"),
        "final_val_acc": _finite(last.get("val_acc")), "final_derived_val_acc": _finite(last.get("derived_val_acc")),
        "final_train_loss": _finite(last.get("train_loss")),
        **ground_truth_summary(rows),
        "wall_time_s": wall_time_s if wall_time_s is not None else last.get("wall_time_s"),
        "error": error,
    }


def ground_truth_summary(rows: Sequence[tuple[int, Mapping[str, Any]]]) -> dict[str, Optional[float]]:
    """The trials-table ground-truth columns of a trial's ``(epoch, row)`` pairs (in epoch order): the last
    epoch's genotype's (the one the trial returns) and the best of any epoch's; null when not scored."""
    last = rows[-1][1] if rows else {}
    values = [v for v in (_finite(row.get("gt_test_acc")) for _, row in rows) if v is not None]
    return {"final_gt_test_acc": _finite(last.get("gt_test_acc")),
            "final_gt_percentile": _finite(last.get("gt_percentile")),
            "final_gt_regret": _finite(last.get("gt_regret")),
            "best_gt_test_acc": max(values) if values else None}


def merge_history(epochs: Iterable[Mapping[str, Any]],
                  genotypes: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Join epochs-table rows with genotypes-table rows by (trial_id, epoch): trial_id -> rows by epoch."""
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for row in epochs:
        merged[(row["trial_id"], int(row["epoch"]))] = dict(row)
    for row in genotypes:
        key = (row["trial_id"], int(row["epoch"]))
        merged.setdefault(key, {"trial_id": key[0], "epoch": key[1]}).update(
            genotype=row["genotype"], num_skip=row["num_skip"], connected=row["connected"])
    history: dict[str, list[dict[str, Any]]] = {}
    for (trial_id, _), row in sorted(merged.items()):
        history.setdefault(trial_id, []).append(row)
    return history


def _atomic_write(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` atomically and durably (:func:`raynas.files.atomic_path`)."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _warn_on_stderr(message: str) -> None:
    print(f"raynas: warning: {message}", file=sys.stderr, flush=True)


def _sorted_unique(table: pa.Table, name: str) -> pa.Table:
    """One row per key (the last one read wins), sorted by key; alphas keep their reported op order."""
    if table.num_rows == 0:
        return table
    keys = list(KEYS[name])
    order = pa.array(range(table.num_rows), pa.int64())
    indexed = table.append_column("_row", order)
    last = indexed.select([*keys, "_row"]).group_by(keys, use_threads=False).aggregate([("_row", "max")])
    kept = indexed.take(last["_row_max"])
    sort_keys = [k for k in keys if k != "op"] + ["_row"]
    kept = kept.sort_by([(k, "ascending") for k in sort_keys])
    return kept.drop_columns(["_row"])


Recover = Callable[[str, str, Optional[int]], Optional[tuple[Optional[pa.Table], str]]]
"""``recover(table, trial_id, epoch or None)`` of a torn part whose rows no consolidated table holds: None when
nothing else holds them either; else ``(rows, where they came from)``, or ``(None, why)`` when the run that
is resumed writes the part again (:mod:`raynas.results.recovery`)."""


class ResultsWriter:
    """Writes the result tables of one experiment folder: idempotent parts and their consolidation.

    With ``read_only`` it only reads (``raynas results``, plots, reports): :meth:`read_parts` never repairs a
    part, and the write methods are not called. ``warn`` receives the one-line warnings (a torn part
    replaced by the consolidated table's rows); by default they go to stderr. ``recover`` (a resume's) finds
    the rows of a torn part that no consolidated table holds (:data:`Recover`).
    """

    def __init__(self, experiment_dir: Union[str, Path], experiment_name: str, *, read_only: bool = False,
                 warn: Optional[Callable[[str], None]] = None, recover: Optional[Recover] = None) -> None:
        self.experiment_dir = Path(experiment_dir)
        self.experiment_name = experiment_name
        self.tables_dir = self.experiment_dir / "tables"
        self.parts_dir = self.tables_dir / "parts"
        self.read_only = read_only
        self.warn = warn or _warn_on_stderr
        self.recover = recover

    def table_path(self, name: str) -> Path:
        """Path of the consolidated file of table ``name``."""
        schema_for(name)
        return self.tables_dir / f"{name}.parquet"

    def part_path(self, name: str, trial_id: str, epoch: Optional[int] = None) -> Path:
        """Path of one part: per (trial, epoch) for per-epoch tables, per trial for :data:`PER_TRIAL_TABLES`."""
        schema_for(name)
        _check_trial_id(trial_id)
        if name in PER_TRIAL_TABLES:
            return self.parts_dir / name / f"{trial_id}.parquet"
        if epoch is None:
            raise ResultsError(f"a part of table {name!r} needs an epoch")
        return self.parts_dir / name / trial_id / f"{epoch:05d}.parquet"

    def write_rows(self, trial_id: str, rows: Mapping[str, pa.Table]) -> None:
        """Write the per-epoch rows :func:`rows_from_report` made. An empty table writes no part, but
        replaces a stale one (a replayed epoch that no longer has such rows) by an empty part: the key's
        rows are gone on purpose, which :meth:`consolidate` tells apart from a part that was lost."""
        epoch = rows["epochs"]["epoch"][0].as_py()
        for name in PER_EPOCH_TABLES:
            path = self.part_path(name, trial_id, epoch)
            if rows[name].num_rows or path.exists():
                _atomic_write(rows[name], path)

    def write_trial(self, row: Mapping[str, Any]) -> None:
        """Write (or overwrite) the one-row part of a trial; ``experiment`` defaults to this writer's name."""
        self._write_trial_row("trials", TRIALS, row)

    def write_evaluation(self, row: Mapping[str, Any]) -> None:
        """Write (or overwrite) the one-row evaluations part of a training from scratch (``raynas train``)."""
        self._write_trial_row("evaluations", EVALUATIONS, row)

    def _write_trial_row(self, name: str, schema: pa.Schema, row: Mapping[str, Any]) -> None:
        unknown = sorted(set(row) - set(schema.names))
        if unknown:
            raise ResultsError(f"unknown {name} column(s) {', '.join(unknown)}; valid: {', '.join(schema.names)}")
        full = {"experiment": self.experiment_name, **row}
        if full.get("status") not in TRIAL_STATUSES:
            raise ResultsError(f"trial status must be one of {', '.join(TRIAL_STATUSES)}, got {full.get('status')!r}")
        trial_id = _check_trial_id(full.get("trial_id"))
        try:
            table = pa.Table.from_pylist([full], schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ResultsError(f"trial {trial_id}: a {name} column has the wrong type: {exc}") from None
        _atomic_write(table, self.part_path(name, trial_id))

    def part_files(self, name: str, trial_id: Optional[str] = None) -> list[Path]:
        """The part files of table ``name`` (of one trial if given), in a stable order."""
        schema_for(name)
        if name in PER_TRIAL_TABLES:
            if trial_id is not None:
                path = self.part_path(name, trial_id)
                return [path] if path.exists() else []
            root = self.parts_dir / name
        else:
            root = self.parts_dir / name / (_check_trial_id(trial_id) if trial_id is not None else "")
        return sorted(root.rglob("*.parquet")) if root.is_dir() else []

    def parts_changed_ns(self, name: str) -> Optional[int]:
        """Latest modification time (ns) of the parts of table ``name`` and their folders; None if none.

        Folders count because removing a stale part changes only its folder.
        """
        root = self.parts_dir / name
        if not root.is_dir():
            return None
        latest = root.stat().st_mtime_ns
        for folder, _, files in os.walk(root):
            for path in (folder, *(os.path.join(folder, f) for f in files if f.endswith(".parquet"))):
                try:
                    latest = max(latest, os.stat(path).st_mtime_ns)
                except FileNotFoundError:  # removed by a writer while we looked: its folder changed too
                    pass
        return latest

    def read_parts(self, name: str, trial_id: Optional[str] = None) -> pa.Table:
        """All parts of table ``name`` (or of one trial) as one table: one row per key, sorted by key.

        A part that cannot be read (torn by a crash before its data reached the disk) is replaced by the
        rows of its key (trial, and epoch for per-epoch tables) in the consolidated table, with a warning:
        a writer also rewrites the part from them and keeps the torn file as ``<part>.torn``; a reader
        changes nothing. A writer with ``recover`` (a resume) asks it next: the rows Ray Tune saved, or
        the part is set aside because the resumed run writes it again. When nothing holds the rows, a
        :class:`ResultsError` says which part and what to do: nothing is guessed and nothing is changed.
        """
        schema = schema_for(name)
        tables = []
        for path in self.part_files(name, trial_id):
            try:
                with pq.ParquetFile(path) as part:  # much cheaper per small file than pq.read_table
                    table = part.read()
            except FileNotFoundError:  # a stale part removed by a running writer since we listed it
                continue
            except (OSError, pa.ArrowInvalid) as exc:
                tables.append(self._torn_part(name, path, exc))
                continue
            check_schema(table.schema, name, path)
            tables.append(conform(table, name))
        if not tables:
            return schema.empty_table()
        return _sorted_unique(pa.concat_tables(tables), name)

    def _part_key(self, name: str, path: Path) -> Optional[tuple[str, Optional[int]]]:
        """(trial id, epoch or None) of a part from its path; None when the path is not a part's name."""
        relative = path.relative_to(self.parts_dir / name)
        if name in PER_TRIAL_TABLES:
            return (relative.stem, None) if len(relative.parts) == 1 else None
        if len(relative.parts) != 2 or not relative.stem.isdigit():
            return None
        return relative.parts[0], int(relative.stem)

    def _torn_part(self, name: str, path: Path, exc: Exception) -> pa.Table:
        """The consolidated table's rows of an unreadable part's key (see :meth:`read_parts`)."""
        reason = " ".join(str(exc).split())[:200]
        key = self._part_key(name, path)
        rows = self._consolidated_rows(name, *key) if key is not None else None
        what = f"trial {key[0]}" + ("" if key[1] is None else f", epoch {key[1]}") if key else "its rows"
        source = str(self.table_path(name))
        found = rows is not None and rows.num_rows > 0
        if not found and not self.read_only and self.recover is not None and key:
            recovered = self.recover(name, *key)
            if recovered is not None:
                rows, source = recovered
                if rows is None:  # the resumed run writes this part again
                    torn = path.with_name(path.name + TORN_SUFFIX)
                    os.replace(path, torn)
                    self.warn(f"result part {path} could not be read ({reason}); set aside as {torn.name}: {source}")
                    return schema_for(name).empty_table()
                rows, found = conform(rows, name), True  # no rows is an answer too: the report had none
        if not found:
            raise ResultsError(
                f"result part {path} cannot be read ({reason}) and the consolidated table "
                f"{self.table_path(name)} holds no copy of its rows ({what}); nothing was changed: move the part "
                f"away (e.g. to {path.name}.torn) to go on without these rows") from None
        assert rows is not None  # found: the table's rows or the recovered ones
        if self.read_only:
            self.warn(f"result part {path} cannot be read ({reason}); using its {rows.num_rows} row(s) ({what}) "
                      f"from {self.table_path(name)}")
            return rows
        torn = path.with_name(path.name + TORN_SUFFIX)
        os.replace(path, torn)
        _atomic_write(rows, path)
        self.warn(f"result part {path} could not be read ({reason}); rewrote it from its {rows.num_rows} row(s) "
                  f"({what}) in {source}; the torn file is kept as {torn.name}")
        return rows

    def _consolidated_rows(self, name: str, trial_id: str, epoch: Optional[int]) -> Optional[pa.Table]:
        """The rows of ``trial_id`` (and ``epoch``) in the consolidated file of ``name``; None without one."""
        table = self._read_consolidated(name)
        if table is None:
            return None
        mask = pc.equal(table["trial_id"], trial_id)
        if epoch is not None:
            mask = pc.and_(mask, pc.equal(table["epoch"], epoch))
        return table.filter(mask)

    def _read_consolidated(self, name: str) -> Optional[pa.Table]:
        """The consolidated file of ``name`` as read, or None when it is missing or cannot be read."""
        path = self.table_path(name)
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowInvalid):
            return None
        check_schema(table.schema, name, path)
        return conform(table, name)

    def consolidated_rows(self, name: str) -> Optional[int]:
        """How many rows the consolidated file of ``name`` holds (its footer); None when it is missing or
        cannot be read (a torn table: its parts rebuild it)."""
        try:
            with pq.ParquetFile(self.table_path(name)) as table:
                return table.metadata.num_rows
        except (OSError, pa.ArrowInvalid):
            return None

    def read_current(self, name: str) -> pa.Table:
        """What table ``name`` holds now, for a reader: its parts merged, plus the rows of its consolidated
        file that no part holds any more (deleted or lost: shown, with a warning, never dropped)."""
        merged = self.read_parts(name)
        lost = self.lost_rows(name)
        if lost is None or not lost.num_rows:
            return merged
        self.warn(f"{lost.num_rows} row(s) of table {name} have no part under {self.parts_dir / name} any more "
                  f"(deleted or lost); showing them from {self.table_path(name)}")
        return _sorted_unique(pa.concat_tables([merged, lost]), name)

    def trial_history(self, trial_id: str) -> list[dict[str, Any]]:
        """The epoch rows (with their genotypes) already written for one trial, for :func:`summarise_trial`."""
        epochs = self.read_parts("epochs", trial_id).to_pylist()
        genotypes = self.read_parts("genotypes", trial_id).to_pylist()
        return merge_history(epochs, genotypes).get(trial_id, [])

    def consolidate(self, names: Sequence[str] = tuple(TABLES)) -> dict[str, Path]:
        """Merge the parts of each table into ``tables/<table>.parquet`` (zero rows when there are none).

        A table is never replaced by one with fewer rows (its parts deleted or lost): a
        :class:`ResultsError` names each such table with its row counts, and no table is changed. All
        tables are written to temporary files first and renamed together once every one is written.
        """
        if self.read_only:
            raise ResultsError(f"the results of {self.experiment_dir} were opened read-only; nothing is written")
        merged = {name: self.read_parts(name) for name in names}
        self.check_no_rows_lost(merged)
        paths = {name: self.table_path(name) for name in names}
        with replace_together(list(paths.values())) as temps:
            for name, tmp in zip(names, temps):
                pq.write_table(merged[name], tmp)
        return paths

    def check_no_rows_lost(self, merged: Mapping[str, pa.Table]) -> None:
        """Refuse (:class:`ResultsError`, one line) to replace any consolidated table by ``merged[name]``
        (its parts merged) when that would drop rows whose parts are gone (see :meth:`lost_rows`)."""
        lost = []
        for name, table in merged.items():
            dropped = self.lost_rows(name)
            if dropped is not None and dropped.num_rows:
                lost.append((name, self.consolidated_rows(name), table.num_rows))
        if not lost:
            return
        counts = ", ".join(f"{name} {held} -> {rows}" for name, held, rows in lost)
        missing = [name for name, _, _ in lost if not (self.parts_dir / name).is_dir()]
        why = (f"the parts of {', '.join(missing)} are missing under {self.parts_dir}" if missing
               else f"parts under {self.parts_dir} were deleted")
        raise ResultsError(f"refusing to replace result tables of {self.experiment_dir} by ones with fewer rows "
                           f"({counts}): {why}; nothing was changed: restore the parts from a backup, or move "
                           f"the tables away to rebuild them from the parts that are left")

    def lost_rows(self, name: str) -> Optional[pa.Table]:
        """The rows of the consolidated file of ``name`` that no part holds any more: rows of a key (trial,
        and epoch for per-epoch tables) that has no part file. None when there is no readable file.

        A key's part is replaced, never removed, by a newer report (an empty part when the key has no rows
        now), so rows are dropped on purpose only through their part; a key without one was deleted or lost.
        """
        keys = ["trial_id"] if name in PER_TRIAL_TABLES else ["trial_id", "epoch"]
        path = self.table_path(name)
        try:  # the key columns only: every consolidation asks, and alphas tables grow large
            rows = pq.read_table(path, columns=keys)
        except (OSError, pa.ArrowInvalid):
            return None
        check_schema(pq.read_schema(path), name, path)
        found = [key for key in (self._part_key(name, part) for part in self.part_files(name)) if key]
        parts = pa.table({"trial_id": pa.array([key[0] for key in found], pa.string()),
                          "epoch": pa.array([key[1] for key in found], pa.int64())}).select(keys)
        # key columns and a row index only: Arrow joins cannot carry the tables' map and list columns
        rows = rows.append_column("_row", pa.array(range(rows.num_rows), pa.int64()))
        if "epoch" in keys:
            rows = rows.set_column(1, "epoch", rows["epoch"].cast(pa.int64()))
        orphans = rows.join(parts, keys=keys, join_type="left anti", use_threads=False)["_row"]
        if not len(orphans):
            return schema_for(name).empty_table()
        table = self._read_consolidated(name)
        return table.take(pc.take(orphans, pc.sort_indices(orphans))) if table is not None else None  # file order
