"""The DARTS and NB201 supernets: shapes, parameter split, discrete evaluation, gradients, determinism."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from raynas.errors import ConfigError, SpaceError
from raynas.spaces import get_space
from raynas.supernet import DartsSupernet, MixedOp, NB201Supernet, Supernet, discrete_weights

C = 4
# DARTS with 3 layers: a normal cell, then two reduction cells (the second preprocesses with FactorizedReduce)
LAYERS = {"darts": 3, "nb201": 1}
FEATURES = {"darts": 4 * 4 * C, "nb201": 4 * C}


def build(space_name: str, in_channels: int = 1, seed: int = 0, num_classes: int = 10) -> Supernet:
    torch.manual_seed(seed)
    return get_space(space_name).build_supernet(channels=C, layers=LAYERS[space_name], num_classes=num_classes,
                                                in_channels=in_channels)


def count_op_calls(model: Supernet) -> Counter:
    """Counts forward calls of every candidate op (by module id) via forward hooks."""
    calls: Counter = Counter()
    for module in model.modules():
        if isinstance(module, MixedOp):
            for op in module.ops:
                op.register_forward_hook(lambda mod, inp, out: calls.update([id(mod)]))
    return calls


@pytest.mark.parametrize("space_name", ["darts", "nb201"])
@pytest.mark.parametrize("in_channels,size", [(1, 8), (3, 32), (3, 7)])
def test_output_and_feature_shapes(space_name: str, in_channels: int, size: int) -> None:
    model = build(space_name, in_channels)
    x = torch.randn(2, in_channels, size, size)
    assert model(x).shape == (2, 10)
    assert model.features(x).shape == (2, FEATURES[space_name])


def test_constructors_match_space_contract() -> None:
    assert isinstance(build("darts"), DartsSupernet)
    assert isinstance(build("nb201"), NB201Supernet)
    darts = DartsSupernet(get_space("darts"), channels=2, layers=1, num_classes=3, in_channels=1, stem_multiplier=1)
    assert darts.stem[0].out_channels == 2
    with pytest.raises(ConfigError, match="channels"):
        NB201Supernet(get_space("nb201"), channels=0, layers=1, num_classes=3, in_channels=1)


@pytest.mark.parametrize("space_name", ["darts", "nb201"])
def test_alphas_are_parameters_and_parameter_lists_partition(space_name: str) -> None:
    model = build(space_name)
    space = model.space
    names = dict(model.named_parameters())
    for cell in space.cell_types:
        assert names[f"alphas.{cell}"] is model.alphas[cell]
        assert tuple(model.alphas[cell].shape) == tuple(space.arch_shape(cell))
        assert model.alphas[cell].abs().max() < 0.01  # 1e-3 * randn
    arch = {id(p) for p in model.arch_parameters()}
    weight = {id(p) for p in model.weight_parameters()}
    assert arch == {id(model.alphas[c]) for c in space.cell_types}
    assert not arch & weight
    assert arch | weight == {id(p) for p in model.parameters()}
    for w in model.arch_weights().values():
        torch.testing.assert_close(w.sum(dim=-1), torch.ones(w.shape[0]))
        assert w.requires_grad


def sample_choices(space_name: str, seed: int) -> dict:
    space = get_space(space_name)
    return space.choices_from_genotype(space.sample(random.Random(seed)))


@pytest.mark.parametrize("space_name", ["darts", "nb201"])
def test_discrete_forward_equals_dense_forward_and_runs_fewer_ops(space_name: str) -> None:
    model = build(space_name).train()
    space = model.space
    choices = sample_choices(space_name, 3)
    onehot = discrete_weights(space, choices)
    for cell in space.cell_types:
        assert onehot[cell].sum().item() == len(choices[cell])
        assert torch.equal(onehot[cell].sum(dim=1) > 0,
                           torch.tensor([e in choices[cell] for e in range(space.arch_shape(cell)[0])]))
    calls = count_op_calls(model)
    x = torch.randn(4, 1, 8, 8)

    dense_weights = {cell: w.clone().requires_grad_(True) for cell, w in onehot.items()}
    dense = model(x, dense_weights)  # weights require grad: every op but `none` runs
    dense_calls = sum(calls.values())
    calls.clear()
    with torch.no_grad():
        discrete = model(x, onehot)
    discrete_calls = sum(calls.values())

    torch.testing.assert_close(discrete, dense.detach(), rtol=1e-6, atol=1e-6)
    cells_of = Counter(cell.cell_type if space_name == "darts" else "cell"
                       for cell in model.cells if hasattr(cell, "mixed"))
    assert discrete_calls == sum(len(choices[cell]) * n for cell, n in cells_of.items())
    assert dense_calls == sum(sum(op != "none" for e in range(space.arch_shape(cell)[0])
                                  for op in space.edge_ops(cell, e)) * n
                              for cell, n in cells_of.items())
    assert discrete_calls < dense_calls


def test_mixed_op_skips_zero_weights_only_when_gradients_cannot_change() -> None:
    torch.manual_seed(0)
    ops = get_space("nb201").edge_ops("cell", 0)
    mixed = MixedOp(ops, C, 1)
    calls = Counter()
    for op in mixed.ops:
        op.register_forward_hook(lambda mod, inp, out: calls.update([id(mod)]))
    x = torch.randn(2, C, 8, 8)
    w = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0])
    with torch.no_grad():
        cheap = mixed(x, w)
    assert sum(calls.values()) == 1
    calls.clear()
    w_grad = w.clone().requires_grad_(True)
    full = mixed(x, w_grad)
    assert sum(calls.values()) == len(ops) - ops.count("none")  # `none` never runs: its term is zero
    torch.testing.assert_close(cheap, full.detach())
    full.sum().backward()
    assert w_grad.grad is not None and w_grad.grad[3] != 0  # d/dw of a zero-weighted op is its output
    assert w_grad.grad[ops.index("none")] == 0
    # a dropped edge (all weights zero) yields zeros of the right shape, also when strided
    strided = MixedOp(ops, C, 2)
    with torch.no_grad():
        zeros = strided(torch.randn(2, C, 7, 7), torch.zeros(len(ops)))
    assert zeros.shape == (2, C, 4, 4) and not zeros.any()


@pytest.mark.parametrize("space_name", ["darts", "nb201"])
def test_gradient_reaches_every_alpha(space_name: str) -> None:
    model = build(space_name)
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    F.cross_entropy(model(x), y).backward()
    for cell in model.space.cell_types:
        grad = model.alphas[cell].grad
        assert grad is not None and bool((grad != 0).all()), cell


@pytest.mark.parametrize("space_name", ["darts", "nb201"])
def test_seeded_construction_is_deterministic(space_name: str) -> None:
    a, b, other = build(space_name, seed=5), build(space_name, seed=5), build(space_name, seed=6)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    cell = a.space.cell_types[0]
    assert not torch.equal(a.alphas[cell], other.alphas[cell])
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(a(x), b(x))


def test_modules_follow_dtype_of_parameters() -> None:
    model = build("nb201").double()
    out = model(torch.randn(2, 1, 8, 8, dtype=torch.float64),
                discrete_weights(model.space, sample_choices("nb201", 1), dtype=torch.float64))
    assert out.dtype == torch.float64


def test_bad_weights_and_choices_raise_space_errors() -> None:
    model = build("nb201")
    with pytest.raises(SpaceError, match="shape"):
        model(torch.randn(1, 1, 8, 8), {"cell": torch.zeros(6, 4)})
    with pytest.raises(SpaceError, match="lack"):
        model(torch.randn(1, 1, 8, 8), {})
    with pytest.raises(SpaceError, match="conv_9x9"):
        discrete_weights(model.space, {"cell": {0: "conv_9x9"}})
    with pytest.raises(SpaceError, match="edge 6"):
        discrete_weights(model.space, {"cell": {6: "none"}})
