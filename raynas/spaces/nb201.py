"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020).

One cell type with nodes 0..3: node 0 is the cell input, node 3 its output, and every node has an edge
from each earlier node (6 edges), each carrying one of 5 ops. All 5^6 = 15,625 cells are architectures of
the benchmark. This module imports no torch; the supernet and network are imported inside ``build_*``.
"""

from __future__ import annotations

import itertools
import random
from typing import TYPE_CHECKING, Any, Iterator

from raynas.errors import GenotypeError, SpaceError
from raynas.spaces.base import CellGraph, Choices, SearchSpace, edge_number
from raynas.spaces.genotype import NB201_FORMAT, Genotype, NB201Genotype

if TYPE_CHECKING:
    from torch import nn

#: the 5 candidate ops, in architecture-parameter column order
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_NODES = 4
_EDGES = [(src, dst) for dst in range(1, NUM_NODES) for src in range(dst)]
#: NB201's training protocol (Dong & Yang: 200 epochs, batch 256, SGD lr 0.1 with Nesterov, wd 5e-4)
NB201_PROTOCOL = {"epochs": 200, "batch_size": 256, "lr": 0.1, "nesterov": True, "weight_decay": 5e-4,
                  "auxiliary": False, "drop_path_prob": 0.0}


class NB201Space(SearchSpace):
    """The NAS-Bench-201 space: cell type "cell", edges (0,1), (0,2), (1,2), (0,3), (1,3), (2,3)."""

    name = "nb201"
    cell_types = ("cell",)
    genotype_type = NB201Genotype
    genotype_format = f"an NB201 arch string {NB201_FORMAT}"
    inputs_per_node = None  # a cell keeps all 6 edges
    supernet_options = ()

    def __repr__(self) -> str:
        return "NB201Space()"

    # -- structure -------------------------------------------------------------------------------------
    def edges(self, cell: str) -> list[tuple[int, int]]:
        """The 6 ``(src, dst)`` edges, node-major then by source."""
        self.check_cell(cell)
        return list(_EDGES)

    def edge_ops(self, cell: str, edge: int) -> tuple[str, ...]:
        """The 5 candidate ops (the same on every edge)."""
        self.check_edge(cell, edge)
        return NB201_OPS

    def default_network_args(self) -> dict[str, int]:
        """The benchmark's network: 16 initial channels, 5 cells per stage."""
        return {"channels": 16, "layers": 5}

    def training_protocol(self) -> dict[str, Any]:
        """NB201's protocol (no auxiliary head, no drop-path, no cutout)."""
        return dict(NB201_PROTOCOL)

    def num_architectures(self) -> int:
        """The number of distinct cells: 5^6 = 15,625."""
        return len(NB201_OPS) ** len(_EDGES)

    def enumerate_genotypes(self) -> Iterator[NB201Genotype]:
        """Every genotype of the space once (op of edge 0 varying slowest)."""
        for ops in itertools.product(NB201_OPS, repeat=len(_EDGES)):
            yield self._genotype(ops)

    # -- genotypes -------------------------------------------------------------------------------------
    @staticmethod
    def _genotype(ops: tuple[str, ...] | list[str]) -> NB201Genotype:
        """The genotype whose edge ``e`` (in :meth:`edges` order) carries ``ops[e]``."""
        nodes: list[list[tuple[str, int]]] = [[] for _ in range(NUM_NODES - 1)]
        for (src, dst), op in zip(_EDGES, ops):
            nodes[dst - 1].append((op, src))
        return NB201Genotype(nodes=tuple(tuple(node) for node in nodes))

    def is_genotype_text(self, text: str) -> bool:
        """Whether ``text`` is an arch string: it starts with ``|``."""
        return isinstance(text, str) and text.strip().startswith("|")

    def read_genotype(self, text: str) -> NB201Genotype:
        """The arch string ``text`` parsed, its ops and sources unchecked."""
        return NB201Genotype.parse(text)

    def cell_graph(self, genotype: Genotype, cell: str) -> CellGraph:
        """Node 0 (input) to the last node (output), one edge per entry of the arch string."""
        self.check_cell(cell)
        if not isinstance(genotype, NB201Genotype):
            raise GenotypeError(f"space {self.name!r} draws NB201 genotypes, got {type(genotype).__name__}")
        last = len(genotype.nodes)
        nodes = {node: "input" if node == 0 else "output" if node == last else "inner" for node in range(last + 1)}
        edges = tuple((src, dst, op) for op, src, dst in genotype.edges())
        return CellGraph(nodes=nodes, edges=edges, names={node: self.node_name(cell, node) for node in nodes})

    def parse_genotype(self, text: str) -> NB201Genotype:
        """Parse an NB201 arch string and validate it against this space."""
        if not isinstance(text, str) or not text.strip().startswith("|"):
            raise GenotypeError(f"space {self.name!r} takes an NB201 arch string {NB201_FORMAT}, got {text!r}")
        return self.validate_genotype(NB201Genotype.parse(text))

    def validate_genotype(self, genotype: Genotype) -> NB201Genotype:
        """Return ``genotype`` if node j has exactly one entry from each of 0..j-1 (ascending) and every op
        is one of the 5 candidates; otherwise raise :class:`GenotypeError` naming the fault."""
        if not isinstance(genotype, NB201Genotype):
            raise GenotypeError(f"space {self.name!r} takes an NB201 arch string {NB201_FORMAT}, "
                                f"got {type(genotype).__name__} {genotype}")
        if len(genotype.nodes) != NUM_NODES - 1:
            raise GenotypeError(f"NB201 genotype {genotype} has {len(genotype.nodes)} nodes; expected "
                                f"{NUM_NODES - 1} ({NB201_FORMAT})")
        for dst, node in enumerate(genotype.nodes, start=1):
            sources = [src for _, src in node]
            if sources != list(range(dst)):
                raise GenotypeError(f"NB201 node {dst} has sources {sources}; expected {list(range(dst))} "
                                    f"(one edge from each earlier node, ascending)")
            for op, src in node:
                if op not in NB201_OPS:
                    raise GenotypeError(f"NB201 edge {src}->{dst} has unknown op {op!r}; allowed: "
                                        f"{', '.join(NB201_OPS)}")
        return genotype

    def choices_from_genotype(self, genotype: Genotype) -> dict[str, dict[int, str]]:
        """``{"cell": {edge_index: op}}`` for all 6 edges."""
        genotype = self.validate_genotype(genotype)
        index = {edge: i for i, edge in enumerate(_EDGES)}
        return {"cell": {index[(src, dst)]: op for op, src, dst in genotype.edges()}}

    def genotype_from_choices(self, choices: Choices) -> NB201Genotype:
        """The genotype of ``choices``, which must name an op for each of the 6 edges."""
        if "cell" not in choices:
            raise GenotypeError("choices have no cell 'cell'; expected cells: cell")
        ops: list[str | None] = [None] * len(_EDGES)
        for key, op in choices["cell"].items():
            edge = edge_number(key)
            if edge is None or not 0 <= edge < len(_EDGES):
                raise GenotypeError(f"choices['cell'] has edge {key!r}; valid: 0..{len(_EDGES) - 1}")
            if op not in NB201_OPS:
                raise GenotypeError(f"choices['cell'][{edge}] = {op!r} is not a candidate; allowed: "
                                    f"{', '.join(NB201_OPS)}")
            ops[edge] = op
        missing = [e for e, op in enumerate(ops) if op is None]
        if missing:
            raise GenotypeError(f"choices['cell'] lack edge(s) {missing}; an NB201 cell keeps all {len(_EDGES)}")
        return self._genotype([str(op) for op in ops])

    def is_connected(self, genotype: Genotype) -> bool:
        """Whether a path of non-``none`` edges leads from node 0 to node 3."""
        genotype = self.validate_genotype(genotype)
        reached = {0}
        for op, src, dst in genotype.edges():  # node-major order: every src is settled before dst
            if op != "none" and src in reached:
                reached.add(dst)
        return NUM_NODES - 1 in reached

    def sample(self, rng: random.Random) -> NB201Genotype:
        """A uniform draw from the 15,625 cells: one op per edge."""
        return self._genotype([rng.choice(NB201_OPS) for _ in _EDGES])

    # -- models ----------------------------------------------------------------------------------------
    def build_supernet(self, *, channels: int, layers: int, num_classes: int, in_channels: int,
                       **options: Any) -> "nn.Module":
        """A :class:`raynas.supernet.nb201.NB201Supernet`; ``layers`` is the cells per stage N."""
        if options:
            raise SpaceError(f"unknown supernet option(s) {', '.join(sorted(options))} for space 'nb201'; "
                             f"it takes only channels, layers, num_classes, in_channels")
        from raynas.supernet.nb201 import NB201Supernet

        return NB201Supernet(self, channels=channels, layers=layers, num_classes=num_classes,
                             in_channels=in_channels)

    def build_network(self, genotype: Genotype | str, *, channels: int, layers: int, num_classes: int,
                      in_channels: int, auxiliary: bool = False, drop_path_prob: float = 0.0,
                      **options: Any) -> "nn.Module":
        """The benchmark's ``TinyNetwork`` of ``genotype`` (text or object); ``layers`` is N."""
        if options:
            raise SpaceError(f"unknown network option(s) {', '.join(sorted(options))} for space 'nb201'; "
                             f"allowed: auxiliary (False), drop_path_prob")
        if auxiliary:
            raise SpaceError("auxiliary=True is not supported by space 'nb201': its network has no auxiliary "
                             "head; use auxiliary=False")
        genotype = self.parse_genotype(genotype) if isinstance(genotype, str) else self.validate_genotype(genotype)
        from raynas.networks.nb201 import TinyNetwork

        network = TinyNetwork(genotype, C=channels, N=layers, num_classes=num_classes, in_channels=in_channels)
        network.drop_path_prob = drop_path_prob
        return network


#: the registered instance
NB201 = NB201Space()
