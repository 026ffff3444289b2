"""What the study tools (``study_skip_collapse``, ``study_transfer``) share. (The NB201 method comparisons,
``study_flatness`` and ``study_e2nas``, became one population scored on the ground truth: ``tools/league.py``.)

Each study runs one ``run_job(*job, args)`` per job in ``--jobs`` processes, prints a line per finished job,
then a summary table (markdown); ``--out`` also writes the summary and every job's row to a file, ``--json``
prints the rows as JSON. This module holds that runner, its arguments, the mean ± std formatting of the
tables and the brief training from scratch of a derived architecture.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any


def mean_std(values: list[float]) -> str:
    """``values`` as "mean ± std" to three decimals, NaNs left out; one value alone, "n/a" when none remain."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def train_briefly(space: str, genotype: str, cfg: Any, seed: int, args: argparse.Namespace) -> dict[str, float]:
    """Test accuracy of ``genotype`` trained from scratch for ``--train-epochs`` on the search's data."""
    from raynas.config import TrainConfig
    from raynas.train import train_from_scratch

    from dataclasses import replace

    darts_like = space != "nb201"
    data = replace(cfg.data, cutout=cfg.data.cutout or 0)  # no cutout, as the studies in docs/ were measured
    train_cfg = TrainConfig(space=space, genotype=genotype, data=data, epochs=args.train_epochs, batch_size=64,
                            lr=0.05, lr_min=0.0, nesterov=True, weight_decay=5e-4, channels=args.channels,
                            layers=args.darts_layers if darts_like else args.nb201_layers, auxiliary=False,
                            drop_path_prob=0.0, seed=seed, device="cpu", threads=1)
    result = train_from_scratch(train_cfg, echo=lambda _: None)
    return {"test_acc": float(result["test_acc"]), "params": int(result["params"])}


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """Add the runner's ``--jobs``, ``--out`` and ``--json`` to ``parser``."""
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes, one torch thread each (default: 2)")
    parser.add_argument("--out", default=None, help="also write the summary and the rows (markdown) here")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON at the end")


def run_jobs(jobs: Sequence[tuple[Any, ...]], run_job: Callable[..., dict[str, Any]], args: argparse.Namespace,
             describe: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    """Run ``run_job(*job, args)`` for every job in ``args.jobs`` processes; the rows in the order they finish.

    ``run_job`` must be a module-level function (it is pickled to the worker processes). Each finished row is
    printed as ``[elapsed s] describe(row)``.
    """
    rows = []
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_job, *job, args): job for job in jobs}
        for future in as_completed(futures):
            row = future.result()
            rows.append(row)
            print(f"[{time.perf_counter() - start:7.0f}s] {describe(row)}", flush=True)
    return rows


def finish(summary: str, rows_markdown: str, rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Print ``summary``; write it and ``rows_markdown`` to ``--out`` if set; print ``rows`` as JSON with ``--json``."""
    print(summary)
    if args.out:
        Path(args.out).write_text(f"{summary}\n\n{rows_markdown}\n")
    if args.json:
        print(json.dumps(rows, indent=1))
