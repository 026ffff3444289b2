"""The objective contract: loss terms on the supernet's weight step and architecture step.

An objective contributes a loss to the weight step (on a batch of the weight-training split) and to the
architecture step (on a batch of the architecture split). DARTS is the plain case (cross-entropy on both);
later methods add terms (NA on the architecture step, SD on the weight step) or replace the architecture
parameterisation. The search loop owns the optimizers and the order of steps (first or second order);
an objective only computes losses, so every objective works with both orders.

Concurrency and state: one objective instance belongs to one search (one trial) and is called from that
search's thread only. Anything it keeps between steps must round-trip through ``get_state``/``set_state``
so that a resumed search continues bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

if TYPE_CHECKING:
    import torch

    from raynas.config.schema import ExperimentConfig
    from raynas.supernet.base import Supernet

Batch = tuple["torch.Tensor", "torch.Tensor"]


def no_reduce(tensors: Sequence["torch.Tensor"]) -> None:
    """The :attr:`StepContext.reduce` of an unsharded search: the local gradients are the batch's."""


def unscaled(loss: "torch.Tensor", batch: Batch) -> "torch.Tensor":
    """The :attr:`StepContext.scale_loss` of an unsharded search: the loss as it is."""
    return loss


@dataclass
class StepContext:
    """Where the search stands when a loss is computed."""

    epoch: int  #: 0-based epoch
    step: int  #: 0-based step within the epoch
    steps_per_epoch: int
    epochs: int
    weight_lr: float  #: the weight optimizer's current learning rate
    device: "torch.device"
    #: averages gradients (or any per-shard means) over data-parallel shards, in place; call it on every
    #: gradient computed from a batch, after back-propagating ``scale_loss(loss, batch)``
    reduce: Callable[[Sequence["torch.Tensor"]], None] = no_reduce
    #: the loss to back-propagate for a mean ``loss`` over this shard's slice ``batch`` (unsharded: ``loss``)
    scale_loss: Callable[["torch.Tensor", Batch], "torch.Tensor"] = unscaled
    seed: int = 0  #: ``search.seed``: objectives draw their randomness from (seed, global_step), never globally
    #: set while a weight loss is computed for its gradient with respect to the architecture parameters
    #: (second order's finite differences): path weights must then keep their architecture gradient
    arch_grad: bool = False

    @property
    def global_step(self) -> int:
        """Steps since the search began (``epoch * steps_per_epoch + step``), the same on every shard."""
        return self.epoch * self.steps_per_epoch + self.step


class Objective:
    """Base class of every objective; the default is plain DARTS (cross-entropy on both steps).

    Subclasses override ``weight_loss`` and/or ``arch_loss``. The model passed in is a
    :class:`raynas.supernet.Supernet`; calling ``model(x)`` uses its current architecture weights, and
    ``model(x, weights)`` lets an objective evaluate other (perturbed, masked, sampled) weights.
    """

    name = "darts"

    def weight_loss(self, model: "Supernet", batch: Batch, ctx: StepContext) -> "torch.Tensor":
        """The loss whose gradient updates the supernet weights."""
        import torch.nn.functional as F

        x, y = batch
        return F.cross_entropy(model(x), y)

    def arch_loss(self, model: "Supernet", batch: Batch, ctx: StepContext) -> "torch.Tensor":
        """The loss whose gradient updates the architecture parameters."""
        import torch.nn.functional as F

        x, y = batch
        return F.cross_entropy(model(x), y)

    def prefetch(self, model: "Supernet", next_batch: Batch, ctx: StepContext) -> None:
        """Called at the start of step ``ctx.step`` with the weight-split batch of the *next* step (this
        shard's slice, on the device), so that a term needing slow outside answers (teacher actors) can ask
        early. Must not change what any loss computes: only when the answer arrives."""

    def after_weight_step(self, model: "Supernet", batch: Batch, ctx: StepContext) -> None:
        """Called after each weight update with that step's weight-split batch (e.g. to snapshot the
        supernet, or to train an auxiliary model on the batch)."""

    #: the factor of the architecture step's own gradient (TA-DARTS' gamma); 1 for every other objective
    arch_loss_weight: float = 1.0

    #: each step updates the weights first, then (after :meth:`after_weight_step`) the architecture (E2NAS'
    #: released code); False: DARTS' order, architecture first
    arch_after_weights: bool = False

    def arch_hypergradient(self, model: "Supernet", train_batch: Batch, val_batch: Batch,
                           weight_optimizer: "torch.optim.Optimizer",
                           ctx: StepContext) -> "Optional[list[torch.Tensor]]":
        """A gradient added to the architecture parameters' (``model.arch_parameters()`` order) after the
        first- or second-order gradient of :meth:`arch_loss` (scaled by :attr:`arch_loss_weight`), for
        objectives whose architecture loss is not a function of the supernet alone (TA-DARTS' auxiliary
        model). Already averaged over shards. None: nothing."""
        return None

    def on_epoch_end(self, model: "Supernet", ctx: StepContext) -> dict[str, float]:
        """Called after each epoch; returns extra metrics to log (default none)."""
        return {}

    def close(self) -> None:
        """Release what the objective holds outside its process (actors); idempotent."""

    def get_state(self) -> dict[str, Any]:
        """Everything needed to resume this objective (tensors allowed)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""


@dataclass
class SearchEnv:
    """What a term may need to know about the search it joins, beyond the config."""

    space: Any  #: the :class:`raynas.spaces.SearchSpace`
    num_classes: int
    in_channels: int
    device: "torch.device"
    rank: int = 0  #: shard rank (0 unsharded)
    world_size: int = 1


class Term:
    """One method's contribution to the supernet steps; :class:`ComposedObjective` adds terms together.

    Every hook has a neutral default, so a term overrides only what its method changes:

    - :meth:`path_weights`: the architecture weights the *weight* step runs (a sampled path; None: the
      supernet's own), at most one term returns them;
    - :attr:`weight_loss_weight` and :meth:`weight_term`: a factor on the weight step's cross-entropy and a
      loss added to it;
    - :meth:`arch_loss`: a loss that *replaces* the architecture step's cross-entropy (at most one term:
      those with ``replaces_arch_loss``);
    - :meth:`arch_term`: a loss added to the architecture step's loss;
    - :attr:`arch_loss_weight` and :meth:`arch_hypergradient`: a factor on the architecture step's gradient
      and a gradient added to it that no loss of the supernet alone expresses (TA-DARTS);
    - :attr:`arch_after_weights`: the step order (E2NAS' released estimator: weights first);
    - :meth:`prefetch`, :meth:`after_weight_step`, :meth:`on_epoch_end`, :meth:`close`: as on
      :class:`Objective`; ``get_state``/``set_state`` round-trip everything kept between steps.

    And, as class-level hooks that run before a term exists (the search and the driver call them through
    :mod:`raynas.objectives`, never by a term's name; what they may know of a term without importing it is
    its registration's :class:`raynas.objectives.TermTraits`):

    - :meth:`prepare_experiment`: the driver's preparation before any trial starts (E2NAS pretrains its
      autoencoder), returning the config every trial reads;
    - :meth:`prepare_trial`: a trial's config before its search is built (E2NAS: the autoencoder of its seed);
    - :meth:`prepare_supernet`: changes to a freshly built supernet (E2NAS: the latent parameterisation).

    ``logits`` arguments are zero-argument callables returning the supernet's logits on the batch with its
    current architecture weights, computed at most once per loss and shared by every term.
    """

    name = "term"
    replaces_arch_loss = False
    @classmethod
    def prepare_experiment(cls, cfg: "ExperimentConfig", trials: Sequence["ExperimentConfig"], directory: Path,
                           echo: Callable[[str], None]) -> "ExperimentConfig":
        """The base config every trial reads, after what the term needs done once on the driver for the
        population's ``trials`` (the trials' configs; the term is enabled in at least one)."""
        return cfg

    @classmethod
    def prepare_trial(cls, cfg: "ExperimentConfig") -> "ExperimentConfig":
        """A trial's config (the term enabled in it) as its search reads it."""
        return cfg

    @classmethod
    def prepare_supernet(cls, cfg: "ExperimentConfig", model: "Supernet", space: Any,
                         device: "torch.device") -> None:
        """Change the freshly built supernet of ``cfg`` (on ``device``) before its optimisers exist."""

    def path_weights(self, model: "Supernet", ctx: StepContext) -> "Optional[dict[str, torch.Tensor]]":
        """The architecture weights of the weight step (None: the supernet's own)."""
        return None

    #: the factor of the weight step's cross-entropy (E2NAS complementation's 1 - lam); 1 for most terms
    weight_loss_weight: float = 1.0

    def weight_term(self, model: "Supernet", batch: Batch, logits: Callable[[], "torch.Tensor"],
                    ctx: StepContext) -> "Optional[torch.Tensor]":
        """A loss added to the weight step's cross-entropy (None: nothing)."""
        return None

    def arch_loss(self, model: "Supernet", batch: Batch, ctx: StepContext) -> "Optional[torch.Tensor]":
        """The architecture step's loss in place of cross-entropy (only terms with ``replaces_arch_loss``)."""
        return None

    def arch_term(self, model: "Supernet", batch: Batch, logits: Callable[[], "torch.Tensor"],
                  ctx: StepContext) -> "Optional[torch.Tensor]":
        """A loss added to the architecture step's loss (None: nothing)."""
        return None

    def prefetch(self, model: "Supernet", next_batch: Batch, ctx: StepContext) -> None:
        """See :meth:`Objective.prefetch`."""

    def after_weight_step(self, model: "Supernet", batch: Batch, ctx: StepContext) -> None:
        """See :meth:`Objective.after_weight_step`."""

    #: see :attr:`Objective.arch_loss_weight`
    arch_loss_weight: float = 1.0

    #: see :attr:`Objective.arch_after_weights`
    arch_after_weights: bool = False

    def arch_hypergradient(self, model: "Supernet", train_batch: Batch, val_batch: Batch,
                           weight_optimizer: "torch.optim.Optimizer",
                           ctx: StepContext) -> "Optional[list[torch.Tensor]]":
        """See :meth:`Objective.arch_hypergradient`."""
        return None

    def on_epoch_end(self, model: "Supernet", ctx: StepContext) -> dict[str, float]:
        """Extra metrics of the epoch, named with the term's prefix (e.g. ``sd_kl``)."""
        return {}

    def get_state(self) -> dict[str, Any]:
        """Everything needed to resume this term."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""

    def close(self) -> None:
        """Release outside resources (actors); idempotent."""


def _memo(compute: Callable[[], "torch.Tensor"]) -> Callable[[], "torch.Tensor"]:
    """``compute`` called at most once."""
    cache: list["torch.Tensor"] = []

    def get() -> "torch.Tensor":
        if not cache:
            cache.append(compute())
        return cache[0]
    return get


class ComposedObjective(Objective):
    """Cross-entropy on both steps (DARTS) plus the given terms, in order.

    Weight step: ``prod(weight_loss_weight) * CE(model(x, path), y) + sum(weight_term)``. Architecture step:
    the replacing term's ``arch_loss`` if there is one, else ``CE(model(x), y)``, plus ``sum(arch_term)``.
    """

    def __init__(self, terms: Sequence[Term] = (), *, trains_architecture: bool = True) -> None:
        replacing = [t.name for t in terms if t.replaces_arch_loss]
        if len(replacing) > 1:
            raise ValueError(f"terms {replacing} all replace the architecture loss; at most one may")
        self.terms = list(terms)
        #: whether the search runs architecture steps (False: random sampling; :class:`raynas.objectives.TermTraits`)
        self.trains_architecture = trains_architecture
        self.name = "+".join(t.name for t in self.terms) or "darts"

    def weight_loss(self, model: "Supernet", batch: Batch, ctx: StepContext) -> "torch.Tensor":
        """Cross-entropy of the (path's) logits plus every term's weight loss."""
        import torch.nn.functional as F

        x, y = batch
        path = next((w for w in (t.path_weights(model, ctx) for t in self.terms) if w is not None), None)
        out = model(x, path)
        loss = F.cross_entropy(out, y)
        factor = 1.0
        for term in self.terms:
            factor *= term.weight_loss_weight
        if factor != 1.0:
            loss = factor * loss
        for term in self.terms:
            extra = term.weight_term(model, batch, lambda: out, ctx)
            if extra is not None:
                loss = loss + extra
        return loss

    def arch_loss(self, model: "Supernet", batch: Batch, ctx: StepContext) -> "torch.Tensor":
        """The replacing term's loss (or cross-entropy) plus every term's architecture term."""
        import torch.nn.functional as F

        x, y = batch
        logits = _memo(lambda: model(x))
        main = next((t for t in self.terms if t.replaces_arch_loss), None)
        loss = main.arch_loss(model, batch, ctx) if main is not None else None
        if loss is None:
            loss = F.cross_entropy(logits(), y)
        for term in self.terms:
            extra = term.arch_term(model, batch, logits, ctx)
            if extra is not None:
                loss = loss + extra
        return loss

    def prefetch(self, model: "Supernet", next_batch: Batch, ctx: StepContext) -> None:
        """Every term's :meth:`Term.prefetch`."""
        for term in self.terms:
            term.prefetch(model, next_batch, ctx)

    def after_weight_step(self, model: "Supernet", batch: Batch, ctx: StepContext) -> None:
        """Every term's :meth:`Term.after_weight_step`."""
        for term in self.terms:
            term.after_weight_step(model, batch, ctx)

    @property
    def arch_loss_weight(self) -> float:  # type: ignore[override]
        """The product of the terms' factors."""
        weight = 1.0
        for term in self.terms:
            weight *= term.arch_loss_weight
        return weight

    @property
    def arch_after_weights(self) -> bool:  # type: ignore[override]
        """Whether any term asks for the weights-first step order."""
        return any(term.arch_after_weights for term in self.terms)


    def arch_hypergradient(self, model: "Supernet", train_batch: Batch, val_batch: Batch,
                           weight_optimizer: "torch.optim.Optimizer",
                           ctx: StepContext) -> "Optional[list[torch.Tensor]]":
        """The sum of the terms' hypergradients (None when no term has one)."""
        total: "Optional[list[torch.Tensor]]" = None
        for term in self.terms:
            grads = term.arch_hypergradient(model, train_batch, val_batch, weight_optimizer, ctx)
            if grads is not None:
                total = grads if total is None else [a + b for a, b in zip(total, grads)]
        return total

    def on_epoch_end(self, model: "Supernet", ctx: StepContext) -> dict[str, float]:
        """Every term's metrics, merged."""
        metrics: dict[str, float] = {}
        for term in self.terms:
            metrics.update(term.on_epoch_end(model, ctx))
        return metrics

    def get_state(self) -> dict[str, Any]:
        """``{term name: term state}``."""
        return {term.name: term.get_state() for term in self.terms}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore each term's state (a term missing from ``state`` starts fresh)."""
        for term in self.terms:
            if term.name in state:
                term.set_state(state[term.name])

    def close(self) -> None:
        """Close every term."""
        for term in self.terms:
            term.close()
