#!/usr/bin/env python3
"""Benchmark DARTS-PT perturbation selection: wall time of the whole selection stage with 1 and 2 workers.

Builds a search from a preset (``--preset darts``, the default, or ``nb201``; ``--config`` replaces the
preset's config, ``--set`` overrides come after the preset's), switches the selection to ``perturbation``
with ``proj_intv`` 0 (decisions only, no fine-tuning between them), trains ``--epochs`` supernet epochs, and
saves that state. Then, for each worker count, a fresh search with ``selection.workers`` set loads the SAME
trained state and runs every stage epoch (``while not done: run_epoch()``); the run is timed as a whole and
so is the time spent in candidate evaluation alone (the rest is the trial's own per-epoch evaluation of the
supernet and of the derived cell, which stays sequential). With 1 worker the candidates are evaluated in
this process; with more, on that many worker actors (:mod:`raynas.selection.parallel`) of
``resources.cpus_per_selection_worker`` CPUs each. Before a parallel run is timed, one untimed evaluation
starts its workers (a new process each that imports torch and builds the supernet; printed as
``warm-up``); ``--no-warmup`` times that start-up as part of the stage. The trial's process and the workers
use the same torch thread count (``--threads``), so all runs must take the same decisions and end with the
same genotype; the tool prints whether they did, and the 1-minute load average before and after each run
(the machine is shared: a run that other work slowed shows there). A local Ray instance runs on loopback,
its temp folder under the system temp folder.

The ``darts`` preset is DARTS-PT's whole projection of the DARTS space: 14 op rounds and 3 topology rounds
over the normal and the reduction cell, 40 evaluate calls, 240 candidate evaluations (7 ops per edge
without ``none``, then 3 + 7 + 12 topology candidates per cell), each over 4 batches of 48 noisy digits, on
the smoke supernet (C = 4, 3 cells); on 2 cores the 1-worker stage takes about 3 minutes:

    flock /tmp/raynas_bench.lock .venv/bin/python tools/bench_selection.py --epochs 1
    flock /tmp/raynas_bench.lock .venv/bin/python tools/bench_selection.py --preset nb201

    python tools/bench_selection.py [--preset darts|nb201] [--config FILE] [--set KEY=VALUE ...]
                                    [--epochs 2] [--workers 1 2] [--threads 1] [--no-warmup] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SMOKE = Path(__file__).resolve().parents[1] / "search_configs" / "smoke"
#: name -> (config, overrides): ``darts`` is DARTS-PT's whole projection of the DARTS space (14 op rounds and 3
#: topology rounds: 40 decisions, 240 candidate evaluations of 4 batches of 48), sized for 2 CPU cores
PRESETS = {
    "darts": (str(SMOKE / "darts.yaml"), ["data.limit=384", "search.batch_size=48"]),
    "nb201": (str(SMOKE / "nb201.yaml"), ["supernet.channels=16", "supernet.layers=2", "data.limit=1024"]),
}


def overrides(args: argparse.Namespace, workers: int) -> list[str]:
    """The config overrides of one run: the user's, then the benchmark's fixed settings."""
    return [*args.set, f"search.epochs={args.epochs}", f"search.threads={args.threads}",
            "selection.name=perturbation", "selection.perturbation.proj_intv=0", f"selection.workers={workers}",
            f"resources.cpus_per_selection_worker={args.threads}"]


def train(args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    """The state of a search after its ``--epochs`` supernet epochs, and the seconds they took."""
    from raynas.config import load_config
    from raynas.search import Search

    search = Search(load_config(args.config, overrides(args, 1)))
    start = time.perf_counter()
    for _ in range(args.epochs):
        search.run_epoch()
    return search.get_state(), time.perf_counter() - start


def prepared(args: argparse.Namespace, state: dict[str, Any], workers: int) -> Any:
    """A fresh search with ``workers`` selection workers, loaded with ``state``."""
    from raynas.config import load_config
    from raynas.search import Search

    search = Search(load_config(args.config, overrides(args, workers)))
    search.set_state(state)
    return search


def warm_up(search: Any) -> float:
    """Seconds of one untimed parallel evaluation: starts ``search``'s selection workers (Ray actors that
    import torch and build the supernet), which its timed stage then keeps using."""
    with_weights = {c: w.detach() for c, w in search.model.arch_weights().items()}
    start = time.perf_counter()
    search.evaluate_candidates([with_weights])
    return time.perf_counter() - start


def run_stage(search: Any, workers: int) -> dict[str, Any]:
    """Time the whole selection stage of ``search`` (set to the trained state) with ``workers`` workers."""
    evaluate = search.evaluate_candidates
    eval_seconds = [0.0]
    calls = [0, 0]  # decisions' evaluate calls, candidates

    def timed(candidates):  # instance attribute: the selection gets this through search.evaluate_candidates
        begin = time.perf_counter()
        try:
            return evaluate(candidates)
        finally:
            eval_seconds[0] += time.perf_counter() - begin
            calls[0] += 1
            calls[1] += len(candidates)

    search.evaluate_candidates = timed  # type: ignore[method-assign]
    decisions: list[Any] = []
    start = time.perf_counter()
    while not search.done:
        report = search.run_epoch()
        if report.get("decisions"):
            decisions.append(report["decisions"])
    total = time.perf_counter() - start
    return {"workers": workers, "stage_s": round(total, 3), "evaluate_s": round(eval_seconds[0], 3),
            "stage_epochs": search.stage_epochs, "evaluate_calls": calls[0], "candidates": calls[1],
            "genotype": str(search.genotype), "decisions": decisions}


def timed_runs(args: argparse.Namespace, state: dict[str, Any]) -> list[dict[str, Any]]:
    """One :func:`run_stage` per worker count, each on a fresh search whose workers are closed after it."""
    runs = []
    for workers in args.workers:
        search = prepared(args, state, workers)
        try:
            load = os.getloadavg()[0]
            warmup_s = None if args.no_warmup or workers == 1 else round(warm_up(search), 3)
            run = run_stage(search, workers)
        finally:
            search.close()
        runs.append({**run, "warmup_s": warmup_s, "load_avg_1m": [round(load, 2), round(os.getloadavg()[0], 2)]})
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="darts",
                        help="config and overrides to start from (default: darts)")
    parser.add_argument("--config", default=None, help="search config (default: the preset's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, after the preset's")
    parser.add_argument("--epochs", type=int, default=2, help="supernet epochs before the selection stage")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the trial's process and of each worker (its CPUs)")
    parser.add_argument("--no-warmup", action="store_true", help="time the parallel runs' worker start-up too")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    preset_config, preset_set = PRESETS[args.preset]
    args.config = args.config or preset_config
    args.set = [*preset_set, *args.set]
    from raynas.experiment import keep_local_ray_on_loopback
    from raynas.ray_auth import enable_for_local_ray

    keep_local_ray_on_loopback()  # before Ray is imported
    enable_for_local_ray()  # token auth with a private token file, as raynas' own local Ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    load_before = os.getloadavg()[0]
    state, train_s = train(args)
    num_cpus = max(1, math.ceil(max(args.workers) * args.threads))
    with tempfile.TemporaryDirectory(prefix="rb") as temp:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _temp_dir=temp)
        try:
            runs = timed_runs(args, state)
        finally:
            ray.shutdown()
    base = runs[0]
    for run in runs:
        run["speedup_vs_first"] = round(base["stage_s"] / run["stage_s"], 3)
        run["evaluate_speedup_vs_first"] = round(base["evaluate_s"] / run["evaluate_s"], 3)
        run["same_genotype_as_first"] = run["genotype"] == base["genotype"]
        run["same_decisions_as_first"] = run["decisions"] == base["decisions"]
    setting = {"preset": args.preset, "config": os.path.relpath(args.config), "set": args.set,
               "epochs": args.epochs, "threads": args.threads, "train_s": round(train_s, 3),
               "ray_cpus": num_cpus, "cpu_count": os.cpu_count(),
               "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    if args.json:
        print(json.dumps({"setting": setting, "results": [{k: v for k, v in r.items() if k != "decisions"}
                                                          for r in runs]}))
        return
    print(f"setting: {setting}")
    print(f"{'workers':>7} {'warm-up s':>9} {'stage s':>8} {'evaluate s':>11} {'speed-up':>9} {'eval speed-up':>14} "
          f"{'decisions':>9} {'candidates':>10} {'same decisions':>15} {'same genotype':>14} {'load 1m':>12}")
    for r in runs:
        warmup = "-" if r["warmup_s"] is None else f"{r['warmup_s']:.3f}"
        load = "->".join(f"{x:.2f}" for x in r["load_avg_1m"])
        print(f"{r['workers']:>7} {warmup:>9} {r['stage_s']:>8.3f} {r['evaluate_s']:>11.3f} "
              f"{r['speedup_vs_first']:>9.2f} {r['evaluate_speedup_vs_first']:>14.2f} {r['evaluate_calls']:>9} "
              f"{r['candidates']:>10} {str(r['same_decisions_as_first']):>15} "
              f"{str(r['same_genotype_as_first']):>14} {load:>12}")
    print(f"final genotype ({base['workers']} worker(s)): {base['genotype']}")


if __name__ == "__main__":
    main()
