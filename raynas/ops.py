"""Candidate operations shared by the supernets and the derived networks.

Every op is built by ``make_op(name, C, stride, affine)`` and maps ``C`` channels to ``C`` channels (an op
with ``stride=2`` halves the spatial size). The DARTS ops follow Liu et al. (ICLR 2019); the NAS-Bench-201
ops (``nor_conv_*``) follow Dong & Yang (ICLR 2020): ReLU-Conv-BN. ``noise`` is the RobustDARTS S4 op.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from raynas.dilated import DilatedDepthwiseConv2d
from raynas.errors import SpaceError
from raynas.lean import LeanBatchNorm2d, LeanMaxPool2d, applies, recompute_saved
from raynas.registry import Registry


class ReLUFirst(nn.Sequential):
    """A sequence of layers whose first is a ReLU; ``op(relu_x, relu_done=True)`` skips that ReLU.

    A mixed op passes the ReLU of its input, computed once, to all such ops of an edge (the same values
    as each op's own ReLU, kept once for the backward pass instead of once per op).
    """

    #: the op can be called as ``op(relu(x), relu_done=True)``
    takes_relu_input = True

    def forward(self, x: torch.Tensor, relu_done: bool = False) -> torch.Tensor:
        layers = iter(self)
        if relu_done:
            next(layers)
        for layer in layers:
            x = layer(x)
        return x


class ReLUConvBN(ReLUFirst):
    """ReLU, then a (possibly strided) convolution without bias, then BatchNorm."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel, stride=stride, padding=padding, bias=False),
            LeanBatchNorm2d(C_out, affine=affine),
        )


class DilConv(ReLUFirst):
    """ReLU, depthwise dilated convolution, pointwise convolution, BatchNorm (DARTS ``dil_conv_KxK``).

    Without affine parameters (a search supernet's op) a training pass keeps only the BatchNorm's output
    beside its input: the ReLU and the depthwise convolution are recomputed in the backward pass from the
    input (:mod:`raynas.lean`), which costs a cheap depthwise pass and saves two activation-sized tensors.
    """

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            DilatedDepthwiseConv2d(C_in, C_in, kernel, stride=stride, padding=padding, dilation=dilation,
                                   groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            LeanBatchNorm2d(C_out, affine=affine),
        )
        #: recompute the ReLU and the depthwise output in the backward pass (supernet ops)
        self.lean = not affine

    def forward(self, x: torch.Tensor, relu_done: bool = False) -> torch.Tensor:
        if not (self.lean and applies(x)):
            return super().forward(x, relu_done)
        relu, depthwise, pointwise, bn = self
        if relu_done:
            d = depthwise(x)
            rebuild: Callable[[torch.Tensor], torch.Tensor] = depthwise
        else:
            with recompute_saved(x, relu, lambda t: t.shape == x.shape):  # relu(x), kept by both layers
                d = depthwise(relu(x))
            rebuild = lambda source: depthwise(relu(source))  # noqa: E731
        with recompute_saved(x, rebuild, lambda t: t is d):
            p = pointwise(d)
        # BatchNorm outside the hook: it keeps its own output, and a pack hook that hands back an op's output
        # makes a reference cycle (node -> output -> node) that a pass skipping the node never frees.
        return bn(p)


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable convolutions (DARTS ``sep_conv_KxK``); only the first is strided."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__(
            DilConv(C_in, C_in, kernel, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel, 1, padding, 1, affine),
        )

    #: the op can be called as ``op(relu(x), relu_done=True)`` (see :class:`ReLUFirst`)
    takes_relu_input = True

    def forward(self, x: torch.Tensor, relu_done: bool = False) -> torch.Tensor:
        return self[1](self[0](x, relu_done=relu_done))


class Identity(nn.Module):
    """Returns its input unchanged (``skip_connect`` at stride 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """Outputs zeros of the op's output shape (``none``); strided, it subsamples first to get the shape."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halves the spatial size with two offset 1x1 stride-2 convolutions, concatenated, then BatchNorm.

    The second branch sees the input shifted by one pixel; the input is padded by one pixel at the bottom
    right first so that odd sizes work too (for even sizes this equals the DARTS reference exactly).
    """

    def __init__(self, C_in: int, C_out: int, affine: bool = True) -> None:
        super().__init__()
        if C_out % 2:
            raise SpaceError(f"FactorizedReduce needs an even number of output channels, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = LeanBatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class Noise(nn.Module):
    """Replaces its input by standard Gaussian noise of the output shape (RobustDARTS S4 ``noise``)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return torch.randn_like(x)


def max_pool(stride: int, lean: bool) -> nn.MaxPool2d:
    """DARTS ``max_pool_3x3``; ``lean`` (supernet ops) recomputes its indices in the backward pass."""
    pool = LeanMaxPool2d(3, stride=stride, padding=1)
    pool.lean = lean
    return pool


OpFactory = Callable[[int, int, bool], nn.Module]
#: name -> factory(C, stride, affine). The names are those of the published genotypes.
OPS: Registry[OpFactory] = Registry("operation", SpaceError)
OPS.register("none", lambda C, stride, affine: Zero(stride))
OPS.register("noise", lambda C, stride, affine: Noise(stride))
OPS.register("avg_pool_3x3",
             lambda C, stride, affine: nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False))
OPS.register("max_pool_3x3", lambda C, stride, affine: max_pool(stride, lean=not affine))
OPS.register("skip_connect",
             lambda C, stride, affine: Identity() if stride == 1 else FactorizedReduce(C, C, affine))
OPS.register("sep_conv_3x3", lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine))
OPS.register("sep_conv_5x5", lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine))
OPS.register("sep_conv_7x7", lambda C, stride, affine: SepConv(C, C, 7, stride, 3, affine))
OPS.register("dil_conv_3x3", lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine))
OPS.register("dil_conv_5x5", lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine))
OPS.register("nor_conv_1x1", lambda C, stride, affine: ReLUConvBN(C, C, 1, stride, 0, affine))
OPS.register("nor_conv_3x3", lambda C, stride, affine: ReLUConvBN(C, C, 3, stride, 1, affine))

POOLING_OPS = frozenset({"avg_pool_3x3", "max_pool_3x3"})


def make_op(name: str, C: int, stride: int = 1, affine: bool = True) -> nn.Module:
    """Build the candidate op ``name`` for ``C`` channels; an unknown name raises :class:`SpaceError`."""
    return OPS.get(name)(C, stride, affine)


def drop_path(x: torch.Tensor, drop_prob: float, training: bool) -> torch.Tensor:
    """Zero whole samples of ``x`` with probability ``drop_prob`` and rescale the rest (DARTS drop-path)."""
    if not training or drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep
