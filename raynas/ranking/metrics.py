"""Computing the extra in-search ranking metrics of a derived architecture (:mod:`raynas.ranking`).

The derived architecture is the supernet run with one-hot architecture weights
(:func:`raynas.supernet.discrete_weights`): ops whose weight is zero are not run, so the supernet with those
weights *is* the derived network with the weights it inherits. Everything that changes weights or BatchNorm
statistics here works on a deep copy of the supernet, and :func:`preserved_rng` restores every global RNG
afterwards, so measuring a metric never changes the search's own trajectory (tested: the same alphas and
genotypes with the metrics on and off). The batches come from loaders of their own whose order depends only
on ``(search.seed, epoch)``, so every value is deterministic on the CPU.

Evaluation itself (loss and accuracy over the architecture split) is the caller's: the search passes its own
evaluator, the one ``derived_val_acc`` uses, so the metrics are comparable with it.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
from typing import Iterable, Iterator, Sequence, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from raynas.selection.random_sampling import neighbor_at
from raynas.spaces import Genotype
from raynas.spaces.base import SearchSpace
from raynas.supernet.base import Supernet

Batch = tuple[torch.Tensor, torch.Tensor]


@contextlib.contextmanager
def preserved_rng(device: torch.device) -> Iterator[None]:
    """Restore torch's (CPU and ``device``'s CUDA), numpy's and Python's global RNG states on leaving."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def detached_copy(model: ModuleT) -> ModuleT:
    """A deep copy of ``model`` (weights, buffers, mode) that shares nothing with it."""
    return copy.deepcopy(model)


def recalibrate_batchnorm(model: nn.Module, weights: dict[str, torch.Tensor], batches: Iterable[Batch],
                          device: torch.device) -> int:
    """Re-estimate the running statistics of ``model``'s BatchNorm layers for architecture ``weights``.

    Every BatchNorm layer's statistics are reset and then averaged (cumulatively, ``momentum=None``) over
    the forward passes of ``batches`` in training mode, without gradients; only the derived network's
    layers run, so only theirs are meaningful afterwards. Modifies ``model`` (pass a copy); returns the
    number of batches used. Leaves ``model`` in eval mode, the mode its statistics are meant for.
    """
    for layer in model.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.track_running_stats:
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average over the batches, not an exponential one
    used = 0
    model.train()
    with torch.no_grad():
        for x, _ in batches:
            model(x.to(device, non_blocking=True), weights)
            used += 1
    model.eval()
    return used


def finetune(model: Supernet, weights: dict[str, torch.Tensor], batches: Iterable[Batch], device: torch.device,
             *, steps: int, lr: float, momentum: float, weight_decay: float, grad_clip: float) -> int:
    """Train ``model``'s weights with architecture ``weights`` fixed for up to ``steps`` SGD steps.

    Plain SGD with ``momentum`` and ``weight_decay``, the learning rate annealed from ``lr`` to 0 over the
    steps (cosine), gradient norms clipped at ``grad_clip`` (0: off), BatchNorm in training mode. Only the
    derived network's weights get gradients (zero-weight ops do not run), so only they change. Modifies
    ``model`` (pass a copy); returns the steps taken (fewer when ``batches`` runs out).
    """
    params = list(model.weight_parameters())  # a supernet's weights, never its architecture parameters
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    taken = 0
    model.train()
    for x, y in batches:
        if taken >= steps:
            break
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * taken / steps))
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x, weights), y)
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], grad_clip)
        optimizer.step()
        taken += 1
    return taken


def neighborhood(space: SearchSpace, genotype: Genotype, count: int, *, seed: int, epoch: int) -> list[Genotype]:
    """``count`` random neighbours of ``genotype`` at Hamming distance 1 (one kept edge's op changed), drawn
    as NA-RS draws them (:func:`raynas.selection.random_sampling.neighbor_at`) from a stream of their own seeded
    by ``(seed, epoch)``: the same neighbours in every process and on every resume."""
    rng = random.Random(f"raynas.ranking:{int(seed)}:{int(epoch)}")
    return [neighbor_at(space, genotype, 1, rng) for _ in range(count)]


def mean_loss_acc(results: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The mean loss and the mean accuracy of ``(loss, acc)`` pairs."""
    return (sum(loss for loss, _ in results) / len(results), sum(acc for _, acc in results) / len(results))


def used_parameters(model: nn.Module, weights: dict[str, torch.Tensor], x: torch.Tensor) -> int:
    """Trainable parameters of the modules a forward pass with architecture ``weights`` runs: the derived
    network's parameter count (auxiliary heads and unused ops excluded). One no-grad eval-mode pass on the
    first sample of ``x``; ``model``'s state and mode are unchanged."""
    ran: set[nn.Module] = set()
    hooks = [module.register_forward_hook(lambda m, i, o: ran.add(m)) for module in model.modules()
             if any(True for _ in module.parameters(recurse=False))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x[:1], weights)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return sum(p.numel() for module in ran for p in module.parameters(recurse=False) if p.requires_grad)
