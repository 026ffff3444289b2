"""TA-DARTS' nested hypergradient: how the auxiliary model's validation loss after the transfer moves alpha.

[recon] (``docs/methods.md``, TA-DARTS). With main weights ``W1``, architecture ``A``, auxiliary weights
``W2`` and the QRS loss of the auxiliary features on the main features ``f1(W1, A)``, one step of each lower
level is unrolled:

- ``W1' = W1 - xi1 * (grad_W1 L_train(W1, A) + momentum and weight-decay terms)`` (DARTS' virtual step);
- ``W2' = W2 - xi2 * (grad_W2 [L_train(W2) + lambda * L_QRS(W2; f1(W1', A))] + momentum, weight decay)``;

and the auxiliary term of the architecture loss is ``L_val(W2')``. By the chain rule, with
``v2 = grad_W2' L_val(W2')``, ``u = -xi2 * lambda * grad_(W1', A) [grad_W2 L_QRS(W2; f1(W1', A)) . v2]``
(split into ``u_W1`` and ``u_A``), the hypergradient is::

    d L_val(W2') / dA = u_A - xi1 * grad_A [grad_W1 L_train(W1, A) . u_W1]

Both mixed second derivatives are central finite differences, as DARTS' second order does: the first with
``W2 +- r2 v2`` (``r2 = eps / ||v2||``), the second with ``W1 +- r1 u_W1`` (``r1 = eps / ||u_W1||``). The
``u_A`` part is the direct path (the main features depend on ``A`` as well as on ``W1'``); the second is the
path through the main model's weight step. Cost: 5 forward/backward passes and one forward of the main
model and 4 forward/backward passes of the auxiliary one per architecture step. Every gradient is averaged
over shards as soon as it is computed (``ctx.reduce``), so every shard takes the same steps; sharded, each
shard's QRS loss uses the quadruples within its own slice (their mean over the shards is what the gradients
follow).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raynas.bilevel import _grads, global_norm, virtual_sgd_step_

if TYPE_CHECKING:
    from raynas.objectives.base import Batch, StepContext
    from raynas.supernet.base import Supernet


def _set_(params: Sequence[torch.Tensor], base: Sequence[torch.Tensor],
          direction: Optional[Sequence[torch.Tensor]] = None, scale: float = 0.0) -> None:
    """``params = base + scale * direction`` in place."""
    with torch.no_grad():
        for i, (p, b) in enumerate(zip(params, base)):
            p.copy_(b)
            if direction is not None:
                p.add_(direction[i], alpha=scale)


@dataclass
class TransferProblem:
    """The pieces of TA-DARTS' lower levels the hypergradient differentiates through.

    ``main_features(x)`` and ``aux_features(x)`` return penultimate features (the main model's with its
    current architecture weights); ``aux_logits(features)`` the auxiliary classifier's logits on them;
    ``qrs(main, aux)`` the (per-step seeded, hence repeatable) QRS loss.
    """

    main: Supernet
    aux: nn.Module
    main_features: Callable[[torch.Tensor], torch.Tensor]
    aux_features: Callable[[torch.Tensor], torch.Tensor]
    aux_logits: Callable[[torch.Tensor], torch.Tensor]
    qrs: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    transfer_weight: float  #: lambda
    main_optimizer: torch.optim.Optimizer
    aux_optimizer: torch.optim.Optimizer
    main_lr: float  #: xi1
    aux_lr: float  #: xi2

    def aux_loss_parts(self, batch: "Batch", main_features: torch.Tensor,
                       ctx: "StepContext") -> tuple[torch.Tensor, torch.Tensor]:
        """``(L_train(W2), L_QRS(W2; main_features))`` on ``batch``, the cross-entropy scaled for shards."""
        x, y = batch
        features = self.aux_features(x)
        ce = ctx.scale_loss(F.cross_entropy(self.aux_logits(features), y), batch)
        return ce, self.qrs(main_features, features)

    def aux_loss(self, batch: "Batch", main_features: torch.Tensor, ctx: "StepContext") -> torch.Tensor:
        """``L_train(W2) + lambda * L_QRS(W2; main_features)`` on ``batch`` (CE scaled for shards)."""
        ce, qrs = self.aux_loss_parts(batch, main_features, ctx)
        return ce + self.transfer_weight * qrs


def transfer_hypergradient(problem: TransferProblem, train_batch: "Batch", val_batch: "Batch",
                           ctx: "StepContext", *, eps: float = 0.01) -> tuple[list[torch.Tensor], float]:
    """``(d L_val(W2') / dA, L_val(W2'))`` for the main model's architecture parameters (see the module).

    Every weight of both models is restored bit for bit afterwards (also when a loss raises); no ``.grad``
    and no optimizer state is touched. BatchNorm running statistics see the extra training-mode forwards,
    as in DARTS' second order.
    """
    main, aux = problem.main, problem.aux
    alphas = list(main.arch_parameters())
    w1 = [p for p in main.weight_parameters() if p.requires_grad]
    w2 = [p for p in aux.parameters() if p.requires_grad]
    saved1 = [p.detach().clone() for p in w1]
    saved2 = [p.detach().clone() for p in w2]
    x_train, y_train = train_batch
    try:
        # W1': the main model's virtual weight step.
        g1 = _grads(ctx.scale_loss(F.cross_entropy(main(x_train), y_train), train_batch), w1)
        ctx.reduce(g1)
        virtual_sgd_step_(w1, g1, problem.main_optimizer, problem.main_lr)
        # W2': the auxiliary model's virtual transfer step, towards the features of W1'.
        with torch.no_grad():
            target = problem.main_features(x_train)
        g2 = _grads(problem.aux_loss(train_batch, target, ctx), w2)
        ctx.reduce(g2)
        virtual_sgd_step_(w2, g2, problem.aux_optimizer, problem.aux_lr)
        # v2 = grad_W2' L_val(W2').
        x_val, y_val = val_batch
        val_loss = ctx.scale_loss(F.cross_entropy(aux(x_val), y_val), val_batch)
        v2 = _grads(val_loss, w2)
        value = val_loss.detach().reshape(1).clone()
        ctx.reduce([*v2, value])
        zero = [torch.zeros_like(a) for a in alphas]
        norm2 = global_norm(v2)
        if norm2 == 0.0 or problem.aux_lr == 0.0 or problem.transfer_weight == 0.0:
            return zero, float(value)
        # u = -xi2 * lambda * d/d(W1', A) [grad_W2 L_QRS . v2], by central differences in W2.
        r2 = eps / norm2
        both = [*w1, *alphas]

        def qrs_grads(sign: float) -> list[torch.Tensor]:
            _set_(w2, saved2, v2, sign * r2)
            loss = problem.transfer_weight * problem.qrs(problem.main_features(x_train), problem.aux_features(x_train))
            return _grads(loss, both)

        plus, minus = qrs_grads(1.0), qrs_grads(-1.0)
        u = [-problem.aux_lr * (gp - gm) / (2 * r2) for gp, gm in zip(plus, minus)]
        ctx.reduce(u)
        u_w1, u_alpha = u[: len(w1)], u[len(w1):]
        # The path through W1' = W1 - xi1 * grad_W1 L_train(W1, A): -xi1 * grad_A [grad_W1 L_train . u_W1].
        norm1 = global_norm(u_w1)
        if norm1 == 0.0 or problem.main_lr == 0.0:
            return u_alpha, float(value)
        r1 = eps / norm1

        def train_alpha_grads(sign: float) -> list[torch.Tensor]:
            _set_(w1, saved1, u_w1, sign * r1)
            return _grads(ctx.scale_loss(F.cross_entropy(main(x_train), y_train), train_batch), alphas)

        diff = [gp - gm for gp, gm in zip(train_alpha_grads(1.0), train_alpha_grads(-1.0))]
        ctx.reduce(diff)
        return [ua - problem.main_lr * d / (2 * r1) for ua, d in zip(u_alpha, diff)], float(value)
    finally:
        _set_(w1, saved1)
        _set_(w2, saved2)
