"""Perturbation-based architecture selection (Wang et al., "Rethinking Architecture Selection in
Differentiable NAS", DARTS-PT, ICLR 2021; released code: ruocwang/darts-pt).

The magnitude of an architecture weight need not say how much the supernet relies on its op. DARTS-PT
measures it instead: an op's importance is the validation accuracy the supernet loses when that op is
masked out of its edge. The selection is a stage after the supernet's training (any objective):

1. **Operation projection**, one round per edge: in each cell type pick an undecided edge (uniformly at
   random, seeded, or in edge order), evaluate the supernet on the validation split once per candidate op
   with that op's weight zeroed on the edge (the other rows as they are: softmax of the alphas, or fixed
   by earlier decisions), and fix the edge to the op whose removal hurts most (lowest accuracy, criterion
   ``acc``; highest loss, ``loss``). Normal and reduction cells are decided in turn in each round, the
   reduction cell seeing the normal cell's new decision.
2. **Topology projection** (cells whose nodes keep a fixed number of incoming edges, the space's
   ``inputs_per_node``: 2 in DARTS-family cells), one round per node with more inputs than that: pick such a
   node, then repeatedly remove the incoming edge whose removal hurts least (highest accuracy / lowest loss)
   until ``inputs_per_node`` remain. The removed edges leave the supernet when the
   node's round ends, as in the released code, whose every step evaluates the supernet with all the node's
   edges but the candidate (``topology_drop: after_round``); ``immediate`` removes each before the next step.
3. Between two rounds the supernet is fine-tuned for ``proj_intv`` epochs: the weight optimizer restarts at
   ``search.weight_lr * finetune_lr_factor`` with fresh momentum and stays there, as in the released code
   (which builds a cosine scheduler but never steps it), or with ``finetune_lr_schedule: cosine`` anneals to
   ``search.weight_lr_min`` over the stage; the alphas of undecided edges keep training with the search's
   architecture optimizer.

Decisions happen at stage epochs ``0, i, 2i, ...`` with ``i = max(proj_intv, 1)``, each at the start of its
epoch; the stage has ``i * (rounds - 1) + 1`` epochs (DARTS-PT's ``tune_epochs``: 81 in the DARTS space with
``proj_intv`` 5, 14 op rounds and 3 topology rounds). With ``proj_intv`` 0 nothing is fine-tuned and every
stage epoch is one round. Ties go to the lower op (or edge) index, as in the released code's op rounds.

Every evaluated candidate is a row of the ``decisions`` table (round, cell, edge, op, accuracy and loss
without it, and which candidate was kept or dropped), so a user can see why each op was chosen.

Choices made here where the paper leaves room (all configurable in the ``selection.perturbation`` section):

============================  =======================  ==========================================================
option                        default                  note
============================  =======================  ==========================================================
``criterion``                 ``acc``                  released scripts use ``acc`` for both cells
``proj_intv``                 5                        released scripts, both spaces
``edge_order``                ``random``               ``fixed``: lowest undecided edge / node first
``topology``                  true                     DARTS spaces only; false: the 2 edges whose kept op weighs most
``batch_stats``               true                     released code evaluates in train mode (batch statistics)
``finetune_lr_factor``        0.1                      released code: ``lr / 10``
``finetune_lr_schedule``      ``constant``             released code; ``cosine``: anneal to ``weight_lr_min``
``topology_drop``             ``after_round``          released code; ``immediate``: drop each edge at once
``eval_batches``              all                      the whole architecture split, as the released code
============================  =======================  ==========================================================

``none`` is never a candidate in DARTS-family cells (a derived DARTS cell has no ``none``; topology
projection removes edges instead); NAS-Bench-201 cells keep every op as a candidate, ``none`` included.
Imports numpy; torch is imported when a decision runs.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import numpy as np

from raynas.errors import ConfigError
from raynas.selection.base import Evaluate, Selection
from raynas.selection.magnitude import NONE_OP, keeps_two_per_node, magnitude_choices

if TYPE_CHECKING:
    import torch

    from raynas.config.schema import SelectionConfig
    from raynas.objectives.base import StepContext
    from raynas.spaces.base import SearchSpace
    from raynas.spaces.genotype import Genotype
    from raynas.supernet.base import Supernet

OP_ROUND = "op"
TOPOLOGY_ROUND = "topology"
CRITERIA = ("acc", "loss")
EDGE_ORDERS = ("random", "fixed")
TOPOLOGY_DROPS = ("after_round", "immediate")

#: columns of the rows :meth:`PerturbationSelection.decide` returns (the ``decisions`` table, less its keys)
DECISION_COLUMNS = ("round", "cell", "kind", "step", "node", "edge", "src", "dst", "op", "criterion", "acc",
                    "loss", "decision")


def incoming(space: "SearchSpace", cell: str, node: int) -> list[int]:
    """The edges of ``cell`` that end in ``node``, in edge order."""
    return [e for e, (_, dst) in enumerate(space.edges(cell)) if dst == node]


def topology_nodes(space: "SearchSpace", cell: str) -> list[int]:
    """Nodes of ``cell`` with more incoming edges than a node keeps (the space's ``inputs_per_node``, 2 in
    DARTS-family cells): the topology rounds; [] in a cell that keeps every edge (NB201)."""
    if not keeps_two_per_node(space, cell):
        return []
    keep = inputs_kept(space)
    nodes = sorted({dst for _, dst in space.edges(cell)})
    return [n for n in nodes if len(incoming(space, cell, n)) > keep]


def inputs_kept(space: "SearchSpace") -> int:
    """The incoming edges a node of ``space`` keeps after its topology round (``inputs_per_node``)."""
    if space.inputs_per_node is None:
        raise ValueError(f"space {space.name!r} keeps every edge: it has no topology rounds")
    return space.inputs_per_node


def projection_rounds(space: "SearchSpace", topology: bool = True) -> list[str]:
    """The kinds of the rounds of a projection of ``space``: one op round per edge, then (with ``topology``)
    one topology round per node with more inputs than it keeps; cell types with fewer edges sit out late rounds."""
    rounds = [OP_ROUND] * max(len(space.edges(cell)) for cell in space.cell_types)
    if topology:
        rounds += [TOPOLOGY_ROUND] * max(len(topology_nodes(space, cell)) for cell in space.cell_types)
    return rounds


def ranking_weights(projected: Mapping[str, np.ndarray], plain: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The softmax weights ``plain`` restricted to the entries the projection leaves nonzero in ``projected``.

    A decided row of ``projected`` is one-hot (1.0 on its kept op) and a dropped row is zero, so ranking a
    node's edges by ``projected`` ties every decided edge at 1.0 and keeps the first two (inputs 0 and 1)
    when no topology round has dropped the others. Here a decided edge keeps only its kept op, weighted by
    the softmax of its trained alpha (frozen since the decision); an undecided edge keeps its whole softmax
    row; a dropped edge stays zero, below every live one (a softmax weight is positive).
    """
    return {cell: np.where(projected[cell] > 0, plain[cell], 0.0) for cell in projected}


def _pick(options: Sequence[int], order: str, seed: int, round_index: int, cell: str) -> int:
    """One of ``options``: the first (``fixed``) or a uniform draw that depends only on (seed, round, cell)."""
    if order == "fixed":
        return options[0]
    # a string seed goes through SHA-512 in random.seed: the same draw in every process and on every resume
    return random.Random(f"raynas.perturbation:{seed}:{round_index}:{cell}").choice(list(options))


def _argbest(values: Sequence[float], lowest: bool) -> int:
    """Index of the lowest (or highest) value; ties go to the lower index."""
    best = 0
    for i, value in enumerate(values):
        if (value < values[best]) if lowest else (value > values[best]):
            best = i
    return best


class PerturbationSelection(Selection):
    """DARTS-PT: a stage that fixes edges one by one by the accuracy the supernet loses without each op.

    Between decisions, :meth:`select` gives the magnitude choice of the supernet's projected architecture
    weights (decided edges at their kept op), so per-epoch genotypes show the stage's progress.
    """

    name = "perturbation"

    def __init__(self, *, skip_disconnected: bool = True, criterion: str = "acc", proj_intv: int = 5,
                 edge_order: str = "random", topology: bool = True, topology_drop: str = "after_round",
                 seed: int = 0) -> None:
        if criterion not in CRITERIA:
            raise ConfigError(f"selection.perturbation.criterion = {criterion!r}: must be one of "
                              f"{', '.join(CRITERIA)}")
        if edge_order not in EDGE_ORDERS:
            raise ConfigError(f"selection.perturbation.edge_order = {edge_order!r}: must be one of "
                              f"{', '.join(EDGE_ORDERS)}")
        if topology_drop not in TOPOLOGY_DROPS:
            raise ConfigError(f"selection.perturbation.topology_drop = {topology_drop!r}: must be one of "
                              f"{', '.join(TOPOLOGY_DROPS)}")
        if proj_intv < 0:
            raise ConfigError(f"selection.perturbation.proj_intv = {proj_intv!r}: must be >= 0")
        self.skip_disconnected = skip_disconnected
        self.criterion = criterion
        self.proj_intv = int(proj_intv)
        self.edge_order = edge_order
        self.topology = topology
        self.topology_drop = topology_drop
        self.seed = int(seed)

    @classmethod
    def from_config(cls, cfg: "SelectionConfig", *, seed: int = 0, objectives: Any = None) -> "PerturbationSelection":
        """An instance with ``selection.perturbation``'s options; ``seed`` orders the edges (``search.seed``)."""
        pt = cfg.perturbation
        return cls(skip_disconnected=cfg.skip_disconnected, criterion=pt.criterion, proj_intv=pt.proj_intv,
                   edge_order=pt.edge_order, topology=pt.topology, topology_drop=pt.topology_drop, seed=seed)

    @classmethod
    def stage_epochs(cls, cfg: "SelectionConfig", space: "SearchSpace") -> int:
        """``max(proj_intv, 1) * (rounds - 1) + 1``: a decision every ``proj_intv`` epochs, the last one included."""
        pt = cfg.perturbation
        return max(int(pt.proj_intv), 1) * (len(projection_rounds(space, pt.topology)) - 1) + 1

    def finetunes(self, stage_epoch: int) -> bool:
        """The supernet trains in every stage epoch unless ``proj_intv`` is 0."""
        return self.proj_intv > 0

    # -- deriving ----------------------------------------------------------------------------------------
    def select(self, supernet: "Supernet", data: Any, ctx: "StepContext") -> "Genotype":
        """The magnitude choice of the projected architecture weights (the stage's decisions included).

        Each edge runs its kept op if decided, else its strongest op; a DARTS-family node keeps the 2 live
        incoming edges whose op has the largest softmax weight (:func:`ranking_weights`). A disconnected
        result (possible in NB201 cells, where ``none`` is a candidate) is repaired, with
        ``skip_disconnected``, to the connected choice of the largest log weight over the average of the
        projected and the plain softmax weights: decided edges change only when the cell needs it.
        """
        import torch

        space = supernet.space
        with torch.no_grad():
            projected = {c: w.detach().cpu().double().numpy() for c, w in supernet.arch_weights().items()}
            plain = {c: torch.softmax(a.detach().cpu().double(), dim=-1).numpy() for c, a in supernet.alphas.items()}
            choices = magnitude_choices(space, ranking_weights(projected, plain), skip_disconnected=False)
            if self.skip_disconnected and not space.is_connected(space.genotype_from_choices(choices)):
                blend = {c: 0.5 * projected[c] + 0.5 * plain[c] for c in space.cell_types}
                choices = magnitude_choices(space, blend, skip_disconnected=True)
        return space.genotype_from_choices(choices)

    # -- the stage ---------------------------------------------------------------------------------------
    def decide(self, supernet: "Supernet", stage_epoch: int, evaluate: Evaluate) -> Optional[dict[str, list]]:
        """Run the round due at ``stage_epoch`` (if any) on ``supernet.projection``; return its rows."""
        from raynas.supernet.projection import Projection

        interval = max(self.proj_intv, 1)
        rounds = projection_rounds(supernet.space, self.topology)
        if stage_epoch % interval or not 0 <= stage_epoch // interval < len(rounds):
            return None
        round_index = stage_epoch // interval
        if supernet.projection is None:
            supernet.projection = Projection(supernet.space)
        rows: dict[str, list] = {name: [] for name in DECISION_COLUMNS}
        for cell in supernet.space.cell_types:
            if rounds[round_index] == OP_ROUND:
                self._project_op(supernet, cell, round_index, evaluate, rows)
            else:
                self._project_topology(supernet, cell, round_index, evaluate, rows)
        return rows

    def _base_weights(self, supernet: "Supernet") -> dict[str, "torch.Tensor"]:
        import torch

        with torch.no_grad():
            return {c: w.detach().clone() for c, w in supernet.arch_weights().items()}

    @staticmethod
    def _masked(base: dict[str, "torch.Tensor"], cell: str, index: Any) -> dict[str, "torch.Tensor"]:
        """``base`` with ``cell``'s entries at ``index`` (an edge, or an (edge, op) pair) set to zero."""
        weights = dict(base)
        weights[cell] = base[cell].clone()
        weights[cell][index] = 0.0
        return weights

    def _project_op(self, supernet: "Supernet", cell: str, round_index: int, evaluate: Evaluate,
                    rows: dict[str, list]) -> None:
        space, projection = supernet.space, supernet.projection
        assert projection is not None
        undecided = projection.undecided(cell)
        if not undecided:
            return
        edge = _pick(undecided, self.edge_order, self.seed, round_index, cell)
        ops = space.edge_ops(cell, edge)
        candidates = [k for k, op in enumerate(ops) if not (op == NONE_OP and keeps_two_per_node(space, cell))]
        base = self._base_weights(supernet)
        results = evaluate([self._masked(base, cell, (edge, k)) for k in candidates])
        scores = [acc if self.criterion == "acc" else loss for loss, acc in results]
        kept = candidates[_argbest(scores, lowest=self.criterion == "acc")]
        projection.keep_op(cell, edge, kept)
        src, dst = space.edges(cell)[edge]
        for k, (loss, acc) in zip(candidates, results):
            self._row(rows, round_index, cell, OP_ROUND, 0, dst, edge, src, ops[k], acc, loss,
                      "keep" if k == kept else None)

    def _project_topology(self, supernet: "Supernet", cell: str, round_index: int, evaluate: Evaluate,
                          rows: dict[str, list]) -> None:
        space, projection = supernet.space, supernet.projection
        assert projection is not None
        keep = inputs_kept(space)
        open_nodes = [n for n in topology_nodes(space, cell)
                      if sum(not projection.is_dropped(cell, e) for e in incoming(space, cell, n)) > keep]
        if not open_nodes:
            return
        node = _pick(open_nodes, self.edge_order, self.seed, round_index, cell)
        alive = [e for e in incoming(space, cell, node) if not projection.is_dropped(cell, e)]
        removed: list[int] = []  # after_round: the round's removed edges, still in the supernet
        step = 0
        while len(alive) > keep:
            base = self._base_weights(supernet)
            results = evaluate([self._masked(base, cell, e) for e in alive])
            scores = [acc if self.criterion == "acc" else loss for loss, acc in results]
            dropped = alive[_argbest(scores, lowest=self.criterion != "acc")]
            if self.topology_drop == "immediate":
                projection.drop_edge(cell, dropped)
            else:
                removed.append(dropped)
            for e, (loss, acc) in zip(alive, results):
                src, dst = space.edges(cell)[e]
                self._row(rows, round_index, cell, TOPOLOGY_ROUND, step, dst, e, src,
                          self._edge_op(supernet, cell, e, base), acc, loss, "drop" if e == dropped else None)
            alive.remove(dropped)
            step += 1
        for e in removed:  # before the next cell type's round, which sees them gone (as the released code)
            projection.drop_edge(cell, e)

    @staticmethod
    def _edge_op(supernet: "Supernet", cell: str, edge: int, base: dict[str, "torch.Tensor"]) -> str:
        """The op an edge runs before a topology step: its kept op, or its strongest weight if undecided."""
        row = base[cell][edge].cpu().numpy()
        return supernet.space.edge_ops(cell, edge)[int(np.argmax(row))]

    def _row(self, rows: dict[str, list], round_index: int, cell: str, kind: str, step: int, node: int,
             edge: int, src: int, op: str, acc: float, loss: float, decision: Optional[str]) -> None:
        for name, value in (("round", round_index), ("cell", cell), ("kind", kind), ("step", step),
                            ("node", node), ("edge", edge), ("src", src), ("dst", node), ("op", op),
                            ("criterion", self.criterion), ("acc", float(acc)), ("loss", float(loss)),
                            ("decision", decision)):
            rows[name].append(value)
