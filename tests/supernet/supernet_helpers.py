"""Helpers shared by the supernet tests."""

from __future__ import annotations

import torch


def batchnorm_statistics(module: torch.nn.Module) -> list[torch.Tensor]:
    """Copies of ``module``'s BatchNorm running statistics and batch counters, in registration order."""
    return [b.clone() for name, b in module.named_buffers() if "running" in name or "num_batches" in name]
