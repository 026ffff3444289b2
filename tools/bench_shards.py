#!/usr/bin/env python3
"""Benchmark data-parallel supernet shards: median search-step time with K=1 and K=2 shards, and the speed-up.

Fixed small setting: first-order DARTS on NB201 (C=16, N=2) over noisy digits (8x8; ``--image-size``
resizes them), global batch 128, ``--steps`` steps per epoch, each shard a Ray actor on one torch thread
(K=1 is one actor on the whole batch, no synchronisation). The first epoch is a warm-up; the median is
taken over the steps of the other epochs (training steps only: architecture step + weight step,
collectives included). A local Ray instance with one CPU per shard runs on loopback, its temp folder under
the system temp folder. Synchronised batch norm costs one collective (a sum over the shards) per BatchNorm
layer in every forward and every backward pass, so on CPUs the speed-up depends on how much compute a
layer has against the collectives' latency; the 1-minute load average is printed with the figures because
a busy machine inflates that latency.

``--device cuda``: the shards run on GPUs (``search.device: cuda``). With at least as many GPUs as shards each
shard holds one (``gpus_per_shard: 1``) and the group uses NCCL, as a search does. With fewer, the shards
share the GPUs by fractions over gloo on GPU tensors (``ShardGroup(backend="gloo")``): NCCL refuses two
ranks on one device, and a search's config refuses fractional ``gpus_per_shard``, so that case is a
measurement only (the cost of the collectives on a shared GPU). The JSON names each run's backend.

    python tools/bench_shards.py [--shards 1 2] [--steps 6] [--epochs 4] [--order 1] [--image-size 16]
                                 [--device cpu|cuda] [--json]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SETTING = {
    "space": "nb201",
    "data": {"name": "digits", "noise_std": 0.5},
    "supernet": {"channels": 16, "layers": 2},
    "search": {"batch_size": 128, "arch_lr": 0.01, "eval_derived": False, "seed": 0},
    "resources": {"cpus_per_shard": 1},
}


def placement(shards: int, device: str, gpus: int) -> tuple[float, str | None]:
    """(GPUs per shard, process-group backend; None: the search's default) of ``shards`` shards on ``device``
    with ``gpus`` GPUs: one GPU each over NCCL when there are enough, else fractions of them over gloo."""
    if device == "cpu":
        return 0.0, None
    if shards <= gpus:
        return 1.0, None
    return gpus / shards, "gloo"


def measure(shards: int, steps: int, epochs: int, order: int, image_size: int | None, device: str = "cpu",
            gpus: int = 0) -> dict:
    """Median step time of ``shards`` shard actors over epochs 2..``epochs`` (epoch 1 warms up)."""
    from dataclasses import replace

    from raynas.actors.shard_group import ShardGroup
    from raynas.config import config_from_dict

    search = {**SETTING["search"], "steps_per_epoch": steps, "epochs": epochs, "order": order, "device": device}
    data = {**SETTING["data"], "image_size": image_size}
    gpus_per_shard, backend = placement(shards, device, gpus)
    cfg = config_from_dict({**SETTING, "search": search, "data": data,
                            "resources": {**SETTING["resources"], "shards": shards,
                                          "gpus_per_shard": gpus_per_shard if backend is None else 0}})
    if backend is not None:  # a fraction, which a search's config refuses (see the module docstring)
        cfg = replace(cfg, resources=replace(cfg.resources, gpus_per_shard=gpus_per_shard))
    start = time.perf_counter()
    with ShardGroup(cfg, backend=backend) as group:
        startup = time.perf_counter() - start
        times: list[float] = []
        for epoch in range(epochs):
            group.run_epoch()
            if epoch:
                times.extend(group.step_seconds())
        devices = list(group.devices)
    return {"shards": shards, "median_step_s": round(statistics.median(times), 4),
            "min_step_s": round(min(times), 4), "timed_steps": len(times), "startup_s": round(startup, 2),
            "devices": devices, "gpus_per_shard": gpus_per_shard,
            "backend": backend or ("nccl" if device == "cuda" and shards > 1 else "gloo" if shards > 1 else None)}


def batchnorm_layers() -> int:
    """BatchNorm layers of the benchmarked supernet: each costs a collective per forward and per backward."""
    from torch import nn

    from raynas.spaces import get_space

    model = get_space("nb201").build_supernet(channels=16, layers=2, num_classes=10, in_channels=1)
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2], help="shard counts to time")
    parser.add_argument("--steps", type=int, default=6, help="steps per epoch (at most 6: one pass over digits)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs (the first is not timed)")
    parser.add_argument("--order", type=int, default=1, choices=(1, 2))
    parser.add_argument("--image-size", type=int, default=None, help="resize the digits (default: native 8x8)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where the shards run (cuda: one GPU each over NCCL, or shared GPUs over gloo)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first one is not timed)")
    if min(args.shards) < 1:
        parser.error(f"--shards {min(args.shards)}: each shard count must be at least 1")
    gpus = 0
    if args.device == "cuda":
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not gpus:
            parser.error("--device cuda: torch sees no CUDA device here")
    from raynas.experiment import keep_local_ray_on_loopback
    from raynas.ray_auth import enable_for_local_ray

    keep_local_ray_on_loopback()  # before Ray is imported
    enable_for_local_ray()  # token auth with a private token file, as raynas' own local Ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="rb") as temp:
        ray.init(num_cpus=max(args.shards), num_gpus=gpus, include_dashboard=False, log_to_driver=False,
                 _temp_dir=temp)
        try:
            figures = [measure(k, args.steps, args.epochs, args.order, args.image_size, args.device, gpus)
                       for k in args.shards]
        finally:
            ray.shutdown()
    base = figures[0]["median_step_s"]
    bn_layers = batchnorm_layers()
    for f in figures:
        f["speedup_vs_first"] = round(base / f["median_step_s"], 3)
    setting = {"space": "nb201", "channels": 16, "layers": 2, "global_batch": 128,
               "image_size": args.image_size or 8, "order": args.order, "threads_per_shard": 1,
               "steps_per_epoch": args.steps, "epochs": args.epochs, "cpu_count": os.cpu_count(),
               "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)], "batchnorm_layers": bn_layers,
               "collectives_per_step": 4 * bn_layers + 4 if args.order == 1 else None, "device": args.device,
               "gpus": gpus}
    if args.json:
        print(json.dumps({"setting": setting, "results": figures}))
        return
    print(f"setting: {setting}")
    print(f"{'shards':>6} {'median step s':>14} {'min step s':>11} {'speed-up':>9} {'start-up s':>11} "
          f"{'backend':>8}")
    for f in figures:
        print(f"{f['shards']:>6} {f['median_step_s']:>14.4f} {f['min_step_s']:>11.4f} "
              f"{f['speedup_vs_first']:>9.2f} {f['startup_s']:>11.2f} {f['backend'] or '-':>8}")


if __name__ == "__main__":
    main()
