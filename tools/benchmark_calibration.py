#!/usr/bin/env python3
"""Calibrate the ground-truth protocol: which cheap training of NB201 cells ranks them like an expensive one.

Two steps, both on ``raynas train`` populations (one Ray Tune trial per cell and seed, resumable):

    python tools/benchmark_calibration.py cells [--count 60] [--seed 0] > benchmarks/calibration/cells.txt
    raynas train benchmarks/calibration/cells.txt --config benchmarks/calibration/ref.yaml --seeds 0 \\
        --out benchmarks/calibration/runs --name ref --num-cpus 2
    raynas train benchmarks/calibration/cells.txt --config benchmarks/calibration/c8n1e10.yaml --seeds 0-2 \\
        --out benchmarks/calibration/runs --name c8n1e10 --num-cpus 2
    python tools/benchmark_calibration.py analyse benchmarks/calibration/runs/ref \\
        benchmarks/calibration/runs/c8n1e10 [...] [--json]
    python tools/benchmark_calibration.py save benchmarks/calibration/runs/ref \\
        benchmarks/calibration/results/ref.parquet

``save`` copies a run's finished evaluations (from its table, or from its parts while it runs) into one
Parquet file to commit; ``analyse`` reads run folders and such files alike. ``cells`` writes the
calibration cells: ``--count`` random connected unique NB201 cells (representatives of
:func:`raynas.benchmark.cells.unique_cells`, drawn with ``--seed``) plus all-skip, all-``nor_conv_3x3``,
all-``avg_pool_3x3`` and NB201's best cell. ``analyse`` reads each run's evaluations table and prints, per
protocol: cells and seeds, the 10th-90th percentile of the cell means against the median seed-to-seed
standard deviation (target: spread >= 4 x deviation), Kendall tau between two seeds' rankings (>= 0.6),
Kendall tau of the cell means against the first run's (the reference; >= 0.7), tau between the accuracy at
a third of the epochs and at the end, and the median seconds per cell and seed. Each tau comes with a 95 %
bootstrap interval over cells.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

SPECIALS = {
    "all-skip": "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
    "all-conv3": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "all-pool": "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
    "nb201-best": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
}
BOOTSTRAP = 2000


def calibration_cells(count: int, seed: int) -> list[str]:
    """``count`` random connected unique cells (their representatives) and the special cells, no repeats."""
    from raynas.benchmark.cells import unique_cells
    from raynas.spaces.nb201 import NB201

    connected = [arch for arch in unique_cells().representatives if NB201.is_connected(NB201.parse_genotype(arch))]
    chosen = random.Random(seed).sample(connected, count)
    cells = unique_cells()
    taken = {cells.cell_id(arch) for arch in chosen}
    return chosen + [arch for arch in SPECIALS.values() if cells.cell_id(arch) not in taken]


def evaluation_rows(source: Path) -> list[dict]:
    """The evaluations rows of a run folder (its table, or its per-trial parts while it runs) or of a
    Parquet file copied from one (``benchmarks/calibration/results/``)."""
    import pyarrow.parquet as pq

    if source.suffix == ".parquet":
        return pq.read_table(source).to_pylist()
    table = source / "tables" / "evaluations.parquet"
    if table.exists():
        return pq.read_table(table).to_pylist()
    parts = sorted((source / "tables" / "parts" / "evaluations").glob("*.parquet"))
    return [row for part in parts for row in pq.read_table(part).to_pylist()]


def load_run(source: Path) -> dict[str, dict[int, dict]]:
    """Unique cell id -> seed -> {final test acc, per-epoch test acc, wall time} of a run's finished trials;
    ``a.parquet+b.parquet`` joins the runs of one protocol (e.g. its seeds trained apart)."""
    from raynas.benchmark.cells import unique_cells

    cells = unique_cells()
    rows = [row for part in str(source).split("+") for row in evaluation_rows(Path(part))]
    out: dict[str, dict[int, dict]] = {}
    for row in rows:
        if row["status"] != "TERMINATED":
            continue
        cell = str(cells.cell_id(row["genotype"]))
        out.setdefault(cell, {})[int(row["seed"])] = {"acc": row["test_acc"], "curve": row["epoch_test_acc"],
                                                      "time": row["wall_time_s"], "arch": row["genotype"]}
    return out


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (linear interpolation, as numpy's default)."""
    import numpy as np

    return float(np.percentile(values, q))


def tau_with_interval(a: list[float], b: list[float], seed: int = 0) -> tuple[float, float, float]:
    """Kendall tau (tau-b) of paired values and its 95 % bootstrap interval over the pairs."""
    import numpy as np
    from scipy.stats import kendalltau

    x, y = np.asarray(a), np.asarray(b)
    tau = float(kendalltau(x, y).statistic)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(x), len(x))
        value = kendalltau(x[pick], y[pick]).statistic
        if np.isfinite(value):
            draws.append(value)
    low, high = np.percentile(draws, [2.5, 97.5])
    return tau, float(low), float(high)


def figures(run: dict[str, dict[int, dict]], reference: dict[str, dict[int, dict]] | None) -> dict:
    """The calibration figures of one protocol's run (against ``reference`` when given)."""
    seeds = sorted({s for per_seed in run.values() for s in per_seed})
    full = {cell: per_seed for cell, per_seed in run.items() if all(s in per_seed for s in seeds)}
    means = {cell: statistics.fmean(per_seed[s]["acc"] for s in seeds) for cell, per_seed in full.items()}
    out: dict = {"cells": len(full), "seeds": seeds,
                 "p10": percentile(list(means.values()), 10), "p90": percentile(list(means.values()), 90),
                 "median_s_per_cell_seed": statistics.median(r["time"] for p in full.values() for r in p.values())}
    out["spread"] = out["p90"] - out["p10"]
    if len(seeds) >= 2:
        out["median_seed_std"] = statistics.median(statistics.stdev(p[s]["acc"] for s in seeds) for p in full.values())
        out["spread_over_std"] = out["spread"] / out["median_seed_std"] if out["median_seed_std"] else float("inf")
        order = sorted(full)
        out["tau_seeds"] = tau_with_interval([full[c][seeds[0]]["acc"] for c in order],
                                             [full[c][seeds[1]]["acc"] for c in order])
        from itertools import combinations

        from scipy.stats import kendalltau

        out["tau_seed_pairs"] = [float(kendalltau([full[c][a]["acc"] for c in order],
                                                  [full[c][b]["acc"] for c in order]).statistic)
                                 for a, b in combinations(seeds, 2)]
    order = sorted(full)
    epochs = len(next(iter(full.values()))[seeds[0]]["curve"])
    early = max(1, epochs // 3)
    out["early_epoch"] = early
    out["tau_early_final"] = tau_with_interval(
        [statistics.fmean(full[c][s]["curve"][early - 1] for s in seeds) for c in order], [means[c] for c in order])
    if reference is not None:
        ref_seeds = sorted({s for p in reference.values() for s in p})
        shared = sorted(c for c in full if all(s in reference.get(c, {}) for s in ref_seeds))
        out["cells_vs_reference"] = len(shared)
        out["tau_reference"] = tau_with_interval(
            [means[c] for c in shared], [statistics.fmean(reference[c][s]["acc"] for s in ref_seeds) for c in shared])
    return out


def show(name: str, f: dict) -> str:
    """One protocol's figures as text."""
    def tau(key: str) -> str:
        if key not in f:
            return "-"
        value, low, high = f[key]
        return f"{value:.3f} [{low:.3f}, {high:.3f}]"

    lines = [f"{name}: {f['cells']} cells x seeds {f['seeds']}, {f['median_s_per_cell_seed']:.1f} s per cell and seed "
             f"(median)",
             f"  cell means p10-p90 {f['p10']:.3f}-{f['p90']:.3f} (spread {f['spread']:.3f})"]
    if "median_seed_std" in f:
        lines.append(f"  median seed std {f['median_seed_std']:.4f}; spread / std {f['spread_over_std']:.1f} (>= 4)")
        lines.append(f"  tau between seeds {f['seeds'][0]} and {f['seeds'][1]}: {tau('tau_seeds')} (>= 0.6)")
        if len(f["tau_seed_pairs"]) > 1:
            pairs = ", ".join(f"{t:.3f}" for t in f["tau_seed_pairs"])
            lines.append(f"  tau of every seed pair: {pairs} (mean {statistics.fmean(f['tau_seed_pairs']):.3f})")
    lines.append(f"  tau epoch {f['early_epoch']} vs final: {tau('tau_early_final')}")
    if "tau_reference" in f:
        lines.append(f"  tau vs reference ({f['cells_vs_reference']} cells): {tau('tau_reference')} (>= 0.7)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cells = sub.add_parser("cells", help="print the calibration cells, one arch string a line")
    cells.add_argument("--count", type=int, default=60)
    cells.add_argument("--seed", type=int, default=0)
    analyse = sub.add_parser("analyse", help="figures of finished raynas train runs (the first is the reference)")
    analyse.add_argument("runs", nargs="+", type=Path,
                         help="run folders or evaluations Parquet files; a+b joins two of one protocol")
    save = sub.add_parser("save", help="copy a run's finished evaluations into one Parquet file (to commit)")
    save.add_argument("run", type=Path)
    save.add_argument("out", type=Path)
    analyse.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.command == "cells":
        print(f"# {args.count} random connected unique NB201 cells (seed {args.seed}) and "
              f"{', '.join(SPECIALS)}: tools/benchmark_calibration.py cells")
        print("\n".join(calibration_cells(args.count, args.seed)))
        return
    if args.command == "save":
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = [row for row in evaluation_rows(args.run) if row["status"] == "TERMINATED"]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), args.out)
        print(f"{len(rows)} finished evaluations -> {args.out}")
        return
    names = ["+".join(Path(part).stem for part in str(folder).split("+")) for folder in args.runs]
    runs = {name: load_run(folder) for name, folder in zip(names, args.runs)}
    reference = runs[names[0]]
    result = {name: figures(run, None if name == names[0] else reference) for name, run in runs.items()}
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
        return
    for name, f in result.items():
        print(show(name, f))


if __name__ == "__main__":
    main()
