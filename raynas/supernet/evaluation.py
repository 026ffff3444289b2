"""Evaluating a supernet (or any network taking architecture weights) without changing its state.

Evaluation passes use batch statistics in BatchNorm (as DARTS-PT's released code does), leaving the running
statistics untouched, so that evaluating never changes the state a resumed search continues from.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from raynas.supernet.base import kept_batchnorm_statistics


@contextlib.contextmanager
def batch_stats_eval(model: nn.Module) -> Iterator[None]:
    """Run ``model`` with BatchNorm batch statistics and no grad, leaving running statistics unchanged."""
    was_training = model.training
    model.train()
    try:
        with kept_batchnorm_statistics(model), torch.no_grad():
            yield
    finally:
        model.train(was_training)


def evaluation_sums(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                    weights: dict[str, torch.Tensor] | None, device: torch.device, *,
                    batch_stats: bool = True) -> tuple[float, float, float]:
    """``(summed loss, correct, samples)`` of ``model`` with architecture ``weights`` over ``batches``.

    ``batch_stats``: BatchNorm uses each batch's statistics and running statistics stay untouched
    (:func:`batch_stats_eval`); otherwise the model runs in eval mode. The model's mode is restored.
    """
    loss_sum = correct = seen = 0.0
    with evaluation_mode(model, batch_stats=batch_stats):
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            batch_loss, batch_correct, batch_seen = batch_sums(model, x, y, weights)
            loss_sum += batch_loss
            correct += batch_correct
            seen += batch_seen
    return loss_sum, correct, seen


def evaluation_mode(model: nn.Module, *, batch_stats: bool) -> ContextManager[None]:
    """The mode :func:`evaluation_sums` evaluates in: no grad, and BatchNorm batch statistics with the running
    statistics untouched (``batch_stats``) or eval mode; entered once for many batches."""
    return batch_stats_eval(model) if batch_stats else _eval_mode(model)


def batch_sums(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               weights: dict[str, torch.Tensor] | None) -> tuple[float, float, float]:
    """``(summed loss, correct, samples)`` of one batch under :func:`evaluation_mode` (the parallel selection
    workers add these per batch in batch order, as :func:`evaluation_sums` does)."""
    logits = model(x, weights)
    return (F.cross_entropy(logits, y, reduction="sum").item(), (logits.argmax(1) == y).sum().item(),
            float(y.numel()))


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)
