"""The synthetic data set: shapes, seeding, balance and a learnable class signal."""

from __future__ import annotations

import torch

from raynas.config.schema import DataConfig
from raynas.data import load_data


def _cfg(**kw) -> DataConfig:
    return DataConfig(name="synthetic", **{"num_samples": 300, "num_classes": 5, "channels": 2, **kw})


def test_shapes_sizes_and_balance() -> None:
    bundle = load_data(_cfg())
    assert bundle.sizes() == {"train": 120, "val": 120, "test": 60}
    assert (bundle.num_classes, bundle.in_channels, bundle.image_size) == (5, 2, 8)
    assert bundle.train.tensors[0].shape == (120, 2, 8, 8)
    labels = torch.cat([bundle.train.tensors[1], bundle.val.tensors[1], bundle.test.tensors[1]])
    assert torch.bincount(labels).tolist() == [60] * 5
    assert torch.bincount(bundle.test.tensors[1]).tolist() == [12] * 5


def test_seeded_and_resizable() -> None:
    a, b, c = load_data(_cfg(seed=1)), load_data(_cfg(seed=1)), load_data(_cfg(seed=2))
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0])
    assert load_data(_cfg(image_size=16)).test.tensors[0].shape == (60, 2, 16, 16)


def test_classes_are_learnable() -> None:
    bundle = load_data(_cfg(seed=3))
    x, y = bundle.full_train().tensors
    centroids = torch.stack([x[y == k].mean(0) for k in range(5)]).flatten(1)
    test_x, test_y = bundle.test.tensors
    predicted = torch.cdist(test_x.flatten(1), centroids).argmin(1)
    assert (predicted == test_y).float().mean() > 0.9
