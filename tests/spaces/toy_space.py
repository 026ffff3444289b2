"""A toy search space with a cell topology and a genotype text form of its own, for the space contract tests.

Its cell has nodes 0 (input), 1 and 2 (output) and three edges, 0->1, 0->2 and 1->2, each carrying one of
six ops; its genotypes print as ``<op01;op02;op12>``. Everything raynas needs to search, train, draw and
report it is here: adding it touches no file of raynas (tests/spaces/test_spaces_toy.py registers it).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn

from raynas.errors import GenotypeError, SpaceError
from raynas.ops import make_op
from raynas.spaces.base import CellGraph, Choices, SearchSpace, edge_number

TOY_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "max_pool_3x3")
TOY_EDGES = [(0, 1), (0, 2), (1, 2)]
TOY_FORMAT = "<skip_connect;nor_conv_3x3;none>"


@dataclass(frozen=True)
class ToyGenotype:
    """The op of each edge of the toy cell, in :data:`TOY_EDGES` order."""

    ops: tuple[str, ...]

    CELLS = ("cell",)

    def __str__(self) -> str:
        return "<" + ";".join(self.ops) + ">"

    def count(self, op: str, cell: str | None = None) -> int:
        """How many edges carry ``op``."""
        return self.ops.count(op)

    @classmethod
    def parse(cls, text: str) -> "ToyGenotype":
        """Read ``<op;op;op>``."""
        source = text.strip() if isinstance(text, str) else ""
        if not (source.startswith("<") and source.endswith(">")):
            raise GenotypeError(f"malformed toy genotype {text!r}; expected {TOY_FORMAT}")
        return cls(tuple(op.strip() for op in source[1:-1].split(";")))


class ToyNetwork(nn.Module):
    """Stem, ``layers`` toy cells, pooling and a classifier."""

    def __init__(self, genotype: ToyGenotype, channels: int, layers: int, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.drop_path_prob = 0.0
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.cells = nn.ModuleList(nn.ModuleList(make_op(op, channels, 1, affine=True) for op in genotype.ops)
                                   for _ in range(layers))
        self.classifier = nn.Linear(channels, num_classes)

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Logits, and no auxiliary head."""
        out = self.stem(x)
        for ops in self.cells:
            node1 = ops[0](out)
            out = ops[1](out) + ops[2](node1)
        return self.classifier(out.mean(dim=(2, 3))), None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.forward_with_aux(x)[0]


class ToySpace(SearchSpace):
    """Three edges, six ops, every edge kept (6^3 = 216 cells)."""

    name = "toy"
    cell_types = ("cell",)
    genotype_type = ToyGenotype
    genotype_format = f"a toy genotype {TOY_FORMAT}"
    inputs_per_node = None
    supernet_options = ()

    def edges(self, cell: str) -> list[tuple[int, int]]:
        self.check_cell(cell)
        return list(TOY_EDGES)

    def edge_ops(self, cell: str, edge: int) -> tuple[str, ...]:
        self.check_edge(cell, edge)
        return TOY_OPS

    def default_network_args(self) -> dict[str, int]:
        return {"channels": 4, "layers": 1}

    def training_protocol(self) -> dict[str, Any]:
        return {"epochs": 2, "batch_size": 32, "lr": 0.05, "nesterov": True, "weight_decay": 1e-4,
                "auxiliary": False, "drop_path_prob": 0.0}

    def is_genotype_text(self, text: str) -> bool:
        return isinstance(text, str) and text.strip().startswith("<")

    def read_genotype(self, text: str) -> ToyGenotype:
        return ToyGenotype.parse(text)

    def node_name(self, cell: str, node: int) -> str:
        return {0: "in", 2: "out"}.get(node, str(node))

    def cell_graph(self, genotype: Any, cell: str) -> CellGraph:
        self.check_cell(cell)
        return CellGraph(nodes={0: "input", 1: "inner", 2: "output"},
                         edges=tuple((src, dst, op) for (src, dst), op in zip(TOY_EDGES, genotype.ops)),
                         names={node: self.node_name(cell, node) for node in range(3)})

    def parse_genotype(self, text: str) -> ToyGenotype:
        return self.validate_genotype(ToyGenotype.parse(text))

    def validate_genotype(self, genotype: Any) -> ToyGenotype:
        if not isinstance(genotype, ToyGenotype) or len(genotype.ops) != len(TOY_EDGES):
            raise GenotypeError(f"space 'toy' takes {len(TOY_EDGES)} ops {TOY_FORMAT}, got {genotype}")
        bad = [op for op in genotype.ops if op not in TOY_OPS]
        if bad:
            raise GenotypeError(f"toy genotype {genotype} has unknown op(s) {bad}; allowed: {', '.join(TOY_OPS)}")
        return genotype

    def genotype_from_choices(self, choices: Choices) -> ToyGenotype:
        chosen = {edge_number(e): op for e, op in choices.get("cell", {}).items()}
        if sorted(chosen) != list(range(len(TOY_EDGES))):  # type: ignore[type-var]
            raise GenotypeError(f"toy choices need edges 0..{len(TOY_EDGES) - 1}, "
                                f"got {sorted(choices.get('cell', {}))}")
        return self.validate_genotype(ToyGenotype(tuple(chosen[e] for e in range(len(TOY_EDGES)))))

    def choices_from_genotype(self, genotype: Any) -> dict[str, dict[int, str]]:
        return {"cell": dict(enumerate(self.validate_genotype(genotype).ops))}

    def is_connected(self, genotype: Any) -> bool:
        op01, op02, op12 = self.validate_genotype(genotype).ops
        return op02 != "none" or (op01 != "none" and op12 != "none")

    def sample(self, rng: random.Random) -> ToyGenotype:
        return ToyGenotype(tuple(rng.choice(TOY_OPS) for _ in TOY_EDGES))

    def enumerate_genotypes(self) -> Iterator[ToyGenotype]:
        """All 216 cells (E2NAS trains its autoencoder on every one)."""
        return (ToyGenotype(ops) for ops in itertools.product(TOY_OPS, repeat=len(TOY_EDGES)))

    def build_supernet(self, *, channels: int, layers: int, num_classes: int, in_channels: int,
                       **options: Any) -> nn.Module:
        if options:
            raise SpaceError(f"unknown supernet option(s) {', '.join(sorted(options))} for space 'toy'")
        # NB201's search network takes any space with one cell type and one input node
        from raynas.supernet.nb201 import NB201Supernet

        return NB201Supernet(self, channels=channels, layers=layers, num_classes=num_classes, in_channels=in_channels)

    def build_network(self, genotype: Any, *, channels: int, layers: int, num_classes: int, in_channels: int,
                      auxiliary: bool = False, drop_path_prob: float = 0.0, **options: Any) -> nn.Module:
        if auxiliary or options:
            raise SpaceError("space 'toy' has no auxiliary head and takes no network options")
        genotype = self.parse_genotype(genotype) if isinstance(genotype, str) else self.validate_genotype(genotype)
        return ToyNetwork(genotype, channels, layers, num_classes, in_channels)


TOY = ToySpace()
