"""Sampling selection: random search with weight sharing, plain or neighbourhood-aware (NA-RS).

After the supernet's training (``method: rs`` trains it with uniform path sampling,
:mod:`raynas.objectives.uniform_path`; any method works) a one-epoch stage draws ``selection.sampling.samples``
architectures uniformly from the space and scores each with the supernet's weights (Li & Talwalkar, "Random
Search and Reproducibility for Neural Architecture Search", UAI 2019). With ``objectives.na`` the score is
NA-RS's (Wang, Cao, Li, Kitani, "Neighborhood-Aware Neural Architecture Search", BMVC 2021): the aggregate of
the validation accuracies of the architecture and ``neighbors`` of its neighbours, so that the search prefers
architectures whose accuracy survives small changes. The best score wins (ties: the first drawn) and is fixed in
``supernet.projection``, so :meth:`SamplingSelection.select` returns it from then on and a resumed search keeps
it.

[recon] Choices made here where the paper leaves room (``methods.md``, NA-DARTS section):

=================================  =======  ===========================================================
setting                            default  note
=================================  =======  ===========================================================
``selection.sampling.samples``     100      K architectures, ``space.sample`` from one seeded stream;
                                            with ``skip_disconnected`` disconnected draws are redrawn
``objectives.na.neighbors``        4        M neighbours per architecture, drawn independently (repeats
                                            possible); no ``objectives.na``: the own accuracy alone
``objectives.na.radius``           1        a neighbour changes the op of exactly r distinct kept edges
                                            (Hamming distance r, topology fixed); each change uniform
                                            over the (edge, op) pairs still allowed
``objectives.na.aggregation``      mean     ``mean`` of the accuracies, the architecture's own
                                            included, or ``max``: the worst member's (the highest
                                            error, as NA-DARTS's ``max`` is the highest loss)
=================================  =======  ===========================================================

Every distinct architecture (samples and neighbours) is evaluated once, all in one ``evaluate`` call, so
``selection.workers`` Ray actors share the whole stage. The seeds depend on ``search.seed`` only: the same
samples with and without NA, in every process and on every resume.

Rows of the ``decisions`` table fit its existing columns (the table was designed for DARTS-PT's per-edge
rows): one row per member, ``round`` 0, ``cell`` ``"*"`` (a whole architecture), ``node``/``src``/``dst``
null, ``op`` the member's genotype text, ``step`` the sample index and ``edge`` the member's index in its
neighbourhood (not an edge):

- ``kind`` ``sample``, ``step`` k, ``edge`` 0: sample k's own accuracy and loss (``criterion`` ``acc``);
- ``kind`` ``neighbor``, ``step`` k, ``edge`` m (1..M): neighbour m of sample k;
- with NA, ``kind`` ``score``, ``step`` k, ``edge`` -1: the aggregate (``criterion`` the aggregation;
  ``loss``: the mean loss for ``mean``, the loss of the worst member for ``max``).

The winner's score row (its sample row without NA) has ``decision`` ``keep``. Imports numpy; torch is
imported when a decision runs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

from raynas.errors import ConfigError, SpaceError
from raynas.selection.base import Evaluate, Selection
from raynas.selection.magnitude import magnitude_choices

if TYPE_CHECKING:
    from raynas.config.schema import SelectionConfig
    from raynas.objectives.base import StepContext
    from raynas.spaces.base import SearchSpace
    from raynas.spaces.genotype import Genotype
    from raynas.supernet.base import Supernet

AGGREGATIONS = ("mean", "max")
ALL_CELLS = "*"  #: the ``cell`` of a decision row about a whole architecture

#: columns of the rows :meth:`SamplingSelection.decide` returns (the ``decisions`` table, less its keys)
DECISION_COLUMNS = ("round", "cell", "kind", "step", "node", "edge", "src", "dst", "op", "criterion", "acc",
                    "loss", "decision")


def _rng(seed: int, *tags: Any) -> random.Random:
    # a string seed goes through SHA-512 in random.seed: the same draws in every process and on every resume
    return random.Random(":".join(["raynas.sampling", str(int(seed)), *map(str, tags)]))


def draw_samples(space: "SearchSpace", count: int, seed: int, *, connected: bool = True) -> list["Genotype"]:
    """``count`` architectures drawn uniformly from ``space`` (only connected ones with ``connected``)."""
    rng = _rng(seed)
    out: list["Genotype"] = []
    while len(out) < count:
        genotype = space.sample(rng)
        if not connected or space.is_connected(genotype):
            out.append(genotype)
    return out


def neighbor_at(space: "SearchSpace", genotype: "Genotype", radius: int, rng: random.Random) -> "Genotype":
    """A neighbour of ``genotype`` at Hamming distance exactly ``radius``: the ops of ``radius`` distinct kept
    edges replaced, one edge at a time, each change uniform over the (edge, op) pairs not yet changed."""
    choices = {cell: dict(edges) for cell, edges in space.choices_from_genotype(genotype).items()}
    changed: set[tuple[str, int]] = set()
    for _ in range(radius):
        # the order of space.neighbors: cell, edge, op
        options = [(cell, edge, op) for cell in space.cell_types for edge, current in sorted(choices[cell].items())
                   if (cell, edge) not in changed for op in space.derived_ops(cell, edge) if op != current]
        if not options:
            raise SpaceError(f"genotype {genotype} has no neighbour at distance {radius} in space {space.name!r}: "
                             f"only {len(changed)} of its edges can change; lower objectives.na.radius")
        cell, edge, op = rng.choice(options)
        choices[cell][edge] = op
        changed.add((cell, edge))
    return space.genotype_from_choices(choices)


def draw_neighborhoods(space: "SearchSpace", samples: Sequence["Genotype"], neighbors: int, radius: int,
                       seed: int) -> list[list["Genotype"]]:
    """Per sample: ``[sample, neighbour 1, ..., neighbour M]``; sample k's neighbours come from their own
    stream, so they do not depend on the other samples."""
    out = []
    for k, sample in enumerate(samples):
        rng = _rng(seed, k, "neighbors")
        out.append([sample, *(neighbor_at(space, sample, radius, rng) for _ in range(neighbors))])
    return out


def aggregate(results: Sequence[tuple[float, float]], how: str) -> tuple[float, float]:
    """``(loss, acc)`` of a neighbourhood from its members' ``(loss, acc)``: the means (``mean``), or the
    worst member's, of the lowest accuracy (``max`` of the error; ties: the first)."""
    if how == "mean":
        return (sum(loss for loss, _ in results) / len(results), sum(acc for _, acc in results) / len(results))
    worst = 0
    for i, (_, acc) in enumerate(results):
        if acc < results[worst][1]:
            worst = i
    return results[worst]


def fix_genotype(supernet: "Supernet", genotype: "Genotype") -> None:
    """Fix every edge of ``supernet.projection`` to ``genotype``: its op, or dropped if the genotype has no
    such edge (DARTS-family cells)."""
    from raynas.supernet.projection import Projection

    space = supernet.space
    if supernet.projection is None:
        supernet.projection = Projection(space)
    choices = space.choices_from_genotype(genotype)
    for cell in space.cell_types:
        for edge in range(len(space.edges(cell))):
            if edge in choices[cell]:
                supernet.projection.keep_op(cell, edge, space.edge_ops(cell, edge).index(choices[cell][edge]))
            else:
                supernet.projection.drop_edge(cell, edge)


@dataclass(frozen=True)
class _Scoring:
    """How samples are scored: by themselves (``neighbors`` 0) or by their neighbourhood."""

    neighbors: int = 0
    radius: int = 1
    aggregation: str = "mean"


class SamplingSelection(Selection):
    """Random search with weight sharing: a one-epoch stage that scores uniformly drawn architectures.

    Before the stage, :meth:`select` gives the magnitude choice of the architecture weights, which means
    nothing after an ``rs`` search (its alphas never leave their initialisation); after it, the winner.
    """

    name = "sampling"

    def __init__(self, *, skip_disconnected: bool = True, samples: int = 100, neighbors: int = 0, radius: int = 1,
                 aggregation: str = "mean", seed: int = 0) -> None:
        if samples < 1:
            raise ConfigError(f"selection.sampling.samples = {samples!r}: must be >= 1")
        if neighbors < 0:
            raise ConfigError(f"objectives.na.neighbors = {neighbors!r}: must be >= 1 (or no objectives.na)")
        if radius < 1:
            raise ConfigError(f"objectives.na.radius = {radius!r}: must be >= 1")
        if aggregation not in AGGREGATIONS:
            raise ConfigError(f"objectives.na.aggregation = {aggregation!r}: must be one of "
                              f"{', '.join(AGGREGATIONS)}")
        self.skip_disconnected = skip_disconnected
        self.samples = int(samples)
        self.scoring = _Scoring(int(neighbors), int(radius), aggregation)
        self.seed = int(seed)

    @classmethod
    def from_config(cls, cfg: "SelectionConfig", *, seed: int = 0, objectives: Any = None) -> "SamplingSelection":
        """``selection.sampling.samples`` draws seeded by ``search.seed``; NA-RS scoring with ``objectives.na``."""
        na = getattr(objectives, "na", None)
        if na is None:
            return cls(skip_disconnected=cfg.skip_disconnected, samples=cfg.sampling.samples, seed=seed)
        return cls(skip_disconnected=cfg.skip_disconnected, samples=cfg.sampling.samples, neighbors=na.neighbors,
                   radius=na.radius, aggregation=na.aggregation, seed=seed)

    @classmethod
    def stage_epochs(cls, cfg: "SelectionConfig", space: "SearchSpace") -> int:
        """One epoch: every sample is scored at its start."""
        return 1

    def finetunes(self, stage_epoch: int) -> bool:
        """Never: the samples are scored with the weights the search trained."""
        return False

    @property
    def neighborhood_aware(self) -> bool:
        """Whether samples are scored by their neighbourhood (NA-RS)."""
        return self.scoring.neighbors > 0

    # -- deriving ----------------------------------------------------------------------------------------
    def select(self, supernet: "Supernet", data: Any, ctx: "StepContext") -> "Genotype":
        """The magnitude choice of the projected architecture weights: the winner once the stage has run."""
        import torch

        with torch.no_grad():
            projected = {c: w.detach().cpu().double().numpy() for c, w in supernet.arch_weights().items()}
        choices = magnitude_choices(supernet.space, projected, skip_disconnected=self.skip_disconnected)
        return supernet.space.genotype_from_choices(choices)

    # -- the stage ---------------------------------------------------------------------------------------
    def neighborhoods(self, space: "SearchSpace") -> list[list["Genotype"]]:
        """What the stage evaluates: per sample ``[sample, neighbours...]`` (just ``[sample]`` without NA)."""
        samples = draw_samples(space, self.samples, self.seed, connected=self.skip_disconnected)
        s = self.scoring
        return draw_neighborhoods(space, samples, s.neighbors, s.radius, self.seed)

    def decide(self, supernet: "Supernet", stage_epoch: int, evaluate: Evaluate) -> Optional[dict[str, list]]:
        """At stage epoch 0: score every sample, fix the best in ``supernet.projection``, return the rows."""
        if stage_epoch != 0:
            return None
        space = supernet.space
        groups = self.neighborhoods(space)
        results = self._evaluate_unique(supernet, [g for group in groups for g in group], evaluate)
        scored = [[results[g] for g in group] for group in groups]
        scores = [aggregate(members, self.scoring.aggregation) for members in scored]
        winner = 0
        for k, (_, acc) in enumerate(scores):
            if acc > scores[winner][1]:
                winner = k
        fix_genotype(supernet, groups[winner][0])
        return self._rows(groups, scored, scores, winner)

    @staticmethod
    def _evaluate_unique(supernet: "Supernet", genotypes: Sequence["Genotype"],
                         evaluate: Evaluate) -> dict["Genotype", tuple[float, float]]:
        """``(loss, acc)`` per distinct genotype, from one ``evaluate`` call over their one-hot weights."""
        from raynas.supernet import discrete_weights

        space = supernet.space
        unique = list(dict.fromkeys(genotypes))
        device = supernet.alphas[space.cell_types[0]].device
        candidates = [discrete_weights(space, space.choices_from_genotype(g), device=device) for g in unique]
        results = evaluate(candidates)
        if len(results) != len(unique):
            raise RuntimeError(f"evaluate returned {len(results)} results for {len(unique)} candidates")
        return {g: (float(loss), float(acc)) for g, (loss, acc) in zip(unique, results)}

    def _rows(self, groups: Sequence[Sequence["Genotype"]], scored: Sequence[Sequence[tuple[float, float]]],
              scores: Sequence[tuple[float, float]], winner: int) -> dict[str, list]:
        rows: dict[str, list] = {name: [] for name in DECISION_COLUMNS}
        na = self.neighborhood_aware
        for k, (group, members) in enumerate(zip(groups, scored)):
            for m, (genotype, (loss, acc)) in enumerate(zip(group, members)):
                keep = not na and m == 0 and k == winner
                _row(rows, "sample" if m == 0 else "neighbor", k, m, genotype, "acc", acc, loss, keep)
            if na:
                loss, acc = scores[k]
                _row(rows, "score", k, -1, group[0], self.scoring.aggregation, acc, loss, k == winner)
        return rows


def _row(rows: dict[str, list], kind: str, step: int, member: int, genotype: "Genotype", criterion: str,
         acc: float, loss: float, keep: bool) -> None:
    for name, value in (("round", 0), ("cell", ALL_CELLS), ("kind", kind), ("step", step), ("node", None),
                        ("edge", member), ("src", None), ("dst", None), ("op", str(genotype)),
                        ("criterion", criterion), ("acc", float(acc)), ("loss", float(loss)),
                        ("decision", "keep" if keep else None)):
        rows[name].append(value)
