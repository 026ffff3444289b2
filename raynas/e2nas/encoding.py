"""Cells as tensors and back: the discrete side of E2NAS' graph autoencoder (Zhang et al., "Differentiable
Neural Architecture Search in Equivalent Space with Exploration Enhancement", NeurIPS 2020).

An architecture of a space is its ``choices`` (``{cell_type: {edge_index: op_name}}``, see
:mod:`raynas.spaces.base`). Per cell type it is encoded as a ``LongTensor`` ``[batch, edges]`` holding, for
every edge of ``space.edges(cell)``, the column of its op in ``space.edge_ops(cell, edge)`` (the supernet's
architecture-weight column order), or :data:`DROPPED` (-1) for an edge the cell does not keep.

A space's ``inputs_per_node`` tells the two kinds of cell topology apart (:class:`CellLayout`):

- NB201: every edge is kept and carries any of its 5 ops, ``none`` included: every assignment is a cell.
- DARTS-like spaces (``darts``, ``darts-nonone``, ``s1``-``s4``): every intermediate node keeps exactly 2
  incoming edges (distinct predecessors), each with an op of ``space.derived_ops(cell, edge)`` (never
  ``none``).

[recon] Decoding (:func:`decode_indices`) is valid by construction: per edge the best-scoring *allowed* op;
for DARTS-like cells, per intermediate node the 2 incoming edges with the highest input-selection score
(distinct edges into one node come from distinct predecessors). The released E2NAS code covers NB201 only.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import torch

from raynas.errors import GenotypeError, SpaceError
from raynas.spaces import Choices, SearchSpace, get_space
from raynas.spaces.base import edge_number

#: the column index that marks an edge a DARTS-like cell does not keep
DROPPED = -1

SpaceLike = Union[SearchSpace, str]
_BIG = 1e30


@dataclass(frozen=True)
class CellLayout:
    """The structure of one cell type of a space, as the encoding sees it.

    ``ops[e]`` are the candidate ops of edge ``e`` (its columns); ``allowed[e][k]`` says whether a derived
    cell may put column ``k`` on edge ``e``; ``inputs_per_node`` is None when every edge is always kept
    (NB201), else how many incoming edges each node of ``node_edges`` keeps (2 in DARTS-like spaces);
    ``node_edges`` lists, per destination node in ascending order, the indices of its incoming edges.
    """

    cell: str
    edges: tuple[tuple[int, int], ...]
    ops: tuple[tuple[str, ...], ...]
    allowed: tuple[tuple[bool, ...], ...]
    inputs_per_node: Optional[int]
    node_edges: tuple[tuple[int, ...], ...]

    @property
    def num_edges(self) -> int:
        """Edges of the cell (rows of its architecture weights)."""
        return len(self.edges)

    @property
    def num_ops(self) -> int:
        """Candidate ops per edge (columns of its architecture weights)."""
        return len(self.ops[0])

    @property
    def num_nodes(self) -> int:
        """Nodes of the cell DAG, inputs included."""
        return 1 + max(max(edge) for edge in self.edges)

    def allowed_mask(self, device: Optional[torch.device] = None) -> torch.Tensor:
        """``allowed`` as a bool tensor ``[edges, ops]``."""
        return torch.tensor(self.allowed, dtype=torch.bool, device=device)

    def selects_inputs(self) -> bool:
        """Whether decoding must choose which incoming edges a node keeps (DARTS-like cells)."""
        return self.inputs_per_node is not None


def resolve_space(space: SpaceLike) -> SearchSpace:
    """``space`` itself, or the registered space of that name (unknown names raise :class:`SpaceError`)."""
    return get_space(space) if isinstance(space, str) else space


def cell_layout(space: SpaceLike, cell: str) -> CellLayout:
    """The :class:`CellLayout` of cell type ``cell`` of ``space``."""
    space = resolve_space(space)
    space.check_cell(cell)
    inputs = space.inputs_per_node
    edges = tuple(space.edges(cell))
    ops = tuple(space.edge_ops(cell, e) for e in range(len(edges)))
    allowed = tuple(tuple(op in space.derived_ops(cell, e) for op in ops[e]) for e in range(len(edges)))
    for e, row in enumerate(allowed):
        if not any(row):
            raise SpaceError(f"space {space.name!r} cell {cell!r} edge {e} allows no op in a derived cell")
    targets = sorted({dst for _, dst in edges})
    node_edges = tuple(tuple(e for e, (_, dst) in enumerate(edges) if dst == node) for node in targets)
    if inputs is not None:
        short = [node for node, incoming in zip(targets, node_edges) if len(incoming) < inputs]
        if short:
            raise SpaceError(f"space {space.name!r} cell {cell!r}: node(s) {short} have fewer than {inputs} inputs")
    return CellLayout(cell=cell, edges=edges, ops=ops, allowed=allowed, inputs_per_node=inputs,
                      node_edges=node_edges)


def layouts(space: SpaceLike) -> dict[str, CellLayout]:
    """The :class:`CellLayout` of every cell type of ``space``, in ``space.cell_types`` order."""
    space = resolve_space(space)
    return {cell: cell_layout(space, cell) for cell in space.cell_types}


# -- architectures to train on ---------------------------------------------------------------------------
def enumerate_choices(space: SpaceLike) -> list[dict[str, dict[int, str]]]:
    """Every architecture of a space that can enumerate its genotypes (NB201: all 15,625 cells, in the
    space's order); other spaces raise :class:`SpaceError` (use :func:`sample_choices`)."""
    space = resolve_space(space)
    enumerate_genotypes = getattr(space, "enumerate_genotypes", None)
    if enumerate_genotypes is None:
        raise SpaceError(f"space {space.name!r} is too large to enumerate; only nb201 can be; "
                         f"draw a sample with sample_choices instead")
    return [space.choices_from_genotype(genotype) for genotype in enumerate_genotypes()]


def sample_choices(space: SpaceLike, n: int, seed: int) -> list[dict[str, dict[int, str]]]:
    """``n`` architectures drawn uniformly (with replacement) by ``space.sample`` from ``random.Random(seed)``."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise SpaceError(f"sample size must be an integer >= 0, got {n!r}")
    space = resolve_space(space)
    rng = random.Random(seed)
    return [space.choices_from_genotype(space.sample(rng)) for _ in range(n)]


def is_valid(space: SpaceLike, choices: Choices) -> bool:
    """Whether ``choices`` is an architecture of ``space``: the space builds and accepts its genotype."""
    space = resolve_space(space)
    try:
        space.validate_genotype(space.genotype_from_choices(choices))
    except GenotypeError:
        return False
    return True


def choices_key(choices: Choices) -> tuple[tuple[str, tuple[tuple[int, str], ...]], ...]:
    """A hashable, order-independent form of ``choices`` (for de-duplication and comparison)."""
    return tuple(sorted((cell, tuple(sorted((int(e), op) for e, op in edges.items())))
                        for cell, edges in choices.items()))


# -- choices <-> column indices --------------------------------------------------------------------------
def _encode_cell(layout: CellLayout, edges: Mapping[int, str], where: str) -> list[int]:
    row = [DROPPED] * layout.num_edges
    for key, op in edges.items():
        e = edge_number(key)
        if e is None or not 0 <= e < layout.num_edges:
            raise GenotypeError(f"{where} has edge {key!r}; valid: 0..{layout.num_edges - 1}")
        columns = [k for k, name in enumerate(layout.ops[e]) if name == op and layout.allowed[e][k]]
        if not columns:
            allowed = [name for k, name in enumerate(layout.ops[e]) if layout.allowed[e][k]]
            raise GenotypeError(f"{where}[{e}] = {op!r} is not allowed on this edge; allowed: {', '.join(allowed)}")
        row[e] = columns[0]
    for node_edges in layout.node_edges:
        kept = sum(row[e] != DROPPED for e in node_edges)
        wanted = len(node_edges) if layout.inputs_per_node is None else layout.inputs_per_node
        if kept != wanted:
            node = layout.edges[node_edges[0]][1]
            raise GenotypeError(f"{where} keeps {kept} edge(s) into node {node}; expected {wanted}")
    return row


def encode(space: SpaceLike, batch: Sequence[Choices]) -> dict[str, torch.Tensor]:
    """``{cell: LongTensor [len(batch), edges]}``: each edge's op column, or :data:`DROPPED`.

    Raises :class:`GenotypeError` naming the first architecture of ``batch`` that is not one of ``space``.
    """
    space = resolve_space(space)
    out = {}
    for cell, layout in layouts(space).items():
        rows = []
        for i, choices in enumerate(batch):
            if cell not in choices:
                raise GenotypeError(f"choices {i} have no cell {cell!r}; expected cells: {', '.join(space.cell_types)}")
            rows.append(_encode_cell(layout, choices[cell], f"choices {i} [{cell!r}]"))
        out[cell] = torch.tensor(rows, dtype=torch.long).reshape(len(batch), layout.num_edges)
    return out


def to_choices(space: SpaceLike, indices: Mapping[str, torch.Tensor]) -> list[dict[str, dict[int, str]]]:
    """The architectures of encoded ``indices`` (``{cell: [batch, edges]}``, as :func:`encode` returns)."""
    space = resolve_space(space)
    cell_layouts = layouts(space)
    rows = {cell: _check_indices(layout, indices, space.name).tolist() for cell, layout in cell_layouts.items()}
    sizes = {len(r) for r in rows.values()}
    if len(sizes) != 1:
        raise SpaceError(f"encoded cells of space {space.name!r} differ in batch size: "
                         f"{ {cell: len(r) for cell, r in rows.items()} }")
    return [{cell: {e: cell_layouts[cell].ops[e][k] for e, k in enumerate(rows[cell][i]) if k != DROPPED}
             for cell in space.cell_types}
            for i in range(sizes.pop())]


def _check_indices(layout: CellLayout, indices: Mapping[str, torch.Tensor], space_name: str) -> torch.Tensor:
    if layout.cell not in indices:
        raise SpaceError(f"encoded architecture lacks cell {layout.cell!r} of space {space_name!r}")
    tensor = indices[layout.cell]
    if tensor.dim() != 2 or tensor.shape[1] != layout.num_edges:
        raise SpaceError(f"encoded cell {layout.cell!r} of space {space_name!r} must have shape "
                         f"[batch, {layout.num_edges}], got {list(tensor.shape)}")
    return tensor


def one_hot(space: SpaceLike, indices: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{cell: float [batch, edges, ops]}``: one-hot op columns, all-zero rows for dropped edges."""
    space = resolve_space(space)
    out = {}
    for cell, layout in layouts(space).items():
        tensor = _check_indices(layout, indices, space.name)
        hot = torch.zeros(*tensor.shape, layout.num_ops, device=tensor.device)
        kept = tensor != DROPPED
        hot[kept] = torch.nn.functional.one_hot(tensor[kept], layout.num_ops).to(hot.dtype)
        out[cell] = hot
    return out


# -- logits -> valid cells -------------------------------------------------------------------------------
def masked_op_logits(layout: CellLayout, op_logits: torch.Tensor) -> torch.Tensor:
    """``op_logits`` (``[..., edges, ops]``) with the columns a derived cell may not use set to -inf."""
    return op_logits.masked_fill(~layout.allowed_mask(op_logits.device), float("-inf"))


def check_logits(layout: CellLayout, op_logits: torch.Tensor, input_logits: Optional[torch.Tensor]) -> None:
    """Raise :class:`SpaceError` unless the logits have the shapes ``layout`` needs."""
    shape = (layout.num_edges, layout.num_ops)
    if op_logits.dim() < 2 or tuple(op_logits.shape[-2:]) != shape:
        raise SpaceError(f"op logits of cell {layout.cell!r} must have shape [..., {shape[0]}, {shape[1]}], "
                         f"got {list(op_logits.shape)}")
    if not layout.selects_inputs():
        if input_logits is not None:
            raise SpaceError(f"cell {layout.cell!r} keeps every edge; it takes no input logits")
        return
    if input_logits is None:
        raise SpaceError(f"cell {layout.cell!r} needs input logits of shape [..., {layout.num_edges}] to choose "
                         f"{layout.inputs_per_node} inputs per node")
    if tuple(input_logits.shape) != tuple(op_logits.shape[:-1]):
        raise SpaceError(f"input logits of cell {layout.cell!r} must have shape {list(op_logits.shape[:-1])}, "
                         f"got {list(input_logits.shape)}")


def kept_edges(layout: CellLayout, input_logits: Optional[torch.Tensor], batch_shape: Sequence[int],
               device: Optional[torch.device] = None) -> torch.Tensor:
    """Bool ``[..., edges]``: per node the ``inputs_per_node`` incoming edges of highest score (every edge
    when the cell keeps all of them). Distinct edges into a node have distinct sources, so the result is a
    valid topology whatever the scores (ties go to the lower edge index, NaN counts as highest)."""
    inputs = layout.inputs_per_node
    if inputs is None:  # the cell keeps every edge (layout.selects_inputs() is False)
        return torch.ones(*batch_shape, layout.num_edges, dtype=torch.bool, device=device)
    if input_logits is None:
        raise SpaceError(f"cell {layout.cell!r} needs input logits [..., {layout.num_edges}] to choose its inputs")
    keep = torch.zeros(input_logits.shape, dtype=torch.bool, device=input_logits.device)
    for incoming in layout.node_edges:
        if len(incoming) == inputs:
            keep[..., list(incoming)] = True
            continue
        edge_ids = torch.tensor(incoming, device=input_logits.device)
        best = input_logits[..., edge_ids].topk(inputs, dim=-1).indices
        keep.scatter_(-1, edge_ids[best], True)
    return keep


def best_ops(layout: CellLayout, op_logits: torch.Tensor) -> torch.Tensor:
    """Long ``[..., edges]``: per edge the column of the highest-scoring op a derived cell may use there
    (whatever the scores: NaN counts as highest, and a disallowed column never wins, even against -inf)."""
    # made finite first so that a masked (-inf) column can never tie with an allowed one
    finite = op_logits.detach().float().nan_to_num(nan=math.inf).clamp(-_BIG, _BIG)
    return masked_op_logits(layout, finite).argmax(dim=-1)


def decode_indices(layout: CellLayout, op_logits: torch.Tensor,
                   input_logits: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Long ``[..., edges]``: per kept edge the column of its best allowed op, :data:`DROPPED` elsewhere.

    ``op_logits`` is ``[..., edges, ops]``; ``input_logits`` (``[..., edges]``, DARTS-like cells only)
    scores each edge for being one of its node's kept inputs. Any finite or infinite scores give a valid cell.
    """
    check_logits(layout, op_logits, input_logits)
    ops = best_ops(layout, op_logits)
    keep = kept_edges(layout, None if input_logits is None else input_logits.detach(), ops.shape[:-1], ops.device)
    return torch.where(keep, ops, torch.full_like(ops, DROPPED))


def decode(space: SpaceLike, op_logits: Mapping[str, torch.Tensor],
           input_logits: Optional[Mapping[str, torch.Tensor]] = None) -> list[dict[str, dict[int, str]]]:
    """The architectures of batched logits ``{cell: [batch, edges, ops]}`` (and, for DARTS-like spaces,
    ``{cell: [batch, edges]}`` input-selection scores), each valid by construction."""
    space = resolve_space(space)
    indices = {}
    for cell, layout in layouts(space).items():
        if cell not in op_logits:
            raise SpaceError(f"op logits lack cell {cell!r} of space {space.name!r}")
        inputs = None if input_logits is None else input_logits.get(cell)
        indices[cell] = decode_indices(layout, op_logits[cell], inputs)
        if indices[cell].dim() != 2:
            raise SpaceError(f"op logits of cell {cell!r} must be batched [batch, edges, ops], "
                             f"got {list(op_logits[cell].shape)}")
    return to_choices(space, indices)
