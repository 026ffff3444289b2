"""Autograd pieces that keep less for the backward pass than the plain layers and compute the same values.

A supernet step's peak memory is what autograd keeps between the forward and the backward pass: counting
layer by layer, 25 activation-sized tensors per DARTS edge when every layer keeps its own. Two tools cut that to the
tensors that are expensive to recompute (the pointwise convolutions' outputs, as normalised by BatchNorm):

- :class:`LeanBatchNorm2d`: a non-affine BatchNorm in training mode keeps its *output* (which the next layer
  keeps anyway) and the per-channel ``1 / std`` instead of its input; the backward pass needs no more;
- :func:`recompute_saved`: inside the block, autograd keeps a cheap *source* in place of the tensors a
  predicate picks, and the backward pass recomputes them from it (a ReLU, a depthwise convolution, max-pool
  indices).

Values are bit for bit those of the plain layers; gradients agree within float rounding (the BatchNorm
gradient is computed from the normalised output rather than the input), also when they are differentiated
again. :func:`disabled` turns both off, as inside activation checkpointing (which keeps nothing anyway and
must see the same saved tensors when it recomputes).
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

_disabled: contextvars.ContextVar[bool] = contextvars.ContextVar("raynas_lean_disabled", default=False)


@contextmanager
def disabled() -> Iterator[None]:
    """Within the block every layer keeps what the plain layer keeps."""
    token = _disabled.set(True)
    try:
        yield
    finally:
        _disabled.reset(token)


def applies(x: torch.Tensor) -> bool:
    """True when a pass on ``x`` is recorded for a backward pass and lean saving is not :func:`disabled`."""
    return torch.is_grad_enabled() and x.requires_grad and not _disabled.get()


class _Recompute:
    """What autograd keeps for a recomputed tensor: its source and the function that rebuilds it."""

    __slots__ = ("source", "fn")

    def __init__(self, source: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.source, self.fn = source, fn


@contextmanager
def recompute_saved(source: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor],
                    match: Callable[[torch.Tensor], bool]) -> Iterator[None]:
    """Within the block, every tensor that autograd saves and ``match`` picks (``source`` itself never) is
    kept as ``source`` plus ``fn``; the backward pass gets ``fn(source)`` in its place.

    The caller guarantees that every picked tensor equals ``fn(source)`` and that ``source`` is kept for the
    backward pass anyway (otherwise nothing is saved). ``fn`` must not update state (no BatchNorm in
    training mode). The block must not hold a layer that keeps its own output (:class:`LeanBatchNorm2d`,
    a ReLU that ``match`` does not pick): the hook would hand that output, which refers to the layer's
    node, back to the node, and a backward pass that skips the node (a gradient for the architecture
    alone) would never free that cycle.
    """

    # Every saved tensor holds on to the hooks, so after the block ``pack`` must not reach the tensors the
    # caller's ``match`` refers to (they would stay alive until the backward pass).
    scope: dict[str, Any] = {"source": source, "fn": fn, "match": match}

    def pack(t: torch.Tensor) -> Any:
        if t is scope["source"] or not scope["match"](t):
            return t
        return _Recompute(scope["source"], scope["fn"])

    def unpack(saved: Any) -> torch.Tensor:
        if isinstance(saved, _Recompute):
            return saved.fn(saved.source)
        return saved

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            yield
    finally:
        scope.clear()


class _BatchNormKeepingOutput(torch.autograd.Function):
    """Training-mode BatchNorm without affine parameters that keeps its output ``x_hat`` and ``invstd``
    (``1 / std``), both returned so that a gradient can be differentiated again.

    With ``x_hat = (x - mean) * invstd`` and means over all but the channel dimension, the input gradient is
    ``invstd * (g - mean(g) - x_hat * mean(g * x_hat))`` (ATen's BatchNorm backward evaluated on ``x_hat``
    with mean 0, ``invstd`` 1 and ``invstd`` as the weight) plus, when ``invstd`` itself gets a gradient
    ``h``, ``-h * invstd ** 2 * x_hat / m``.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, running_mean: torch.Tensor | None, running_var: torch.Tensor | None,
                momentum: float, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        out, _, invstd = torch.native_batch_norm(x, None, None, running_mean, running_var, True, momentum, eps)
        ctx.save_for_backward(out, invstd)
        ctx.eps = eps
        ctx.set_materialize_grads(False)
        return out, invstd

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor | None, grad_invstd: torch.Tensor | None
                 ) -> tuple[torch.Tensor | None, None, None, None, None]:
        out, invstd = ctx.saved_tensors
        shape = (1, -1, 1, 1)
        if torch.is_grad_enabled():  # create_graph: the same formula in differentiable ops
            grad_x = None
            if grad is not None:
                centred = grad - grad.mean(dim=(0, 2, 3), keepdim=True)
                along = (grad * out).mean(dim=(0, 2, 3), keepdim=True)
                grad_x = invstd.view(shape) * (centred - out * along)
        elif grad is not None:
            grad_x = torch.ops.aten.native_batch_norm_backward(
                grad, out, invstd, None, None, torch.zeros_like(invstd), torch.ones_like(invstd), True, ctx.eps,
                [True, False, False])[0]
        else:
            grad_x = None
        if grad_invstd is not None:
            per_element = out.numel() // out.shape[1]
            term = -(grad_invstd * invstd ** 2).view(shape) * out / per_element
            grad_x = term if grad_x is None else grad_x + term
        return grad_x, None, None, None, None


class LeanBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (same buffers and state dict) that, without affine parameters and in training mode,
    keeps its output instead of its input for the backward pass (module docstring). Otherwise plain."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.affine or not self.training or x.dim() != 4 or not applies(x):
            return super().forward(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as nn.BatchNorm2d
                momentum = 1.0 / float(self.num_batches_tracked)
        return _BatchNormKeepingOutput.apply(x, self.running_mean, self.running_var, momentum, self.eps)[0]


class LeanMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` that, when ``lean`` is set, keeps only its input for the backward pass and recomputes
    the argmax indices there (one more pooling pass instead of an int64 tensor of the output's size)."""

    #: recompute the indices in the backward pass (set for the supernet's pooling ops)
    lean = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.lean or self.return_indices or not applies(x):
            return super().forward(x)

        def indices(source: torch.Tensor) -> torch.Tensor:
            return F.max_pool2d(source, self.kernel_size, self.stride, self.padding, self.dilation,
                                ceil_mode=self.ceil_mode, return_indices=True)[1]

        with recompute_saved(x, indices, lambda t: t.dtype == torch.int64):
            return super().forward(x)
