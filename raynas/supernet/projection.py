"""Edges a selection has decided: rows of the architecture weights that no longer follow the alphas.

DARTS-PT (Wang et al., "Rethinking Architecture Selection in Differentiable NAS", ICLR 2021) fixes the
architecture edge by edge while the supernet keeps training: a decided edge runs its one kept op (a one-hot
row of the architecture weights) and an edge dropped by topology selection runs nothing (a zero row). The
other rows stay ``softmax(alpha)`` and keep learning. :class:`Projection` holds those fixed rows; a
:class:`raynas.supernet.Supernet` whose ``projection`` is set applies it in ``arch_weights``, so every
forward pass (weight step, architecture step, evaluation) sees the projected architecture and the alphas of
fixed rows receive no gradient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional

import torch

from raynas.errors import SpaceError

if TYPE_CHECKING:
    from raynas.spaces.base import SearchSpace

DROPPED = -1  #: op index stored for a dropped edge


class Projection:
    """The fixed rows of one supernet's architecture weights, per cell type: ``{edge: op index or DROPPED}``.

    Owned by one search (not thread-safe). Its state is a plain dict of lists (:meth:`get_state`), saved
    with the search's checkpoint.
    """

    def __init__(self, space: "SearchSpace") -> None:
        self.space = space
        self.fixed: dict[str, dict[int, int]] = {cell: {} for cell in space.cell_types}
        self._tensors: dict[tuple[str, str, Any], tuple[torch.Tensor, torch.Tensor]] = {}

    # -- decisions ---------------------------------------------------------------------------------------
    def keep_op(self, cell: str, edge: int, op_index: int) -> None:
        """Fix edge ``edge`` of ``cell`` to the op in column ``op_index``."""
        edge = self.space.check_edge(cell, edge)
        n_ops = self.space.arch_shape(cell)[1]
        if not 0 <= op_index < n_ops:
            raise SpaceError(f"cell {cell!r} edge {edge} has no op index {op_index}; valid: 0..{n_ops - 1}")
        self.fixed[cell][edge] = int(op_index)
        self._tensors.clear()

    def drop_edge(self, cell: str, edge: int) -> None:
        """Remove edge ``edge`` of ``cell`` from the architecture (its row becomes zero)."""
        self.fixed[cell][self.space.check_edge(cell, edge)] = DROPPED
        self._tensors.clear()

    def is_dropped(self, cell: str, edge: int) -> bool:
        """Whether edge ``edge`` of ``cell`` was dropped."""
        return self.fixed[cell].get(edge) == DROPPED

    def undecided(self, cell: str) -> list[int]:
        """The edges of ``cell`` that still follow the alphas, in edge order."""
        return [e for e in range(len(self.space.edges(cell))) if e not in self.fixed[cell]]

    def decided_count(self) -> int:
        """How many rows are fixed, over all cell types."""
        return sum(len(rows) for rows in self.fixed.values())

    def choices(self) -> dict[str, dict[int, str]]:
        """The kept ops of every decided, not dropped edge: ``{cell: {edge: op}}``."""
        return {cell: {e: self.space.edge_ops(cell, e)[k] for e, k in sorted(rows.items()) if k != DROPPED}
                for cell, rows in self.fixed.items()}

    # -- applying ----------------------------------------------------------------------------------------
    def apply(self, weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``weights`` with every fixed row replaced (differentiable in the rows that are not fixed)."""
        out = dict(weights)
        for cell, rows in self.fixed.items():
            if rows:
                mask, values = self._fixed_rows(cell, weights[cell])
                out[cell] = torch.where(mask, values, weights[cell])
        return out

    def _fixed_rows(self, cell: str, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (cell, str(like.device), like.dtype)
        if key not in self._tensors:
            mask = torch.zeros(like.shape, dtype=torch.bool)
            values = torch.zeros(like.shape, dtype=like.dtype)
            for edge, k in self.fixed[cell].items():
                mask[edge] = True
                if k != DROPPED:
                    values[edge, k] = 1.0
            self._tensors[key] = (mask.to(like.device), values.to(like.device))
        return self._tensors[key]

    # -- state -------------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, list[list[int]]]:
        """``{cell: [[edge, op index or -1], ...]}`` (loadable with ``torch.load(weights_only=True)``)."""
        return {cell: [[e, k] for e, k in sorted(rows.items())] for cell, rows in self.fixed.items()}

    def set_state(self, state: Optional[Mapping[str, Any]]) -> None:
        """Restore :meth:`get_state` (None or empty: nothing fixed)."""
        self.fixed = {cell: {} for cell in self.space.cell_types}
        for cell, rows in (state or {}).items():
            self.space.check_cell(cell)
            for edge, k in rows:
                self.fixed[cell][int(edge)] = int(k)
        self._tensors.clear()
