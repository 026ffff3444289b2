#!/usr/bin/env python3
"""Profile one first-order search step by op family and place each family on this machine's roofline.

The step is ``tools/bench_supernet.py``'s (:func:`bench_supernet.build_step`: architecture step, then the weight
step with the architecture frozen; paper sizes, batch 64 of 32x32, channels-last optional). Method:

1. **Time.** After warm-up steps, ``torch.profiler`` (CPU, ``record_shapes=True``) records ``--steps`` steps.
   Every op's *self* CPU time goes to one family: the family of its outermost ATen ancestor-or-self that has one
   (the *anchor*: ``aten::conv2d`` holds the ``mkldnn_convolution``, copies and allocations beneath it), or
   ``other`` when there is none (autograd engine and node bookkeeping, Python between ops, top-level views and
   allocations). Families: ``dense_conv`` (groups 1: pointwise and full k x k), ``depthwise_conv`` (groups ==
   input channels), ``pooling``, ``batchnorm``, ``elementwise`` (pointwise ops, reductions, copies, the
   optimisers' updates: everything memory-bound), ``matmul`` and ``other``; so the families sum to the
   profiled total. An op under ``autograd::engine::evaluate_function`` is *backward*, under an optimiser's
   ``Optimizer.*`` or the gradient clipping (``raynas::update``) *update*, else *forward*. A forward op
   (convolution, pooling, BatchNorm, ReLU) run in the backward pass is *recomputed* work (:mod:`raynas.lean`'s
   saved-tensor hooks, checkpointed cells): counted in the backward column and also reported apart.
2. **Work.** Per anchor, from its recorded input shapes and arguments: FLOPs (convolution 2 x output elements x
   (C_in/groups) x k x k per pass, each of the input and weight gradients one more such pass; matrix products
   2MNK; pooling k x k per output element; BatchNorm 5 per element forward, 7 backward; other memory-bound ops
   one per output element, copies none) and the *minimum* bytes moved: every tensor read once plus every
   output written once, float32 (max-pooling indices int64). Intensity = FLOPs / bytes.
3. **Ceilings.** The float32 matrix-product rate (:func:`bench_supernet.matmul_gflops`, same threads) and a
   STREAM-like bandwidth (copy, add, triad with torch on float32 arrays, best of N, the highest of the three)
   at two sizes: large arrays (``--stream-mib``, above the last-level cache) and arrays of the step's typical
   tensor size (the byte-weighted median of the memory-bound anchors' largest operand). Attainable rate per
   family = min(matmul rate, intensity x bandwidth); achieved = FLOPs / profiled time; the roofline time is
   FLOPs / attainable. For a memory-bound family achieved / attainable is its achieved bandwidth over the
   machine's, whatever the FLOP convention.

Limits: the byte count is a lower bound that ignores caches (a tensor just written is often read again from the
cache, so a family can beat the large-array bandwidth; the tensor-size bandwidth is the fairer ceiling), the
extra passes a kernel makes (BatchNorm reads its input twice), layout conversions inside oneDNN and the
recomputation's re-reads are counted only as the ops that really ran. The profiler adds a few microseconds per
op (``record_shapes``), which inflates the many small ops most: the profiled total is printed beside the
unprofiled median step. The FLOPs are the work that ran, recomputation included. ``torch.utils.flop_counter``
(``bench_supernet``'s GFLOP) counts a depthwise convolution's weight gradient C times over (torch 2.14: the
paper-size DARTS step is 557 GFLOP by it, 187 GFLOP with that gradient counted once, both without the
recomputation), so its totals and these differ. Intra-op threads are not separate: times are the calling
thread's wall time in each op.

    python tools/profile_step.py [--spaces darts nb201] [--channels-last] [--threads 2] [--batch 64]
                                 [--steps 2] [--warmup 2] [--stream-mib 512] [--allocator mimalloc] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from math import prod
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_supernet import SETTINGS, build_step, matmul_gflops, run_space_workers  # noqa: E402

from raynas.allocator import ALLOCATORS, worker_env  # noqa: E402

FAMILIES = ("dense_conv", "depthwise_conv", "pooling", "batchnorm", "elementwise", "matmul", "other")
PHASES = ("forward", "backward", "update")
FLOAT_BYTES, INDEX_BYTES = 4, 8

_CONV_PREFIXES = ("aten::conv", "aten::_conv", "aten::mkldnn_conv", "aten::thnn_conv", "aten::_slow_conv",
                  "aten::slow_conv", "aten::_nnpack_spatial_conv")
_POOL_PREFIXES = ("aten::max_pool", "aten::avg_pool", "aten::adaptive_", "aten::_adaptive_", "aten::mkldnn_max_pool")
_MATMUL = {"aten::linear", "aten::addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::baddbmm",
           "aten::_addmm_activation"}
# ops that move no data of their own (views, allocation, metadata): never anchors; beneath an anchor their time
# is the anchor's, at the top level it is ``other``
_STRUCTURAL = {f"aten::{n}" for n in (
    "view", "_unsafe_view", "reshape", "_reshape_alias", "as_strided", "as_strided_", "expand", "expand_as",
    "permute", "transpose", "t", "numpy_T", "unsqueeze", "squeeze", "slice", "select", "narrow", "split",
    "split_with_sizes", "chunk", "unbind", "detach", "detach_", "alias", "lift_fresh", "empty", "empty_like",
    "empty_strided", "new_empty", "new_empty_strided", "resize_", "resize_as_", "set_", "to", "contiguous",
    "flatten", "unflatten", "view_as", "type_as", "item", "_local_scalar_dense", "is_nonzero", "result_type",
    "_has_compatible_shallow_copy_type", "requires_grad_", "_nnpack_available", "is_same_size", "diagonal",
    "resolve_conj", "resolve_neg", "_conj", "conj", "movedim", "unfold", "stride", "size", "dim", "lift")}
_WRITE_ONLY = {f"aten::{n}" for n in ("fill_", "zero_", "zeros_like", "ones_like", "full_like", "zeros", "ones",
                                      "full", "normal_", "uniform_", "new_zeros", "new_ones", "new_full")}
_COPIES = {f"aten::{n}" for n in ("copy_", "clone", "_to_copy", "cat", "stack", "constant_pad_nd", "pad",
                                  "index_select", "gather", "slice_backward", "select_backward", "_unsafe_index",
                                  "flip", "roll", "repeat")}
_REDUCTIONS = {f"aten::{n}" for n in ("sum", "mean", "amax", "amin", "max", "min", "norm", "linalg_vector_norm",
                                      "var", "std", "var_mean", "logsumexp", "argmax", "argmin", "any", "all",
                                      "prod", "nll_loss_forward", "nll_loss", "nll_loss_nd", "dot", "vdot")}
_RECOMPUTABLE = {"dense_conv", "depthwise_conv", "pooling", "batchnorm"}


def conv_groups(x: Sequence[int], w: Sequence[int]) -> int:
    """A convolution's groups from its input ``(N, C_in, ...)`` and weight ``(C_out, C_in / groups, ...)``."""
    return max(1, x[1] // w[1]) if w[1] else 1


def _conv_operands(name: str, shapes: Sequence[Sequence[int]]) -> tuple[Sequence[int], Sequence[int]]:
    """(input, weight) shapes of a convolution op: ``convolution_backward(grad_out, input, weight, ...)``."""
    return (shapes[1], shapes[2]) if "backward" in name else (shapes[0], shapes[1])


def op_family(name: str, shapes: Sequence[Sequence[int]]) -> str | None:
    """The family of an ATen op that does work of its own (module docstring), or ``None`` for structural ops
    (views, allocation), ``_foreach_*`` wrappers (their per-tensor ops do the work) and anything not ATen."""
    if not name.startswith("aten::") or name in _STRUCTURAL or name.startswith("aten::_foreach_"):
        return None
    if name.startswith(_CONV_PREFIXES):
        x, w = _conv_operands(name, shapes)
        if len(x) < 2 or len(w) < 2:
            return "dense_conv"
        return "depthwise_conv" if conv_groups(x, w) > 1 and conv_groups(x, w) == x[1] else "dense_conv"
    if name.startswith(_POOL_PREFIXES):
        return "pooling"
    if "batch_norm" in name:
        return "batchnorm"
    if name in _MATMUL:
        return "matmul"
    return "elementwise"


def _pair(value: Any, default: int) -> tuple[int, int]:
    if value is None or value == []:
        return default, default
    if isinstance(value, int):
        return value, value
    return (int(value[0]), int(value[-1])) if len(value) else (default, default)


def _pool_out(x: Sequence[int], kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
              dilation: tuple[int, int], ceil_mode: bool) -> list[int]:
    out = list(x[:-2])
    for size, k, s, p, d in zip(x[-2:], kernel, stride, padding, dilation):
        span = size + 2 * p - d * (k - 1) - 1
        n = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (n - 1) * s >= size + p:  # PyTorch's rule: the last window must start inside
            n -= 1
        out.append(n)
    return out


def _conv_cost(name: str, shapes: Sequence[Sequence[int]], args: Sequence[Any]) -> tuple[int, int]:
    x, w = _conv_operands(name, shapes)
    per_pass = 2 * prod(w[1:])  # FLOPs per output element of one pass: (C_in / groups) x kernel area, x2
    if "backward" in name:
        grad_out = shapes[0]
        mask = args[10] if len(args) > 10 and isinstance(args[10], list) else [True, True, False]
        flops = per_pass * prod(grad_out) * (int(bool(mask[0])) + int(bool(mask[1])))
        moved = prod(grad_out)
        if mask[0]:
            moved += prod(w) + prod(x)  # reads the weight, writes the input's gradient
        if mask[1]:
            moved += prod(x) + prod(w)  # reads the input, writes the weight's gradient
        if len(mask) > 2 and mask[2]:
            moved += w[0]
        return flops, moved * FLOAT_BYTES
    stride, padding, dilation = (_pair(args[i] if len(args) > i else None, d) for i, d in ((3, 1), (4, 0), (5, 1)))
    if isinstance(args[4] if len(args) > 4 else None, str):  # padding="same" (stride 1) / "valid"
        padding = ((w[2] - 1) * dilation[0] // 2, (w[3] - 1) * dilation[1] // 2) if args[4] == "same" else (0, 0)
    out = [x[0], w[0]] + _pool_out(x, (w[2], w[3]), stride, padding, dilation, False)[-2:]
    bias = prod(shapes[2]) if len(shapes) > 2 and shapes[2] else 0
    return per_pass * prod(out), (prod(x) + prod(w) + bias + prod(out)) * FLOAT_BYTES


def _pool_cost(name: str, shapes: Sequence[Sequence[int]], args: Sequence[Any],
               with_indices: bool) -> tuple[int, int]:
    if name.startswith(("aten::adaptive_", "aten::_adaptive_")):
        if "backward" in name:  # (grad_out, input)
            return prod(shapes[1]), (prod(shapes[0]) + prod(shapes[1])) * FLOAT_BYTES
        x, out = shapes[0], list(shapes[0][:-2]) + list(_pair(args[1] if len(args) > 1 else None, 1))
        return prod(x), (prod(x) + prod(out)) * FLOAT_BYTES
    is_max = "max_pool" in name
    if "backward" in name:  # (grad_out, input, kernel, stride, padding, ...): reads the gradient, writes input's
        grad_out, x = shapes[0], shapes[1]
        kernel = _pair(args[2] if len(args) > 2 else None, 1)
        indices = prod(grad_out) * INDEX_BYTES if is_max else 0
        flops = prod(grad_out) if is_max else prod(grad_out) * kernel[0] * kernel[1]
        return flops, (prod(grad_out) + prod(x)) * FLOAT_BYTES + indices
    x = shapes[0]
    kernel = _pair(args[1] if len(args) > 1 else None, 1)
    stride = _pair(args[2] if len(args) > 2 and args[2] else None, kernel[0])
    padding = _pair(args[3] if len(args) > 3 else None, 0)
    dilation = _pair(args[4] if is_max and len(args) > 4 else None, 1)
    ceil_mode = bool(args[5] if is_max and len(args) > 5 else args[4] if not is_max and len(args) > 4 else False)
    out = _pool_out(x, kernel, stride, padding, dilation, ceil_mode)
    indices = prod(out) * INDEX_BYTES if is_max and with_indices else 0
    return prod(out) * kernel[0] * kernel[1], (prod(x) + prod(out)) * FLOAT_BYTES + indices


def _matmul_cost(name: str, shapes: Sequence[Sequence[int]]) -> tuple[int, int]:
    tensors = [s for s in shapes if s]
    if name == "aten::linear":  # (x, weight (N, K), bias)
        x, w = shapes[0], shapes[1]
        m, k, n = prod(x[:-1]), x[-1], w[0]
    else:
        a, b = (tensors[-2], tensors[-1]) if name in ("aten::addmm", "aten::baddbmm", "aten::_addmm_activation") \
            else (tensors[0], tensors[1])
        m, k, n = prod(a[:-1]), a[-1], b[-1]
    return 2 * m * k * n, (sum(prod(t) for t in tensors) + m * n) * FLOAT_BYTES


def _elementwise_cost(name: str, shapes: Sequence[Sequence[int]], args: Sequence[Any]) -> tuple[int, int]:
    tensors = [prod(s) for s in shapes if s]
    if name in _WRITE_ONLY:
        size = tensors[0] if tensors else (prod(args[0]) if args and isinstance(args[0], list) else 0)
        return 0, size * FLOAT_BYTES
    if not tensors:
        return 0, 0
    largest = max(tensors)
    if name in _COPIES:
        if name == "aten::copy_":
            return 0, 2 * tensors[0] * FLOAT_BYTES
        if name in ("aten::slice_backward", "aten::select_backward") and len(args) > 1 and isinstance(args[1], list):
            return 0, (tensors[0] + prod(args[1])) * FLOAT_BYTES
        return 0, 2 * sum(tensors) * FLOAT_BYTES  # what it reads, written once more
    if name in _REDUCTIONS:  # output small next to the input: ignored
        return largest, sum(tensors) * FLOAT_BYTES
    written = tensors[0] if name.endswith("_") else largest  # in place: the first operand; else the broadcast
    return written, (sum(tensors) + written) * FLOAT_BYTES


def op_cost(name: str, family: str, shapes: Sequence[Sequence[int]], args: Sequence[Any],
            with_indices: bool = False) -> tuple[int, int]:
    """``(FLOPs, minimum bytes moved)`` of one anchor op of ``family`` from its input ``shapes`` and concrete
    ``args`` (the profiler's ``input_shapes`` and ``concrete_inputs``); ``with_indices``: a max-pooling that
    writes its argmax indices. Conventions in the module docstring."""
    if family in ("dense_conv", "depthwise_conv"):
        return _conv_cost(name, shapes, args)
    if family == "pooling":
        return _pool_cost(name, shapes, args, with_indices)
    if family == "batchnorm":
        x = prod(shapes[1] if "backward" in name else shapes[0])
        if "backward" in name:  # reads the gradient and the input (or output), writes the input's gradient
            return 7 * x, 3 * x * FLOAT_BYTES
        return 5 * x, 2 * x * FLOAT_BYTES
    if family == "matmul":
        return _matmul_cost(name, shapes)
    return _elementwise_cost(name, shapes, args)


def _shape_key(name: str, family: str, shapes: Sequence[Sequence[int]], args: Sequence[Any]) -> str:
    """A readable group for the top-ops table: the tensor shapes, with a convolution's stride and dilation."""
    text = ", ".join("x".join(map(str, s)) for s in shapes if s)
    if family in ("dense_conv", "depthwise_conv") and "backward" not in name and len(args) > 5:
        text += f" s{_pair(args[3], 1)[0]} d{_pair(args[5], 1)[0]}"
    elif family in ("dense_conv", "depthwise_conv") and len(args) > 6:
        text += f" s{_pair(args[4], 1)[0]} d{_pair(args[6], 1)[0]}"
    return text


def _phase(names: Iterable[str]) -> str:
    phase = "forward"
    for name in names:
        if name.startswith("autograd::engine::evaluate_function"):
            return "backward"
        if name.startswith("Optimizer.") or name == "raynas::update":
            phase = "update"
    return phase


def _weighted_median(sizes: list[int]) -> int:
    """The size below and above which half the bytes lie."""
    sizes = sorted(sizes)
    half, run = sum(sizes) / 2, 0
    for size in sizes:
        run += size
        if run >= half:
            return size
    return 0


def account(events: Sequence[Any], steps: int = 1) -> dict:
    """Per-family and per-phase time, FLOPs and bytes, the recomputed part and the top ops, per step, from
    ``torch.profiler`` ``FunctionEvent``s (recorded with ``record_shapes=True``) of ``steps`` steps.

    ``total_ms`` is the sum of the root events' inclusive time, computed apart from the families (which add up
    the events' self time), so the two agree only when every event is counted once. ``typical_tensor_bytes``:
    the byte-weighted median of the memory-bound anchors' largest operand (where to measure the bandwidth).
    """
    seen: dict[int, tuple[str, str, Any, str | None]] = {}  # event -> (phase, part, anchor, anchor's family)
    families = {f: {"forward_ms": 0.0, "backward_ms": 0.0, "update_ms": 0.0, "flop": 0.0, "bytes": 0.0,
                    "recomputed_ms": 0.0, "recomputed_flop": 0.0, "ops": 0.0} for f in FAMILIES}
    parts: dict[str, float] = defaultdict(float)
    top: dict[tuple[str, str, str, str], list[float]] = {}
    operands: list[int] = []
    # a parent starts no later and ends no earlier than its children: sorted so, it comes before them
    for e in sorted(events, key=lambda e: (e.time_range.start, -e.time_range.end)):
        label = e.name[len("raynas::"):] if e.name in ("raynas::arch_step", "raynas::weight_step") else None
        if e.cpu_parent is not None and id(e.cpu_parent) in seen:
            phase, part, outer, outer_family = seen[id(e.cpu_parent)]
            if phase != "backward":
                phase = _phase([e.name]) if phase == "forward" else "backward" if \
                    e.name.startswith("autograd::engine::evaluate_function") else phase
        else:  # a root (or a parent the profiler did not return)
            phase, part, outer, outer_family = _phase([e.name]), "outside", None, None
        part = label or part
        if outer is None:
            shapes = [list(s) if isinstance(s, (list, tuple)) else [] for s in (e.input_shapes or [])]
            family = op_family(e.name, shapes)
            if family is not None:  # a new anchor: count its work
                args = list(e.concrete_inputs or [])
                indices = "with_indices" in e.name or any("with_indices" in c.name for c in e.cpu_children)
                flops, moved = op_cost(e.name, family, shapes, args, indices)
                row = families[family]
                row["flop"] += flops
                row["bytes"] += moved
                row["ops"] += 1
                if phase == "backward" and (family in _RECOMPUTABLE and "backward" not in e.name
                                            or e.name == "aten::relu"):
                    row["recomputed_ms"] += e.cpu_time_total / 1e3
                    row["recomputed_flop"] += flops
                if family in ("depthwise_conv", "pooling", "batchnorm", "elementwise") and any(shapes):
                    operands.append(max(prod(s) for s in shapes if s) * FLOAT_BYTES)
                entry = top.setdefault((e.name, _shape_key(e.name, family, shapes, args), phase, family), [0.0, 0])
                entry[0] += e.cpu_time_total / 1e3
                entry[1] += 1
                outer, outer_family = e, family
        seen[id(e)] = (phase, part, outer, outer_family)
        own = outer_family or ("elementwise" if e.name.startswith("aten::_foreach_") else "other")
        families[own][f"{phase}_ms"] += e.self_cpu_time_total / 1e3
        parts[part] += e.self_cpu_time_total / 1e3
    total_ms = sum(e.cpu_time_total for e in events if e.cpu_parent is None) / 1e3 / steps
    for row in families.values():
        for k in row:
            row[k] /= steps
        row["ms"] = row["forward_ms"] + row["backward_ms"] + row["update_ms"]
        row["share"] = row["ms"] / total_ms if total_ms else 0.0
    top_ops = [{"op": name, "shapes": shapes, "phase": phase, "family": family, "ms": ms / steps,
                "calls": calls / steps, "share": ms / steps / total_ms if total_ms else 0.0}
               for (name, shapes, phase, family), (ms, calls) in top.items()]
    top_ops.sort(key=lambda r: -r["ms"])
    return {"total_ms": total_ms, "families": families, "parts_ms": {k: v / steps for k, v in parts.items()},
            "top_ops": top_ops[:15], "typical_tensor_bytes": _weighted_median(operands)}


def stream_bandwidth(threads: int, mib: float, repeats: int = 5) -> dict:
    """STREAM-like bandwidth (GB/s, best of ``repeats``) of torch's copy (``c = a``), add (``c = a + b``) and
    triad (``c = a + 3 b``) on float32 arrays of ``mib`` MiB each with ``threads`` threads; STREAM's counting
    (2, 3 and 3 arrays moved, write-allocate traffic not counted). ``best`` is the highest of the three."""
    import torch

    torch.set_num_threads(threads)
    n = max(1024, int(mib * 2 ** 20) // FLOAT_BYTES)
    a, b, c = torch.ones(n), torch.full((n,), 2.0), torch.zeros(n)
    kernels: dict[str, tuple[Callable[[], Any], int]] = {
        "copy": (lambda: c.copy_(a), 2), "add": (lambda: torch.add(a, b, out=c), 3),
        "triad": (lambda: torch.add(a, b, alpha=3.0, out=c), 3)}
    inner = max(1, int(64 * 2 ** 20 // (n * FLOAT_BYTES)))  # repeat small arrays so a timing is >~ 1 ms
    figures = {}
    for kernel, (run, arrays) in kernels.items():
        run()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(inner):
                run()
            best = min(best, (time.perf_counter() - start) / inner)
        figures[kernel] = arrays * n * FLOAT_BYTES / best / 1e9
    return {"mib": n * FLOAT_BYTES / 2 ** 20, **figures, "best": max(figures.values())}


def roofline(families: dict, peak_gflops: float, bandwidth_gbs: float, cache_gbs: float | None = None) -> dict:
    """Per family with FLOPs: intensity (FLOP/byte), attainable GFLOP/s = min(peak, intensity x bandwidth),
    achieved GFLOP/s and GB/s over its profiled time, achieved / attainable and the roofline time (its FLOPs at
    the attainable rate); ``cache_gbs``: the same with the bandwidth at the step's tensor size. Plus the step:
    the families' measured and roofline time."""
    rows, measured, bound, bound_cache = {}, 0.0, 0.0, 0.0
    for family, f in families.items():
        if not f["flop"] or not f["bytes"] or not f["ms"]:
            continue
        intensity = f["flop"] / f["bytes"]
        seconds = f["ms"] / 1e3
        attainable = min(peak_gflops, intensity * bandwidth_gbs)
        achieved = f["flop"] / seconds / 1e9
        row = {"gflop": f["flop"] / 1e9, "gb": f["bytes"] / 1e9, "intensity": intensity, "ms": f["ms"],
               "achieved_gflops": achieved, "achieved_gbs": f["bytes"] / seconds / 1e9,
               "attainable_gflops": attainable, "efficiency": achieved / attainable,
               "bound": "compute" if intensity * bandwidth_gbs >= peak_gflops else "memory",
               "roofline_ms": f["flop"] / attainable / 1e6}
        if cache_gbs:
            row["attainable_cache_gflops"] = min(peak_gflops, intensity * cache_gbs)
            row["efficiency_cache"] = achieved / row["attainable_cache_gflops"]
            row["roofline_cache_ms"] = f["flop"] / row["attainable_cache_gflops"] / 1e6
            bound_cache += row["roofline_cache_ms"]
        rows[family] = row
        measured += f["ms"]
        bound += row["roofline_ms"]
    return {"peak_gflops": peak_gflops, "bandwidth_gbs": bandwidth_gbs, "cache_gbs": cache_gbs,
            "families": rows, "measured_ms": measured, "roofline_ms": bound,
            "roofline_cache_ms": bound_cache if cache_gbs else None}


def profile_events(step: Callable[[], None], steps: int) -> tuple[list, float]:
    """``torch.profiler`` events (CPU, shapes recorded) of ``steps`` calls of ``step`` and their wall time (s)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        wall = time.perf_counter() - start
    return list(prof.events()), wall


def measure(space_name: str, steps: int, warmup: int, batch: int, size: int, threads: int,
            channels_last: bool, stream_mib: float, settings: dict | None = None, plain_steps: int = 3) -> dict:
    """Profile ``space_name``'s step (:func:`account`), time it unprofiled (median of ``plain_steps``), measure
    the ceilings and return everything with the :func:`roofline`."""
    from raynas.allocator import process_allocator

    _, step = build_step(space_name, batch, size, threads, 1, channels_last, settings=settings)
    for _ in range(warmup):
        step()
    plain = []
    for _ in range(plain_steps):
        start = time.perf_counter()
        step()
        plain.append(time.perf_counter() - start)
    events, wall = profile_events(step, steps)
    figures = account(events, steps)
    tensor_bytes = figures["typical_tensor_bytes"]
    del events
    peak = matmul_gflops(threads)
    dram = stream_bandwidth(threads, stream_mib)
    cache = stream_bandwidth(threads, tensor_bytes / 2 ** 20, repeats=20) if tensor_bytes else None
    return {"space": space_name, **(settings or SETTINGS[space_name]), "batch": batch, "image_size": size,
            "threads": threads, "channels_last": channels_last, "allocator": process_allocator(),
            "profiled_steps": steps, "plain_step_ms": statistics.median(plain) * 1e3,
            "profiled_step_wall_ms": wall / steps * 1e3, **figures, "matmul_gflops": peak,
            "stream": dram, "stream_tensor_size": cache, "typical_tensor_mib": tensor_bytes / 2 ** 20,
            "roofline": roofline(figures["families"], peak, dram["best"], cache["best"] if cache else None),
            "load_average": os.getloadavg()[0]}


def report(f: dict) -> str:
    """The human-readable tables of one space's :func:`measure` figures."""
    lines = [f"{f['space']} (C={f['channels']}, {f['layers']} layers, batch {f['batch']}, {f['image_size']}x"
             f"{f['image_size']}, channels_last={f['channels_last']}, {f['threads']} threads, {f['allocator']}): "
             f"step {f['plain_step_ms']:.0f} ms unprofiled (median), {f['profiled_step_wall_ms']:.0f} ms profiled "
             f"(ops {f['total_ms']:.0f} ms; arch step {f['parts_ms'].get('arch_step', 0):.0f}, weight step "
             f"{f['parts_ms'].get('weight_step', 0):.0f}), load {f['load_average']:.2f}",
             f"machine: matmul {f['matmul_gflops']:.1f} GFLOP/s; bandwidth at {f['stream']['mib']:.0f} MiB arrays "
             f"copy/add/triad {f['stream']['copy']:.1f}/{f['stream']['add']:.1f}/{f['stream']['triad']:.1f} GB/s"
             + (f"; at {f['stream_tensor_size']['mib']:.2f} MiB (the step's typical tensor) "
                f"{f['stream_tensor_size']['copy']:.1f}/{f['stream_tensor_size']['add']:.1f}/"
                f"{f['stream_tensor_size']['triad']:.1f} GB/s" if f["stream_tensor_size"] else ""),
             "", f"{'family':<15}{'forward ms':>11}{'backward ms':>12}{'update ms':>10}{'total ms':>10}{'%':>6}"
             f"{'recomputed ms':>14}"]
    for family, r in f["families"].items():
        lines.append(f"{family:<15}{r['forward_ms']:>11.1f}{r['backward_ms']:>12.1f}{r['update_ms']:>10.1f}"
                     f"{r['ms']:>10.1f}{100 * r['share']:>6.1f}{r['recomputed_ms']:>14.1f}")
    roof = f["roofline"]
    lines += ["", f"roofline: peak {roof['peak_gflops']:.1f} GFLOP/s, bandwidth {roof['bandwidth_gbs']:.1f} GB/s"
              + (f" ({roof['cache_gbs']:.1f} at the tensor size: second attainable column)" if roof["cache_gbs"]
                 else ""),
              f"{'family':<15}{'GFLOP':>8}{'GB':>7}{'FLOP/B':>8}{'ms':>9}{'GFLOP/s':>9}{'GB/s':>7}"
              f"{'attainable':>11}{'att.cache':>10}{'achieved/att':>13}{'roofline ms':>12}"]
    for family, r in roof["families"].items():
        lines.append(f"{family:<15}{r['gflop']:>8.2f}{r['gb']:>7.2f}{r['intensity']:>8.2f}{r['ms']:>9.1f}"
                     f"{r['achieved_gflops']:>9.1f}{r['achieved_gbs']:>7.1f}{r['attainable_gflops']:>11.1f}"
                     f"{r.get('attainable_cache_gflops', float('nan')):>10.1f}{r['efficiency']:>13.2f}"
                     f"{r['roofline_ms']:>12.1f}")
    lines += [f"families with FLOPs: {roof['measured_ms']:.0f} ms measured, {roof['roofline_ms']:.0f} ms at the "
              f"roofline (x{roof['measured_ms'] / roof['roofline_ms']:.1f} from the limit)"
              + (f", {roof['roofline_cache_ms']:.0f} ms with the tensor-size bandwidth "
                 f"(x{roof['measured_ms'] / roof['roofline_cache_ms']:.1f})" if roof["roofline_cache_ms"] else "")
              + f"; 'other' {f['families']['other']['ms']:.0f} ms has no roofline", "",
              "top ops (ms per step):", f"{'op':<40}{'phase':<9}{'ms':>8}{'%':>6}{'calls':>7}  shapes"]
    for r in f["top_ops"]:
        lines.append(f"{r['op']:<40}{r['phase']:<9}{r['ms']:>8.1f}{100 * r['share']:>6.1f}{r['calls']:>7.0f}  "
                     f"{r['shapes']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--steps", type=int, default=2, help="profiled steps (figures are per step)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true", help="supernet.channels_last: NHWC weights")
    parser.add_argument("--stream-mib", type=float, default=512.0,
                        help="array size of the large-array bandwidth measurement (above the last-level cache)")
    parser.add_argument("--allocator", default="mimalloc", choices=ALLOCATORS,
                        help="ray.allocator: memory allocator of the measuring process (default: mimalloc)")
    parser.add_argument("--json", action="store_true", help="print one JSON object keyed by space")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("steps", "batch", "size", "threads"):
        if getattr(args, name) < 1:
            parser.exit(2, f"error: --{name} is {getattr(args, name)}; it must be a positive integer\n")
    if args.warmup < 0 or args.stream_mib <= 0:
        parser.exit(2, "error: --warmup must be >= 0 and --stream-mib > 0\n")
    if args.worker:
        print(json.dumps(measure(args.worker, args.steps, args.warmup, args.batch, args.size, args.threads,
                                 args.channels_last, args.stream_mib)))
        return
    worker_args = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--batch", str(args.batch),
                   "--size", str(args.size), "--threads", str(args.threads), "--stream-mib", str(args.stream_mib),
                   *(["--channels-last"] if args.channels_last else [])]
    # each space in its own process, on the allocator raynas gives Ray's workers
    figures = run_space_workers(__file__, args.spaces, worker_args, {**os.environ, **worker_env(args.allocator)},
                                None if args.json else f"{{space}}: profiling {args.steps} steps ...")
    if args.json:
        print(json.dumps(figures))
        return
    print("\n\n".join(report(f) for f in figures.values()))


if __name__ == "__main__":
    main()
