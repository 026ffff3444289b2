"""The lean autograd pieces (raynas.lean, raynas.dilated) compute what the plain layers compute and keep less.

- ``LeanBatchNorm2d`` keeps its output instead of its input: same output and running statistics bit for
  bit, the same input gradient within float rounding;
- ``recompute_saved`` keeps the source instead of the picked tensors, which are freed after the block;
- ``LeanMaxPool2d`` keeps no int64 indices;
- ``DilatedDepthwiseConv2d`` (phases) equals the dilated convolution, and its gradient can be
  differentiated again;
- a whole supernet step equals the step with ``raynas.lean.disabled()`` and keeps less than half.
"""

from __future__ import annotations

import copy
import gc
import weakref

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from raynas import lean
from raynas.dilated import DilatedDepthwiseConv2d, from_phases, to_phases
from raynas.lean import LeanBatchNorm2d, LeanMaxPool2d, recompute_saved
from raynas.spaces import get_space
from supernet_helpers import batchnorm_statistics


class SavedBytes:
    """Counts the distinct storages autograd keeps while active (every saved-tensor hook is seen, inner
    ones included, by wrapping ``saved_tensors_hooks``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.storages: dict[int, tuple[int, torch.dtype]] = {}
        original = torch.autograd.graph.saved_tensors_hooks.__init__
        storages = self.storages

        def init(hooks, pack, unpack):  # noqa: ANN001
            def counting_pack(t):  # noqa: ANN001
                packed = pack(t)
                if isinstance(packed, torch.Tensor):
                    storage = packed.untyped_storage()
                    storages[storage.data_ptr()] = (storage.nbytes(), packed.dtype)
                return packed
            original(hooks, counting_pack, unpack)

        monkeypatch.setattr(torch.autograd.graph.saved_tensors_hooks, "__init__", init)
        self.outer = torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t)

    def __enter__(self) -> "SavedBytes":
        self.storages.clear()
        self.outer.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.outer.__exit__(*exc)

    @property
    def total(self) -> int:
        return sum(n for n, _ in self.storages.values())


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("channels_last", [False, True])
def test_lean_batchnorm_equals_batchnorm_and_keeps_its_output(momentum: float | None, channels_last: bool,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    plain = nn.BatchNorm2d(6, affine=False, momentum=momentum)
    leanbn = LeanBatchNorm2d(6, affine=False, momentum=momentum)
    x = 3 * torch.randn(5, 6, 7, 7) + 1
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    g = torch.randn(5, 6, 7, 7)
    results = []
    counter = SavedBytes(monkeypatch)
    for bn in (plain, leanbn):
        for _ in range(2):  # the second pass sees updated running statistics
            xx = (x * 1.0).requires_grad_(True)
            inner = xx * 2.0  # a non-leaf input, as inside a network
            with counter:
                out = bn(inner)
            kept = set(counter.storages)
            (out * g).sum().backward()
        results.append((out.detach(), xx.grad, [b.clone() for b in bn.buffers()], kept, inner, out))
    (out0, grad0, buf0, kept0, in0, o0), (out1, grad1, buf1, kept1, in1, o1) = results
    torch.testing.assert_close(out1, out0, rtol=0, atol=0)
    for a, b in zip(buf1, buf0):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(grad1, grad0, rtol=1e-5, atol=1e-6)
    assert in0.untyped_storage().data_ptr() in kept0  # the plain layer keeps its input
    assert in1.untyped_storage().data_ptr() not in kept1  # the lean one keeps its output instead
    assert o1.untyped_storage().data_ptr() in kept1


def test_lean_batchnorm_gradient_can_be_differentiated_again() -> None:
    from raynas.lean import _BatchNormKeepingOutput

    x = torch.randn(3, 2, 4, 5, dtype=torch.double, requires_grad=True)

    def normalise(t: torch.Tensor) -> torch.Tensor:
        return _BatchNormKeepingOutput.apply(t, None, None, 0.1, 1e-5)[0]

    assert torch.autograd.gradcheck(normalise, (x,))
    assert torch.autograd.gradgradcheck(normalise, (x,))


def test_lean_batchnorm_is_plain_with_affine_parameters_or_in_eval_mode() -> None:
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    affine = LeanBatchNorm2d(3, affine=True)
    assert affine(x * 1.0).grad_fn.name() != "_BatchNormKeepingOutputBackward"
    bn = LeanBatchNorm2d(3, affine=False)
    assert type(bn(x * 1.0).grad_fn).__name__ == "_BatchNormKeepingOutputBackward"
    with lean.disabled():
        assert type(bn(x * 1.0).grad_fn).__name__ != "_BatchNormKeepingOutputBackward"
    bn.eval()
    assert type(bn(x * 1.0).grad_fn).__name__ != "_BatchNormKeepingOutputBackward"


def test_recompute_saved_keeps_the_source_instead_and_rebuilds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    conv = nn.Conv2d(3, 5, 1, bias=False)
    counter = SavedBytes(monkeypatch)
    grads = []
    for recompute in (False, True):
        x.grad, conv.weight.grad = None, None
        source = torch.sigmoid(x)  # sigmoid keeps its output: the source is kept anyway
        d = source * 2.0  # a constant factor keeps nothing
        with counter:
            if recompute:
                with recompute_saved(source, lambda s: s * 2.0, lambda t, target=d: t is target):
                    out = conv(d)
            else:
                out = conv(d)
        kept = set(counter.storages)
        assert (d.untyped_storage().data_ptr() in kept) is not recompute
        del d
        out.pow(2).sum().backward()
        grads.append((x.grad.clone(), conv.weight.grad.clone()))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_recompute_saved_keeps_nothing_it_picked_after_the_block() -> None:
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    conv = nn.Conv2d(3, 3, 1, bias=False)

    def block(source: torch.Tensor) -> tuple[torch.Tensor, weakref.ref]:
        d = source * 2.0  # mul by a constant keeps nothing
        with recompute_saved(source, lambda s: s * 2.0, lambda t: t is d):  # the predicate refers to d
            out = conv(d)
        return out, weakref.ref(d)

    source = torch.sigmoid(x)  # kept by sigmoid's backward
    out, alive = block(source)
    gc.collect()
    assert alive() is None  # neither the convolution nor the hook (through the predicate) holds it
    out.sum().backward()
    expected = (torch.sigmoid(x) * (1 - torch.sigmoid(x)) * 2.0
                * conv.weight.detach().sum(dim=0).view(1, 3, 1, 1)).detach()
    torch.testing.assert_close(x.grad, expected, rtol=1e-5, atol=1e-6)


def test_lean_max_pool_keeps_no_indices_and_gives_the_same_gradient(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 4, 9, 9)
    counter = SavedBytes(monkeypatch)
    results = []
    for is_lean in (False, True):
        pool = LeanMaxPool2d(3, stride=2, padding=1)
        pool.lean = is_lean
        xx = x.clone().requires_grad_(True)
        with counter:
            out = pool(xx * 1.0)
        dtypes = {dtype for _, dtype in counter.storages.values()}
        (out * torch.arange(out.numel()).reshape(out.shape)).sum().backward()
        results.append((out.detach(), xx.grad, dtypes))
    (out0, g0, types0), (out1, g1, types1) = results
    assert torch.int64 in types0 and torch.int64 not in types1
    torch.testing.assert_close(out1, out0, rtol=0, atol=0)
    torch.testing.assert_close(g1, g0, rtol=0, atol=0)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("kernel,dilation,stride,size", [(3, 2, 1, (16, 16)), (5, 2, 1, (9, 7)), (3, 3, 1, (10, 11)),
                                                         (5, 2, 2, (9, 7)), (3, 2, 2, (16, 16)), (3, 3, 3, (7, 9))])
def test_phased_dilated_convolution_equals_the_dilated_one(kernel: int, dilation: int, stride: int,
                                                           size: tuple[int, int], channels_last: bool) -> None:
    torch.manual_seed(0)
    C, pad = 5, dilation * (kernel - 1) // 2
    conv = DilatedDepthwiseConv2d(C, C, kernel, stride=stride, padding=pad, dilation=dilation, groups=C, bias=False)
    assert conv._phased()
    x = torch.randn(4, C, *size)
    if channels_last:
        x, conv = x.to(memory_format=torch.channels_last), conv.to(memory_format=torch.channels_last)
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y1 = conv(x1)
    y2 = F.conv2d(x2, conv.weight, None, stride, pad, dilation, C)
    torch.testing.assert_close(y1, y2, rtol=0, atol=1e-6)
    g = torch.randn_like(y2)
    (gx1, gw1), (gx2, gw2) = (torch.autograd.grad(y, (xx, conv.weight), g) for y, xx in ((y1, x1), (y2, x2)))
    torch.testing.assert_close(gx1, gx2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gw1, gw2, rtol=1e-5, atol=1e-4)


def test_phases_round_trip_and_double_backward() -> None:
    x = torch.randn(2, 3, 6, 8)
    for t in (x, x.to(memory_format=torch.channels_last)):
        phases = to_phases(t, 2)
        assert phases.shape == (8, 3, 3, 4)
        torch.testing.assert_close(phases[4:6], t[:, :, 1::2, 0::2], rtol=0, atol=0)  # phase (1, 0): block 2
        torch.testing.assert_close(from_phases(phases, 2), t, rtol=0, atol=0)
    conv = DilatedDepthwiseConv2d(3, 3, 3, padding=2, dilation=2, groups=3, bias=False).double()
    xd = torch.randn(2, 3, 5, 6, dtype=torch.double, requires_grad=True)

    def phased(a: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.relu(torch.func.functional_call(conv, {"weight": weight}, (F.relu(a),)))

    assert torch.autograd.gradcheck(phased, (xd, conv.weight))
    assert torch.autograd.gradgradcheck(phased, (xd, conv.weight))


def supernet_step(space: str, use_lean: bool, counter: SavedBytes):
    """An architecture gradient and a weight gradient of a small supernet (channels-last, as the paper configs)."""
    torch.manual_seed(0)
    model = get_space(space).build_supernet(num_classes=10, in_channels=3, channels=8, layers=5)
    model = model.to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, 16, 16, generator=gen), torch.randint(0, 10, (8,), generator=gen)
    torch.manual_seed(2)  # S4's noise
    with (lean.disabled() if not use_lean else torch.enable_grad()), counter:
        loss = F.cross_entropy(model(x), y)
    kept = counter.total
    with (lean.disabled() if not use_lean else torch.enable_grad()):
        loss.backward()
    return (loss.item(), [p.grad for p in model.arch_parameters()], [p.grad for p in model.weight_parameters()],
            batchnorm_statistics(model), kept)


@pytest.mark.parametrize("space,max_ratio", [("darts", 0.5), ("nb201", 0.6), ("s4", 0.7)])
def test_a_lean_supernet_step_equals_the_plain_one_and_keeps_less(space: str, max_ratio: float,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    counter = SavedBytes(monkeypatch)
    plain = supernet_step(space, False, counter)
    leaned = supernet_step(space, True, counter)
    assert leaned[0] == plain[0]  # the forward pass is bit for bit the same
    for a, b in zip(leaned[1], plain[1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert len(leaned[2]) == len(plain[2])
    for a, b in zip(leaned[2], plain[2]):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(leaned[3], plain[3]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert leaned[4] < max_ratio * plain[4], (leaned[4], plain[4])


def test_the_hessian_eigenvalue_runs_with_lean_layers() -> None:
    from raynas.flatness import arch_hessian_eigenvalue

    torch.manual_seed(0)
    model = get_space("darts").build_supernet(num_classes=10, in_channels=3, channels=4, layers=3)
    batch = (torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,)))
    reference = copy.deepcopy(model)
    value = arch_hessian_eigenvalue(model, batch, iters=3)
    with lean.disabled():
        expected = arch_hessian_eigenvalue(reference, batch, iters=3)
    assert value == pytest.approx(expected, rel=1e-4)


def live_activations(batch: int) -> int:
    """How many 4-d tensors with ``batch`` samples Python can still reach (after a full collection)."""
    gc.collect()
    return sum(1 for obj in gc.get_objects()
               if issubclass(type(obj), torch.Tensor) and obj.dim() == 4 and obj.shape[0] == batch)


@pytest.mark.parametrize("space", ["darts", "nb201", "s4"])
def test_an_architecture_gradient_alone_frees_every_activation(space: str) -> None:
    """``torch.autograd.grad`` for the alphas alone skips the nodes that lead only to weights (the first
    cell's ops on the stem's output). Their kept tensors must still be freed with the graph: a kept output
    that went through a pack hook would hold its own node and leak the pass (as it once did, 0.4 GB a DARTS
    architecture step)."""
    torch.manual_seed(0)
    model = get_space(space).build_supernet(num_classes=10, in_channels=3, channels=4, layers=3)
    model = model.to(memory_format=torch.channels_last)
    batch = 5
    x, y = torch.randn(batch, 3, 8, 8), torch.randint(0, 10, (batch,))
    before = live_activations(batch)
    for _ in range(2):
        loss = F.cross_entropy(model(x), y)
        grads = torch.autograd.grad(loss, model.arch_parameters())
        assert all(g.abs().sum() > 0 for g in grads)
        del loss, grads
    assert live_activations(batch) == before == 1  # only x itself
