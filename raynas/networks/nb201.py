"""The NAS-Bench-201 network of a cell (Dong & Yang, ICLR 2020): the benchmark's ``TinyNetwork``.

A 3x3 conv stem, three stages of N copies of the cell at C, 2C and 4C channels separated by residual
reduction blocks, then BN, ReLU, global average pooling and a linear classifier. At C=16, N=5 and 10
classes the parameter counts span the benchmark's 0.07M (cells without convolutions) to 1.53M (all
``nor_conv_3x3``).
"""

from __future__ import annotations

import torch
from torch import nn

from raynas.ops import ReLUConvBN, make_op
from raynas.spaces.genotype import NB201Genotype


class InferCell(nn.Module):
    """A derived NB201 cell: node j is the sum of op(node i) over its incoming edges; ``none`` edges are
    left out (a node whose edges are all ``none`` is zero). The output is the last node."""

    def __init__(self, genotype: NB201Genotype, C: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList()
        self.inputs: list[list[tuple[int, int]]] = []  # per node: (index into self.ops, source node)
        for node in genotype.nodes:
            wiring = []
            for op, src in node:
                if op == "none":
                    continue
                wiring.append((len(self.ops), src))
                self.ops.append(make_op(op, C, 1, affine=True))
            self.inputs.append(wiring)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The cell output (its last node) for the cell input ``x``."""
        nodes = [x]
        for wiring in self.inputs:
            total = None
            for op_index, src in wiring:
                h = self.ops[op_index](nodes[src])
                total = h if total is None else total + h
            nodes.append(torch.zeros_like(x) if total is None else total)
        return nodes[-1]


class ResNetBasicBlock(nn.Module):
    """The stride-2 residual block between stages: ReLUConvBN 3x3 /2, ReLUConvBN 3x3, plus a shortcut of
    2x2 average pooling and a 1x1 conv."""

    def __init__(self, C_in: int, C_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, 2, 1, affine=True)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, affine=True)
        self.downsample = nn.Sequential(
            # ceil_mode keeps odd map sizes in step with conv_a; at even sizes it changes nothing
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True),
            nn.Conv2d(C_in, C_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual sum of the two-conv branch and the shortcut."""
        return self.conv_b(self.conv_a(x)) + self.downsample(x)


class TinyNetwork(nn.Module):
    """The NB201 network of ``genotype`` with C initial channels and N cells per stage.

    ``drop_path_prob`` exists for a uniform training interface; NB201 training does not use it.
    """

    def __init__(self, genotype: NB201Genotype | str, C: int = 16, N: int = 5, num_classes: int = 10,
                 in_channels: int = 3) -> None:
        super().__init__()
        if isinstance(genotype, str):
            genotype = NB201Genotype.parse(genotype)
        self.drop_path_prob = 0.0
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        cells: list[nn.Module] = []
        C_prev = C
        for stage, C_stage in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                cells.append(ResNetBasicBlock(C_prev, C_stage))
            cells.extend(InferCell(genotype, C_stage) for _ in range(N))
            C_prev = C_stage
        self.cells = nn.Sequential(*cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of the batch ``x``."""
        out = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.global_pooling(out).flatten(1))

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """``(logits, None)``: NB201 networks have no auxiliary head."""
        return self.forward(x), None
