"""The DARTS cell space (Liu et al., ICLR 2019) and its relatives with other per-edge op sets.

A cell has input nodes 0 and 1 (the outputs of the two previous cells) and intermediate nodes 2..5; every
intermediate node has an edge from each earlier node (14 edges). A derived cell keeps two incoming edges
per intermediate node, each with one op other than ``none``, and concatenates nodes 2..5. The RobustDARTS
spaces S1-S4 and DARTS-PT's ``darts-nonone`` differ only in the candidate ops of each edge, so they are
:class:`DartsLikeSpace` instances too; they live in :mod:`raynas.spaces.robust`.
This module imports no torch; the supernet and networks are imported inside the ``build_*`` methods.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from raynas.errors import GenotypeError, SpaceError
from raynas.spaces.base import CellGraph, Choices, SearchSpace, edge_number
from raynas.spaces.genotype import DARTS_FORMAT, DartsGenotype, Genotype

if TYPE_CHECKING:
    from torch import nn

#: the 8 candidate ops of the DARTS space, in architecture-parameter column order
DARTS_OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5")

CELL_TYPES = ("normal", "reduce")
INTERMEDIATE_NODES = (2, 3, 4, 5)
DEFAULT_CONCAT = (2, 3, 4, 5)
_EDGES = [(src, dst) for dst in INTERMEDIATE_NODES for src in range(dst)]
_EDGE_INDEX = {edge: index for index, edge in enumerate(_EDGES)}
_NETWORK_OPTIONS = ("imagenet",)
#: DARTS' CIFAR training protocol (Liu et al.: 600 epochs, batch 96, lr 0.025, auxiliary head, drop-path 0.2)
DARTS_PROTOCOL = {"epochs": 600, "batch_size": 96, "lr": 0.025, "nesterov": False, "weight_decay": 3e-4,
                  "auxiliary": True, "drop_path_prob": 0.2}
#: display names of a cell's input nodes and of its output in pictures
_INPUT_NAMES = {0: "$c_{k-2}$", 1: "$c_{k-1}$"}
OUTPUT_NAME = "$c_{k}$"


def same_ops_on_every_edge(ops: Sequence[str]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Per-cell edge ops for a space whose 14 edges of both cells share the candidate list ``ops``."""
    return {cell: tuple(tuple(ops) for _ in _EDGES) for cell in CELL_TYPES}


class DartsLikeSpace(SearchSpace):
    """A DARTS cell space whose candidate ops may differ per cell type and per edge.

    ``edge_ops`` maps "normal" and "reduce" to 14 op-name tuples, one per edge in :meth:`edges` order; all
    tuples of one cell type have the same length (the columns of its alpha matrix).
    """

    cell_types = CELL_TYPES
    genotype_type = DartsGenotype
    genotype_format = f"a DARTS genotype {DARTS_FORMAT}"
    inputs_per_node = 2
    supernet_options = ("stem_multiplier",)

    def __init__(self, name: str, edge_ops: Mapping[str, Sequence[Sequence[str]]]) -> None:
        self.name = name
        if set(edge_ops) != set(CELL_TYPES):
            raise SpaceError(f"space {name!r} needs edge ops for cells normal and reduce, got {sorted(edge_ops)}")
        self._edge_ops: dict[str, tuple[tuple[str, ...], ...]] = {}
        for cell in CELL_TYPES:
            rows = tuple(tuple(ops) for ops in edge_ops[cell])
            if len(rows) != len(_EDGES):
                raise SpaceError(f"space {name!r} cell {cell!r} needs {len(_EDGES)} edge op lists, got {len(rows)}")
            if len({len(ops) for ops in rows}) != 1 or not rows[0]:
                raise SpaceError(f"space {name!r} cell {cell!r}: every edge needs the same, non-zero number of ops")
            self._edge_ops[cell] = rows

    def __repr__(self) -> str:
        return f"DartsLikeSpace({self.name!r})"

    # -- structure -------------------------------------------------------------------------------------
    def edges(self, cell: str) -> list[tuple[int, int]]:
        """The 14 ``(src, dst)`` edges: node 2 from 0, 1; node 3 from 0, 1, 2; ...; node 5 from 0..4."""
        self.check_cell(cell)
        return list(_EDGES)

    def edge_ops(self, cell: str, edge: int) -> tuple[str, ...]:
        """The candidate ops of edge ``edge`` of ``cell``."""
        return self._edge_ops[cell][self.check_edge(cell, edge)]

    def derived_ops(self, cell: str, edge: int) -> tuple[str, ...]:
        """The candidates of the edge other than ``none`` (a derived DARTS cell drops edges instead)."""
        return tuple(op for op in self.edge_ops(cell, edge) if op != "none")

    def default_network_args(self) -> dict[str, int]:
        """DARTS' CIFAR evaluation network: 36 initial channels, 20 cells."""
        return {"channels": 36, "layers": 20}

    def training_protocol(self) -> dict[str, Any]:
        """DARTS' protocol (auxiliary head, drop-path), for every DARTS-like space."""
        return dict(DARTS_PROTOCOL)

    def cutout(self, image_size: int) -> int:
        """Half the image side (16 on CIFAR's 32x32, DeVries & Taylor 2017 as DARTS uses it)."""
        return image_size // 2

    # -- genotypes -------------------------------------------------------------------------------------
    def is_genotype_text(self, text: str) -> bool:
        """Whether ``text`` looks like ``Genotype(...)`` (also written ``(...)`` or ``normal=...``)."""
        if not isinstance(text, str):
            return False
        source = text.strip()
        return "Genotype" in source or source.startswith(("normal", "("))

    def read_genotype(self, text: str) -> DartsGenotype:
        """The ``Genotype(...)`` text parsed, its ops and sources unchecked."""
        return DartsGenotype.parse(text)

    def node_name(self, cell: str, node: int) -> str:
        """``c_{k-2}``, ``c_{k-1}`` for the inputs 0, 1 and 0, 1, ... for the intermediate nodes 2, 3, ..."""
        return _INPUT_NAMES.get(node, str(node - 2))

    def cell_graph(self, genotype: Genotype, cell: str) -> CellGraph:
        """Inputs ``c_{k-2}``, ``c_{k-1}`` (nodes 0, 1), intermediate nodes shown as 0, 1, ... with their
        kept edges, and unlabelled edges from the concatenated nodes into the output ``c_{k}``."""
        self.check_cell(cell)
        if not isinstance(genotype, DartsGenotype):
            raise GenotypeError(f"space {self.name!r} draws DARTS genotypes, got {type(genotype).__name__}")
        pairs = genotype.cell(cell)
        edges: list[tuple[int, int, str | None]] = [(src, 2 + position // 2, op)
                                                    for position, (op, src) in enumerate(pairs)]
        inner = range(2, 2 + math.ceil(len(pairs) / 2))
        output = inner.stop
        nodes = {0: "input", 1: "input", **{node: "inner" for node in inner}, output: "output"}
        edges += [(node, output, None) for node in genotype.concat(cell)]
        names = {**{node: self.node_name(cell, node) for node in nodes}, output: OUTPUT_NAME}
        return CellGraph(nodes=nodes, edges=tuple(edges), names=names)

    def parse_genotype(self, text: str) -> DartsGenotype:
        """Parse a DARTS ``Genotype(...)`` text and validate it against this space."""
        if isinstance(text, str) and text.strip().startswith("|"):
            raise GenotypeError(f"space {self.name!r} takes a DARTS genotype {DARTS_FORMAT}, "
                                f"not an NB201 arch string")
        return self.validate_genotype(DartsGenotype.parse(text))

    def validate_genotype(self, genotype: Genotype) -> DartsGenotype:
        """Return ``genotype`` if every cell has 2 distinct allowed sources per node, allowed ops (never
        ``none``) and a concat within 2..5; otherwise raise :class:`GenotypeError` naming the fault."""
        if not isinstance(genotype, DartsGenotype):
            raise GenotypeError(f"space {self.name!r} takes a DARTS genotype {DARTS_FORMAT}, "
                                f"got {type(genotype).__name__} {genotype}")
        for cell in CELL_TYPES:
            self._validate_cell(cell, genotype.cell(cell))
            concat = genotype.concat(cell)
            bad = [i for i in concat if i not in INTERMEDIATE_NODES]
            if not concat or bad or len(set(concat)) != len(concat):
                raise GenotypeError(f"{cell}_concat {list(concat)} is invalid; allowed: distinct nodes from "
                                    f"{list(INTERMEDIATE_NODES)}, at least one")
        return genotype

    def _validate_cell(self, cell: str, pairs: tuple[tuple[str, int], ...]) -> None:
        expected = 2 * len(INTERMEDIATE_NODES)
        if len(pairs) != expected:
            raise GenotypeError(f"{cell} cell has {len(pairs)} (op, src) entries; expected {expected} "
                                f"(2 per intermediate node 2..5)")
        for position, (op, src) in enumerate(pairs):
            node = INTERMEDIATE_NODES[position // 2]
            where = f"{cell} cell entry {position} ({op!r}, {src}) into node {node}"
            if not 0 <= src < node:
                raise GenotypeError(f"{where}: source {src} out of range; allowed: 0..{node - 1}")
            allowed = [o for o in self.edge_ops(cell, _EDGE_INDEX[(src, node)]) if o != "none"]
            if op == "none":
                raise GenotypeError(f"{where}: 'none' is not allowed in a derived genotype; allowed: "
                                    f"{', '.join(allowed)}")
            if op not in allowed:
                raise GenotypeError(f"{where}: unknown op {op!r} for this edge of space {self.name!r}; allowed: "
                                    f"{', '.join(allowed)}")
            if position % 2 == 1 and pairs[position - 1][1] == src:
                raise GenotypeError(f"{where}: source {src} used twice; node {node} needs two distinct sources")

    def choices_from_genotype(self, genotype: Genotype) -> dict[str, dict[int, str]]:
        """``{cell: {edge_index: op}}`` with the two kept edges of every intermediate node."""
        genotype = self.validate_genotype(genotype)
        return {cell: {_EDGE_INDEX[(src, INTERMEDIATE_NODES[position // 2])]: op
                       for position, (op, src) in enumerate(genotype.cell(cell))}
                for cell in CELL_TYPES}

    def genotype_from_choices(self, choices: Choices) -> DartsGenotype:
        """The genotype of ``choices`` (two edges per intermediate node; each node's pair ordered by source).

        Ops are checked against the edges' candidates but ``none`` is let through, so that a selection's
        disconnected choice can be inspected with :meth:`is_connected`; :meth:`validate_genotype` rejects it.
        """
        cells = {}
        for cell in CELL_TYPES:
            if cell not in choices:
                raise GenotypeError(f"choices have no cell {cell!r}; expected cells: {', '.join(CELL_TYPES)}")
            by_node: dict[int, list[tuple[int, str]]] = {node: [] for node in INTERMEDIATE_NODES}
            for key, op in choices[cell].items():
                edge = edge_number(key)
                if edge is None or not 0 <= edge < len(_EDGES):
                    raise GenotypeError(f"choices[{cell!r}] has edge {key!r}; valid: 0..{len(_EDGES) - 1}")
                if op not in self.edge_ops(cell, edge):
                    raise GenotypeError(f"choices[{cell!r}][{edge}] = {op!r} is not a candidate; allowed: "
                                        f"{', '.join(self.edge_ops(cell, edge))}")
                src, dst = _EDGES[edge]
                by_node[dst].append((src, op))
            for node, kept in by_node.items():
                if len(kept) != 2:
                    raise GenotypeError(f"choices[{cell!r}] keep {len(kept)} edges into node {node}; expected 2")
            cells[cell] = tuple((op, src) for node in INTERMEDIATE_NODES for src, op in sorted(by_node[node]))
        return DartsGenotype(normal=cells["normal"], normal_concat=DEFAULT_CONCAT,
                             reduce=cells["reduce"], reduce_concat=DEFAULT_CONCAT)

    def is_connected(self, genotype: Genotype) -> bool:
        """True unless an op is ``none``: each kept edge then carries signal, and every intermediate node
        reaches the concatenated output."""
        if not isinstance(genotype, DartsGenotype):
            raise GenotypeError(f"space {self.name!r} takes a DARTS genotype {DARTS_FORMAT}")
        return genotype.count("none") == 0

    def sample(self, rng: random.Random) -> DartsGenotype:
        """Two distinct sources per node (ascending) and a non-``none`` op per kept edge, uniformly."""
        cells = {}
        for cell in CELL_TYPES:
            pairs = []
            for node in INTERMEDIATE_NODES:
                for src in sorted(rng.sample(range(node), 2)):
                    pairs.append((rng.choice(self.derived_ops(cell, _EDGE_INDEX[(src, node)])), src))
            cells[cell] = tuple(pairs)
        return DartsGenotype(normal=cells["normal"], normal_concat=DEFAULT_CONCAT,
                             reduce=cells["reduce"], reduce_concat=DEFAULT_CONCAT)

    # -- models ----------------------------------------------------------------------------------------
    def build_supernet(self, *, channels: int, layers: int, num_classes: int, in_channels: int,
                       **options: Any) -> "nn.Module":
        """A :class:`raynas.supernet.darts.DartsSupernet` over this space; ``options`` go to it unchanged."""
        from raynas.supernet.darts import DartsSupernet

        return DartsSupernet(self, channels=channels, layers=layers, num_classes=num_classes,
                             in_channels=in_channels, **options)

    def build_network(self, genotype: Genotype | str, *, channels: int, layers: int, num_classes: int,
                      in_channels: int, auxiliary: bool = False, drop_path_prob: float = 0.0,
                      imagenet: bool = False, **options: Any) -> "nn.Module":
        """``NetworkCIFAR`` (or ``NetworkImageNet`` with ``imagenet=True``) of ``genotype`` (text or object)."""
        if options:
            raise SpaceError(f"unknown network option(s) {', '.join(sorted(options))} for space {self.name!r}; "
                             f"allowed: auxiliary, drop_path_prob, {', '.join(_NETWORK_OPTIONS)}")
        genotype = self.parse_genotype(genotype) if isinstance(genotype, str) else self.validate_genotype(genotype)
        from raynas.networks.darts import NetworkCIFAR, NetworkImageNet

        network_class = NetworkImageNet if imagenet else NetworkCIFAR
        return network_class(genotype, channels, num_classes, layers, auxiliary, in_channels=in_channels,
                             drop_path_prob=drop_path_prob)


#: the DARTS space: all 8 ops on every edge of both cells
DARTS = DartsLikeSpace("darts", same_ops_on_every_edge(DARTS_OPS))
