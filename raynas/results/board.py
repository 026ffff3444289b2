"""The leaderboard: an experiment's trials ranked by a named metric, at a named scope (last or best epoch).

The ranking column is named after what it holds: ``final_<metric>`` (scope ``last``: the metric at each
trial's last epoch, the epoch whose genotype the trial returns) or ``best_<metric>`` (scope ``best``: its
best value under the mode over all epochs, with ``best_epoch`` and that epoch's genotype) — the names the
trials table already uses for its ``final_*`` and ``best_*`` columns. The table's schema metadata
(:data:`RANKING_KEY`) also records metric, mode and scope. Nothing here imports torch or ray.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import pyarrow as pa

from raynas.errors import ResultsError
from raynas.results.schema import EPOCH_METRICS, GROUND_TRUTH_METRICS, TRIALS
from raynas.results.select import select_rows
from raynas.results.writer import check_mode, merge_history, metric_of, summarise_trial

SCOPES = ("last", "best")
"""``last``: the metric at each trial's last epoch; ``best``: its best value over the trial's epochs."""

DEFAULT_SCOPE = "last"
"""A trial hands over the genotype derived at its last epoch (what ``raynas train --top`` trains and what
the schedulers compared), so its rank is that genotype's value; ``best`` shows an earlier epoch's genotype,
which the trial did not return (useful to spot a search that degraded)."""

RANKING_KEY = b"raynas.ranking"
"""Schema metadata of a leaderboard: JSON ``{"metric", "mode", "scope", "column"}``."""

BEFORE_RANK = ("trial_id", "status", "stopped_by", "seed", "method")
AFTER_RANK = ("best_derived_val_acc", "best_val_acc", "num_skip", "connected", "epochs_done", "epochs_planned",
              "wall_time_s", "genotype")
"""The leaderboard's columns before and after the ranking column (and its ground-truth columns)."""

FINAL_GT_COLUMNS = ("final_gt_test_acc", "final_gt_percentile", "final_gt_regret")
BEST_EPOCH_GT_COLUMNS = ("best_epoch_gt_test_acc", "best_epoch_gt_percentile", "best_epoch_gt_regret")
"""The ground truth of the genotype a leaderboard row shows (scored searches): the final genotype's (scope
last) or the best epoch's (scope best)."""

_HIDDEN = ("metric", "mode", "metric_value")  # the trials table's unnamed ranking value: the rank column replaces it
_LEADERBOARD_HINT = ("per-epoch metrics, the method's own (e.g. discretization_gap) among them, are columns of "
                     "--table epochs; --metric NAME ranks the trials by one")


def check_scope(scope: str) -> str:
    """``scope`` itself when it is one of :data:`SCOPES`; a one-line :class:`ResultsError` otherwise."""
    if scope not in SCOPES:
        raise ResultsError(f"--scope {scope!r}: not a scope; allowed: {', '.join(SCOPES)}")
    return scope


def rank_column(metric: str, scope: str = DEFAULT_SCOPE) -> str:
    """The name of the leaderboard's ranking column: ``final_<metric>`` or ``best_<metric>``."""
    return f"{'final' if check_scope(scope) == 'last' else 'best'}_{metric}"


def default_mode(metric: str) -> str:
    """The mode a metric is ranked by unless told: ``min`` for losses, regrets and seconds, else ``max``."""
    return "min" if metric.endswith(("loss", "regret", "_time_s")) else "max"


def search_ranking(experiment_dir: Union[str, Path], rows: Sequence[dict[str, Any]] = ()) -> tuple[str, str]:
    """The metric and mode the search ranked by: ``tune.metric``/``tune.mode`` of its ``config.yaml``, else
    those recorded in its trials ``rows``, else the config's defaults."""
    import yaml

    try:
        config = yaml.safe_load((Path(experiment_dir) / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        config = None
    tune = config.get("tune") if isinstance(config, dict) else None
    if isinstance(tune, dict) and isinstance(tune.get("metric"), str):
        mode = tune.get("mode")
        return tune["metric"], mode if mode in ("max", "min") else default_mode(tune["metric"])
    for row in rows:
        if row.get("metric"):
            return row["metric"], row.get("mode") or default_mode(row["metric"])
    from raynas.config.schema import TuneConfig  # no config and no trial: the defaults a search would use

    return TuneConfig.metric, TuneConfig.mode


def leaderboard_columns(metric: str, scope: str = DEFAULT_SCOPE, *, scored: bool = False,
                        variants: bool = False) -> list[str]:
    """The leaderboard's columns, in order: :data:`BEFORE_RANK` (with ``variant`` after ``method`` for a
    population with ``tune.variants``), the ranking column (with ``best_epoch`` for scope best), the shown
    genotype's ground truth when ``scored``, then :data:`AFTER_RANK` less any column the ranking column
    already is (``best_derived_val_acc`` ranked at scope best)."""
    rank = rank_column(metric, scope)
    before = [*BEFORE_RANK, *(("variant",) if variants else ())]
    ranked = [rank, *(("best_epoch",) if scope == "best" else ())]
    if scored:
        ranked += FINAL_GT_COLUMNS if scope == "last" else BEST_EPOCH_GT_COLUMNS
    ranked = list(dict.fromkeys(ranked))  # ranked by final_gt_test_acc: the ranking column is that gt column
    return [*before, *ranked, *(column for column in AFTER_RANK if column not in ranked)]


def ranking_of(table: pa.Table) -> dict[str, str]:
    """``{"metric", "mode", "scope", "column"}`` of a table :func:`leaderboard` returned."""
    raw = (table.schema.metadata or {}).get(RANKING_KEY)
    if raw is None:
        raise ResultsError("this table is not a leaderboard (no raynas ranking metadata)")
    return json.loads(raw)


def leaderboard(experiment_dir: Union[str, Path], metric: Optional[str] = None, mode: Optional[str] = None, *,
                scope: Optional[str] = None, where: Optional[str] = None, sort: Sequence[str] = (),
                as_pandas: bool = False) -> Any:
    """Trials ranked best first by ``metric`` at ``scope`` (:data:`SCOPES`, default :data:`DEFAULT_SCOPE`).

    ``metric`` and ``mode`` default to the search's (:func:`search_ranking`); another metric's mode defaults
    to :func:`default_mode`. The ranking column is :func:`rank_column` (``final_derived_val_acc``); at scope
    ``best``, ``best_epoch`` follows it and ``genotype``, ``num_skip`` and ``connected`` are the best epoch's.
    Scored searches (``benchmark.score``) show the shown genotype's ground truth. Values not stored in the
    trials table are computed from the epochs. Trials without a value sort last.

    ``where`` keeps the trials an expression holds for (any column of the trials table, the ranking column
    included, e.g. ``"method == 'darts' and final_derived_val_acc > 0.5"``) and ``sort`` reorders them
    (``-column`` descending); a pyarrow Table (with :func:`ranking_of` metadata), or a pandas DataFrame with
    ``as_pandas``. An unknown metric, mode or scope is a one-line :class:`ResultsError` listing what is allowed.
    """
    from raynas.results.query import load_table

    scope = check_scope(scope or DEFAULT_SCOPE)
    if mode is not None:
        check_mode(mode)
    rows = load_table(experiment_dir, "trials").to_pylist()
    search_metric, search_mode = search_ranking(experiment_dir, rows)
    metric = metric or search_metric
    if mode is None:
        mode = search_mode if metric == search_metric else default_mode(metric)
    stale = [row for row in rows if (row["metric"], row["mode"]) != (metric, mode)]
    if stale or (scope == "best" and rows):
        epochs = load_table(experiment_dir, "epochs")  # method metrics as columns
        _check_metric(metric, epochs)
        history = merge_history(epochs.to_pylist(), load_table(experiment_dir, "genotypes").to_pylist())
        for row in stale:
            trial_history = history.get(row["trial_id"], [])
            summary = summarise_trial(row["trial_id"], trial_history, metric, mode, experiment=row["experiment"])
            # the genotype a trial returned does not depend on the metric: a trial without epochs rows (its
            # parts lost, a table written by hand) keeps the one its trials row records
            kept = () if trial_history else ("genotype", "num_skip", "connected")
            for key in ("metric", "mode", "metric_value", "best_epoch", "genotype", "num_skip", "connected"):
                if key not in kept:
                    row[key] = summary[key]
        if scope == "best":
            for row in rows:
                row.update(_at_best_epoch(history.get(row["trial_id"], []), row["best_epoch"], metric))
    rank = rank_column(metric, scope)
    table = pa.Table.from_pylist(rows, schema=TRIALS)
    # a population of named variants (tune.variants): several share one method, so the variant says which
    variant_names = [_variant_of(row) for row in rows]
    variants = any(name is not None for name in variant_names)
    if variants:
        table = table.append_column(pa.field("variant", pa.string()), pa.array(variant_names, pa.string()))
    if scope == "best":
        for name in BEST_EPOCH_GT_COLUMNS:
            table = table.append_column(pa.field(name, pa.float64()),
                                        pa.array([row.get(name) for row in rows], pa.float64()))
    values = table["metric_value"]
    table = table.drop_columns(list(_HIDDEN))
    if rank in table.column_names:  # final_gt_test_acc, best_derived_val_acc: the same column, ranked
        table = table.drop_columns([rank])
    table = table.append_column(pa.field(rank, pa.float64()), values)
    order = "descending" if mode == "max" else "ascending"
    table = table.sort_by([(rank, order), ("trial_id", "ascending")])  # nulls sort last
    scored = bool(table.num_rows) and table["final_gt_test_acc"].null_count < table.num_rows
    if where:
        table = select_rows(table, where_expression=where, unknown_hint=_LEADERBOARD_HINT)
    ranking = {"metric": metric, "mode": mode, "scope": scope, "column": rank}
    table = table.select(leaderboard_columns(metric, scope, scored=scored, variants=variants))
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), RANKING_KEY: json.dumps(ranking)})
    return select_rows(table, sort_keys=sort, as_pandas=as_pandas)


def _at_best_epoch(history: list[dict[str, Any]], best_epoch: Optional[int], metric: str) -> dict[str, Any]:
    """A trial's ranking value, genotype and ground truth at ``best_epoch`` (its best value of ``metric``):
    the genotype derived at that epoch, else the last one derived before it."""
    if best_epoch is None:
        return {"metric_value": None, "genotype": None, "num_skip": None, "connected": None,
                **{name: None for name in BEST_EPOCH_GT_COLUMNS}}
    at = next(row for row in history if int(row["epoch"]) == best_epoch)
    derived = [row for row in history if row.get("genotype") is not None and int(row["epoch"]) <= best_epoch]
    chosen = derived[-1] if derived else {}
    return {"metric_value": metric_of(at, metric), "genotype": chosen.get("genotype"),
            "num_skip": chosen.get("num_skip"), "connected": chosen.get("connected"),
            **{f"best_epoch_{name}": _finite(at.get(name)) for name in GROUND_TRUTH_METRICS}}


def _variant_of(row: dict[str, Any]) -> Optional[str]:
    """The trial's variant (``tune.variants``): its override ``variant``, else None."""
    try:
        overrides = json.loads(row.get("overrides_json") or "{}")
    except ValueError:
        return None
    name = overrides.get("variant") if isinstance(overrides, dict) else None
    return str(name) if name is not None else None


def _finite(value: Any) -> Optional[float]:
    return None if value is None or value != value else float(value)


def _check_metric(metric: str, epochs: pa.Table) -> None:
    """A one-line error for a metric the epochs never reported, listing those they did (every metric column
    while no epoch has been reported)."""
    known = {field.name for field in epochs.schema if pa.types.is_floating(field.type)
             and (not epochs.num_rows or epochs[field.name].null_count < epochs.num_rows)}
    known.discard("reported_at")
    if not epochs.num_rows:
        known.update(EPOCH_METRICS)
    if metric not in known:
        raise ResultsError(f"--metric {metric!r}: not a metric this experiment reported; allowed: "
                           f"{', '.join(sorted(known))}")
