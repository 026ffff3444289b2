"""The NAS-Bench-201 search network searched with DARTS (Dong & Yang, ICLR 2020; Liu et al., DARTS, ICLR 2019).

A stem convolution, then three stages of ``layers`` search cells at ``C``, ``2C`` and ``4C`` channels,
separated by ResNet basic blocks of stride 2; BatchNorm and ReLU; global pooling; a linear classifier. Every
cell shares the one ``cell`` alpha matrix. Node ``j`` of a cell is the sum of mixed ops over all earlier
nodes; the cell outputs its last node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch
from torch import nn

from raynas.ops import ReLUConvBN
from raynas.supernet.base import ArchWeights, MixedOp, Supernet, check_size, run_cell_edges

if TYPE_CHECKING:
    from raynas.spaces.base import SearchSpace


class ResNetBasicBlock(nn.Module):
    """Two 3x3 ReLU-Conv-BN (the first strided) plus a shortcut: the NB201 reduction block."""

    def __init__(self, C_in: int, C_out: int, stride: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride, 1, affine=True)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, affine=True)
        if stride == 2:
            # ceil_mode matches the strided convolution on odd sizes; on even sizes it changes nothing
            self.shortcut: nn.Module = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True),
                nn.Conv2d(C_in, C_out, 1, bias=False),
            )
        elif C_in != C_out:
            self.shortcut = ReLUConvBN(C_in, C_out, 1, 1, 0, affine=True)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``shortcut(x) + conv_b(conv_a(x))``."""
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201SearchCell(nn.Module):
    """One NB201 search cell: a DAG whose edges (from the space) each hold a :class:`MixedOp`."""

    def __init__(self, space: "SearchSpace", cell_type: str, C: int) -> None:
        super().__init__()
        self.edges = list(space.edges(cell_type))
        destinations = {dst for _, dst in self.edges}
        self.input = min({src for src, _ in self.edges} - destinations)
        self.output = max(destinations)
        self.mixed = nn.ModuleList(MixedOp(space.edge_ops(cell_type, e), C, 1) for e in range(len(self.edges)))

    def forward(self, x: torch.Tensor, w: torch.Tensor, active: Optional[list[list[bool]]] = None,
                single_path: bool = False) -> torch.Tensor:
        """The cell on ``x`` with architecture weights ``w`` (``[edges, ops]``; ``single_path``: GDAS' forward)."""
        return run_cell_edges(self.edges, self.mixed, {self.input: x}, w, active, single_path)[self.output]


class NB201Supernet(Supernet):
    """The NAS-Bench-201 search network over ``space`` (one cell type, "cell").

    ``channels`` is the first stage's ``C`` and ``layers`` the number of cells per stage (``N``; the
    benchmark uses 5). Works for any input size of at least 1x1.
    """

    def __init__(self, space: "SearchSpace", *, channels: int, layers: int, num_classes: int,
                 in_channels: int) -> None:
        check_size(channels=channels, layers=layers, num_classes=num_classes, in_channels=in_channels)
        super().__init__(space)
        (self.cell_type,) = space.cell_types
        C = channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        blocks: list[nn.Module] = []
        C_prev = C
        for stage in range(3):
            C_curr = C * 2 ** stage
            if stage:
                blocks.append(ResNetBasicBlock(C_prev, C_curr, 2))
            blocks.extend(NB201SearchCell(space, self.cell_type, C_curr) for _ in range(layers))
            C_prev = C_curr
        self.cells = nn.ModuleList(blocks)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def features(self, x: torch.Tensor, weights: Optional[ArchWeights] = None) -> torch.Tensor:
        """Penultimate features ``[batch, 4C]`` after BN, ReLU and global average pooling."""
        w = self.resolve_weights(weights)[self.cell_type]
        active = self.active_ops(w)
        out = self.stem(x)
        for i, block in enumerate(self.cells):
            args = (out, w, active, self.single_path) if isinstance(block, NB201SearchCell) else (out,)
            out = self.run_block(i, block, *args)
        return self.global_pooling(self.lastact(out)).flatten(1)
