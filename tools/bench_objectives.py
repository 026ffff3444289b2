"""Step time of DARTS vs NA-DARTS vs SD-DARTS (local and actor teachers) vs NA+SD at one setting.

Every variant is the same search (``--config``, default the quickstart: NB201, C=8, 2 cells per stage, noisy
digits, batch 64) with one torch thread in this process; only ``objectives`` differs. Each variant runs
``--epochs`` epochs; the steps of all but the first (warm-up, and SD's teachers filling up) are timed
(``Search.step_seconds``: architecture step + weight step + the objective's hooks) and their median is
printed with its ratio to DARTS. With actor teachers the teacher snapshots live in one Ray actor with one CPU
(a local Ray instance of 2 CPUs on loopback) and answer one batch ahead; ``sd_wait_s`` is how long the
student waited for answers in the last epoch.

    python tools/bench_objectives.py                 # all variants, first order
    python tools/bench_objectives.py --order 2 --variants darts,na
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_CONFIG = str(ROOT / "search_configs" / "quickstart.yaml")

#: variant -> config overrides
VARIANTS: dict[str, list[str]] = {
    "darts": [],
    "na": ["objectives.na={}"],
    "sd-local": ["objectives.sd={}"],
    "sd-actor": ["objectives.sd={\"placement\": \"actor\"}"],
    "na+sd-local": ["objectives.na={}", "objectives.sd={}"],
}


def run_variant(args: argparse.Namespace, variant: str) -> dict[str, Any]:
    """Median step time of ``variant`` over every epoch after the first."""
    import torch

    from raynas.config import load_config
    from raynas.search import Search

    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, [f"search.order={args.order}", f"search.threads={args.threads}",
                                    "search.eval_derived=false", "tune.grid={}", *args.set, *VARIANTS[variant]])
    search = Search(cfg)
    steps: list[float] = []
    report: dict[str, Any] = {}
    start = time.perf_counter()
    try:
        for epoch in range(args.epochs):
            report = search.run_epoch()
            if epoch > 0:
                steps.extend(search.step_seconds)
    finally:
        search.close()
    return {"variant": variant, "median_step_s": statistics.median(steps), "steps": len(steps),
            "wall_s": time.perf_counter() - start, "train_loss": report.get("train_loss"),
            "sd_teachers": report.get("sd_teachers"), "sd_wait_s": report.get("sd_wait_s")}


def main() -> None:
    """Run every variant; print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="search config (default: quickstart.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--order", type=int, default=1, choices=(1, 2), help="DARTS order (default: 1)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per variant, the first untimed (default: 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the search (default: 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; valid: {', '.join(VARIANTS)}")
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first is not timed)")
    from raynas.experiment import keep_local_ray_on_loopback

    keep_local_ray_on_loopback()  # before Ray is imported
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="rb") as temp:
        if any("actor" in v for v in variants):
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=temp)
        try:
            runs = [run_variant(args, v) for v in variants]
        finally:
            ray.shutdown()
    base = next((r for r in runs if r["variant"] == "darts"), runs[0])
    for run in runs:
        run["vs_" + base["variant"]] = run["median_step_s"] / base["median_step_s"]
    setting = {"config": os.path.relpath(args.config), "set": args.set, "order": args.order,
               "epochs": args.epochs, "threads": args.threads, "cpu_count": os.cpu_count(),
               "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    if args.json:
        print(json.dumps({"setting": setting, "results": runs}))
        return
    print(f"setting: {setting}")
    print(f"{'variant':>12} {'median step s':>14} {'vs ' + base['variant']:>9} {'timed steps':>11} "
          f"{'teachers':>8} {'waited s':>9}")
    for r in runs:
        waited = "" if r["sd_wait_s"] is None else f"{r['sd_wait_s']:.3f}"
        teachers = "" if r["sd_teachers"] is None else str(int(r["sd_teachers"]))
        print(f"{r['variant']:>12} {r['median_step_s']:>14.4f} {r['vs_' + base['variant']]:>9.2f} "
              f"{r['steps']:>11} {teachers:>8} {waited:>9}")


if __name__ == "__main__":
    main()
