"""The RobustDARTS spaces S1-S4 (Zela et al., ICLR 2020) and DARTS-PT's darts-nonone: op sets per edge,
genotype validation, supernets and derived networks."""

from __future__ import annotations

import dataclasses
import random

import pytest

from raynas.errors import GenotypeError
from raynas.spaces import DartsGenotype, get_space

ROBUST_NAMES = ["s1", "s2", "s3", "s4", "darts-nonone"]

# S1, written out independently of raynas.spaces.robust (edge 0..13, both cells)
_S1_ABBREV = {"skip": "skip_connect", "sep3": "sep_conv_3x3", "dil3": "dil_conv_3x3", "dil5": "dil_conv_5x5",
              "max": "max_pool_3x3", "avg": "avg_pool_3x3"}
S1_NORMAL = ("skip/dil3 skip/dil5 skip/dil5 skip/sep3 skip/dil3 max/skip skip/sep3 skip/sep3 skip/dil3 skip/sep3 "
             "max/skip skip/dil3 dil3/dil5 dil3/dil5")
S1_REDUCE = ("max/avg max/dil3 max/avg max/avg skip/dil5 max/avg max/sep3 skip/dil3 skip/dil5 max/avg max/avg "
             "skip/dil5 skip/dil5 skip/dil5")
SAME_EVERYWHERE = {
    "s2": ("skip_connect", "sep_conv_3x3"),
    "s3": ("none", "skip_connect", "sep_conv_3x3"),
    "s4": ("noise", "sep_conv_3x3"),
    "darts-nonone": ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                     "dil_conv_3x3", "dil_conv_5x5"),
}
EDGES = [(0, 2), (1, 2), (0, 3), (1, 3), (2, 3), (0, 4), (1, 4), (2, 4), (3, 4), (0, 5), (1, 5), (2, 5), (3, 5),
         (4, 5)]


def _s1_pairs(table: str) -> list[tuple[str, str]]:
    return [tuple(_S1_ABBREV[a] for a in pair.split("/")) for pair in table.split()]


def test_s1_ops_edge_by_edge() -> None:
    space = get_space("s1")
    for cell, table in (("normal", S1_NORMAL), ("reduce", S1_REDUCE)):
        expected = _s1_pairs(table)
        assert len(expected) == 14
        assert space.edges(cell) == EDGES
        assert space.arch_shape(cell) == (14, 2)
        for edge, ops in enumerate(expected):
            assert space.edge_ops(cell, edge) == ops, (cell, edge)


@pytest.mark.parametrize("name", sorted(SAME_EVERYWHERE))
def test_same_ops_on_every_edge(name: str) -> None:
    space = get_space(name)
    ops = SAME_EVERYWHERE[name]
    for cell in ("normal", "reduce"):
        assert space.edges(cell) == EDGES
        assert space.arch_shape(cell) == (14, len(ops))
        assert all(space.edge_ops(cell, edge) == ops for edge in range(14))


def test_none_only_in_s3() -> None:
    def has_none(name: str) -> bool:
        space = get_space(name)
        return any("none" in space.edge_ops(cell, e) for cell in space.cell_types for e in range(14))

    assert has_none("s3")
    assert not any(has_none(name) for name in ("s1", "s2", "s4", "darts-nonone"))
    assert has_none("darts")


@pytest.mark.parametrize("name", ROBUST_NAMES)
def test_genotype_parses_from_its_text(name: str) -> None:
    space = get_space(name)
    genotype = space.sample(random.Random(0))
    assert space.parse_genotype(str(genotype)) == genotype


def _with_normal(genotype: DartsGenotype, position: int, entry: tuple[str, int]) -> str:
    normal = list(genotype.normal)
    normal[position] = entry
    return str(dataclasses.replace(genotype, normal=tuple(normal)))


@pytest.mark.parametrize("name,op", [("s2", "sep_conv_5x5"), ("s3", "dil_conv_3x3"), ("s4", "skip_connect"),
                                     ("darts-nonone", "sep_conv_7x7")])
def test_disallowed_op_is_rejected(name: str, op: str) -> None:
    space = get_space(name)
    genotype = space.sample(random.Random(1))
    with pytest.raises(GenotypeError, match=f"unknown op '{op}' for this edge of space '{name}'"):
        space.parse_genotype(_with_normal(genotype, 0, (op, genotype.normal[0][1])))


def test_s1_rejects_skip_on_normal_edge_12_but_allows_it_on_edge_11() -> None:
    space = get_space("s1")
    # node 5 keeps sources 2 (edge 11: skip/dil3) and 3 (edge 12: dil3/dil5); positions 6 and 7 of the cell
    base = space.sample(random.Random(2))
    normal = list(base.normal)
    normal[6:8] = [("skip_connect", 2), ("dil_conv_5x5", 3)]
    ok = dataclasses.replace(base, normal=tuple(normal))
    assert space.parse_genotype(str(ok)) == ok
    with pytest.raises(GenotypeError, match=r"unknown op 'skip_connect' for this edge of space 's1'; "
                                            r"allowed: dil_conv_3x3, dil_conv_5x5"):
        space.parse_genotype(_with_normal(ok, 7, ("skip_connect", 3)))
    # a reduce-only op on a normal edge: avg_pool_3x3 appears on no normal edge
    with pytest.raises(GenotypeError, match="unknown op 'avg_pool_3x3'"):
        space.parse_genotype(_with_normal(ok, 6, ("avg_pool_3x3", 2)))


def test_s3_rejects_none_in_a_derived_genotype() -> None:
    space = get_space("s3")
    genotype = space.sample(random.Random(0))
    assert genotype.count("none") == 0
    with pytest.raises(GenotypeError, match="'none' is not allowed"):
        space.parse_genotype(_with_normal(genotype, 0, ("none", genotype.normal[0][1])))


@pytest.mark.parametrize("name", ROBUST_NAMES)
def test_supernet_and_derived_network(name: str) -> None:
    torch = pytest.importorskip("torch")
    space = get_space(name)
    torch.manual_seed(0)
    supernet = space.build_supernet(channels=4, layers=3, num_classes=5, in_channels=1)
    x = torch.randn(2, 1, 8, 8)
    assert supernet(x).shape == (2, 5)
    n_ops = len(space.edge_ops("normal", 0))
    for cell in ("normal", "reduce"):
        assert tuple(supernet.alphas[cell].shape) == (14, n_ops)

    net = space.build_network(space.sample(random.Random(0)), channels=4, layers=3, num_classes=5, in_channels=1)
    net.train()
    assert net(x).shape == (2, 5)


def test_s4_noise_makes_the_derived_network_random() -> None:
    torch = pytest.importorskip("torch")
    space = get_space("s4")
    base = space.sample(random.Random(0))
    # every normal-cell edge is noise, so the normal cell's output is pure noise
    genotype = dataclasses.replace(base, normal=tuple(("noise", src) for _, src in base.normal))
    assert genotype.count("noise", "normal") == 8
    torch.manual_seed(0)
    net = space.build_network(genotype, channels=4, layers=3, num_classes=5, in_channels=1).train()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        first, second = net(x), net(x)
    assert first.shape == second.shape == (2, 5)
    assert not torch.equal(first, second)
