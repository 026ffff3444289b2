"""Step time and peak memory of DARTS vs NA-DARTS vs SD-DARTS (local and actor teachers) vs NA+SD vs
TA-DARTS vs E2NAS at one setting, and the E2NAS autoencoder's pretraining time.

Every variant is the same search (``--config``, default the quickstart: NB201, C=8, 2 cells per stage, noisy
digits, batch 64) with one torch thread in this process; only ``objectives`` differs. Each variant runs
``--epochs`` epochs; the steps of all but the first (warm-up, and SD's teachers filling up) are timed
(``Search.step_seconds``: architecture step + weight step + the objective's hooks) and their median is
printed with its ratio to DARTS. With actor teachers the teacher snapshots live in one Ray actor with one CPU
(a local Ray instance of 2 CPUs on loopback) and answer one batch ahead; ``sd_wait_s`` is how long the
student waited for answers in the last epoch. TA-DARTS uses a depth-8 ResNet with the supernet's channels as
its auxiliary model (``ta``) or ResNet-20 (``ta-resnet20``). E2NAS (``method: e2nas``) searches the latent
of a cell autoencoder with exploration and complementation (``e2nas``) or without either (``e2nas-plain``,
the latent search alone); unless ``--autoencoder`` names a file, one is pretrained first (``--pretrain-epochs``,
one thread, in its own process) and its training time printed.

Each variant runs in a fresh process (spawned), so its peak resident memory (``ru_maxrss``, torch's import
included: compare variants, not absolute values) and, on a GPU, its peak allocated CUDA memory are its own.

    python tools/bench_objectives.py                 # all variants, first order
    python tools/bench_objectives.py --order 2 --variants darts,ta
    python tools/bench_objectives.py --variants darts,e2nas,e2nas-plain
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
    "ta": ["objectives.ta={\"aux_depth\": 8, \"aux_channels\": 8}"],
    "ta-resnet20": ["objectives.ta={}"],
    "e2nas": ["method=e2nas", "e2nas.autoencoder={autoencoder}"],
    "e2nas-plain": ["method=e2nas", "e2nas.autoencoder={autoencoder}", "e2nas.complement=0",
                    "e2nas.exploration=none"],
}


def pretrain_autoencoder(space: str, epochs: int, path: str) -> dict[str, Any]:
    """Pretrain the E2NAS autoencoder of ``space`` (one thread, the CLI's defaults) into ``path``."""
    import torch

    from raynas.e2nas import pretrain, save

    torch.set_num_threads(1)
    model, metrics = pretrain(space, epochs=epochs, holdout=0.1, seed=0)
    save(model, path)
    return {"space": space, "epochs": epochs, "seconds": metrics["seconds"],
            "holdout_recon_acc": metrics["holdout_recon_acc"], "train_cells": metrics["train_cells"]}


def run_variant(args: argparse.Namespace, variant: str) -> dict[str, Any]:
    """Median step time of ``variant`` over every epoch after the first, and its process's peak memory."""
    import resource

    import torch

    from raynas.config import load_config
    from raynas.search import Search

    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, [f"search.order={args.order}", f"search.threads={args.threads}",
                                    "search.eval_derived=false", "tune.grid={}", *args.set,
                                    *(o.format(autoencoder=args.autoencoder) for o in VARIANTS[variant])])
    if "actor" in variant:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=args.temp)
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
        if "actor" in variant:
            ray.shutdown()
    cuda_peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {"variant": variant, "median_step_s": statistics.median(steps), "steps": len(steps),
            "wall_s": time.perf_counter() - start, "train_loss": report.get("train_loss"),
            "sd_teachers": report.get("sd_teachers"), "sd_wait_s": report.get("sd_wait_s"),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cuda_peak_mib": cuda_peak}


def main() -> None:
    """Run every variant; print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="search config (default: quickstart.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--order", type=int, default=1, choices=(1, 2), help="DARTS order (default: 1)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per variant, the first untimed (default: 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the search (default: 1)")
    parser.add_argument("--autoencoder", default=None, help="E2NAS: autoencoder file of the config's space "
                                                            "(default: pretrain one first)")
    parser.add_argument("--pretrain-epochs", type=int, default=5, help="E2NAS: epochs of that pretraining "
                                                                       "(default: 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; valid: {', '.join(VARIANTS)}")
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first is not timed)")
    from raynas.experiment import keep_local_ray_on_loopback
    from raynas.ray_auth import enable_for_local_ray

    keep_local_ray_on_loopback()  # before Ray is imported
    enable_for_local_ray()  # token auth with a private token file, as raynas' own local Ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import multiprocessing

    load_before = os.getloadavg()[0]
    runs = []
    pretrained = None
    with tempfile.TemporaryDirectory(prefix="rb") as temp:
        args.temp = temp
        if args.autoencoder is None and any(v.startswith("e2nas") for v in variants):
            from raynas.config import load_config

            space = load_config(args.config, args.set).space
            args.autoencoder = str(Path(temp) / "vgae.pt")
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                pretrained = pool.apply(pretrain_autoencoder, (space, args.pretrain_epochs, args.autoencoder))
        for variant in variants:  # a fresh process each: its peak memory is the variant's own
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                runs.append(pool.apply(run_variant, (args, variant)))
    base = next((r for r in runs if r["variant"] == "darts"), runs[0])
    for run in runs:
        run["vs_" + base["variant"]] = run["median_step_s"] / base["median_step_s"]
    setting = {"config": os.path.relpath(args.config), "set": args.set, "order": args.order,
               "epochs": args.epochs, "threads": args.threads, "cpu_count": os.cpu_count(),
               "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    if args.json:
        print(json.dumps({"setting": setting, "results": runs, "pretrained": pretrained}))
        return
    print(f"setting: {setting}")
    if pretrained is not None:
        print(f"E2NAS autoencoder pretraining ({pretrained['space']}, {pretrained['epochs']} epochs, "
              f"{pretrained['train_cells']} cells, 1 thread): {pretrained['seconds']:.1f} s, held-out cells "
              f"reconstructed {pretrained['holdout_recon_acc']:.4f}")
    print(f"{'variant':>12} {'median step s':>14} {'vs ' + base['variant']:>9} {'timed steps':>11} "
          f"{'teachers':>8} {'waited s':>9} {'peak RSS MiB':>12} {'CUDA peak MiB':>13}")
    for r in runs:
        waited = "" if r["sd_wait_s"] is None else f"{r['sd_wait_s']:.3f}"
        teachers = "" if r["sd_teachers"] is None else str(int(r["sd_teachers"]))
        cuda = "" if r["cuda_peak_mib"] is None else f"{r['cuda_peak_mib']:.0f}"
        print(f"{r['variant']:>12} {r['median_step_s']:>14.4f} {r['vs_' + base['variant']]:>9.2f} "
              f"{r['steps']:>11} {teachers:>8} {waited:>9} {r['peak_rss_mib']:>12.0f} {cuda:>13}")


if __name__ == "__main__":
    main()
