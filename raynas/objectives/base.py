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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    import torch
    from torch import nn

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
    extras: dict[str, Any] = field(default_factory=dict)  #: free slot for method-specific values
    #: averages gradients (or any per-shard means) over data-parallel shards, in place; call it on every
    #: gradient computed from a batch, after back-propagating ``scale_loss(loss, batch)``
    reduce: Callable[[Sequence["torch.Tensor"]], None] = no_reduce
    #: the loss to back-propagate for a mean ``loss`` over this shard's slice ``batch`` (unsharded: ``loss``)
    scale_loss: Callable[["torch.Tensor", Batch], "torch.Tensor"] = unscaled


class Objective:
    """Base class of every objective; the default is plain DARTS (cross-entropy on both steps).

    Subclasses override ``weight_loss`` and/or ``arch_loss``. The model passed in is a
    :class:`raynas.supernet.Supernet`; calling ``model(x)`` uses its current architecture weights, and
    ``model(x, weights)`` lets an objective evaluate other (perturbed, masked, sampled) weights.
    """

    name = "darts"

    def weight_loss(self, model: "nn.Module", batch: Batch, ctx: StepContext) -> "torch.Tensor":
        """The loss whose gradient updates the supernet weights."""
        import torch.nn.functional as F

        x, y = batch
        return F.cross_entropy(model(x), y)

    def arch_loss(self, model: "nn.Module", batch: Batch, ctx: StepContext) -> "torch.Tensor":
        """The loss whose gradient updates the architecture parameters."""
        import torch.nn.functional as F

        x, y = batch
        return F.cross_entropy(model(x), y)

    def on_epoch_end(self, model: "nn.Module", ctx: StepContext) -> dict[str, float]:
        """Called after each epoch; returns extra metrics to log (default none)."""
        return {}

    def get_state(self) -> dict[str, Any]:
        """Everything needed to resume this objective (tensors allowed)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""
