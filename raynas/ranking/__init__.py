"""In-search ranking metrics: what a search can measure about its derived architecture to rank a population.

A population (``tune:``) ranks, stops (ASHA) and copies (PBT) trials by ``tune.metric``. Besides the
metrics every search reports (``val_acc``: the supernet; ``derived_val_acc``: the derived cell with the
weights it inherits from the supernet), a search can measure the extra ones listed here, each named for what
it is (``search.rank_metrics`` turns them on, ``search.rank_metrics_every`` says how often;
:mod:`raynas.ranking.metrics` computes them, docs/ranking.md compares them against the ground truth):

- ``bn``: ``derived_bn_val_acc`` / ``derived_bn_val_loss``, the derived cell after its BatchNorm running
  statistics were re-estimated on ``search.rank_bn_batches`` training batches, evaluated with them;
- ``finetune``: ``derived_finetune_val_acc`` / ``derived_finetune_val_loss``, a copy of the derived cell
  after ``search.rank_finetune_steps`` SGD steps on the training split (the supernet is never touched);
- ``neighborhood``: ``derived_neighborhood_val_acc`` / ``derived_neighborhood_val_loss``, the mean over
  the derived cell and ``search.rank_neighbors`` random neighbours (one edge's op changed) with inherited
  weights: NA-RS's score of the derived cell (the sampling selection's neighbourhood score);
- ``params``: ``derived_params``, the trainable parameters the derived network uses (a zero-cost baseline).

Each kind also records the seconds it took in its time column (``derived_bn_time_s``, ...); every search
records ``val_time_s`` and ``derived_val_time_s``. This module imports nothing (the config and results
schemas read it).
"""

from __future__ import annotations

#: kind (a ``search.rank_metrics`` entry) -> the epochs-table columns of its values, in documentation order
RANK_METRICS: dict[str, tuple[str, ...]] = {
    "bn": ("derived_bn_val_acc", "derived_bn_val_loss"),
    "finetune": ("derived_finetune_val_acc", "derived_finetune_val_loss"),
    "neighborhood": ("derived_neighborhood_val_acc", "derived_neighborhood_val_loss"),
    "params": ("derived_params",),
}

#: kind -> the epochs-table column of the seconds one evaluation of it took
RANK_TIME_COLUMNS: dict[str, str] = {
    "bn": "derived_bn_time_s",
    "finetune": "derived_finetune_time_s",
    "neighborhood": "derived_neighborhood_time_s",
    "params": "derived_params_time_s",
}

#: the time columns of the metrics every search measures
BASE_TIME_COLUMNS: dict[str, str] = {"val": "val_time_s", "derived": "derived_val_time_s"}

#: every value column of the extra metrics (``tune.metric`` may name each)
RANK_METRIC_COLUMNS: tuple[str, ...] = tuple(column for columns in RANK_METRICS.values() for column in columns)

#: every time column, the base metrics' first
TIME_COLUMNS: tuple[str, ...] = (*BASE_TIME_COLUMNS.values(), *RANK_TIME_COLUMNS.values())

#: metric column -> the time column that holds the cost of one evaluation of it (base and extra metrics)
METRIC_COST_COLUMN: dict[str, str] = {
    "val_acc": "val_time_s", "val_loss": "val_time_s",
    "derived_val_acc": "derived_val_time_s", "derived_val_loss": "derived_val_time_s",
    **{column: RANK_TIME_COLUMNS[kind] for kind, columns in RANK_METRICS.items() for column in columns},
}


def kind_of(column: str) -> str | None:
    """The ``search.rank_metrics`` kind that measures ``column``, or None for a column every search reports."""
    for kind, columns in RANK_METRICS.items():
        if column in columns:
            return kind
    return None
