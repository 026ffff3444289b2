"""Derived (discrete) networks for training an architecture from scratch, and parameter counting.

Every network has ``forward(x) -> logits``, ``forward_with_aux(x) -> (logits, aux_logits or None)`` and a
settable ``drop_path_prob``. Importing this package imports torch.
"""

from __future__ import annotations

from torch import nn

from raynas.networks.darts import AuxiliaryHeadCIFAR, AuxiliaryHeadImageNet, Cell, NetworkCIFAR, NetworkImageNet
from raynas.networks.nb201 import InferCell, ResNetBasicBlock, TinyNetwork
from raynas.networks.resnet import CifarResNet

__all__ = ["AuxiliaryHeadCIFAR", "AuxiliaryHeadImageNet", "Cell", "CifarResNet", "InferCell", "NetworkCIFAR", "NetworkImageNet",
           "ResNetBasicBlock", "TinyNetwork", "count_parameters"]


def count_parameters(model: nn.Module, exclude_auxiliary: bool = True) -> int:
    """The number of parameters of ``model``; by default without those of an auxiliary head (any
    parameter whose name contains "auxiliary"), as the DARTS papers report model size."""
    return sum(p.numel() for name, p in model.named_parameters()
               if not (exclude_auxiliary and "auxiliary" in name))
