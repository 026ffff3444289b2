"""The events table of a folder: what happened to it besides its trials' reports.

``<folder>/tables/events.parquet`` (schema :data:`raynas.results.schema.EVENTS`) gets a row when a resume
goes on with a changed settings file (``raynas resume --accept-config-change``, kind ``config_change``):
when (unix time, comparable with the epochs table's ``reported_at``), which keys changed from what to what,
and by which command. Unlike the other tables it is written by the driver directly, a row at a time
(read, append, replace atomically), never consolidated from parts; a folder without the file has had no
event, and reads as an empty table. Nothing here imports torch or Ray.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from raynas.errors import ResultsError
from raynas.results.schema import EVENTS, check_schema, conform

EVENTS_FILE = "events.parquet"
TABLES_DIR = "tables"


def events_path(directory: str | os.PathLike) -> Path:
    """The events table of a folder."""
    return Path(directory) / TABLES_DIR / EVENTS_FILE


def read_events(directory: str | os.PathLike) -> pa.Table:
    """The folder's events (an empty table when it has none); a one-line ResultsError when unreadable."""
    path = events_path(directory)
    if not path.exists():
        return EVENTS.empty_table()
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ResultsError(f"cannot read results table {path}: {' '.join(str(exc).split())[:200]}") from None
    check_schema(table.schema, "events", path)
    return conform(table, "events")


def append_event(directory: str | os.PathLike, *, experiment: str, kind: str, detail: Mapping[str, Any]) -> Path:
    """Add one event row (now, this host, pid and command line) to the folder's events table, atomically."""
    from raynas.files import atomic_path

    row = {"experiment": experiment, "at": time.time(), "kind": kind,
           "detail_json": json.dumps(dict(detail), sort_keys=True, default=str), "host": socket.gethostname(),
           "pid": os.getpid(), "command": shlex.join(sys.argv)}
    table = pa.concat_tables([read_events(directory), pa.Table.from_pylist([row], schema=EVENTS)])
    path = events_path(directory)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path
