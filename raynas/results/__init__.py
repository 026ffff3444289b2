"""Result tables of an experiment: versioned Parquet schemas, an idempotent writer and readers.

``ResultsCallback`` (the Ray Tune callback) is loaded on first use, so importing this package does not
import ray.
"""

from __future__ import annotations

from typing import Any

from raynas.results.board import (DEFAULT_SCOPE, SCOPES, leaderboard, leaderboard_columns, rank_column,
                                  ranking_of, search_ranking)
from raynas.results.query import EVALUATION_PLAN, EVALUATIONS_DIR, FORMATS, evaluation_runs, format_table, load_table
from raynas.results.schema import (EVALUATION_TABLES, GROUND_TRUTH_METRICS, KEYS, SCHEMA_VERSION, TABLES,
                                   TRIAL_STATUSES, UNIX_TIME_COLUMNS, schema_for)
from raynas.results.writer import ResultsWriter, merge_history, rows_from_report, summarise_trial

__all__ = ["DEFAULT_SCOPE", "EVALUATION_PLAN", "EVALUATIONS_DIR", "EVALUATION_TABLES", "FORMATS",
           "GROUND_TRUTH_METRICS", "KEYS", "SCHEMA_VERSION", "SCOPES", "TABLES", "TRIAL_STATUSES", "UNIX_TIME_COLUMNS",
           "ResultsCallback", "ResultsWriter", "evaluation_runs", "format_table", "leaderboard", "leaderboard_columns",
           "load_table", "merge_history", "rank_column", "ranking_of", "rows_from_report", "schema_for",
           "search_ranking", "summarise_trial", "trial_overrides"]


def __getattr__(name: str) -> Any:
    """Import the ray-dependent callback module only when one of its names is asked for."""
    if name in ("ResultsCallback", "trial_overrides"):
        from raynas.results import callback

        return getattr(callback, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
