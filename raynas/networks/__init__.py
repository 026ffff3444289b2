"""Derived (discrete) networks for training an architecture from scratch, and parameter counting.

Every network has ``forward(x) -> logits``, ``forward_with_aux(x) -> (logits, aux_logits or None)`` and a
settable ``drop_path_prob``. Importing this package imports torch.
"""

from __future__ import annotations

import torch
from torch import nn

from raynas.networks.darts import AuxiliaryHeadCIFAR, AuxiliaryHeadImageNet, Cell, NetworkCIFAR, NetworkImageNet
from raynas.networks.nb201 import InferCell, ResNetBasicBlock, TinyNetwork
from raynas.networks.resnet import CifarResNet

__all__ = ["AuxiliaryHeadCIFAR", "AuxiliaryHeadImageNet", "Cell", "CifarResNet", "InferCell", "NetworkCIFAR",
           "NetworkImageNet", "ResNetBasicBlock", "TinyNetwork", "count_flops", "count_parameters"]


def count_parameters(model: nn.Module, exclude_auxiliary: bool = True) -> int:
    """The number of parameters of ``model``; by default without those of an auxiliary head (any
    parameter whose name contains "auxiliary"), as the DARTS papers report model size."""
    return sum(p.numel() for name, p in model.named_parameters()
               if not (exclude_auxiliary and "auxiliary" in name))


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Floating-point operations of one inference of ``model`` on one input of ``input_shape`` (C, H, W).

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` in eval mode (no drop-path, no auxiliary
    head): 2 per multiply-add of convolutions and matrix products; element-wise work (BatchNorm, ReLU,
    pooling, additions) is not counted, as in the multiply-add figures NAS papers report (half this number).
    """
    from torch.utils.flop_counter import FlopCounterMode

    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())
