"""The Ray Tune side of ``raynas bench build``: the trainable (a chunk of cells, one seed), the callback that
writes each finished cell's row as a Parquet part, and the progress line with an ETA."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any, Mapping, Optional, TextIO

from ray import tune

from raynas.benchmark.table import ROWS_FILE, read_file, rows_to_table, write_part, write_table
from raynas.tune.hold import hold_point


def benchmark_trainable(config: dict[str, Any], protocol: Mapping[str, Any], threads: int = 1) -> None:
    """Train the trial's cells one after the other; after each, report its row with a checkpoint holding
    every row of the trial so far, so a restored trial continues with the next cell."""
    from raynas.benchmark.training import train_cell

    spec = config["benchmark"]
    seed, cells = int(spec["seed"]), [(int(cell), str(arch)) for cell, arch in spec["cells"]]
    rows: list[dict[str, Any]] = []
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            rows = read_file(os.path.join(folder, ROWS_FILE)).to_pylist()
    for _cell, arch in cells[len(rows):]:
        row = train_cell(arch, seed, protocol, threads=threads)
        rows.append(row)
        with tempfile.TemporaryDirectory(prefix="raynas-bench-ckpt-") as folder:
            write_table(rows_to_table(rows), os.path.join(folder, ROWS_FILE))
            tune.report({"cells_done": len(rows), "cells_total": len(cells), "row": row},
                        checkpoint=tune.Checkpoint.from_directory(folder))
        hold_point(tune.get_context().get_trial_id(), len(rows), len(rows) == len(cells))  # off unless RAYNAS_HOLD_*


def part_stem(row: Mapping[str, Any]) -> str:
    """The part file name of a row: its cell, seed and protocol (rewriting it is idempotent)."""
    return f"cell{int(row['cell_id']):05d}_seed{int(row['seed'])}_{row['protocol_hash']}"


class BenchmarkParts(tune.Callback):
    """Writes each reported row as ``parts/<cell>_<seed>_<protocol>.parquet`` as soon as it arrives."""

    def __init__(self, parts_dir: str) -> None:
        super().__init__()
        self.parts_dir = parts_dir

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        row = result.get("row")
        if row:
            write_part([row], self.parts_dir, stem=part_stem(row))


def duration(seconds: float) -> str:
    """``seconds`` as ``1h02m``, ``3m05s`` or ``12s``."""
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class BenchmarkProgress(tune.Callback):
    """One line per trained cell: pairs done of the build's total, the cell's accuracy and time, the build's
    rate since this process started, and an ETA."""

    def __init__(self, total: int, done_before: int = 0, stream: Optional[TextIO] = None) -> None:
        super().__init__()
        self.total = total
        self.done = done_before
        self.done_here = 0
        self.start = time.monotonic()
        self._stream = stream

    def _say(self, text: str) -> None:
        print(text, file=self._stream or sys.stdout, flush=True)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        row = result.get("row")
        if not row:
            return
        self.done += 1
        self.done_here += 1
        elapsed = time.monotonic() - self.start
        rate = self.done_here / elapsed if elapsed > 0 else 0.0
        eta = duration((self.total - self.done) / rate) if rate > 0 else "?"
        self._say(f"[bench {self.done}/{self.total}] cell {row['cell_id']} seed {row['seed']}  "
                  f"test_acc {row['test_acc']:.4f}  {row['train_time_s']:.1f}s  "
                  f"{rate * 3600:.0f} cell-seeds/h  ETA {eta}")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._say(f"[bench] trial {trial.trial_id} lost its process; retrying after its last finished cell")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._say(f"[bench] trial {trial.trial_id} FAILED (see its error.txt under the build's tune/ folder); "
                  "raynas resume retries it")
