"""scikit-learn's handwritten digits: 1,797 real 8x8 grey images of 10 classes, in memory.

With ``noise_std`` between 0.5 and 1.0 the digits become a fixed, harder data set on which architectures'
accuracies spread out: raynas' CPU benchmark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.utils.data import TensorDataset

from raynas.data.base import DataBundle, add_fixed_noise, build_bundle, resize_images
from raynas.data.loader import training_augmentation

if TYPE_CHECKING:
    from raynas.config.schema import DataConfig

NATIVE_SIZE = 8
MAX_VALUE = 16.0  # load_digits' pixel values are counts 0..16


def build_digits(cfg: "DataConfig", augment: bool) -> DataBundle:
    """The digits as ``[N, 1, S, S]`` tensors normalised with the data set's mean/std, then fixed noise.

    Pixels are scaled to [0, 1], resized (bilinear) to ``cfg.image_size`` when set, normalised with the mean
    and std of all 1,797 images, and ``cfg.noise_std`` adds one noise tensor seeded by ``cfg.seed``, so a
    sample's noise does not depend on the split it lands in. Training augmentation: cutout only.
    """
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = torch.as_tensor(raw.images, dtype=torch.float32).div(MAX_VALUE).unsqueeze(1)
    y = torch.as_tensor(raw.target, dtype=torch.long)
    size = cfg.image_size or NATIVE_SIZE
    x = resize_images(x, size)
    x = (x - x.mean()) / x.std()
    x = add_fixed_noise(x, cfg.noise_std, cfg.seed)
    return build_bundle("digits", cfg, TensorDataset(x, y), y, num_classes=10, in_channels=1, image_size=size,
                        augmentation=training_augmentation(augment, cfg.cutout or 0))
