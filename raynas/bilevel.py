"""Architecture gradients of the DARTS bilevel problem (Liu et al., DARTS, ICLR 2019, Section 2.3).

DARTS alternates a weight step on ``L_train(w, alpha)`` with an architecture step on ``L_val(w*(alpha),
alpha)``. The first-order approximation takes ``w*(alpha) = w``; the second-order one unrolls one virtual
SGD step ``w' = w - xi * grad_w L_train(w, alpha)`` and approximates the resulting Hessian-vector product
by central finite differences (DARTS Eq. 7 and 8). Both functions here only *set* ``alpha.grad``; the
caller steps the architecture optimizer. The losses come from an :class:`raynas.objectives.base.Objective`,
``weight_loss`` for ``L_train`` and ``arch_loss`` for ``L_val``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

import torch

if TYPE_CHECKING:
    from raynas.objectives.base import Batch, Objective, StepContext
    from raynas.supernet.base import Supernet


def _grads(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``d loss / d params``, zeros for parameters the loss does not depend on."""
    if not loss.requires_grad:
        return [torch.zeros_like(p) for p in params]
    grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _value(loss: torch.Tensor) -> torch.Tensor:
    """A detached one-element copy of ``loss``, to be averaged over shards with the gradients."""
    return loss.detach().reshape(1).clone()


def _set_grads(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> None:
    """Replace (not accumulate into) each parameter's ``.grad``."""
    for p, g in zip(params, grads):
        p.grad = g.detach()


def arch_gradient_first_order(model: "Supernet", objective: "Objective", val_batch: "Batch",
                              ctx: "StepContext") -> float:
    """Set ``alpha.grad`` to ``grad_alpha L_val(w, alpha)`` (first-order DARTS) and return ``L_val``.

    The weights' ``.grad`` are left untouched. Sharded (``ctx.scale_loss``/``ctx.reduce``), the gradient and
    the returned loss are the whole batch's.
    """
    alphas = model.arch_parameters()
    with model.frozen_weights():  # only alpha's gradient is asked for: keep nothing a weight gradient needs
        loss = ctx.scale_loss(objective.arch_loss(model, val_batch, ctx), val_batch)
        grads = _grads(loss, alphas)
    value = _value(loss)
    ctx.reduce([*grads, value])
    _set_grads(alphas, grads)
    return float(value)


def arch_gradient_second_order(model: "Supernet", objective: "Objective", train_batch: "Batch",
                               val_batch: "Batch", weight_optimizer: torch.optim.Optimizer, ctx: "StepContext",
                               *, eps: float = 0.01) -> float:
    """Set ``alpha.grad`` to the unrolled (second-order) DARTS architecture gradient; return ``L_val(w')``.

    With ``xi = ctx.weight_lr`` and the momentum and weight decay of ``weight_optimizer.param_groups[0]``
    (plain SGD: no dampening, no Nesterov), the virtual step is
    ``w' = w - xi * (momentum * buf + grad_w L_train(w) + weight_decay * w)`` where ``buf`` is the
    optimizer's momentum buffer (zero before its first step). Then, with ``v = grad_w' L_val(w', alpha)``
    and ``r = eps / ||v||``::

        alpha.grad = grad_alpha L_val(w', alpha)
                     - xi * (grad_alpha L_train(w + r v) - grad_alpha L_train(w - r v)) / (2 r)

    The weights are restored bit for bit from a saved copy (also when a loss raises); their ``.grad`` are
    not touched. Buffers such as BatchNorm running statistics are updated by the extra forward passes, as
    in any training-mode forward. Sharded, every gradient above is averaged over the shards as soon as it is
    computed (``ctx.reduce``), so the virtual step, ``v`` and ``r`` are the whole batch's and the same on
    every shard.
    """
    alphas = model.arch_parameters()
    weights = [p for p in model.weight_parameters() if p.requires_grad]
    xi = float(ctx.weight_lr)
    saved = [p.detach().clone() for p in weights]
    try:
        with model.frozen_architecture():  # only the weights' gradient is needed here
            g_train = _grads(ctx.scale_loss(objective.weight_loss(model, train_batch, ctx), train_batch), weights)
        ctx.reduce(g_train)
        virtual_sgd_step_(weights, g_train, weight_optimizer, xi)
        val_loss = ctx.scale_loss(objective.arch_loss(model, val_batch, ctx), val_batch)
        grads = _grads(val_loss, [*alphas, *weights])
        value = _value(val_loss)
        ctx.reduce([*grads, value])
        g_alpha, v = grads[: len(alphas)], grads[len(alphas):]
        norm = global_norm(v)
        if norm > 0.0 and xi != 0.0:
            r = eps / norm
            g_plus = _train_alpha_grads(model, objective, train_batch, ctx, weights, saved, v, r)
            g_minus = _train_alpha_grads(model, objective, train_batch, ctx, weights, saved, v, -r)
            diff = [gp - gm for gp, gm in zip(g_plus, g_minus)]
            ctx.reduce(diff)
            g_alpha = [g - xi * d / (2 * r) for g, d in zip(g_alpha, diff)]
    finally:
        with torch.no_grad():
            for p, s in zip(weights, saved):
                p.copy_(s)
    _set_grads(alphas, g_alpha)
    return float(value)


def global_norm(tensors: Sequence[torch.Tensor]) -> float:
    """The Euclidean norm of a list of tensors taken as one vector (0 for none)."""
    if not tensors:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors])))


def virtual_sgd_step_(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
                      optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Move ``params`` in place by the step ``optimizer`` (plain SGD) would take with ``grads`` at ``lr``,
    without touching its state: ``p -= lr * (momentum * buf + g + weight_decay * p)``, with ``buf`` the
    momentum buffer (zero before the optimizer's first step) and the factors of ``param_groups[0]``."""
    group = optimizer.param_groups[0]
    momentum = float(group.get("momentum", 0.0) or 0.0)
    weight_decay = float(group.get("weight_decay", 0.0) or 0.0)
    with torch.no_grad():
        for p, g in zip(params, grads):
            step = g + weight_decay * p
            buf: Optional[torch.Tensor] = optimizer.state.get(p, {}).get("momentum_buffer")
            if momentum and buf is not None:
                step = step + momentum * buf
            p.sub_(lr * step)


def _train_alpha_grads(model: "Supernet", objective: "Objective", batch: "Batch", ctx: "StepContext",
                       weights: Sequence[torch.Tensor], saved: Sequence[torch.Tensor],
                       v: Sequence[torch.Tensor], r: float) -> list[torch.Tensor]:
    """``grad_alpha L_train`` at the weights ``saved + r * v`` (with ``ctx.arch_grad`` set meanwhile)."""
    with torch.no_grad():
        for p, s, d in zip(weights, saved, v):
            p.copy_(s).add_(d, alpha=r)
    ctx.arch_grad = True
    try:
        return _grads(ctx.scale_loss(objective.weight_loss(model, batch, ctx), batch), model.arch_parameters())
    finally:
        ctx.arch_grad = False
