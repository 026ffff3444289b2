#!/usr/bin/env python3
"""Benchmark the evaluation stage: a training step of derived networks at the papers' sizes, and what a
``raynas train`` population costs over the same trainings run in bare processes.

Step: :class:`raynas.train.ScratchTraining` on synthetic 32x32 inputs (no download) with each space's
protocol network (DARTS_V2 at C=36, 20 cells, auxiliary head, drop-path, batch 96; the all-conv3x3 NB201
cell at C=16, N=5, batch 256), timing ``--steps`` optimizer steps after one warm-up step, one torch thread.
Population: ``raynas train`` of ``--trials`` tiny NB201 trainings on digits (2 CPUs, one per trial) against
the same trainings each in its own ``python -c`` process, 2 at a time. Prints seconds per step, peak RSS,
and the population's wall times and ratio; ``--json`` prints one JSON object.

    python tools/bench_train.py [--steps 5] [--trials 4] [--epochs 3] [--skip-population] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
NB201_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
TINY = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
TINY_SETTINGS = ["channels=4", "layers=1", "batch_size=64", "data.noise_std=0"]

BARE_TRAINING = """
import sys
from raynas.config import apply_overrides, train_config_from_dict
from raynas.train import ScratchTraining
cfg = train_config_from_dict(apply_overrides({"space": "nb201", "genotype": sys.argv[1]}, sys.argv[2:]))
training = ScratchTraining(cfg)
while not training.done:
    training.run_epoch()
"""


def step_seconds(space: str, genotype: str, steps: int) -> dict[str, float]:
    """Seconds per training step (and the network's size) of the protocol network of ``space``."""
    import torch

    from raynas.config import DataConfig, TrainConfig
    from raynas.train import ScratchTraining

    torch.set_num_threads(1)
    batch = 96 if space == "darts" else 256
    cfg = TrainConfig(space=space, genotype=genotype, epochs=1, batch_size=batch, seed=0, device="cpu", threads=1,
                      data=DataConfig(name="synthetic", num_samples=batch * (steps + 1) * 2, image_size=32,
                                      test_fraction=0.1, cutout=None))
    training = ScratchTraining(cfg)
    loader = training.train_loader.epoch(0)
    training.model.train()
    training.model.drop_path_prob = training.cfg.drop_path_prob
    training.train_step(*next(loader))  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        training.train_step(*next(loader))
    return {"step_s": (time.perf_counter() - start) / steps, "params": training.params, "macs": training.flops // 2,
            "batch": batch}


def population(trials: int, epochs: int) -> dict[str, float]:
    """Wall seconds of ``raynas train`` (trials = seeds) vs the same trainings as bare processes, 2 at a time."""
    work = Path(tempfile.mkdtemp(prefix="rn-bench-train-"))
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAYNAS_RAY_TEMP_DIR=str(work))
    seeds = ",".join(str(i) for i in range(trials))
    args = [sys.executable, "-m", "raynas.cli", "train", TINY, "--seeds", seeds, "--epochs", str(epochs),
            *[f"--set={s}" for s in TINY_SETTINGS], "--out", str(work / "out"), "--name", "bench", "--num-cpus", "2"]
    try:
        start = time.perf_counter()
        subprocess.run(args, cwd=ROOT, env=env, check=True, capture_output=True)
        raynas_s = time.perf_counter() - start

        def bare(seed: int) -> None:
            subprocess.run([sys.executable, "-c", BARE_TRAINING, TINY, f"epochs={epochs}", f"seed={seed}",
                            "threads=1", *TINY_SETTINGS], cwd=ROOT, check=True, capture_output=True)

        start = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(bare, range(trials)))
        bare_s = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"raynas_s": raynas_s, "bare_s": bare_s, "ratio": raynas_s / bare_s, "trials": trials, "epochs": epochs}


def main() -> None:
    """Parse the arguments, run the benchmarks and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--skip-population", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result: dict[str, object] = {
        "darts_v2": step_seconds("darts", DARTS_V2, args.steps),
        "nb201_conv": step_seconds("nb201", NB201_CONV, args.steps),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if not args.skip_population:
        result["population"] = population(args.trials, args.epochs)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name in ("darts_v2", "nb201_conv"):
        r = result[name]
        print(f"{name}: {r['step_s']:.3f} s per step of batch {r['batch']} ({r['params']:,} params, "
              f"{r['macs'] / 1e6:.1f}M multiply-adds per image), 1 thread")
    print(f"peak RSS {result['peak_rss_mib']:.0f} MiB")
    if "population" in result:
        p = result["population"]
        print(f"raynas train of {p['trials']} tiny trainings x {p['epochs']} epochs: {p['raynas_s']:.1f} s; "
              f"bare processes 2 at a time: {p['bare_s']:.1f} s (x{p['ratio']:.2f})")


if __name__ == "__main__":
    main()
