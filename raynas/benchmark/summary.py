"""A benchmark table described: coverage, seeds, protocol, accuracy range, best cell (``raynas bench info``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from raynas.benchmark.cells import unique_cells
from raynas.benchmark.protocol import protocol_hash
from raynas.benchmark.table import read_rows, shipped_table_path


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def table_info(sources: Optional[Iterable[str | os.PathLike]] = None,
               protocol: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """Figures of the benchmark rows under ``sources`` (default: the shipped table) for ``protocol``
    (default: the shipped one)."""
    paths = [Path(s) for s in (sources if sources is not None else [shipped_table_path()])]
    digest = protocol_hash(protocol)
    table = read_rows(paths, digest)
    seeds_of: dict[int, list[float]] = {}
    for cell, acc in zip(table["cell_id"].to_pylist(), table["test_acc"].to_pylist()):
        seeds_of.setdefault(int(cell), []).append(float(acc))
    means = {cell: sum(accs) / len(accs) for cell, accs in seeds_of.items()}
    info: dict[str, Any] = {
        "tables": ", ".join(map(str, paths)), "protocol_hash": digest, "rows": table.num_rows,
        "unique_cells": f"{len(means)} of {len(unique_cells())}",
        "cells_with_3_seeds": sum(len(a) >= 3 for a in seeds_of.values()),
    }
    if means:
        best = max(means, key=means.__getitem__)
        values = list(means.values())
        info.update({"test_acc_p10_p90": f"{_quantile(values, 0.1):.4f}-{_quantile(values, 0.9):.4f}",
                     "best_cell": f"{best} {unique_cells().representatives[best]} ({means[best]:.4f})",
                     "train_time_s_median": round(_quantile(table["train_time_s"].to_pylist(), 0.5), 2)})
    return info
