"""tools/profile_step.py: the op-family accounting of a real (tiny) supernet search step and its roofline.

Real steps of tiny NB201 and DARTS supernets (bench_supernet's step construction), profiled by torch.profiler;
the dense convolutions' and matrix products' FLOPs are checked against torch.utils.flop_counter on the same
step, a depthwise convolution's FLOPs and bytes against a hand count.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode, flop_registry

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from bench_supernet import build_step, matmul_gflops  # noqa: E402
from profile_step import FAMILIES, account, profile_events, roofline, stream_bandwidth  # noqa: E402

aten = torch.ops.aten
TINY = {"nb201": {"channels": 4, "layers": 1}, "darts": {"channels": 4, "layers": 1}}


def _groups_one_only(op, groups_at: int):
    """torch's own formula for ``op``, counting only convolutions with groups == 1 (dense)."""
    formula = flop_registry[op]

    def count(*args, out_val=None, **kwargs):
        return formula(*args, out_val=out_val, **kwargs) if args[groups_at] == 1 else 0

    count._get_raw = True  # FlopCounterMode hands it the raw arguments (groups is an int there)
    return count


def _torch_counts(step) -> tuple[int, int]:
    """(dense convolution, matrix product) FLOPs of one call of ``step`` by torch.utils.flop_counter."""
    dense = {aten.convolution: _groups_one_only(aten.convolution, 8),
             aten._convolution: _groups_one_only(aten._convolution, 8),
             aten.convolution_backward: _groups_one_only(aten.convolution_backward, 9)}
    with FlopCounterMode(display=False, custom_mapping=dense) as counter:
        step()
    counts = counter.get_flop_counts()["Global"]
    conv = sum(n for op, n in counts.items() if op in dense)
    matmul = sum(n for op, n in counts.items() if op in (aten.mm, aten.addmm, aten.bmm))
    return conv, matmul


@pytest.fixture(scope="module")
def peak_and_bandwidth() -> tuple[float, dict]:
    return matmul_gflops(1, n=256, repeats=3), stream_bandwidth(1, 4, repeats=3)


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_a_tiny_step_is_accounted_once_by_family_phase_and_part(space, peak_and_bandwidth):
    _, step = build_step(space, batch=4, size=8, threads=1, channels_last=True, settings=TINY[space])
    step()  # warm-up: oneDNN's primitives and the optimisers' state
    events, wall = profile_events(step, 1)
    figures = account(events, 1)
    families = figures["families"]

    assert set(families) == set(FAMILIES)
    total = figures["total_ms"]  # the roots' inclusive time, computed apart from the families' self time
    assert 0 < total <= wall * 1e3 * 1.01
    assert sum(f["ms"] for f in families.values()) == pytest.approx(total, rel=1e-9)
    assert sum(figures["parts_ms"].values()) == pytest.approx(total, rel=1e-9)
    assert figures["parts_ms"]["arch_step"] > 0 and figures["parts_ms"]["weight_step"] > 0
    for f in families.values():
        assert f["ms"] == pytest.approx(f["forward_ms"] + f["backward_ms"] + f["update_ms"])
    assert families["dense_conv"]["forward_ms"] > 0 and families["dense_conv"]["backward_ms"] > 0
    assert families["batchnorm"]["backward_ms"] > 0 and families["pooling"]["ops"] > 0
    assert families["elementwise"]["update_ms"] > 0  # the optimisers' updates and the clipping
    updates = [e for e in events if e.name == "raynas::update" or e.name.startswith("Optimizer.")]
    outermost = [e for e in updates if not any(u is e.cpu_parent for u in updates)]
    assert sum(f["update_ms"] for f in families.values()) == pytest.approx(
        sum(e.cpu_time_total for e in outermost) / 1e3, rel=1e-9)
    assert sum(op["share"] for op in figures["top_ops"]) <= 1

    dense, matmul = _torch_counts(step)  # the same step once more, under torch's counter
    assert dense > 0 and families["dense_conv"]["flop"] == dense
    assert families["matmul"]["flop"] == matmul > 0
    if space == "darts":  # separable and dilated convolutions; lean recomputes depthwise outputs backward
        assert families["depthwise_conv"]["flop"] > 0 and families["depthwise_conv"]["recomputed_ms"] > 0
        assert 0 < families["depthwise_conv"]["recomputed_flop"] < families["depthwise_conv"]["flop"]
    else:  # NB201 has no depthwise convolution
        assert families["depthwise_conv"]["ops"] == 0 and families["depthwise_conv"]["ms"] == 0

    peak, stream = peak_and_bandwidth
    for case_peak, case_bw in ((peak, stream["best"]), (1.0, 1e3), (1e6, 1.0)):  # measured; all compute; memory
        roof = roofline(families, case_peak, case_bw, cache_gbs=4 * case_bw)
        assert set(roof["families"]) == {n for n, f in families.items() if f["flop"]} - {"other"}
        for name, row in roof["families"].items():
            intensity = families[name]["flop"] / families[name]["bytes"]
            assert families[name]["bytes"] > 0 and intensity > 0 and row["intensity"] == pytest.approx(intensity)
            assert row["attainable_gflops"] == pytest.approx(min(case_peak, intensity * case_bw))
            assert row["attainable_cache_gflops"] == pytest.approx(min(case_peak, 4 * intensity * case_bw))
            assert row["efficiency"] == pytest.approx(row["achieved_gflops"] / row["attainable_gflops"])
            assert row["roofline_ms"] == pytest.approx(families[name]["flop"] / row["attainable_gflops"] / 1e6)
        assert roof["measured_ms"] == pytest.approx(sum(families[n]["ms"] for n in roof["families"]))
    assert all(r["bound"] == "compute" for r in roofline(families, 1.0, 1e3)["families"].values())
    assert all(r["bound"] == "memory" for r in roofline(families, 1e6, 1.0)["families"].values())


def test_a_depthwise_convolution_and_a_max_pooling_count_their_passes_by_hand():
    torch.set_num_threads(1)
    n, c, h, w, k = 2, 6, 8, 8, 5
    conv = torch.nn.Conv2d(c, c, k, padding=k // 2, groups=c, bias=False)
    pool = torch.nn.MaxPool2d(3, 1, 1)
    x = torch.randn(n, c, h, w, requires_grad=True)
    pool(conv(x)).sum().backward()  # warm-up
    events, _ = profile_events(lambda: pool(conv(x)).sum().backward(), 1)
    families = account(events, 1)["families"]
    act, weight = n * c * h * w, c * k * k
    assert families["dense_conv"]["ops"] == 0 and families["depthwise_conv"]["ops"] == 2  # forward, backward
    assert families["depthwise_conv"]["flop"] == 3 * 2 * k * k * act  # forward, input and weight gradients
    forward = act + weight + act  # reads x and the weight, writes y
    backward = act + (weight + act) + (act + weight)  # reads dy; dx from the weight, dw from x
    assert families["depthwise_conv"]["bytes"] == 4 * (forward + backward)
    assert families["depthwise_conv"]["backward_ms"] > 0 and families["depthwise_conv"]["forward_ms"] > 0
    assert families["pooling"]["ops"] == 2 and families["pooling"]["flop"] == 9 * act + act  # 3x3 max; scatter
    # forward reads x, writes y and the int64 indices; backward reads dy and the indices, writes dx
    assert families["pooling"]["bytes"] == 2 * (4 * 2 * act + 8 * act)


def test_stream_bandwidth_reports_each_kernel_and_the_best():
    figures = stream_bandwidth(1, 2, repeats=2)
    assert figures["mib"] == 2 and all(figures[k] > 0 for k in ("copy", "add", "triad"))
    assert figures["best"] == max(figures["copy"], figures["add"], figures["triad"])
