"""The DARTS search network (Liu et al., DARTS, ICLR 2019, Section 2.1 and Appendix A.1).

A stem convolution, then ``layers`` search cells; the cells at ``layers // 3`` and ``2 * layers // 3`` are
reduction cells that halve the spatial size and double the channels. A cell takes the outputs of the two
previous cells (nodes 0 and 1), preprocesses them to ``C`` channels, computes each intermediate node as the
sum of mixed ops over all earlier nodes, and outputs the concatenation of its intermediate nodes. All
normal cells share the ``normal`` alphas, all reduction cells the ``reduce`` alphas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, cast

import torch
from torch import nn

from raynas.ops import FactorizedReduce, ReLUConvBN
from raynas.supernet.base import ArchWeights, MixedOp, Supernet, check_size, run_cell_edges

if TYPE_CHECKING:
    from raynas.spaces.base import SearchSpace


class DartsSearchCell(nn.Module):
    """One DARTS search cell of type ``cell_type`` ("normal" or "reduce"), its graph taken from the space."""

    def __init__(self, space: "SearchSpace", cell_type: str, C_prev_prev: int, C_prev: int, C: int,
                 reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.cell_type = cell_type
        self.reduction = reduction
        self.edges = list(space.edges(cell_type))
        destinations = {dst for _, dst in self.edges}
        self.inputs = sorted({src for src, _ in self.edges} - destinations)
        self.intermediate = sorted(destinations)
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(C_prev_prev, C, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=False)
        self.mixed = nn.ModuleList(
            MixedOp(space.edge_ops(cell_type, e), C, 2 if reduction and src in self.inputs else 1, pool_bn=True)
            for e, (src, _) in enumerate(self.edges)
        )

    @property
    def out_multiplier(self) -> int:
        """Output channels in units of ``C``: the number of concatenated intermediate nodes."""
        return len(self.intermediate)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, w: torch.Tensor,
                active: Optional[list[list[bool]]] = None, single_path: bool = False) -> torch.Tensor:
        """The cell on inputs ``s0``, ``s1`` with architecture weights ``w`` (``[edges, ops]``; ``single_path``:
        GDAS' forward)."""
        inputs = {self.inputs[0]: self.preprocess0(s0), self.inputs[1]: self.preprocess1(s1)}
        states = run_cell_edges(self.edges, self.mixed, inputs, w, active, single_path)
        return torch.cat([states[node] for node in self.intermediate], dim=1)


class DartsSupernet(Supernet):
    """The DARTS search network over ``space`` (cells "normal" and "reduce").

    ``channels`` is the initial ``C``, ``layers`` the number of cells; the stem outputs
    ``stem_multiplier * C`` channels. Works for any input size (odd sizes are rounded up at reductions).
    """

    def __init__(self, space: "SearchSpace", *, channels: int, layers: int, num_classes: int, in_channels: int,
                 stem_multiplier: int = 3) -> None:
        check_size(channels=channels, layers=layers, num_classes=num_classes, in_channels=in_channels,
                   stem_multiplier=stem_multiplier)
        super().__init__(space)
        C = channels
        C_curr = stem_multiplier * C
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False),
            nn.BatchNorm2d(C_curr),
        )
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        reduction_prev = False
        cells = []
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            cell = DartsSearchCell(space, "reduce" if reduction else "normal", C_prev_prev, C_prev, C_curr,
                                   reduction, reduction_prev)
            cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, cell.out_multiplier * C_curr
        self.cells = nn.ModuleList(cells)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def features(self, x: torch.Tensor, weights: Optional[ArchWeights] = None) -> torch.Tensor:
        """Penultimate features ``[batch, channels]`` after global average pooling."""
        w = self.resolve_weights(weights)
        active = {cell: self.active_ops(w[cell]) for cell in w}
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            # nn.ModuleList types its items as Module; every item is a DartsSearchCell (built above)
            cell_type = cast(DartsSearchCell, cell).cell_type
            s0, s1 = s1, self.run_block(i, cell, s0, s1, w[cell_type], active[cell_type], self.single_path)
        return self.global_pooling(s1).flatten(1)
