#!/usr/bin/env python3
"""Benchmark one first-order DARTS search step (architecture step + weight step) per search space.

Paper search settings: DARTS space C=16, 8 cells; NB201 C=16, N=5; batch 64 of 32x32x3 inputs, 10 classes.
Each space runs in its own subprocess so its peak resident memory is its own. Prints the median step time,
images per second (the weight step's batch over the whole step's time) and peak RSS; ``--json`` prints one
JSON object keyed by space with ``median_step_s``, ``imgs_per_s`` and ``peak_rss_mb``.

Also prints the step's counted GFLOP (convolutions and matrix products), the achieved GFLOP/s and this
machine's float32 matrix-multiply GFLOP/s with the same threads (the ceiling).

The measuring subprocess runs on the memory allocator that raynas gives its Ray workers (``--allocator``,
the ``ray.allocator`` setting: mimalloc by default, see :mod:`raynas.allocator`); the JSON names the
allocator the subprocess really ran on.

    python tools/bench_supernet.py [--spaces darts nb201] [--steps 5] [--threads 2] [--channels-last]
                                   [--checkpoint-cells N] [--allocator mimalloc|system] [--device cpu|cuda]
                                   [--json]

With ``--device cuda`` the step runs on the first CUDA device: times are taken after
``torch.cuda.synchronize()``, the JSON adds ``peak_gpu_mb`` (``torch.cuda.max_memory_allocated`` right after
the timed steps) and the device's name, and the ceiling is the device's float32 matrix-multiply rate.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from raynas.allocator import ALLOCATORS, worker_env

SETTINGS = {"darts": {"channels": 16, "layers": 8}, "nb201": {"channels": 16, "layers": 5}}


def synchronize(device: str) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously); nothing to do on the CPU."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def matmul_gflops(threads: int, n: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """This machine's (or CUDA device's) float32 matrix-multiply rate with ``threads`` torch threads
    (GFLOP/s, best of ``repeats`` ``n x n`` products): the practical ceiling of any convolution-bound step."""
    import torch

    torch.set_num_threads(threads)
    n = n * 4 if device == "cuda" else n  # a GPU needs a larger product to be busy
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)
    synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def build_step(space_name: str, batch: int, size: int, threads: int, order: int = 1,
               channels_last: bool = False, checkpoint_cells: int = 0, device: str = "cpu",
               steps_per_epoch: int = 1, settings: dict | None = None):
    """The supernet of ``space_name`` (``settings``: its size, default :data:`SETTINGS`) and one search step on
    it: the architecture step (first- or second-order gradient, Adam), then the weight step with the
    architecture frozen (SGD, gradient clipping), as :class:`raynas.search.Search` runs them.

    Returns ``(model, step)``. The step's parts run under ``torch.profiler.record_function`` labels
    (``raynas::arch_step``, ``raynas::weight_step``, ``raynas::update``) so that a profile can tell them apart;
    outside a profiler they cost a few microseconds.
    """
    import torch
    from torch.profiler import record_function

    from raynas.bilevel import arch_gradient_first_order, arch_gradient_second_order
    from raynas.objectives.base import Objective, StepContext
    from raynas.spaces import get_space

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    space = get_space(space_name)
    model = space.build_supernet(num_classes=10, in_channels=3, **(settings or SETTINGS[space_name])).to(device)
    model.checkpoint_cells = checkpoint_cells  # what supernet.checkpoint_cells does
    if channels_last:  # what supernet.channels_last does in raynas.supernet.build.build_supernet
        model = model.to(memory_format=torch.channels_last)
    objective = Objective()
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(model.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    ctx = StepContext(epoch=0, step=0, steps_per_epoch=steps_per_epoch, epochs=1, weight_lr=0.025,
                      device=torch.device(device))
    gen = torch.Generator().manual_seed(0)
    train = (torch.randn(batch, 3, size, size, generator=gen), torch.randint(0, 10, (batch,), generator=gen))
    val = (torch.randn(batch, 3, size, size, generator=gen), torch.randint(0, 10, (batch,), generator=gen))
    train, val = tuple(t.to(device) for t in train), tuple(t.to(device) for t in val)

    def step() -> None:
        with record_function("raynas::arch_step"):
            a_opt.zero_grad(set_to_none=True)
            if order == 2:
                arch_gradient_second_order(model, objective, train, val, w_opt, ctx)
            else:
                arch_gradient_first_order(model, objective, val, ctx)
            a_opt.step()
        with record_function("raynas::weight_step"):
            w_opt.zero_grad(set_to_none=True)
            with model.frozen_architecture():  # as raynas.search.Search's weight step
                objective.weight_loss(model, train, ctx).backward()
            for p in model.arch_parameters():
                p.grad = None
            with record_function("raynas::update"):
                torch.nn.utils.clip_grad_norm_(model.weight_parameters(), 5.0)
                w_opt.step()

    return model, step


def measure(space_name: str, steps: int, warmup: int, batch: int, size: int, threads: int, order: int,
            channels_last: bool = False, checkpoint_cells: int = 0, device: str = "cpu") -> dict:
    """Time ``steps`` search steps of ``space_name``'s supernet after ``warmup`` untimed ones.

    Also counts the step's floating-point operations once (``torch.utils.flop_counter``: convolutions and
    matrix products, forward and backward; without the recomputation of checkpointing and of
    :mod:`raynas.lean`) and reports the achieved GFLOP/s beside :func:`matmul_gflops`.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from raynas import lean
    from raynas.allocator import process_allocator

    model, step = build_step(space_name, batch, size, threads, order, channels_last, checkpoint_cells, device,
                             steps_per_epoch=steps)

    times = []
    for i in range(warmup + steps):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # the step's own peak, before the FLOP count (no checkpointing) and the matrix products below add theirs
    gpu = {"peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2 ** 20, 1),
           "device_name": torch.cuda.get_device_name()} if device == "cuda" else {}
    model.checkpoint_cells = 0  # count the step's own work, not the recomputation
    with lean.disabled(), FlopCounterMode(display=False) as counter:
        step()
    gflop = counter.get_total_flops() / 1e9
    ceiling = matmul_gflops(threads, device=device)
    return {"device": device, **gpu, "median_step_s": round(median, 4), "imgs_per_s": round(batch / median, 2),
            "peak_rss_mb": round(rss_mb, 1), "step_gflop": round(gflop, 2),
            "achieved_gflops": round(gflop / median, 2), "matmul_gflops": round(ceiling, 1),
            "steps": steps, "threads": threads, "batch": batch, "image_size": size, "order": order,
            "channels_last": channels_last, "checkpoint_cells": checkpoint_cells,
            "allocator": process_allocator(), **SETTINGS[space_name]}


def run_space_workers(script: str, spaces: list[str], worker_args: list[str], env: dict[str, str],
                      progress: str | None) -> dict[str, dict]:
    """Run ``script --worker SPACE *worker_args`` for each space, each in its own process (so its peak RSS is
    its own), and return each worker's last output line parsed as JSON, keyed by space. ``progress``: a
    line for stderr before each space (``{space}`` filled in), or None for none."""
    figures = {}
    for space in spaces:
        if progress:
            print(progress.format(space=space), file=sys.stderr, flush=True)
        cmd = [sys.executable, os.path.abspath(script), "--worker", space, *worker_args]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
        figures[space] = json.loads(out.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--order", type=int, default=1, choices=(1, 2))
    parser.add_argument("--channels-last", action="store_true", help="supernet.channels_last: NHWC weights")
    parser.add_argument("--checkpoint-cells", type=int, default=0, help="supernet.checkpoint_cells")
    parser.add_argument("--allocator", default="mimalloc", choices=ALLOCATORS,
                        help="ray.allocator: memory allocator of the measuring process (default: mimalloc)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where the step runs")
    parser.add_argument("--json", action="store_true", help="print one JSON object keyed by space")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.steps, args.warmup, args.batch, args.size, args.threads,
                                 args.order, args.channels_last, args.checkpoint_cells, args.device)))
        return
    worker_args = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--batch", str(args.batch),
                   "--size", str(args.size), "--threads", str(args.threads), "--order", str(args.order),
                   "--checkpoint-cells", str(args.checkpoint_cells), "--device", args.device,
                   *(["--channels-last"] if args.channels_last else [])]
    figures = run_space_workers(__file__, args.spaces, worker_args, {**os.environ, **worker_env(args.allocator)},
                                None if args.json else f"{{space}}: {args.steps} timed steps ...")
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{'space':<8} {'median step s':>14} {'imgs/s':>9} {'peak RSS MB':>12} {'GFLOP/step':>11} "
          f"{'GFLOP/s':>8} {'matmul GFLOP/s':>15} {'allocator':>10}")
    for space, f in figures.items():
        print(f"{space:<8} {f['median_step_s']:>14.3f} {f['imgs_per_s']:>9.1f} {f['peak_rss_mb']:>12.1f} "
              f"{f['step_gflop']:>11.1f} {f['achieved_gflops']:>8.2f} {f['matmul_gflops']:>15.1f} "
              f"{f['allocator']:>10}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
