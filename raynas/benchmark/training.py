"""Training one NB201 cell and seed under the benchmark protocol: the unit of the build and of on-demand
lookups, so both give the same row bit for bit on the CPU."""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Optional

from raynas.benchmark.cells import unique_cells
from raynas.benchmark.protocol import cell_config, protocol_hash
from raynas.benchmark.table import CURVES


def train_cell(arch: str, seed: int, protocol: Mapping[str, Any], *, threads: Optional[int] = 1,
               on_epoch: Optional[Callable[[dict[str, Any]], None]] = None) -> dict[str, Any]:
    """Train ``arch`` (any member of its unique cell) from scratch under ``protocol`` with ``seed``; the
    benchmark row (see :data:`raynas.benchmark.table.SCHEMA`).

    The cell's representative is trained, so every member of a cell gets the same row. Cells without a path
    from input to output are trained too (their networks learn only the classifier's bias), as NB201 does.
    """
    from raynas.train import ScratchTraining

    cells = unique_cells()
    cell = cells.cell_id(arch)
    representative = cells.representatives[cell]
    start = time.perf_counter()
    training = ScratchTraining(cell_config(protocol, representative, seed, threads=threads), allow_disconnected=True)
    report: dict[str, Any] = {}
    while not training.done:
        report = training.run_epoch()
        if on_epoch is not None:
            on_epoch(report)
    return {"arch": representative, "cell_id": cell, "seed": int(seed), "epochs": training.epoch,
            **{f"epoch_{name}": list(training.history[name]) for name in CURVES},
            "test_acc": float(training.history["test_acc"][-1]), "params": int(training.params),
            "flops": int(training.flops), "train_time_s": time.perf_counter() - start,
            "protocol_hash": protocol_hash(protocol)}
