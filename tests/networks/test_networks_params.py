"""Derived networks: exact parameter counts of published settings, forward shapes, auxiliary heads."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from raynas.networks import (AuxiliaryHeadCIFAR, Cell, NetworkCIFAR, NetworkImageNet, TinyNetwork,
                             count_parameters)
from raynas.spaces import DartsGenotype, NB201Genotype, get_space

DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")


def _uniform_cell(op: str) -> str:
    return f"|{op}~0|+|{op}~0|{op}~1|+|{op}~0|{op}~1|{op}~2|"


def test_darts_v2_cifar_matches_reference_param_size() -> None:
    net = get_space("darts").build_network(DARTS_V2, channels=36, layers=20, num_classes=10, in_channels=3,
                                           auxiliary=True)
    assert isinstance(net, NetworkCIFAR)
    assert count_parameters(net) == 3_349_342  # reference: "param size = 3.349342MB"
    # the auxiliary head on 576 channels: 1x1 conv 576->128, BN, 2x2 conv 128->768, BN, linear 768->10
    aux = 576 * 128 + 2 * 128 + 128 * 768 * 4 + 2 * 768 + 768 * 10 + 10
    assert count_parameters(net, exclude_auxiliary=False) == 3_349_342 + aux == 3_825_768


def test_darts_v2_imagenet_is_4_7m() -> None:
    net = get_space("darts").build_network(DARTS_V2, channels=48, layers=14, num_classes=1000, in_channels=3,
                                           auxiliary=True, imagenet=True)
    assert isinstance(net, NetworkImageNet)
    assert count_parameters(net) == 4_718_752
    assert round(count_parameters(net) / 1e6, 1) == 4.7


@pytest.mark.parametrize("op, expected", [
    ("none", 73_306), ("skip_connect", 73_306), ("avg_pool_3x3", 73_306),
    ("nor_conv_1x1", 241_306), ("nor_conv_3x3", 1_531_546),
])
def test_nb201_param_counts(op: str, expected: int) -> None:
    net = get_space("nb201").build_network(_uniform_cell(op), channels=16, layers=5, num_classes=10, in_channels=3)
    assert isinstance(net, TinyNetwork)
    assert count_parameters(net) == count_parameters(net, exclude_auxiliary=False) == expected


def test_nb201_extremes_round_like_the_benchmark() -> None:
    assert round(73_306 / 1e6, 2) == 0.07
    assert round(1_531_546 / 1e6, 2) == 1.53


@pytest.mark.parametrize("in_channels, size", [(1, 8), (3, 32)])
@pytest.mark.parametrize("imagenet", [False, True])
@pytest.mark.parametrize("auxiliary", [False, True])
def test_darts_forward_shapes(in_channels: int, size: int, imagenet: bool, auxiliary: bool) -> None:
    torch.manual_seed(0)
    net = get_space("darts").build_network(DARTS_V2, channels=8, layers=5, num_classes=7, in_channels=in_channels,
                                           auxiliary=auxiliary, drop_path_prob=0.2, imagenet=imagenet)
    x = torch.randn(2, in_channels, size, size)
    net.train()
    logits, aux = net.forward_with_aux(x)
    assert logits.shape == (2, 7)
    assert (aux is not None) == auxiliary
    if auxiliary:
        assert aux.shape == (2, 7)
        (logits.sum() + aux.sum()).backward()
        assert net.auxiliary_head.classifier.weight.grad is not None
    assert net(x).shape == (2, 7)
    net.eval()
    logits, aux = net.forward_with_aux(x)
    assert logits.shape == (2, 7) and aux is None
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("in_channels, size", [(1, 8), (3, 32), (3, 7)])
def test_nb201_forward_shapes(in_channels: int, size: int) -> None:
    torch.manual_seed(0)
    net = TinyNetwork(NB201Genotype.parse(_uniform_cell("nor_conv_3x3")), C=4, N=1, num_classes=3,
                      in_channels=in_channels)
    x = torch.randn(2, in_channels, size, size)
    logits, aux = net.forward_with_aux(x)
    assert logits.shape == (2, 3) and aux is None
    net.drop_path_prob = 0.3  # settable, unused
    assert net(x).shape == (2, 3)


def test_cifar_aux_head_follows_the_reference_at_8x8_and_adapts_below() -> None:
    torch.manual_seed(0)
    head = AuxiliaryHeadCIFAR(6, 4).eval()
    x = torch.randn(2, 6, 8, 8)
    reference = head.classifier(head.features(F.avg_pool2d(F.relu(x), 5, stride=3)).flatten(1))
    assert torch.allclose(head(x), reference)
    small = torch.randn(2, 6, 2, 2)  # digits: 8x8 inputs give 2x2 maps after two reductions
    assert torch.allclose(head(small), head.classifier(head.features(F.relu(small)).flatten(1)))
    assert head(torch.randn(2, 6, 1, 1)).shape == (2, 4)
    assert head(torch.randn(2, 6, 16, 16)).shape == (2, 4)


def test_drop_path_applies_to_non_identity_ops_only() -> None:
    genotype = DartsGenotype.parse(DARTS_V2)
    skip_only = DartsGenotype(normal=[("skip_connect", 0), ("skip_connect", 1)] * 4, normal_concat=(2, 3, 4, 5),
                              reduce=genotype.reduce, reduce_concat=genotype.reduce_concat)
    x0, x1 = torch.randn(4, 8, 6, 6), torch.randn(4, 8, 6, 6)
    for cell_genotype, changes in ((genotype, True), (skip_only, False)):
        torch.manual_seed(0)
        cell = Cell(cell_genotype, 8, 8, 8, reduction=False, reduction_prev=False).train()
        torch.manual_seed(1)
        plain = cell(x0, x1, 0.0)
        torch.manual_seed(1)
        dropped = cell(x0, x1, 0.5)
        assert plain.shape == dropped.shape == (4, 32, 6, 6)
        assert (not torch.allclose(plain, dropped)) is changes
        cell.eval()
        assert torch.allclose(cell(x0, x1, 0.5), cell(x0, x1, 0.0))  # no drop-path at evaluation


def test_nb201_none_edges_contribute_nothing() -> None:
    net = TinyNetwork(_uniform_cell("none"), C=4, N=2, num_classes=3, in_channels=1).eval()
    assert sum(len(cell.ops) for cell in net.cells if hasattr(cell, "ops")) == 0
    logits = net(torch.randn(2, 1, 8, 8))
    # every cell outputs zeros, so the logits are the classifier's bias
    assert torch.allclose(logits, net.classifier.bias.expand(2, 3))


def test_reduction_layout_of_cifar_network() -> None:
    net = NetworkCIFAR(DARTS_V2, 4, 10, 8, auxiliary=True)
    assert [cell.reduction for cell in net.cells] == [False, False, True, False, False, True, False, False]
    assert net.auxiliary_head.features[0].in_channels == 4 * 4 * 4  # output of the second reduction cell
    assert net.classifier.in_features == 4 * 4 * 4
