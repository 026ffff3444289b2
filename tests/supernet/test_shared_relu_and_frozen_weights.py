"""Two step savings of the second speed round compute what the plain step computes.

- the edges leaving one node of a cell share that node's ``relu(x)`` (``run_cell_edges``): computed once per
  node, not once per edge;
- the first-order architecture step runs with the weights frozen (``Supernet.frozen_weights``): it keeps
  nothing that only a weight gradient needs, and its architecture gradient is the same bit for bit.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from raynas.bilevel import _grads, arch_gradient_first_order
from raynas.objectives.base import Objective, StepContext
from raynas.spaces import get_space
from supernet_helpers import batchnorm_statistics

SIZES = {"darts": {"channels": 4, "layers": 3}, "nb201": {"channels": 4, "layers": 1}}


class ReluCount(TorchDispatchMode):
    """Counts the forward ReLUs (``aten.relu``) run inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (torch.ops.aten.relu, torch.ops.aten.relu_):
            self.count += 1
        return func(*args, **(kwargs or {}))


def per_edge_cell(cell, states: dict[int, torch.Tensor], w: torch.Tensor) -> dict[int, torch.Tensor]:
    """The cell the way it ran before: every edge computes its own ``relu(x)``."""
    states, sums = dict(states), {}
    for e, (src, dst) in enumerate(cell.edges):
        if src not in states:
            states[src] = sums.pop(src)
        out = cell.mixed[e](states[src], w[e])
        sums[dst] = out if dst not in sums else sums[dst] + out
    states.update(sums)
    return states


def test_an_nb201_cell_runs_one_relu_per_node_and_computes_the_per_edge_cell():
    torch.manual_seed(0)
    model = get_space("nb201").build_supernet(num_classes=10, in_channels=3, **SIZES["nb201"])
    cell = next(b for b in model.cells if hasattr(b, "mixed"))
    plain = copy.deepcopy(cell)
    x = torch.randn(4, 4, 8, 8)
    w = F.softmax(torch.randn(len(cell.edges), len(cell.mixed[0].ops)), dim=-1)
    results = []
    for module, run in ((cell, lambda xx, ww: cell(xx, ww)),
                        (plain, lambda xx, ww: per_edge_cell(plain, {plain.input: xx}, ww)[plain.output])):
        xx, ww = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
        with ReluCount() as relus:
            out = run(xx, ww)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        results.append((relus.count, out.detach(), xx.grad, ww.grad, [p.grad for p in module.parameters()],
                        batchnorm_statistics(module)))
    (n, out, gx, gw, gp, stats), (n0, out0, gx0, gw0, gp0, stats0) = results
    sources = {src for src, _ in cell.edges}
    assert (n, n0) == (len(sources), len(cell.edges)) == (3, 6)  # one per node, not one per edge
    torch.testing.assert_close(out, out0, rtol=0, atol=0)  # the same values bit for bit
    torch.testing.assert_close(gw, gw0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gx, gx0, rtol=1e-5, atol=1e-6)  # sums of gradients in another order
    for a, b in zip(gp, gp0):  # conv weight gradients: sums over the batch of sums taken in another order
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(stats, stats0):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_darts_cell_runs_one_relu_per_source_node():
    torch.manual_seed(0)
    model = get_space("darts").build_supernet(num_classes=10, in_channels=3, **SIZES["darts"])
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad(), ReluCount() as shared:
        model(x)
    # the same network with every edge computing its own relu(x): each cell calls its edges one by one
    per_edge = copy.deepcopy(model)
    for cell in per_edge.cells:
        for mixed in cell.mixed:
            forward = mixed.forward
            mixed.forward = lambda x, w, active=None, single_path=False, relu_of=None, f=forward: f(
                x, w, active, single_path)
    with torch.no_grad(), ReluCount() as own:
        expected = per_edge(x)
    edges_per_cell, sources_per_cell = 14, 5  # inputs s0, s1 and nodes 2-4 feed the 14 edges
    saved = len(model.cells) * (edges_per_cell - sources_per_cell)
    assert own.count - shared.count == saved
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


def first_order_setup(space_name: str):
    torch.manual_seed(0)
    model = get_space(space_name).build_supernet(num_classes=10, in_channels=3, **SIZES[space_name])
    ctx = StepContext(epoch=0, step=0, steps_per_epoch=1, epochs=1, weight_lr=0.025, device=torch.device("cpu"))
    gen = torch.Generator().manual_seed(0)
    batch = (torch.randn(8, 3, 16, 16, generator=gen), torch.randint(0, 10, (8,), generator=gen))
    return model, Objective(), ctx, batch


def saved_bytes(run) -> int:
    """Bytes of the distinct storages autograd keeps for the backward pass while ``run()`` builds its graph."""
    kept: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(kept.values())


@pytest.mark.parametrize("space_name", ["darts", "nb201"])
def test_the_architecture_step_with_frozen_weights_gives_the_same_gradient_and_keeps_less(space_name):
    model, objective, ctx, batch = first_order_setup(space_name)
    plain_model = copy.deepcopy(model)
    weights = model.weight_parameters()
    for p in weights:
        p.grad = torch.full_like(p, 7.0)  # a weight step's gradient the architecture step must leave alone
    arch_gradient_first_order(model, objective, batch, ctx)
    plain = _grads(objective.arch_loss(plain_model, batch, ctx), plain_model.arch_parameters())
    for got, want in zip([p.grad for p in model.arch_parameters()], plain):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert all(p.requires_grad and torch.equal(p.grad, torch.full_like(p, 7.0)) for p in weights)
    for a, b in zip(batchnorm_statistics(model), batchnorm_statistics(plain_model)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # the running statistics move the same way

    def frozen():
        with model.frozen_weights():
            objective.arch_loss(model, batch, ctx)

    kept, kept_plain = saved_bytes(frozen), saved_bytes(lambda: objective.arch_loss(model, batch, ctx))
    assert kept < kept_plain, (kept, kept_plain)
    assert all(p.requires_grad for p in weights)  # restored on leaving the block
