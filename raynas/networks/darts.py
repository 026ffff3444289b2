"""Derived DARTS networks for training from scratch (the evaluation networks of Liu et al., ICLR 2019).

``NetworkCIFAR`` and ``NetworkImageNet`` stack derived cells of one genotype with two reduction cells at
1/3 and 2/3 of the depth, an optional auxiliary head after the second reduction, global pooling and a
linear classifier. Parameter counts equal the reference implementation's (DARTS_V2 at C=36, 20 cells,
10 classes: 3,349,342 without the auxiliary head). Small inputs work: pooling adapts to the map size.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from raynas.ops import FactorizedReduce, Identity, ReLUConvBN, drop_path, make_op
from raynas.spaces.genotype import DartsGenotype


def _as_genotype(genotype: DartsGenotype | str) -> DartsGenotype:
    return DartsGenotype.parse(genotype) if isinstance(genotype, str) else genotype


class Cell(nn.Module):
    """A derived cell: two preprocessed inputs, two ops into each intermediate node, concat of the chosen
    nodes. In a reduction cell the ops reading the cell inputs (nodes 0, 1) have stride 2."""

    def __init__(self, genotype: DartsGenotype, C_prev_prev: int, C_prev: int, C: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(C_prev_prev, C, affine=True)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=True)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=True)
        cell = "reduce" if reduction else "normal"
        pairs = genotype.cell(cell)
        self.concat = tuple(genotype.concat(cell))
        self.multiplier = len(self.concat)
        self.sources = tuple(src for _, src in pairs)
        self.ops = nn.ModuleList(
            make_op(op, C, 2 if reduction and src < 2 else 1, affine=True) for op, src in pairs)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        """The cell output for the outputs ``s0``, ``s1`` of the two previous cells."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for first in range(0, len(self.ops), 2):
            node = None
            for k in (first, first + 1):
                op = self.ops[k]
                h = op(states[self.sources[k]])
                if not isinstance(op, Identity):
                    h = drop_path(h, drop_prob, self.training)
                node = h if node is None else node + h
            states.append(node)
        return torch.cat([states[i] for i in self.concat], dim=1)


class _AuxiliaryHead(nn.Module):
    """ReLU, average pooling to 2x2, 1x1 conv to 128, BN, ReLU, 2x2 conv to 768, [BN,] ReLU, linear.

    The reference pools with a fixed 5x5 window that yields 2x2 only for maps of about 8x8 (CIFAR) or 7x7
    (ImageNet); at other sizes (digits give 2x2 maps) adaptive pooling to 2x2 takes its place.
    """

    def __init__(self, C: int, num_classes: int, pool_stride: int, final_bn: bool) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.pool = nn.AvgPool2d(5, stride=pool_stride, padding=0, count_include_pad=False)
        layers: list[nn.Module] = [
            nn.Conv2d(C, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
        ]
        if final_bn:
            layers.append(nn.BatchNorm2d(768))
        layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(768, num_classes)
        self._stride = pool_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Auxiliary logits of the feature map ``x``."""
        x = self.relu(x)
        height, width = x.shape[-2:]
        if min(height, width) >= 5 and (height - 5) // self._stride + 1 == 2 and (width - 5) // self._stride + 1 == 2:
            x = self.pool(x)
        else:
            x = F.adaptive_avg_pool2d(x, 2)
        x = self.features(x)
        return self.classifier(x.flatten(1))


class AuxiliaryHeadCIFAR(_AuxiliaryHead):
    """The CIFAR auxiliary head (reference: 8x8 input, 5x5 pooling with stride 3)."""

    def __init__(self, C: int, num_classes: int) -> None:
        super().__init__(C, num_classes, pool_stride=3, final_bn=True)


class AuxiliaryHeadImageNet(_AuxiliaryHead):
    """The ImageNet auxiliary head (reference: 7x7 input, 5x5 pooling with stride 2).

    As in the reference, there is no BatchNorm after the 768-channel conv (the paper's models lack it).
    """

    def __init__(self, C: int, num_classes: int) -> None:
        super().__init__(C, num_classes, pool_stride=2, final_bn=False)


class _Network(nn.Module):
    """Cells, auxiliary head and classifier shared by the CIFAR and ImageNet networks; subclasses build
    the stem and return ``(s0, s1)`` from :meth:`stem_forward`."""

    def _build_cells(self, genotype: DartsGenotype, C: int, num_classes: int, layers: int, auxiliary: bool,
                     C_prev_prev: int, C_prev: int, reduction_prev: bool,
                     aux_head: Callable[[int, int], _AuxiliaryHead]) -> None:
        self.layers = layers
        self.auxiliary = auxiliary
        self.aux_index = 2 * layers // 3
        self.cells = nn.ModuleList()
        C_curr = C
        C_aux = C_prev
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            cell = Cell(genotype, C_prev_prev, C_prev, C_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, cell.multiplier * C_curr
            if i == self.aux_index:
                C_aux = C_prev
        self.auxiliary_head = aux_head(C_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def stem_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(logits, auxiliary logits)``; the latter only with an auxiliary head in training mode."""
        return self._run(x, want_aux=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of the batch ``x``."""
        return self._run(x, want_aux=False)[0]

    def _run(self, x: torch.Tensor, want_aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        aux_logits = None
        s0, s1 = self.stem_forward(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_index and want_aux and self.auxiliary_head is not None and self.training:
                aux_logits = self.auxiliary_head(s1)
        out = self.global_pooling(s1)
        return self.classifier(out.flatten(1)), aux_logits


class NetworkCIFAR(_Network):
    """The DARTS CIFAR network: a 3x3 conv stem to 3C channels, ``layers`` cells (C doubling at the two
    reductions), optional auxiliary head, global average pooling, linear classifier."""

    def __init__(self, genotype: DartsGenotype | str, C: int, num_classes: int, layers: int, auxiliary: bool,
                 in_channels: int = 3, drop_path_prob: float = 0.0) -> None:
        super().__init__()
        genotype = _as_genotype(genotype)
        self.drop_path_prob = drop_path_prob
        stem_channels = 3 * C
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(stem_channels),
        )
        self._build_cells(genotype, C, num_classes, layers, auxiliary, stem_channels, stem_channels,
                          reduction_prev=False, aux_head=AuxiliaryHeadCIFAR)

    def stem_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both cell inputs of the first cell are the stem output."""
        s = self.stem(x)
        return s, s


class NetworkImageNet(_Network):
    """The DARTS ImageNet network: two strided conv stems (input/4 and input/8), then cells as in
    :class:`NetworkCIFAR`, with global average pooling (the reference's 7x7 pool at 224x224 inputs)."""

    def __init__(self, genotype: DartsGenotype | str, C: int, num_classes: int, layers: int, auxiliary: bool,
                 in_channels: int = 3, drop_path_prob: float = 0.0) -> None:
        super().__init__()
        genotype = _as_genotype(genotype)
        self.drop_path_prob = drop_path_prob
        self.stem0 = nn.Sequential(
            nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        self._build_cells(genotype, C, num_classes, layers, auxiliary, C, C, reduction_prev=True,
                          aux_head=AuxiliaryHeadImageNet)

    def stem_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The first cell reads the outputs of both stems."""
        s0 = self.stem0(x)
        return s0, self.stem1(s0)
