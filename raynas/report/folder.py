"""What kind of results folder a report is about, and the few facts read from its files directly.

Tables are read only through :mod:`raynas.results`; this module reads the plan files (``config.yaml`` of a
search, ``evaluation.yaml`` of an evaluation run) as text and dates the results.
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Optional

import yaml

from raynas.errors import ResultsError
from raynas.results import EVALUATION_PLAN

SEARCH_PLAN = "config.yaml"
"""The resolved config that marks a search experiment folder (``raynas search``)."""

SEARCH = "search"
EVALUATION = "evaluation"


def folder_kind(directory: Path) -> str:
    """:data:`SEARCH` or :data:`EVALUATION`; a :class:`ResultsError` for a folder that is neither."""
    if not directory.is_dir():
        raise ResultsError(f"report folder {str(directory)!r} does not exist or is not a folder; pass a search "
                           "experiment folder (<out>/<name> of raynas search) or an evaluation run folder")
    if (directory / EVALUATION_PLAN).is_file():
        return EVALUATION
    if (directory / SEARCH_PLAN).is_file() or (directory / "tables" / "trials.parquet").is_file():
        return SEARCH
    raise ResultsError(f"report folder {str(directory)!r} is not a raynas results folder: expected {SEARCH_PLAN} "
                       f"and tables/ (a search experiment, <out>/<name> of raynas search) or {EVALUATION_PLAN} "
                       "(an evaluation run of raynas train)")


def plan_text(path: Path) -> Optional[str]:
    """The text of a plan file, None when it does not exist (undecodable bytes are replaced)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None


def plan_values(text: Optional[str]) -> dict[str, Any]:
    """The top-level mapping of a plan's YAML text; empty when there is none or it does not parse."""
    if not text:
        return {}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return value if isinstance(value, dict) else {}


def results_date(directory: Path, timestamps: Iterable[Optional[float]] = ()) -> str:
    """When the results were last written: the newest of ``timestamps`` (unix seconds, e.g. the epochs'
    ``reported_at``), else the newest modification time of the folder's Parquet files; in UTC."""
    finite = [t for t in timestamps if t is not None and math.isfinite(t)]
    if not finite:
        tables = directory / "tables"
        parts = list((tables / "parts").rglob("*.parquet")) if (tables / "parts").is_dir() else []
        files = parts or (list(tables.glob("*.parquet")) if tables.is_dir() else [])
        finite = [os.stat(path).st_mtime for path in files if path.exists()]
    if not finite:
        return "no results yet"
    return datetime.fromtimestamp(max(finite), tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
