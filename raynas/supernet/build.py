"""Building the supernet an experiment config describes."""

from __future__ import annotations

from typing import cast

import torch

from raynas.config.schema import ExperimentConfig
from raynas.spaces import get_space
from raynas.supernet.base import Supernet


def build_supernet(cfg: ExperimentConfig, num_classes: int, in_channels: int) -> Supernet:
    """The supernet of ``cfg`` (fresh weights, on the CPU) for data of ``num_classes`` and ``in_channels``."""
    space = get_space(cfg.space)
    options = {name: getattr(cfg.supernet, name) for name in space.supernet_options}
    model = cast(Supernet, space.build_supernet(channels=cfg.supernet.channels, layers=cfg.supernet.layers,
                                 num_classes=num_classes, in_channels=in_channels, **options))
    model.checkpoint_cells = cfg.supernet.checkpoint_cells
    if cfg.supernet.channels_last:
        # 4-D weights in NHWC make every convolution (oneDNN on CPU) produce NHWC activations: the same
        # function, computed faster; an NCHW input batch is converted by the stem's convolution.
        model = model.to(memory_format=torch.channels_last)
    return model
