"""NA-DARTS: the neighbourhood-aware architecture loss (Wang, Cao, Li, Kitani, "Neighborhood-Aware Neural
Architecture Search", BMVC 2021).

[paper] An architecture is scored by the performance aggregated over its neighbourhood, so that the search
prefers flat minima of architecture space: architectures that keep performing when one op is swapped.

[recon] The paper's differentiable neighbourhood representation was not available to us; this module
implements the reconstruction of ``methods.md``, every part of it configurable (``objectives.na``):

- a neighbour of the current (continuous) architecture ``p = softmax(alpha)`` changes ``radius`` edges,
  drawn at random among the edges a selection has not fixed, over every cell type;
- ``representation: dominant`` (default): on a changed edge the mass of the currently dominant op moves to
  the other ops, ``q_e = p_e * (1 - onehot(argmax p_e)) / sum(...)``, which is differentiable in alpha (the
  argmax only picks the mask) and is the continuous counterpart of "one op changed on one edge";
  ``representation: perturb``: ``softmax(alpha_e + u)`` with ``u ~ U[-noise, noise]`` on the changed edges;
- the architecture loss is the ``aggregation`` (``mean``, or ``max``: the worst neighbour) of the
  cross-entropies of ``neighbors`` such neighbours on the architecture-split batch, plus the current
  architecture's own when ``include_center``. The weights train as in DARTS; first and second order both
  work, since the term only supplies the architecture loss.

Randomness comes from a generator seeded by ``(search.seed, global step)`` alone, so every shard draws the
same neighbours and a resumed search draws what an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F

from raynas.config.schema import required_section
from raynas.objectives.base import Batch, SearchEnv, StepContext, Term

if TYPE_CHECKING:

    from raynas.config.schema import ExperimentConfig
    from raynas.supernet.base import Supernet

REPRESENTATIONS = ("dominant", "perturb")
AGGREGATIONS = ("mean", "max")


def step_generator(tag: str, seed: int, step: int) -> torch.Generator:
    """A CPU generator seeded from ``(tag, seed, step)`` only (no global RNG state is read or changed)."""
    digest = hashlib.sha256(f"raynas.{tag}:{seed}:{step}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def move_dominant_mass(p: torch.Tensor) -> torch.Tensor:
    """``p`` (rows of op weights) with each row's largest entry's mass spread over the others, in proportion.

    ``q = p * (1 - onehot(argmax p)) / sum(p * (1 - onehot(argmax p)))``; differentiable in ``p``. A row whose
    other entries are all zero keeps its mass where it is.
    """
    mask = torch.ones_like(p).scatter_(-1, p.argmax(-1, keepdim=True), 0.0)
    rest = p * mask
    total = rest.sum(-1, keepdim=True)
    return torch.where(total > 0, rest / total.clamp_min(torch.finfo(p.dtype).tiny), p)


def free_rows(model: "Supernet") -> list[tuple[str, int]]:
    """The ``(cell, edge)`` rows of the architecture weights that still follow the alphas."""
    projection = model.projection
    rows: list[tuple[str, int]] = []
    for cell in model.space.cell_types:
        edges = range(model.space.arch_shape(cell)[0]) if projection is None else projection.undecided(cell)
        rows.extend((cell, e) for e in edges)
    return rows


def neighbor_weights(model: "Supernet", rows: Sequence[tuple[str, int]], representation: str,
                     generator: torch.Generator, *, noise: float = 0.3,
                     base: Optional[Mapping[str, torch.Tensor]] = None) -> dict[str, torch.Tensor]:
    """The architecture weights of one neighbour in which ``rows`` (``(cell, edge)`` pairs) changed.

    ``base`` is ``model.arch_weights()`` (computed when not given); ``dominant`` moves each changed row's
    dominant mass (:func:`move_dominant_mass`), ``perturb`` adds ``U[-noise, noise]`` (drawn from
    ``generator``) to the alphas of the changed rows before the softmax. Rows fixed by the supernet's
    projection stay fixed. Differentiable with respect to the alphas.
    """
    base = dict(base if base is not None else model.arch_weights())
    by_cell: dict[str, list[int]] = {}
    for cell, edge in rows:
        by_cell.setdefault(cell, []).append(edge)
    out = dict(base)
    for cell, edges in by_cell.items():
        w = base[cell]
        mask = torch.zeros(w.shape[0], 1, dtype=torch.bool)
        mask[edges] = True
        mask = mask.to(w.device)
        if representation == "dominant":
            changed = move_dominant_mass(w)
        elif representation == "perturb":
            u = (torch.rand(w.shape, generator=generator, dtype=w.dtype) * 2 - 1) * noise
            changed = F.softmax(model.alphas[cell] + u.to(w.device), dim=-1)
        else:
            raise ValueError(f"representation {representation!r}; valid: {', '.join(REPRESENTATIONS)}")
        out[cell] = torch.where(mask, changed, w)
    return out if model.projection is None else model.projection.apply(out)


def aggregate(losses: Sequence[torch.Tensor], how: str) -> torch.Tensor:
    """``mean`` or ``max`` of one-element losses (differentiable)."""
    stacked = torch.stack([loss.reshape(()) for loss in losses])
    if how == "mean":
        return stacked.mean()
    if how == "max":
        return stacked.max()
    raise ValueError(f"aggregation {how!r}; valid: {', '.join(AGGREGATIONS)}")


def neighborhood_loss(model: "Supernet", batch: Batch, generator: torch.Generator, *, neighbors: int,
                      radius: int, aggregation: str = "mean", representation: str = "dominant",
                      noise: float = 0.3, include_center: bool = False,
                      loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy
                      ) -> torch.Tensor:
    """The NA-DARTS architecture loss on ``batch``: the aggregate of ``loss_fn`` over sampled neighbours.

    Each of the ``neighbors`` neighbours changes ``min(radius, free rows)`` distinct rows drawn from
    ``generator`` (a fresh permutation per neighbour); ``include_center`` adds the current architecture.
    """
    x, y = batch
    base = model.arch_weights()
    rows = free_rows(model)
    losses = [loss_fn(model(x, base), y)] if include_center else []
    for _ in range(neighbors):
        picked = [rows[i] for i in torch.randperm(len(rows), generator=generator)[:radius].tolist()]
        weights = neighbor_weights(model, picked, representation, generator, noise=noise, base=base)
        losses.append(loss_fn(model(x, weights), y))
    return aggregate(losses, aggregation)


class NeighborhoodTerm(Term):
    """The NA-DARTS term: replaces the architecture step's cross-entropy by :func:`neighborhood_loss`.

    Logs ``na_arch_loss``, the mean neighbourhood loss of the epoch's architecture steps.
    """

    name = "na"
    replaces_arch_loss = True

    def __init__(self, *, neighbors: int = 4, radius: int = 1, aggregation: str = "mean",
                 representation: str = "dominant", noise: float = 0.3, include_center: bool = False) -> None:
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation {aggregation!r}; valid: {', '.join(AGGREGATIONS)}")
        if representation not in REPRESENTATIONS:
            raise ValueError(f"representation {representation!r}; valid: {', '.join(REPRESENTATIONS)}")
        self.neighbors, self.radius, self.aggregation = int(neighbors), int(radius), aggregation
        self.representation, self.noise, self.include_center = representation, float(noise), bool(include_center)
        self._sum = 0.0
        self._count = 0

    @classmethod
    def from_config(cls, cfg: "ExperimentConfig", env: SearchEnv) -> "NeighborhoodTerm":
        """The term of ``cfg.objectives.na``."""
        na = required_section(cfg.objectives.na, "objectives.na")
        return cls(neighbors=na.neighbors, radius=na.radius, aggregation=na.aggregation,
                   representation=na.representation, noise=na.noise, include_center=na.include_center)

    def arch_loss(self, model: "Supernet", batch: Batch, ctx: StepContext) -> Optional[torch.Tensor]:
        """:func:`neighborhood_loss` with neighbours drawn from ``(ctx.seed, ctx.global_step)``."""
        loss = neighborhood_loss(model, batch, step_generator("na", ctx.seed, ctx.global_step),  # type: ignore[arg-type]
                                 neighbors=self.neighbors, radius=self.radius, aggregation=self.aggregation,
                                 representation=self.representation, noise=self.noise,
                                 include_center=self.include_center)
        self._sum += float(loss.detach())
        self._count += 1
        return loss

    def on_epoch_end(self, model: "Supernet", ctx: StepContext) -> dict[str, float]:
        """``na_arch_loss`` of the epoch (this shard's slices; absent when no architecture step ran)."""
        metrics = {"na_arch_loss": self._sum / self._count} if self._count else {}
        self._sum, self._count = 0.0, 0
        return metrics

    def get_state(self) -> dict[str, Any]:
        """Nothing to keep between epochs: neighbours follow from the seed and the step."""
        return {}
