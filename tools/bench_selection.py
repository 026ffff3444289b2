#!/usr/bin/env python3
"""Benchmark DARTS-PT perturbation selection: wall time of the whole selection stage with 1 and 2 workers.

Builds a search from ``--config`` (default: the smoke NB201 config) with ``--set`` overrides, switches the
selection to ``perturbation`` with ``proj_intv`` 0 (decisions only, no fine-tuning between them), trains
``--epochs`` supernet epochs, and saves that state. Then, for each worker count, a fresh search with
``selection.workers`` set loads the SAME trained state and runs every stage epoch (``while not done:
run_epoch()``); the run is timed as a whole and so is the time spent in candidate evaluation alone. With 1
worker the candidates are evaluated in this process; with more, as Ray tasks (:mod:`raynas.selection.parallel`)
of ``resources.cpus_per_selection_worker`` CPUs each. Before the timed runs, one untimed parallel evaluation
starts the Ray workers and imports torch in them (its time is printed as ``warm-up``). The trial's process
and the tasks use the same torch thread count (``--threads``), so both runs must take the same decisions
and end with the same genotype; the tool prints whether they did. A local Ray instance runs on loopback,
its temp folder under the system temp folder.

    python tools/bench_selection.py [--config FILE] [--set KEY=VALUE ...] [--epochs 2] [--workers 1 2]
                                    [--threads 1] [--json]
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

DEFAULT_CONFIG = str(Path(__file__).resolve().parents[1] / "search_configs" / "smoke" / "nb201.yaml")


def overrides(args: argparse.Namespace, workers: int) -> list[str]:
    """The config overrides of one run: the user's, then the benchmark's fixed settings."""
    return [*args.set, f"search.epochs={args.epochs}", f"search.threads={args.threads}",
            "selection.name=perturbation", "selection.proj_intv=0", f"selection.workers={workers}",
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


def warm_up(args: argparse.Namespace, state: dict[str, Any], workers: int) -> float:
    """Seconds of one untimed parallel evaluation (starts the Ray workers, imports torch in them)."""
    from raynas.config import load_config
    from raynas.search import Search
    from raynas.selection.parallel import TaskEvaluator

    search = Search(load_config(args.config, overrides(args, workers)))
    search.set_state(state)
    with_weights = {c: w.detach() for c, w in search.model.arch_weights().items()}
    start = time.perf_counter()
    TaskEvaluator(search.cfg, search.data.val, num_classes=search.data.num_classes,
                  in_channels=search.data.in_channels)(search.model, [with_weights] * workers)
    return time.perf_counter() - start


def run_stage(args: argparse.Namespace, state: dict[str, Any], workers: int) -> dict[str, Any]:
    """Time the whole selection stage from ``state`` with ``workers`` workers."""
    from raynas.config import load_config
    from raynas.search import Search

    search = Search(load_config(args.config, overrides(args, workers)))
    search.set_state(state)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="search config (default: smoke/nb201.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--epochs", type=int, default=2, help="supernet epochs before the selection stage")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the trial's process and of each task (its CPUs)")
    parser.add_argument("--no-warmup", action="store_true", help="time the first parallel run cold")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    from raynas.experiment import keep_local_ray_on_loopback

    keep_local_ray_on_loopback()  # before Ray is imported
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    load_before = os.getloadavg()[0]
    state, train_s = train(args)
    num_cpus = max(1, math.ceil(max(args.workers) * args.threads))
    with tempfile.TemporaryDirectory(prefix="rb") as temp:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _temp_dir=temp)
        try:
            parallel = [w for w in args.workers if w > 1]
            warmup_s = None if args.no_warmup or not parallel else round(warm_up(args, state, max(parallel)), 3)
            runs = [run_stage(args, state, w) for w in args.workers]
        finally:
            ray.shutdown()
    base = runs[0]
    for run in runs:
        run["speedup_vs_first"] = round(base["stage_s"] / run["stage_s"], 3)
        run["evaluate_speedup_vs_first"] = round(base["evaluate_s"] / run["evaluate_s"], 3)
        run["same_genotype_as_first"] = run["genotype"] == base["genotype"]
        run["same_decisions_as_first"] = run["decisions"] == base["decisions"]
    setting = {"config": os.path.relpath(args.config), "set": args.set, "epochs": args.epochs,
               "threads": args.threads, "train_s": round(train_s, 3), "warmup_s": warmup_s,
               "ray_cpus": num_cpus, "cpu_count": os.cpu_count(),
               "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    if args.json:
        print(json.dumps({"setting": setting, "results": [{k: v for k, v in r.items() if k != "decisions"}
                                                          for r in runs]}))
        return
    print(f"setting: {setting}")
    print(f"{'workers':>7} {'stage s':>8} {'evaluate s':>11} {'speed-up':>9} {'eval speed-up':>14} "
          f"{'decisions':>9} {'candidates':>10} {'same decisions':>15} {'same genotype':>14}")
    for r in runs:
        print(f"{r['workers']:>7} {r['stage_s']:>8.3f} {r['evaluate_s']:>11.3f} {r['speedup_vs_first']:>9.2f} "
              f"{r['evaluate_speedup_vs_first']:>14.2f} {r['evaluate_calls']:>9} {r['candidates']:>10} "
              f"{str(r['same_decisions_as_first']):>15} {str(r['same_genotype_as_first']):>14}")
    print(f"final genotype ({base['workers']} worker(s)): {base['genotype']}")


if __name__ == "__main__":
    main()
