"""Dilated depthwise convolution run as an undilated one on the input's phases.

A dilation-``d`` convolution only ever combines pixels whose coordinates agree modulo ``d``. Splitting the
input into its ``d x d`` phases (every ``d``-th row and column from each offset) and stacking them along the
batch turns it into an ordinary convolution with the same kernel, ``d`` times smaller spatially. It computes
the same function (each output is the same sum of the same products); on the CPU its backward pass is
several times faster than oneDNN's dilated depthwise kernels (``tools/bench_supernet.py``,
``docs/performance.md``). With stride ``d`` only the first phase is read, so the convolution is an undilated
one on ``x[:, :, ::d, ::d]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from raynas import lean


def _channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def to_phases(x: torch.Tensor, d: int) -> torch.Tensor:
    """``(n, c, h, w)`` with ``h`` and ``w`` multiples of ``d`` -> ``(d * d * n, c, h // d, w // d)``: phase
    ``(a, b)`` (rows ``a::d``, columns ``b::d``) is batch block ``a * d + b``. Keeps channels-last layout."""
    n, c, h, w = x.shape
    split = x.reshape(n, c, h // d, d, w // d, d)
    if _channels_last(x):
        return (split.permute(3, 5, 0, 2, 4, 1).reshape(d * d * n, h // d, w // d, c).permute(0, 3, 1, 2))
    return split.permute(3, 5, 0, 1, 2, 4).reshape(d * d * n, c, h // d, w // d)


def from_phases(y: torch.Tensor, d: int) -> torch.Tensor:
    """The inverse of :func:`to_phases`."""
    dn, c, hd, wd = y.shape
    n = dn // (d * d)
    if _channels_last(y):
        grid = y.permute(0, 2, 3, 1).reshape(d, d, n, hd, wd, c)
        return grid.permute(2, 3, 0, 4, 1, 5).reshape(n, hd * d, wd * d, c).permute(0, 3, 1, 2)
    grid = y.reshape(d, d, n, c, hd, wd)
    return grid.permute(2, 3, 4, 0, 5, 1).reshape(n, c, hd * d, wd * d)


def _pad_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``x`` with zero rows and columns appended up to ``h x w``."""
    if x.shape[-2:] == (h, w):
        return x
    return F.pad(x, (0, w - x.shape[-1], 0, h - x.shape[-2]))


class DilatedDepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state dict) that runs a depthwise convolution with a square
    dilation ``d > 1``, an odd square kernel, "same" padding ``d * (k - 1) / 2`` and stride 1 or ``d`` on
    the input's phases (module docstring). Any other configuration runs as a plain ``nn.Conv2d``."""

    def _phased(self) -> bool:
        k, d = self.kernel_size, self.dilation
        return (self.groups == self.in_channels == self.out_channels and self.bias is None
                and k[0] == k[1] and k[0] % 2 == 1 and d[0] == d[1] > 1
                and self.padding == (d[0] * (k[0] - 1) // 2,) * 2
                and self.stride[0] == self.stride[1] in (1, d[0]) and self.padding_mode == "zeros")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or not torch.is_grad_enabled() or not self._phased():  # forward-only: oneDNN is fast
            return super().forward(x)
        d, pad = self.dilation[0], (self.kernel_size[0] - 1) // 2
        if self.stride[0] == d:  # only phase (0, 0) is read
            return F.conv2d(x[:, :, ::d, ::d], self.weight, None, 1, pad, 1, self.groups)
        h, w = x.shape[-2:]
        hp, wp = -(-h // d) * d, -(-w // d) * d

        def phases_of(source: torch.Tensor) -> torch.Tensor:
            return to_phases(_pad_to(source, hp, wp), d)

        phases = phases_of(x)
        if lean.applies(x):  # the convolution keeps x (kept anyway: a ReLU's output) instead of the phases
            with lean.recompute_saved(x, phases_of, lambda t: t is phases):
                y = F.conv2d(phases, self.weight, None, 1, pad, 1, self.groups)
        else:
            y = F.conv2d(phases, self.weight, None, 1, pad, 1, self.groups)
        return from_phases(y, d)[:, :, :h, :w]
