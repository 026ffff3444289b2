"""Seconds per cell and seed of the benchmark protocol on one core: the figure the build's cost scales with.

Trains the first ``--cells`` unique cells of the build order (a uniform random sample of NB201) one after the
other in this process with one torch thread, exactly as a build trial does (``raynas.benchmark.training``),
and prints each cell's time, the median and mean, and the cell-seeds per core-hour that follow. The first
cell also pays the process's imports and the data set's loading; it is reported apart.

    python tools/bench_benchmark_cells.py [--cells 12] [--protocol FILE] [--json]

Run it on an otherwise idle core: on a shared machine the figure is the machine's, not the protocol's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=12, help="cells to train (after a warm-up cell)")
    parser.add_argument("--protocol", default=None, help="protocol YAML (default: the shipped one)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    import torch

    from raynas.benchmark.build import build_order
    from raynas.benchmark.cells import unique_cells
    from raynas.benchmark.protocol import check_protocol, protocol_hash, shipped_protocol
    from raynas.benchmark.training import train_cell
    from raynas.config.loader import read_config_file

    torch.set_num_threads(1)
    protocol = check_protocol(read_config_file(args.protocol)) if args.protocol else shipped_protocol()
    representatives = unique_cells().representatives
    order = build_order()
    start = time.perf_counter()
    train_cell(representatives[order[0]], 0, protocol)  # warm-up: imports, data set, allocator
    warmup = time.perf_counter() - start
    seconds = []
    for cell in order[1:1 + args.cells]:
        row = train_cell(representatives[cell], 0, protocol)
        seconds.append(row["train_time_s"])
        if not args.json:
            print(f"cell {cell:>5}  {row['train_time_s']:6.2f}s  test_acc {row['test_acc']:.4f}  "
                  f"{row['flops'] / 1e6:.1f} MFLOPs", flush=True)
    figures = {"protocol_hash": protocol_hash(protocol), "cells": len(seconds), "warmup_s": round(warmup, 2),
               "median_s": round(statistics.median(seconds), 3), "mean_s": round(statistics.fmean(seconds), 3),
               "cell_seeds_per_core_hour": round(3600 / statistics.fmean(seconds), 1)}
    print(json.dumps(figures) if args.json else
          f"median {figures['median_s']} s, mean {figures['mean_s']} s per cell and seed on one core "
          f"({figures['cell_seeds_per_core_hour']} cell-seeds per core-hour); warm-up cell {figures['warmup_s']} s")


if __name__ == "__main__":
    main()
