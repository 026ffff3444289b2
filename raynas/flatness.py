"""What the flatness methods (NA-DARTS, SD-DARTS, RobustDARTS' analysis) are for, measured during a search.

- **Discretization gap**: the supernet's validation accuracy minus that of the derived architecture with
  the weights it inherits, the accuracy lost when the continuous architecture is made discrete.
- **Sharpness**: the dominant eigenvalue of the Hessian of the architecture loss with respect to the
  architecture parameters (Zela et al., "Understanding and Robustifying Differentiable Architecture
  Search", ICLR 2020, relate its growth to DARTS' collapse). It is estimated by power iteration on
  Hessian-vector products (double back-propagation) on one fixed batch of the architecture split.

Computing the sharpness leaves the search as it was: BatchNorm uses the batch's statistics and its running
statistics are restored, parameter gradients are not touched, and torch's RNG state is restored (ops such
as RobustDARTS' ``noise`` draw from it).
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence, cast

import torch
import torch.nn.functional as F
from torch import nn

from raynas.supernet.base import Supernet, kept_batchnorm_statistics


def discretization_gap(supernet_acc: float, derived_acc: float) -> float:
    """``supernet_acc - derived_acc`` (NaN when either was not measured)."""
    if math.isnan(supernet_acc) or math.isnan(derived_acc):
        return math.nan
    return supernet_acc - derived_acc


@contextlib.contextmanager
def _frozen_statistics(model: nn.Module) -> Iterator[None]:
    """Train-mode BatchNorm (batch statistics) whose running statistics are restored afterwards."""
    was_training = model.training
    model.train()
    try:
        with kept_batchnorm_statistics(model):
            yield
    finally:
        model.train(was_training)


def _normalised(vectors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    # a tensor, not sum()'s start value 0: every caller passes at least one vector
    norm = torch.sqrt(cast(torch.Tensor, sum((v * v).sum() for v in vectors)))
    return [v / norm.clamp(min=1e-30) for v in vectors]


def arch_hessian_eigenvalue(model: Supernet, batch: tuple[torch.Tensor, torch.Tensor], *, iters: int = 20,
                            seed: int = 0) -> float:
    """The dominant eigenvalue (largest magnitude) of the Hessian of the cross-entropy on ``batch`` with
    respect to ``model.arch_parameters()``, by ``iters`` steps of power iteration from a seeded start.

    Returns the Rayleigh quotient ``v . Hv`` of the last iterate (signed: a negative value means the
    largest-magnitude curvature is negative).
    """
    params = list(model.arch_parameters())
    x, y = batch
    rng_state = torch.get_rng_state()
    try:
        with torch.enable_grad(), _frozen_statistics(model):
            loss = F.cross_entropy(model(x), y)
            grads = torch.autograd.grad(loss, params, create_graph=True)
            generator = torch.Generator().manual_seed(seed)
            v = _normalised([torch.randn(p.shape, generator=generator).to(p.device, p.dtype) for p in params])
            eigenvalue = 0.0
            for _ in range(max(1, iters)):
                hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
                eigenvalue = float(sum((h * u).sum() for h, u in zip(hv, v)))
                v = _normalised([h.detach() for h in hv])
    finally:
        torch.set_rng_state(rng_state)
    return eigenvalue
