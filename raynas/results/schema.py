"""Versioned pyarrow schemas of the result tables: trials, epochs, alphas, genotypes, decisions and evaluations.

Every Parquet file raynas writes carries its table name and :data:`SCHEMA_VERSION` in the schema metadata,
so a reader can refuse a file written by a newer raynas instead of misreading it. Nothing here imports
torch or ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import pyarrow as pa

from raynas.errors import ResultsError
from raynas.ranking import RANK_METRIC_COLUMNS, TIME_COLUMNS

SCHEMA_VERSION = 2
"""Version of the table layouts below; bump it when a column changes meaning, type or disappears."""

VERSION_KEY = b"raynas.schema_version"
TABLE_KEY = b"raynas.table"

TRIAL_STATUSES = ("RUNNING", "TERMINATED", "ERROR")

GROUND_TRUTH_METRICS = ("gt_test_acc", "gt_percentile", "gt_regret")
"""The derived cell's ground truth (:mod:`raynas.benchmark.scoring`): test accuracy under the benchmark
protocol (mean over seeds), percentile (0-100) among the table's unique cells, regret to the best cell;
null in searches that are not scored."""

EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "derived_val_loss", "derived_val_acc",
                 "weight_lr", "arch_lr", "epoch_time_s", *GROUND_TRUTH_METRICS, *RANK_METRIC_COLUMNS, *TIME_COLUMNS)
"""The named float columns of the epochs table, taken from the report keys of the same name. The extra
ranking metrics (:mod:`raynas.ranking`) are null where ``search.rank_metrics`` did not ask for them and NaN on
epochs between measurements; the time columns hold the seconds of each measurement. Tables written before a
column existed read it as nulls (:func:`conform`)."""

UNIX_TIME_COLUMNS = ("reported_at", "at")
"""Columns that hold a unix time (seconds since 1970, UTC): the epochs' ``reported_at`` and the events' ``at``;
``raynas results`` prints them as ISO-8601 times."""

ALPHA_COLUMNS = ("cell", "edge", "src", "dst", "op", "alpha", "weight")
"""The lists of a report's ``alphas`` dict (long format, one entry per (cell, edge, op))."""


def _schema(name: str, fields: list[pa.Field]) -> pa.Schema:
    return pa.schema(fields, metadata={VERSION_KEY: str(SCHEMA_VERSION).encode(), TABLE_KEY: name.encode()})


def _f64(name: str) -> pa.Field:
    return pa.field(name, pa.float64())


TRIALS = _schema("trials", [
    pa.field("experiment", pa.string(), nullable=False),
    pa.field("trial_id", pa.string(), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("space", pa.string()),
    pa.field("method", pa.string()),
    pa.field("seed", pa.int64()),
    pa.field("overrides_json", pa.string()),
    pa.field("config_json", pa.string()),
    pa.field("genotype", pa.string()),
    pa.field("num_skip", pa.int32()),
    pa.field("connected", pa.bool_()),
    pa.field("epochs_done", pa.int32()),
    pa.field("epochs_planned", pa.int32()),  # search epochs plus the selection stage's
    pa.field("stopped_by", pa.string()),  # the scheduler (asha) when it ended the trial before epochs_planned
    pa.field("best_epoch", pa.int32()),
    pa.field("metric", pa.string()),
    pa.field("mode", pa.string()),
    _f64("metric_value"),
    _f64("best_val_acc"),
    _f64("best_derived_val_acc"),
    _f64("final_val_acc"),
    _f64("final_derived_val_acc"),
    _f64("final_train_loss"),
    _f64("final_gt_test_acc"),  # the final genotype's ground truth (scored searches)
    _f64("final_gt_percentile"),
    _f64("final_gt_regret"),
    _f64("best_gt_test_acc"),  # the best ground truth of any epoch's genotype
    _f64("wall_time_s"),
    pa.field("error", pa.string()),
])

EPOCHS = _schema("epochs", [
    pa.field("trial_id", pa.string(), nullable=False),
    pa.field("epoch", pa.int32(), nullable=False),
    *[_f64(name) for name in EPOCH_METRICS],
    _f64("wall_time_s"),
    _f64("reported_at"),  # unix time of the report (trial side): orders and overlaps trials
    pa.field("node_ip", pa.string()),  # the node the trial ran on at this epoch
    pa.field("restored_from", pa.string()),  # trial whose checkpoint this trial's state came from (PBT exploit)
    pa.field("extra", pa.map_(pa.string(), pa.float64())),
])

ALPHAS = _schema("alphas", [
    pa.field("trial_id", pa.string(), nullable=False),
    pa.field("epoch", pa.int32(), nullable=False),
    pa.field("cell", pa.string(), nullable=False),
    pa.field("edge", pa.int32(), nullable=False),
    pa.field("src", pa.int32()),
    pa.field("dst", pa.int32()),
    pa.field("op", pa.string(), nullable=False),
    pa.field("alpha", pa.float32()),
    pa.field("weight", pa.float32()),
])

DECISION_COLUMNS = ("round", "cell", "kind", "step", "node", "edge", "src", "dst", "op", "criterion", "acc", "loss",
                    "decision")
"""The lists of a report's ``decisions`` dict (one entry per candidate a selection stage evaluated)."""

GENOTYPES = _schema("genotypes", [
    pa.field("trial_id", pa.string(), nullable=False),
    pa.field("epoch", pa.int32(), nullable=False),
    pa.field("genotype", pa.string()),
    pa.field("num_skip", pa.int32()),
    pa.field("connected", pa.bool_()),
])

DECISIONS = _schema("decisions", [
    pa.field("trial_id", pa.string(), nullable=False),
    pa.field("epoch", pa.int32(), nullable=False),  # the epoch whose report carried the decision
    pa.field("round", pa.int32(), nullable=False),  # 0-based decision round of the selection stage
    pa.field("cell", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),  # "op": which op an edge keeps; "topology": which edge goes
    pa.field("step", pa.int32(), nullable=False),  # topology: the elimination step within the round (op: 0)
    pa.field("node", pa.int32()),  # the node the edge ends in
    pa.field("edge", pa.int32(), nullable=False),
    pa.field("src", pa.int32()),
    pa.field("dst", pa.int32()),
    pa.field("op", pa.string(), nullable=False),  # op: the masked candidate; topology: the op the edge runs
    pa.field("criterion", pa.string()),  # "acc" or "loss": which column decided
    pa.field("acc", pa.float64()),  # validation accuracy of the supernet without this candidate
    pa.field("loss", pa.float64()),  # validation loss of the supernet without this candidate
    pa.field("decision", pa.string()),  # "keep" (op kept), "drop" (edge removed) or null
])

EVALUATION_CURVES = ("train_loss", "train_acc", "test_loss", "test_acc")
"""Per-epoch metrics of a training from scratch; the evaluations table holds each as ``epoch_<name>`` lists."""

EVALUATIONS = _schema("evaluations", [
    pa.field("experiment", pa.string(), nullable=False),  # the evaluation run (raynas train --name)
    pa.field("trial_id", pa.string(), nullable=False),  # the evaluation's own Tune trial
    pa.field("status", pa.string(), nullable=False),
    pa.field("space", pa.string()),
    pa.field("dataset", pa.string()),
    pa.field("genotype", pa.string()),
    pa.field("source", pa.string()),  # where the genotype came from: a search folder, a file, or "argument"
    pa.field("source_trial", pa.string()),  # the search trial that derived the genotype, if any
    pa.field("seed", pa.int64()),
    pa.field("params", pa.int64()),  # trainable parameters, auxiliary head excluded
    pa.field("flops", pa.int64()),  # floating-point operations of one inference on one image (2 per multiply-add)
    pa.field("macs", pa.int64()),  # multiply-adds of one inference on one image (what NAS papers call FLOPs)
    pa.field("epochs", pa.int32()),  # epochs planned
    pa.field("epochs_done", pa.int32()),
    *[_f64(name) for name in EVALUATION_CURVES],  # at the last epoch done: the final result when finished
    _f64("best_test_acc"),
    pa.field("best_epoch", pa.int32()),
    *[pa.field(f"epoch_{name}", pa.list_(pa.float64())) for name in EVALUATION_CURVES],  # epoch 1.. in order
    _f64("wall_time_s"),
    pa.field("config_json", pa.string()),  # the resolved training config of this evaluation
    pa.field("error", pa.string()),
])

EVENTS = _schema("events", [
    pa.field("experiment", pa.string(), nullable=False),  # the experiment, evaluation run or build
    pa.field("at", pa.float64(), nullable=False),  # unix time (compare with the epochs table's reported_at)
    # config_change: a resume went on with a changed config.yaml / evaluation.yaml (--accept-config-change)
    pa.field("kind", pa.string(), nullable=False),
    pa.field("detail_json", pa.string()),  # config_change: {file, changed: {key: [old, new]}, old/new_sha256}
    pa.field("host", pa.string()),
    pa.field("pid", pa.int64()),
    pa.field("command", pa.string()),  # the command line that caused the event
])

TABLES: dict[str, pa.Schema] = {"trials": TRIALS, "epochs": EPOCHS, "alphas": ALPHAS, "genotypes": GENOTYPES,
                                "decisions": DECISIONS}
"""Table name -> schema of a search experiment's tables, in the order the tables are documented."""

EVALUATION_TABLES: dict[str, pa.Schema] = {"evaluations": EVALUATIONS}
"""Table name -> schema of an evaluation run's tables (``raynas train``)."""

EVENT_TABLES: dict[str, pa.Schema] = {"events": EVENTS}
"""Table name -> schema of what happened to a folder besides its trials' reports (:mod:`raynas.results.events`);
written by the driver itself, never from parts."""

ALL_TABLES: dict[str, pa.Schema] = {**TABLES, **EVALUATION_TABLES, **EVENT_TABLES}

KEYS: dict[str, tuple[str, ...]] = {
    "trials": ("trial_id",),
    "epochs": ("trial_id", "epoch"),
    "alphas": ("trial_id", "epoch", "cell", "edge", "op"),
    "genotypes": ("trial_id", "epoch"),
    "decisions": ("trial_id", "round", "cell", "step", "edge", "op"),
    "evaluations": ("trial_id",),
    "events": ("at", "kind"),
}
"""Table name -> the columns that identify a row; a table holds at most one row per key."""


def schema_for(name: str) -> pa.Schema:
    """The schema of table ``name``; a :class:`ResultsError` lists the valid names for any other."""
    try:
        return ALL_TABLES[name]
    except KeyError:
        raise ResultsError(f"unknown results table {name!r}; valid tables: {', '.join(ALL_TABLES)}") from None


def conform(table: pa.Table, name: str) -> pa.Table:
    """``table`` (a file of table ``name`` that passed :func:`check_schema`) in the current layout: columns
    added since it was written (nullable ones, such as the ground-truth columns) read as nulls."""
    schema = schema_for(name)
    for field in schema:
        if field.name not in table.column_names and field.nullable:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(schema.names).cast(schema)


def check_schema(schema: pa.Schema, name: str, source: Union[str, Path]) -> None:
    """Refuse a file whose metadata is not that of raynas table ``name`` at a version this code reads."""
    meta = schema.metadata or {}
    if VERSION_KEY not in meta or meta.get(TABLE_KEY) != name.encode():
        raise ResultsError(f"{source} is not a raynas {name!r} table (no raynas schema metadata)")
    raw = meta[VERSION_KEY].decode(errors="replace")
    try:
        version = int(raw)
    except ValueError:
        raise ResultsError(f"{source} has an unreadable schema version {raw!r}") from None
    if version > SCHEMA_VERSION:
        raise ResultsError(f"{source} has schema version {version}, newer than this raynas reads "
                           f"({SCHEMA_VERSION}); upgrade raynas to read it")
