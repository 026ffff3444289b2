"""The supernet step's memory savings compute what the plain step computes.

- a mixed op shares one ``relu(x)`` among its ReLU-first ops and never runs ``none``;
- the weight step runs with the architecture frozen (no architecture gradient kept or computed);
- ``supernet.checkpoint_cells`` recomputes the first cells' activations in the backward pass.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from raynas.config import load_config
from raynas.search import Search
from raynas.supernet.build import build_supernet
from raynas.spaces import get_space
from raynas.supernet import MixedOp
from supernet_helpers import batchnorm_statistics

C = 6


def plain_weighted_sum(mixed: MixedOp, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``sum_i w[i] * op_i(x)`` with every op on its own (its own ReLU, ``none`` included)."""
    return sum(w[i] * op(x) for i, op in enumerate(mixed.ops))


@pytest.mark.parametrize("space_name,cell,stride", [("darts", "normal", 1), ("darts", "reduce", 2),
                                                    ("nb201", "cell", 1), ("s4", "normal", 1)])
def test_mixed_op_equals_the_plain_weighted_sum(space_name: str, cell: str, stride: int) -> None:
    torch.manual_seed(0)
    ops = get_space(space_name).edge_ops(cell, 0)
    fast = MixedOp(ops, C, stride, pool_bn=space_name != "nb201")
    plain = copy.deepcopy(fast)
    assert any(fast.relu_first) and (("none" in ops) == any(fast.always_zero))
    x = torch.randn(4, C, 9, 9)
    w = F.softmax(torch.randn(len(ops)), dim=0)
    results = []
    for module, run in ((fast, lambda xx, ww: fast(xx, ww)), (plain, lambda xx, ww: plain_weighted_sum(plain, xx, ww))):
        xx, ww = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
        torch.manual_seed(1)  # the same noise for S4's `noise` op
        out = run(xx, ww)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        results.append((out.detach(), xx.grad, ww.grad, [p.grad for p in module.parameters()],
                        batchnorm_statistics(module)))
    (out, gx, gw, gp, stats), (out0, gx0, gw0, gp0, stats0) = results
    torch.testing.assert_close(out, out0, rtol=0, atol=0)  # same terms, same order: bit for bit
    torch.testing.assert_close(gw, gw0, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(gx, gx0, rtol=1e-5, atol=1e-6)  # the shared ReLU sums its gradients first
    assert len(gp) == len(gp0) > 0
    for a, b in zip(gp, gp0):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(stats, stats0):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def small_cfg(space: str, *overrides: str):
    path = "search_configs/smoke/nb201.yaml" if space == "nb201" else "search_configs/smoke/darts.yaml"
    return load_config(path, [f"space={space}", "supernet.channels=4", *overrides])


def one_step(space: str, checkpoint_cells: int = 0, frozen_weight_step: bool = True):
    """Loss, architecture gradients, weight gradients and BatchNorm statistics after one first-order step."""
    cfg = small_cfg(space, f"supernet.checkpoint_cells={checkpoint_cells}")
    torch.manual_seed(0)
    model = build_supernet(cfg, num_classes=10, in_channels=1)
    gen = torch.Generator().manual_seed(1)
    val = (torch.randn(8, 1, 12, 12, generator=gen), torch.randint(0, 10, (8,), generator=gen))
    train = (torch.randn(8, 1, 12, 12, generator=gen), torch.randint(0, 10, (8,), generator=gen))
    torch.manual_seed(2)  # S4's noise
    arch_loss = F.cross_entropy(model(val[0]), val[1])
    arch_grads = torch.autograd.grad(arch_loss, model.arch_parameters())
    if frozen_weight_step:
        with model.frozen_architecture():
            assert not any(w.requires_grad for w in model.arch_weights().values())
            weight_loss = F.cross_entropy(model(train[0]), train[1])
    else:
        weight_loss = F.cross_entropy(model(train[0]), train[1])
    weight_loss.backward()
    alpha_grads = [p.grad for p in model.arch_parameters()]
    return (arch_loss.item(), weight_loss.item(), arch_grads, [p.grad for p in model.weight_parameters()],
            batchnorm_statistics(model), alpha_grads, model)


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_a_weight_step_with_the_architecture_frozen_equals_the_plain_one(space: str) -> None:
    _, loss, _, grads, stats, alpha_grads, model = one_step(space, frozen_weight_step=True)
    _, loss0, _, grads0, stats0, alpha_grads0, _ = one_step(space, frozen_weight_step=False)
    assert loss == loss0
    assert all(g is None for g in alpha_grads) and all(g is not None for g in alpha_grads0)
    for a, b in zip(grads, grads0):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(stats, stats0):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not model.architecture_frozen  # the block ended
    assert all(w.requires_grad for w in model.arch_weights().values())


@pytest.mark.parametrize("space", ["darts", "nb201", "s4"])
def test_checkpointed_cells_compute_the_same_step(space: str) -> None:
    plain = one_step(space, checkpoint_cells=0)
    cells = len(plain[-1].cells)
    for n in (1, cells):
        step = one_step(space, checkpoint_cells=n)
        assert step[-1].checkpoint_cells == n
        assert step[0] == pytest.approx(plain[0], rel=1e-6) and step[1] == pytest.approx(plain[1], rel=1e-6)
        for a, b in zip(step[2], plain[2]):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
        for a, b in zip(step[3], plain[3]):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        # BatchNorm running statistics are updated once per forward, not again by the recomputation
        assert len(step[4]) == len(plain[4]) > 0
        for a, b in zip(step[4], plain[4]):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_a_checkpointed_search_epoch_matches_the_plain_one() -> None:
    overrides = ["search.epochs=1", "search.steps_per_epoch=2", "data.limit=64", "search.threads=1"]
    plain = Search(load_config("search_configs/smoke/darts.yaml", overrides))
    lean = Search(load_config("search_configs/smoke/darts.yaml", [*overrides, "supernet.checkpoint_cells=3"]))
    assert lean.model.checkpoint_cells == 3
    a, b = plain.run_epoch(), lean.run_epoch()
    assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
    assert b["genotype"] == a["genotype"]
    for cell in plain.model.space.cell_types:
        torch.testing.assert_close(lean.model.alphas[cell], plain.model.alphas[cell], rtol=1e-4, atol=1e-6)
