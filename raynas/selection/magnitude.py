"""Magnitude selection: the architecture of the strongest architecture weights (Liu et al., DARTS, ICLR 2019).

DARTS (Section 2.4) derives a cell by keeping, for every intermediate node, the two incoming edges whose
strongest op other than ``none`` has the largest weight, each with that op. In cells that keep every edge
(NAS-Bench-201) the rule reduces to the argmax op per edge, ``none`` included. An argmax may disconnect the
cell (no path of non-``none`` ops from the input to the output); with ``skip_disconnected`` the connected
choice of the largest total log weight is taken instead. Imports numpy, not torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from raynas.errors import SpaceError
from raynas.selection.base import Selection

if TYPE_CHECKING:
    from raynas.objectives.base import StepContext
    from raynas.spaces.base import SearchSpace
    from raynas.spaces.genotype import Genotype
    from raynas.supernet.base import Supernet

NONE_OP = "none"
#: product spaces up to this many choices per cell are enumerated exactly when repairing a disconnected cell
MAX_ENUMERATION = 100_000


def _input_nodes(edges: list[tuple[int, int]]) -> list[int]:
    """Nodes with no incoming edge."""
    return sorted({src for src, _ in edges} - {dst for _, dst in edges})


def _output_nodes(edges: list[tuple[int, int]]) -> list[int]:
    """Nodes with no outgoing edge."""
    return sorted({dst for _, dst in edges} - {src for src, _ in edges})


def _cell_matrix(space: "SearchSpace", cell: str, weights: Mapping[str, Any]) -> np.ndarray:
    if cell not in weights:
        raise SpaceError(f"architecture weights lack cell {cell!r}; need {', '.join(space.cell_types)}")
    w = np.asarray(weights[cell], dtype=np.float64)
    shape = tuple(space.arch_shape(cell))
    if w.shape != shape:
        raise SpaceError(f"architecture weights of cell {cell!r} must have shape {shape}, got {w.shape}")
    return w


def _best_real_op(ops: tuple[str, ...], row: np.ndarray) -> tuple[float, int]:
    """(weight, index) of the strongest op other than ``none`` (ties: lower index); (-inf, -1) if none."""
    best, index = -np.inf, -1
    for k, name in enumerate(ops):
        if name != NONE_OP and row[k] > best:
            best, index = float(row[k]), k
    return best, index


def _darts_cell(space: "SearchSpace", cell: str, w: np.ndarray) -> dict[int, str]:
    """``space.inputs_per_node`` (DARTS: 2) incoming edges per intermediate node, ranked by their strongest
    non-``none`` op."""
    edges = space.edges(cell)
    best = [_best_real_op(space.edge_ops(cell, e), w[e]) for e in range(len(edges))]
    choice: dict[int, str] = {}
    for node in sorted({dst for _, dst in edges}):
        incoming = [e for e, (_, dst) in enumerate(edges) if dst == node]
        # sorted() is stable, so equal strengths keep the lower edge index first
        for e in sorted(incoming, key=lambda e: -best[e][0])[:space.inputs_per_node]:
            if best[e][1] < 0:
                raise SpaceError(f"edge {e} of cell {cell!r} has no op other than 'none' to keep")
            choice[e] = space.edge_ops(cell, e)[best[e][1]]
    return choice


def _argmax_cell(space: "SearchSpace", cell: str, w: np.ndarray) -> dict[int, str]:
    """The argmax op of every edge (ties: lower index), ``none`` included."""
    return {e: space.edge_ops(cell, e)[int(np.argmax(w[e]))] for e in range(w.shape[0])}


def _reaches_outputs(edges: list[tuple[int, int]], alive: np.ndarray) -> np.ndarray:
    """For each row of ``alive`` (``[choices, edges]`` bool: op is not ``none``) whether every output node
    is reachable from an input node through alive edges."""
    reach = {node: np.ones(alive.shape[0], dtype=bool) for node in _input_nodes(edges)}
    for e in sorted(range(len(edges)), key=lambda e: edges[e][1]):
        src, dst = edges[e]
        via = reach.get(src, np.zeros(alive.shape[0], dtype=bool)) & alive[:, e]
        reach[dst] = reach[dst] | via if dst in reach else via
    out = np.ones(alive.shape[0], dtype=bool)
    for node in _output_nodes(edges):
        out &= reach[node]
    return out


def _cell_is_connected(space: "SearchSpace", cell: str, choice: Mapping[int, str]) -> bool:
    edges = space.edges(cell)
    alive = np.array([[choice.get(e, NONE_OP) != NONE_OP for e in range(len(edges))]])
    return bool(_reaches_outputs(edges, alive)[0])


def _repair_cell(space: "SearchSpace", cell: str, w: np.ndarray) -> dict[int, str]:
    """The connected every-edge choice with the largest sum of log weights.

    The product space is enumerated (vectorised) when it has at most :data:`MAX_ENUMERATION` choices;
    otherwise the strongest non-``none`` op of every edge is taken, which is connected by construction.
    """
    edges = space.edges(cell)
    n_edges, n_ops = w.shape
    if n_ops ** n_edges > MAX_ENUMERATION:
        choice = {}
        for e in range(n_edges):
            _, k = _best_real_op(space.edge_ops(cell, e), w[e])
            choice[e] = space.edge_ops(cell, e)[k if k >= 0 else int(np.argmax(w[e]))]
        return choice
    # every choice as a row of op indices, in lexicographic order (the first edge varies slowest)
    index = np.indices((n_ops,) * n_edges).reshape(n_edges, -1).T
    with np.errstate(divide="ignore"):
        log_w = np.log(w)
    score = log_w[np.arange(n_edges), index].sum(axis=1)
    is_none = np.array([[name == NONE_OP for name in space.edge_ops(cell, e)] for e in range(n_edges)])
    alive = ~is_none[np.arange(n_edges), index]
    connected = np.flatnonzero(_reaches_outputs(edges, alive))
    if connected.size == 0:
        raise SpaceError(f"cell {cell!r} has no connected choice")
    best = connected[int(np.argmax(score[connected]))]
    return {e: space.edge_ops(cell, e)[int(index[best, e])] for e in range(n_edges)}


def keeps_two_per_node(space: "SearchSpace", cell: str) -> bool:
    """Whether the nodes of ``cell`` keep a fixed number of incoming edges (DARTS-family cells: two, the
    space's ``inputs_per_node``) rather than every edge (NB201)."""
    space.check_cell(cell)
    return space.inputs_per_node is not None


def magnitude_choices(space: "SearchSpace", weights: Mapping[str, Any], *,
                      skip_disconnected: bool = True) -> dict[str, dict[int, str]]:
    """The discrete choice ``{cell: {edge_index: op}}`` of the strongest architecture weights.

    ``weights`` maps each cell type to its ``[edges, ops]`` architecture weights (softmax of the alphas; any
    array-like). DARTS-family cells (``inputs_per_node`` 2) keep per intermediate node the 2 incoming
    edges of the largest non-``none`` weight, each with its strongest non-``none`` op; other cells take the
    argmax op of every edge (``none`` allowed). Ties go to the lower index. With ``skip_disconnected``, a
    result that ``space.is_connected`` rejects is replaced, per disconnected cell, by the connected choice
    of the largest sum of log weights.
    """
    matrices = {cell: _cell_matrix(space, cell, weights) for cell in space.cell_types}
    choices = {
        cell: (_darts_cell if keeps_two_per_node(space, cell) else _argmax_cell)(space, cell, w)
        for cell, w in matrices.items()
    }
    if skip_disconnected and not space.is_connected(space.genotype_from_choices(choices)):
        for cell, w in matrices.items():
            if not keeps_two_per_node(space, cell) and not _cell_is_connected(space, cell, choices[cell]):
                choices[cell] = _repair_cell(space, cell, w)
    return choices


class MagnitudeSelection(Selection):
    """The DARTS selection: :func:`magnitude_choices` of the supernet's softmax architecture weights."""

    name = "magnitude"

    def __init__(self, skip_disconnected: bool = True) -> None:
        self.skip_disconnected = skip_disconnected

    def select(self, supernet: "Supernet", data: Any, ctx: "StepContext") -> "Genotype":
        """The genotype of the strongest architecture weights of ``supernet`` (``data``, ``ctx`` unused); for
        an E2NAS supernet (searching in a latent) the decoded cell."""
        if supernet.latent is not None:
            return supernet.latent.derived_genotype(skip_disconnected=self.skip_disconnected)
        weights = {cell: w.detach().cpu().double().numpy() for cell, w in supernet.arch_weights().items()}
        choices = magnitude_choices(supernet.space, weights, skip_disconnected=self.skip_disconnected)
        return supernet.space.genotype_from_choices(choices)
