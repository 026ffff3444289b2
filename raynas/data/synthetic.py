"""Seeded class-conditional images: smooth per-class prototypes plus per-sample noise, in memory.

Each class has a random prototype drawn at a quarter of the image size and upsampled, so it has spatial
structure a small convnet picks up in a few epochs; a sample is its class's prototype plus Gaussian noise.
Everything is drawn from ``cfg.seed``: the same config gives the same data set in every process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.utils.data import TensorDataset

from raynas.data.base import SALT_SYNTHETIC, DataBundle, add_fixed_noise, build_bundle, resize_images
from raynas.data.loader import seeded_generator, training_augmentation

if TYPE_CHECKING:
    from raynas.config.schema import DataConfig

DEFAULT_SIZE = 8
SAMPLE_NOISE = 1.5  # per-pixel noise around a unit-std prototype: easy by design; data.noise_std makes it harder


def build_synthetic(cfg: "DataConfig", augment: bool) -> DataBundle:
    """``cfg.num_samples`` images of ``cfg.num_classes`` balanced classes, ``cfg.channels`` x ``cfg.image_size`` (8).

    The images are standardised to mean 0 and std 1; ``cfg.noise_std`` then adds fixed noise as for
    digits. Training augmentation: cutout only.
    """
    size = cfg.image_size or DEFAULT_SIZE
    generator = seeded_generator(cfg.seed, SALT_SYNTHETIC)
    coarse = max(2, size // 4)
    prototypes = torch.randn(cfg.num_classes, cfg.channels, coarse, coarse, generator=generator)
    prototypes = resize_images(prototypes, size)
    prototypes = prototypes / prototypes.std(dim=(1, 2, 3), keepdim=True)
    y = torch.arange(cfg.num_samples) % cfg.num_classes
    y = y[torch.randperm(cfg.num_samples, generator=generator)]
    x = prototypes[y] + SAMPLE_NOISE * torch.randn(cfg.num_samples, cfg.channels, size, size, generator=generator)
    x = (x - x.mean()) / x.std()
    x = add_fixed_noise(x, cfg.noise_std, cfg.seed)
    return build_bundle("synthetic", cfg, TensorDataset(x, y), y, num_classes=cfg.num_classes,
                        in_channels=cfg.channels, image_size=size,
                        augmentation=training_augmentation(augment, cfg.cutout or 0))
