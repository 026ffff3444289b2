"""The SearchSpace contract: what a cell-based differentiable search space must tell the rest of raynas.

A space names its cell types, the edges of each cell and the candidate ops of each edge; it builds the
weight-sharing supernet and the derived (discrete) network of a genotype; and it converts between genotypes
and *choices*. A choice is the discrete currency shared by selections and genotypes::

    choices = {cell_type: {edge_index: op_name, ...}, ...}

where ``edge_index`` indexes ``edges(cell_type)`` and only the edges that survive are present (a DARTS-space
cell keeps 2 incoming edges per intermediate node; an NB201 cell keeps all 6). A space holds no training
code and no mutable state: one instance may be shared by any number of searches in one process.

Everything the rest of raynas knows about a family of spaces it asks the space: its genotypes' text form
(:meth:`SearchSpace.is_genotype_text`, :meth:`SearchSpace.read_genotype`), its scratch-training protocol
(:meth:`SearchSpace.training_protocol`), the supernet settings it takes (``supernet_options``), how many
inputs a derived node keeps (``inputs_per_node``, E2NAS' encoding) and its cells as pictures
(:meth:`SearchSpace.cell_graph`). A new space is its own module plus one registration in
:mod:`raynas.spaces` (docs/development.md, "Adding a search space").
"""

from __future__ import annotations

import operator
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Optional

from raynas.errors import SpaceError

if TYPE_CHECKING:  # heavy imports only for type checkers
    from torch import nn

    from raynas.spaces.genotype import Genotype

Choices = Mapping[str, Mapping[int, str]]

#: the keys of :meth:`SearchSpace.training_protocol`
PROTOCOL_KEYS = ("epochs", "batch_size", "lr", "nesterov", "weight_decay", "auxiliary", "drop_path_prob")


@dataclass(frozen=True)
class CellGraph:
    """One cell of a genotype as a picture sees it (:meth:`SearchSpace.cell_graph`).

    ``nodes`` maps every node to its kind, ``"input"``, ``"inner"`` or ``"output"``; ``edges`` are
    ``(src, dst, op)``, where ``op`` None is an unlabelled edge into the output (DARTS' concat); ``names``
    are the nodes' display names.
    """

    nodes: Mapping[int, str]
    edges: tuple[tuple[int, int, Optional[str]], ...]
    names: Mapping[int, str]

    def op_edges(self) -> list[tuple[int, int, str]]:
        """The ``(src, dst, op)`` of the edges that carry an op (the genotype's own edges)."""
        return [(src, dst, op) for src, dst, op in self.edges if op is not None]


def edge_number(edge: Any) -> int | None:
    """``edge`` as an int (numpy integers included), or None if it is not an integer."""
    if isinstance(edge, bool):
        return None
    try:
        return operator.index(edge)
    except TypeError:
        return None


class SearchSpace(ABC):
    """A cell-based search space.

    Node numbering of a cell: DARTS-family spaces have input nodes 0 and 1 (outputs of the two previous
    cells) and intermediate nodes 2..5; NB201 has node 0 (the cell input) and nodes 1..3. ``edges(cell)``
    lists ``(src, dst)`` in the published order (node-major, then by source), which is also the row order
    of the architecture parameters. All edges of one cell type have the same number of candidate ops.
    """

    #: registry name, e.g. "darts", "nb201"
    name: str
    #: cell types with their own architecture parameters, e.g. ("normal", "reduce") or ("cell",)
    cell_types: tuple[str, ...]
    #: the class of its genotypes: frozen and hashable, ``str()`` gives the text :meth:`parse_genotype`
    #: reads, ``CELLS`` equals ``cell_types`` and ``count(op, cell=None)`` counts an op's edges
    genotype_type: type
    #: its genotype text form for messages, e.g. "an NB201 arch string |nor_conv_3x3~0|+|...|"
    genotype_format: str
    #: incoming edges each node of a derived cell keeps (2 in DARTS cells); None: every edge is kept (NB201)
    inputs_per_node: Optional[int]
    #: the supernet settings (fields of the config's ``supernet`` section) that :meth:`build_supernet` takes
    #: as options, e.g. ``("stem_multiplier",)``
    supernet_options: tuple[str, ...] = ()

    @abstractmethod
    def edges(self, cell: str) -> list[tuple[int, int]]:
        """The ``(src, dst)`` node pairs of every edge of ``cell``, in architecture-parameter row order."""

    @abstractmethod
    def edge_ops(self, cell: str, edge: int) -> tuple[str, ...]:
        """The candidate op names on edge ``edge`` of ``cell``, in architecture-parameter column order."""

    def arch_shape(self, cell: str) -> tuple[int, int]:
        """``(number of edges, candidate ops per edge)`` of ``cell``: the shape of its alpha matrix."""
        self.check_cell(cell)
        return len(self.edges(cell)), len(self.edge_ops(cell, 0))

    def check_edge(self, cell: str, edge: Any) -> int:
        """``edge`` as an index into ``edges(cell)``; raise :class:`SpaceError` unless it is one."""
        count = len(self.edges(cell))
        index = edge_number(edge)
        if index is None or not 0 <= index < count:
            raise SpaceError(f"space {self.name!r} has no edge {edge!r}; valid: 0..{count - 1}")
        return index

    def check_cell(self, cell: str) -> None:
        """Raise :class:`SpaceError` unless ``cell`` is one of ``cell_types``."""
        if cell not in self.cell_types:
            raise SpaceError(f"space {self.name!r} has no cell {cell!r}; valid: {', '.join(self.cell_types)}")

    @abstractmethod
    def build_supernet(self, *, channels: int, layers: int, num_classes: int, in_channels: int,
                       **options: Any) -> "nn.Module":
        """The weight-sharing supernet (a :class:`raynas.supernet.Supernet`) at search-time settings."""

    @abstractmethod
    def build_network(self, genotype: "Genotype", *, channels: int, layers: int, num_classes: int,
                      in_channels: int, auxiliary: bool = False, drop_path_prob: float = 0.0,
                      **options: Any) -> "nn.Module":
        """The derived network of ``genotype`` for training from scratch."""

    @abstractmethod
    def default_network_args(self) -> dict[str, int]:
        """Published evaluation defaults: ``{"channels": ..., "layers": ...}``."""

    @abstractmethod
    def training_protocol(self) -> dict[str, Any]:
        """The published protocol for training a derived network from scratch: every key of
        :data:`PROTOCOL_KEYS` (``raynas train`` fills unset settings from it)."""

    def cutout(self, image_size: int) -> int:
        """The scratch-training protocol's cutout side for images of ``image_size`` pixels (default: none)."""
        return 0

    @abstractmethod
    def is_genotype_text(self, text: str) -> bool:
        """Whether ``text`` is written in this space's genotype text form (its form, not its validity:
        malformed text of the form is this space's to report). Spaces that share a form all say yes."""

    @abstractmethod
    def read_genotype(self, text: str) -> "Genotype":
        """Parse text of this space's form without validating it against the space: a selection may derive
        a genotype its space rejects (a DARTS cell with ``none``), and reports and pictures still show it."""

    @abstractmethod
    def cell_graph(self, genotype: "Genotype", cell: str) -> CellGraph:
        """Cell ``cell`` of ``genotype`` (of this space's form, not necessarily valid) as a picture's graph."""

    def node_name(self, cell: str, node: int) -> str:
        """The display name of node ``node`` of cell ``cell`` in pictures (the node's number unless a space
        names its nodes otherwise); :meth:`cell_graph` names its nodes the same way."""
        return str(node)

    @abstractmethod
    def parse_genotype(self, text: str) -> "Genotype":
        """Parse a published-format genotype text and validate it against this space."""

    @abstractmethod
    def validate_genotype(self, genotype: "Genotype") -> "Genotype":
        """Return ``genotype`` if it belongs to this space; raise :class:`GenotypeError` naming the fault."""

    @abstractmethod
    def genotype_from_choices(self, choices: Choices) -> "Genotype":
        """The genotype of a discrete choice (see the module docstring)."""

    @abstractmethod
    def choices_from_genotype(self, genotype: "Genotype") -> dict[str, dict[int, str]]:
        """The inverse of :meth:`genotype_from_choices`."""

    @abstractmethod
    def is_connected(self, genotype: "Genotype") -> bool:
        """Whether every cell of ``genotype`` has a path of non-``none`` ops from its input(s) to its output."""

    @abstractmethod
    def sample(self, rng: random.Random) -> "Genotype":
        """A uniformly random genotype of this space, drawn with ``rng``."""

    # -- neighborhoods (NA-DARTS: an architecture's neighbors differ in one op on one kept edge) ------------
    def derived_ops(self, cell: str, edge: int) -> tuple[str, ...]:
        """The ops a derived genotype may put on edge ``edge`` of ``cell`` (default: every candidate)."""
        return self.edge_ops(cell, edge)

    def neighbors(self, genotype: "Genotype") -> list["Genotype"]:
        """Every genotype at distance 1 from ``genotype``: one kept edge's op replaced by another op allowed
        there, the topology unchanged. In a stable order (cell, edge, op); there are
        ``sum over kept edges of (len(derived_ops) - 1)`` of them."""
        choices = self.choices_from_genotype(genotype)
        out = []
        for cell in self.cell_types:
            for edge, op in sorted(choices[cell].items()):
                for other in self.derived_ops(cell, edge):
                    if other != op:
                        changed = {c: dict(edges) for c, edges in choices.items()}
                        changed[cell][edge] = other
                        out.append(self.genotype_from_choices(changed))
        return out

    def neighborhood(self, genotype: "Genotype", radius: int = 1) -> list["Genotype"]:
        """``genotype`` and every genotype within ``radius`` single-op changes of it, nearest first."""
        if radius < 0:
            raise SpaceError(f"neighborhood radius must be >= 0, got {radius!r}")
        seen = {genotype}
        ring, out = [genotype], [genotype]
        for _ in range(radius):
            next_ring = []
            for member in ring:
                for neighbor in self.neighbors(member):
                    if neighbor not in seen:
                        seen.add(neighbor)
                        next_ring.append(neighbor)
            out += next_ring
            ring = next_ring
        return out

    def sample_neighbor(self, genotype: "Genotype", rng: random.Random) -> "Genotype":
        """A uniformly random neighbor (distance 1) of ``genotype``, drawn with ``rng``."""
        options = self.neighbors(genotype)
        if not options:
            raise SpaceError(f"genotype {genotype} has no neighbor in space {self.name!r}")
        return rng.choice(options)
