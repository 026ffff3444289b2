#!/usr/bin/env python3
"""Benchmark raynas' supernet search step beside the reference implementations, on the same machine.

The references are the authors' public code, checked out by you (this script contains none of it):

- DARTS space: quark0/darts (``--darts PATH``, the checkout root; its ``cnn/model_search.py``);
- NAS-Bench-201: D-X-Y/AutoDL-Projects (``--nb201 PATH``, the checkout root; its
  ``xautodl/models/cell_searchs/search_model_darts.py``, ``TinyNetworkDarts``).

Both sides run the same first-order step in a fresh subprocess (so peak RSS is that step's own): an
architecture step (loss on a validation batch, backward, Adam on the architecture parameters: lr 3e-4,
betas (0.5, 0.999), weight decay 1e-3) then a weight step (loss on a training batch, backward, gradient-norm
clip 5, SGD lr 0.025, momentum 0.9, weight decay 3e-4), batch 64 of 32x32x3 random inputs, 10 classes,
``--threads`` torch threads; DARTS C=16, 8 cells; NB201 C=16, N=5. raynas' side is
``tools/bench_supernet.py``'s step, with ``--channels-last`` and ``--checkpoint-cells`` (the
``supernet.channels_last`` and ``supernet.checkpoint_cells`` settings) passed on; its achieved GFLOP/s
and the machine's matrix-multiply GFLOP/s are printed too. The reference DARTS code puts its
architecture parameters on CUDA (``.cuda()``); on a CPU-only machine the worker makes ``Tensor.cuda``
return the tensor itself, which changes nothing else. Prints the median step, images per second, peak RSS
and the ratios (reference / raynas time: > 1 means raynas is faster); ``--json`` prints one JSON object.

``--device cuda`` runs both sides on the first CUDA device: the models and batches move there, step times
are taken after ``torch.cuda.synchronize()``, and each side's peak GPU memory
(``torch.cuda.max_memory_allocated`` right after the timed steps) is reported beside its peak RSS, with the
ratio ``gpu_memory_ratio`` (raynas / reference). cuDNN keeps torch's defaults on both sides (no
``cudnn.benchmark``). ``--batch`` sets both sides' batch (default 64, the papers' search batch).

Memory allocator: raynas' side runs on the one raynas gives its Ray workers (``--allocator``, the
``ray.allocator`` setting, mimalloc by default); the reference runs as its authors run it, on the system's
malloc, unless ``--reference-allocator mimalloc`` gives it the same allocator (to see how much of the
difference is the allocator's).

    git clone https://github.com/quark0/darts /tmp/darts
    git clone https://github.com/D-X-Y/AutoDL-Projects /tmp/autodl
    python tools/bench_reference.py --darts /tmp/darts --nb201 /tmp/autodl [--steps 3] [--threads 2]
                                    [--channels-last] [--checkpoint-cells N] [--allocator A]
                                    [--reference-allocator A] [--device cpu|cuda] [--batch 64] [--json]

``tools/copy_references.py`` copies just the files these imports load (and the licences) from the two
checkouts into ``.refs/`` (ignored by git), which a GPU machine can carry (``tools/gpu_check.sh``).
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
from pathlib import Path

from raynas.allocator import ALLOCATORS, process_allocator, worker_env

HERE = Path(__file__).resolve().parent
BATCH, SIZE, CLASSES = 64, 32, 10
DEVICES = ("cpu", "cuda")


def import_reference(space: str, root: str):
    """The reference's search-network class and what it needs, imported from the checkout at ``root``:
    ``Network`` of quark0/darts' ``cnn/model_search.py``, or ``(TinyNetworkDarts, NAS_BENCH_201)`` of
    AutoDL-Projects. The only imports of reference code here (``tools/copy_references.py`` copies what they load)."""
    if space == "darts":
        sys.path.insert(0, os.path.join(root, "cnn"))
        from model_search import Network  # noqa: E402  (the reference checkout, not part of raynas)

        return Network
    sys.path.insert(0, root)
    from xautodl.models.cell_operations import NAS_BENCH_201  # noqa: E402
    from xautodl.models.cell_searchs.search_model_darts import TinyNetworkDarts  # noqa: E402

    return TinyNetworkDarts, NAS_BENCH_201


def reference_darts(root: str, device: str = "cpu"):
    """(model, weight parameters, architecture parameters, loss function) of quark0/darts' search network."""
    import torch
    from torch import nn

    if device == "cpu":
        torch.Tensor.cuda = lambda self, *args, **kwargs: self  # its alphas are created with .cuda()
    network = import_reference("darts", root)
    criterion = nn.CrossEntropyLoss()
    model = network(16, CLASSES, 8, criterion).to(device)  # on CUDA its alphas are there already (.cuda())
    return model, list(model.parameters()), list(model.arch_parameters()), lambda x, y: model._loss(x, y)


def reference_nb201(root: str, device: str = "cpu"):
    """(model, weight parameters, architecture parameters, loss function) of AutoDL-Projects' DARTS NB201 net."""
    from torch import nn

    network, nb201_ops = import_reference("nb201", root)
    model = network(16, 5, 4, CLASSES, nb201_ops, affine=False, track_running_stats=False).to(device)
    criterion = nn.CrossEntropyLoss()
    return model, model.get_weights(), model.get_alphas(), lambda x, y: criterion(model(x)[1], y)


def synchronize(device: str) -> None:
    """Wait for the device's queued kernels (CUDA runs them asynchronously); nothing to do on the CPU."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def measure_reference(space: str, root: str, steps: int, warmup: int, threads: int, batch: int = BATCH,
                      device: str = "cpu") -> dict:
    """Median seconds of the reference's first-order step (see the module docstring), peak RSS and, on CUDA,
    peak GPU memory."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, weights, alphas, loss_of = (reference_darts if space == "darts" else reference_nb201)(root, device)
    model.train()
    w_opt = torch.optim.SGD(weights, lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    gen = torch.Generator().manual_seed(0)
    train = (torch.randn(batch, 3, SIZE, SIZE, generator=gen), torch.randint(0, CLASSES, (batch,), generator=gen))
    val = (torch.randn(batch, 3, SIZE, SIZE, generator=gen), torch.randint(0, CLASSES, (batch,), generator=gen))
    train, val = tuple(t.to(device) for t in train), tuple(t.to(device) for t in val)
    times = []
    for i in range(warmup + steps):
        synchronize(device)
        start = time.perf_counter()
        a_opt.zero_grad(set_to_none=True)
        loss_of(*val).backward()  # the reference's first-order architecture step: all gradients
        a_opt.step()
        w_opt.zero_grad(set_to_none=True)
        loss_of(*train).backward()
        torch.nn.utils.clip_grad_norm_(weights, 5.0)
        w_opt.step()
        synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    gpu = {"peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2 ** 20, 1),
           "device_name": torch.cuda.get_device_name()} if device == "cuda" else {}
    return {"device": device, **gpu, "median_step_s": round(median, 4), "imgs_per_s": round(batch / median, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "batch": batch, "allocator": process_allocator()}


def run_worker(args: list[str], allocator: str) -> dict:
    """Run a worker subprocess on ``allocator`` and return the JSON object on its last line of output; a
    failed worker ends this script with its last lines of output (an out-of-memory error, a bad checkout)."""
    env = {**os.environ, **worker_env(allocator)}
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        sys.exit("\n".join([f"error: worker {' '.join(args[1:])} failed with exit code {done.returncode}:",
                             *tail]))
    return json.loads(done.stdout.strip().splitlines()[-1])


def cuda_problem() -> str | None:
    """Why ``--device cuda`` cannot run here, or None."""
    import torch

    return None if torch.cuda.is_available() else "torch sees no CUDA device here"


def checkout_roots(parser: argparse.ArgumentParser, darts: str | None, nb201: str | None) -> dict[str, str]:
    """The reference checkouts given (``--darts``, ``--nb201``), keyed by space; a one-line error (exit code 2)
    when none is given or one is not a folder."""
    roots = {space: root for space, root in (("darts", darts), ("nb201", nb201)) if root}
    if not roots:
        parser.exit(2, "error: give --darts PATH and/or --nb201 PATH (reference checkouts; see --help)\n")
    for space, root in roots.items():
        if not Path(root).is_dir():
            parser.exit(2, f"error: --{space} {root!r}: not a folder\n")
    return roots


def main() -> None:
    """Parse the arguments, measure each space on both sides and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--darts", help="quark0/darts checkout root")
    parser.add_argument("--nb201", help="D-X-Y/AutoDL-Projects checkout root")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true", help="raynas side with supernet.channels_last")
    parser.add_argument("--checkpoint-cells", type=int, default=0, help="raynas side with supernet.checkpoint_cells")
    parser.add_argument("--allocator", default="mimalloc", choices=ALLOCATORS,
                        help="raynas side's memory allocator (ray.allocator; default mimalloc)")
    parser.add_argument("--reference-allocator", default="system", choices=ALLOCATORS,
                        help="the reference's memory allocator (default: system, as its authors run it)")
    parser.add_argument("--device", default="cpu", choices=DEVICES, help="where both sides run (default: cpu)")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"both sides' batch (default {BATCH})")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("SPACE", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    for option, value, low in (("--steps", args.steps, 1), ("--warmup", args.warmup, 0),
                               ("--threads", args.threads, 1), ("--batch", args.batch, 1)):
        if value < low:
            parser.error(f"{option} {value}: must be at least {low}")
    if args.worker:
        print(json.dumps(measure_reference(args.worker[0], args.worker[1], args.steps, args.warmup, args.threads,
                                           args.batch, args.device)))
        return
    roots = checkout_roots(parser, args.darts, args.nb201)
    if args.device == "cuda" and cuda_problem():
        parser.error(f"--device cuda: {cuda_problem()}")
    figures: dict[str, dict] = {}
    for space, root in roots.items():
        common = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
                  "--batch", str(args.batch), "--device", args.device]
        if not args.json:
            print(f"{space}: reference ...", file=sys.stderr, flush=True)
        reference = run_worker([__file__, "--worker", space, root, *common], args.reference_allocator)
        if not args.json:
            print(f"{space}: raynas ...", file=sys.stderr, flush=True)
        ours = run_worker([str(HERE / "bench_supernet.py"), "--worker", space, *common, "--size", str(SIZE),
                           "--checkpoint-cells", str(args.checkpoint_cells),
                           *(["--channels-last"] if args.channels_last else [])], args.allocator)
        figures[space] = {"reference": reference, "raynas": ours,
                          "speedup": round(reference["median_step_s"] / ours["median_step_s"], 3),
                          "memory_ratio": round(ours["peak_rss_mb"] / reference["peak_rss_mb"], 3)}
        if args.device == "cuda":
            figures[space]["gpu_memory_ratio"] = round(ours["peak_gpu_mb"] / reference["peak_gpu_mb"], 3)
    figures["load_average"] = list(os.getloadavg())
    if args.json:
        print(json.dumps(figures))
        return
    cuda = args.device == "cuda"
    if cuda:
        print(f"device: {figures[next(iter(roots))]['raynas']['device_name']}, batch {args.batch}")
    gpu_head = f" {'peak GPU MB':>12}" if cuda else ""
    print(f"{'space':<7} {'side':<10} {'median step s':>14} {'imgs/s':>8} {'peak RSS MB':>12}{gpu_head} "
          f"{'allocator':>10}")
    for space in roots:
        for side in ("reference", "raynas"):
            f = figures[space][side]
            gpu = f" {f['peak_gpu_mb']:>12.1f}" if cuda else ""
            print(f"{space:<7} {side:<10} {f['median_step_s']:>14.{4 if cuda else 3}f} {f['imgs_per_s']:>8.2f} "
                  f"{f['peak_rss_mb']:>12.1f}{gpu} {f['allocator']:>10}")
        gpu_ratio = (f", GPU memory x{figures[space]['gpu_memory_ratio']:.2f} (raynas / reference peak)"
                     if cuda else "")
        print(f"{space:<7} speed-up x{figures[space]['speedup']:.2f} (reference time / raynas time), "
              f"memory x{figures[space]['memory_ratio']:.2f} (raynas RSS / reference RSS){gpu_ratio}")
        ours = figures[space]["raynas"]
        where = "on the GPU" if cuda else "here"
        print(f"{space:<7} raynas: {ours['step_gflop']:.1f} GFLOP a step, {ours['achieved_gflops']:.2f} GFLOP/s "
              f"against {ours['matmul_gflops']:.1f} GFLOP/s for a float32 matrix product {where} "
              f"({100 * ours['achieved_gflops'] / ours['matmul_gflops']:.0f} %)")
    print(f"load average {figures['load_average'][0]:.2f}")


if __name__ == "__main__":
    main()
