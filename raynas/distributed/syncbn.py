"""Batch normalisation whose statistics span every shard's slice of a batch.

A supernet searched with DARTS trains with BatchNorm batch statistics. When K shards each see a slice of a
batch, plain BatchNorm normalises every slice with its own mean and variance, so the sharded search would
optimise a different function than one process on the whole batch. Synchronised batch norm computes the
statistics of the whole batch instead, and its backward pass sums the gradient terms of the whole batch.

``torch.nn.SyncBatchNorm`` does this on GPUs only (its kernels refuse CPU tensors), so on the CPU the
shards use :class:`ShardBatchNorm` here: an autograd function that all-reduces the per-shard per-channel
sum, sum of squares and count in the forward pass (accumulated in float64, so the variance
``E[x^2] - E[x]^2`` does not cancel catastrophically), and the two per-channel gradient sums ``sum(dy)``
and ``sum(dy * x_hat)`` in the backward pass. Running statistics are updated from the whole batch's mean
and unbiased variance, so they stay identical on every shard. :func:`sync_batchnorm` converts a model for
its device.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from raynas.distributed.comm import all_sum


def _channel_dims(x: torch.Tensor) -> list[int]:
    """Every dimension except the channel dimension (1)."""
    return [d for d in range(x.dim()) if d != 1]


def _per_channel(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A ``[C]`` vector shaped to broadcast against ``x`` (``[N, C, ...]``)."""
    return t.reshape(1, -1, *([1] * (x.dim() - 2)))


class _SyncBatchNormFunction(torch.autograd.Function):
    """Training-mode batch norm over the union of every shard's batch (one all-reduce each way)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                running_mean: Optional[torch.Tensor], running_var: Optional[torch.Tensor], eps: float,
                factor: float) -> torch.Tensor:
        dims = _channel_dims(x)
        channels = x.shape[1]
        count = torch.full((1,), x.numel() // max(channels, 1), dtype=torch.float64, device=x.device)
        x64 = x.detach().to(torch.float64)  # exact squares: E[x^2] - E[x]^2 cancels badly when |mean| >> std
        stats = all_sum(torch.cat([x64.sum(dims), (x64 * x64).sum(dims), count]))
        del x64
        total = stats[-1]
        if float(total) < 2:
            raise ValueError(f"batch norm needs more than 1 value per channel over all shards, got {int(total)}")
        mean = stats[:channels] / total
        var = (stats[channels:2 * channels] / total - mean * mean).clamp_(min=0.0)
        invstd = torch.rsqrt(var + eps)
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                running_mean.mul_(1.0 - factor).add_(mean.to(running_mean.dtype), alpha=factor)
                unbiased = var * (total / (total - 1))
                running_var.mul_(1.0 - factor).add_(unbiased.to(running_var.dtype), alpha=factor)
        x_hat = (x.detach() - _per_channel(mean.to(x.dtype), x)) * _per_channel(invstd.to(x.dtype), x)
        out = x_hat
        if weight is not None:
            out = out * _per_channel(weight.detach(), x)
        if bias is not None:
            out = out + _per_channel(bias.detach(), x)
        ctx.save_for_backward(x_hat, invstd.to(x.dtype), weight, total)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Optional[torch.Tensor], ...]:
        x_hat, invstd, weight, total = ctx.saved_tensors
        dims = _channel_dims(grad_out)
        channels = x_hat.shape[1]
        sums = torch.cat([grad_out.sum(dims, dtype=torch.float64),
                          (grad_out * x_hat).sum(dims, dtype=torch.float64)])
        # the parameters' gradients are this shard's share; the search averages them with the others'
        grad_weight = grad_bias = None
        if weight is not None and ctx.needs_input_grad[1]:
            grad_weight = sums[channels:].to(grad_out.dtype, copy=True)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = sums[:channels].to(grad_out.dtype, copy=True)
        grad_x = None
        if ctx.needs_input_grad[0]:
            sums = all_sum(sums)
            mean_dy = (sums[:channels] / total).to(grad_out.dtype)
            mean_dy_xhat = (sums[channels:] / total).to(grad_out.dtype)
            scale = invstd if weight is None else invstd * weight.detach()
            grad_x = (grad_out - _per_channel(mean_dy, grad_out) - x_hat * _per_channel(mean_dy_xhat, grad_out)
                      ) * _per_channel(scale, grad_out)
        return grad_x, grad_weight, grad_bias, None, None, None, None


class ShardBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm synchronised across the default process group, for CPU shards (see the module docstring).

    In training mode (or without running statistics) it normalises with the statistics of every shard's
    batch together; in eval mode with running statistics it is plain batch norm. Parameters, buffers and
    ``state_dict`` keys are those of ``nn.BatchNorm{1,2,3}d``, so checkpoints move freely between a sharded
    and an unsharded search.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Normalise ``input`` (``[N, C, ...]``) with whole-batch statistics while training."""
        self._check_input_dim(input)
        use_batch_stats = self.training or self.running_mean is None
        if not use_batch_stats:
            return nn.functional.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                                            False, 0.0, self.eps)
        factor = 0.0 if self.momentum is None else float(self.momentum)
        track = self.training and self.track_running_stats
        if track and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as nn.BatchNorm does
                factor = 1.0 / float(self.num_batches_tracked)
        return _SyncBatchNormFunction.apply(input, self.weight, self.bias,
                                            self.running_mean if track else None,
                                            self.running_var if track else None, self.eps, factor)


def _convert_to_shard_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every plain batch norm replaced by a :class:`ShardBatchNorm` sharing its tensors."""
    converted = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
            module, (ShardBatchNorm, nn.SyncBatchNorm)):
        converted = ShardBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                   module.track_running_stats)
        if module.affine:
            converted.weight = module.weight  # the same Parameter objects: optimizers keep working
            converted.bias = module.bias
        converted.running_mean = module.running_mean
        converted.running_var = module.running_var
        converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
    for name, child in module.named_children():
        converted.add_module(name, _convert_to_shard_batchnorm(child))
    return converted


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with synchronised batch norm: ``torch.nn.SyncBatchNorm`` on CUDA, :class:`ShardBatchNorm` else.

    Needs an initialised default process group when the model runs. Parameters and buffers are shared with
    the original layers (not copied), and module order and ``state_dict`` keys are unchanged.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert_to_shard_batchnorm(model)
