"""EpochLoader: batches depend only on (seed, epoch), on both the tensor fast path and the DataLoader path."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from raynas.config.schema import DataConfig
from raynas.data import EpochLoader, load_data
from raynas.data.loader import Augmentation, AugmentedDataset
from raynas.errors import DataError


def _toy(n: int = 50) -> TensorDataset:
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 4, 4).contiguous()
    return TensorDataset(x, torch.arange(n))


class _ListDataset(Dataset):
    """A plain map-style data set (not tensors), which takes the DataLoader path."""

    def __init__(self, base: TensorDataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        x, y = self.base[index]
        return x.clone(), int(y)


def _labels(loader: EpochLoader, epoch: int) -> list[int]:
    return torch.cat([y for _, y in loader.epoch(epoch)]).tolist()


def test_same_seed_and_epoch_give_the_same_batches() -> None:
    a, b = EpochLoader(_toy(), 8, shuffle=True, seed=4), EpochLoader(_toy(), 8, shuffle=True, seed=4)
    for (xa, ya), (xb, yb) in zip(a.epoch(2), b.epoch(2), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_order_changes_with_epoch_and_seed_and_covers_every_sample() -> None:
    loader = EpochLoader(_toy(), 8, shuffle=True, seed=0)
    first, second = _labels(loader, 0), _labels(loader, 1)
    assert first != second
    assert sorted(first) == list(range(50)) and sorted(second) == list(range(50))
    assert _labels(EpochLoader(_toy(), 8, shuffle=True, seed=1), 0) != first


def test_an_epoch_does_not_depend_on_the_epochs_before_it() -> None:
    resumed = EpochLoader(_toy(), 8, shuffle=True, seed=5)
    fresh = EpochLoader(_toy(), 8, shuffle=True, seed=5)
    for epoch in range(3):
        list(fresh.epoch(epoch))
    assert _labels(fresh, 3) == _labels(resumed, 3)


def test_without_shuffle_the_order_is_the_data_set_order() -> None:
    loader = EpochLoader(_toy(), 8, shuffle=False, seed=0)
    assert _labels(loader, 0) == list(range(50)) == _labels(loader, 7)


def test_len_is_batches_per_epoch() -> None:
    keep = EpochLoader(_toy(50), 8, shuffle=True, seed=0)
    drop = EpochLoader(_toy(50), 8, shuffle=True, seed=0, drop_last=True)
    assert len(keep) == 7 and len(list(keep.epoch(0))) == 7
    sizes = [len(y) for _, y in drop.epoch(0)]
    assert len(drop) == 6 and sizes == [8] * 6


def test_dataloader_path_follows_the_same_seeded_order() -> None:
    fast = EpochLoader(_toy(), 8, shuffle=True, seed=3)
    slow = EpochLoader(_ListDataset(_toy()), 8, shuffle=True, seed=3)
    assert fast._tensors is not None and slow._tensors is None
    assert _labels(slow, 1) == _labels(fast, 1)
    assert len(slow) == len(fast)
    x, y = next(slow.epoch(1))
    assert x.shape == (8, 1, 4, 4) and torch.equal(x[:, 0, 0, 0], y.float())


def test_subset_of_tensors_yields_the_subset_samples() -> None:
    loader = EpochLoader(Subset(_toy(), [3, 10, 20, 41]), 2, shuffle=False, seed=0)
    assert loader._tensors is not None
    assert _labels(loader, 0) == [3, 10, 20, 41]


def test_invalid_arguments_raise_data_error() -> None:
    with pytest.raises(DataError, match="batch_size"):
        EpochLoader(_toy(), 0, shuffle=True, seed=0)
    with pytest.raises(DataError, match="epoch"):
        EpochLoader(_toy(), 4, shuffle=True, seed=0).epoch(-1)


def test_crop_returns_a_window_of_the_padded_image() -> None:
    x = torch.arange(2 * 16, dtype=torch.float32).view(2, 1, 4, 4) + 1
    out = Augmentation(crop_padding=1).apply(x, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    for b in range(2):
        windows = [padded[b, :, i:i + 4, j:j + 4] for i in range(3) for j in range(3)]
        assert any(torch.equal(out[b], w) for w in windows)


def test_flip_mirrors_some_samples_and_keeps_the_rest() -> None:
    x = torch.randn(64, 2, 5, 5, generator=torch.Generator().manual_seed(1))
    out = Augmentation(flip=True).apply(x, torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, s.flip(-1)) for o, s in zip(out, x)]
    kept = [torch.equal(o, s) for o, s in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 54


def test_cutout_zeroes_one_square_of_at_most_the_given_side() -> None:
    out = Augmentation(cutout=3).apply(torch.ones(32, 1, 8, 8), torch.Generator().manual_seed(0))
    for sample in out[:, 0]:
        rows, cols = torch.nonzero(sample == 0, as_tuple=True)
        assert 0 < len(rows) <= 9
        h = int(rows.max() - rows.min() + 1)
        w = int(cols.max() - cols.min() + 1)
        assert h <= 3 and w <= 3 and len(rows) == h * w


def test_augmentation_is_seeded_by_seed_and_epoch() -> None:
    data = AugmentedDataset(TensorDataset(torch.ones(40, 1, 8, 8), torch.arange(40)), Augmentation(cutout=4))
    a, b = EpochLoader(data, 10, shuffle=True, seed=2), EpochLoader(data, 10, shuffle=True, seed=2)
    batches_a, batches_b = list(a.epoch(0)), list(b.epoch(0))
    assert all(torch.equal(xa, xb) for (xa, _), (xb, _) in zip(batches_a, batches_b))
    assert any((x == 0).any() for x, _ in batches_a)
    masks_0 = torch.cat([x for x, _ in a.epoch(0)])
    masks_1 = torch.cat([x for x, _ in a.epoch(1)])
    assert not torch.equal(masks_0, masks_1)


def test_augmentation_on_the_dataloader_path_is_seeded() -> None:
    data = AugmentedDataset(_ListDataset(TensorDataset(torch.ones(20, 1, 8, 8), torch.arange(20))),
                            Augmentation(cutout=4))
    a, b = EpochLoader(data, 5, shuffle=True, seed=2), EpochLoader(data, 5, shuffle=True, seed=2)
    xa = torch.cat([x for x, _ in a.epoch(3)])
    assert torch.equal(xa, torch.cat([x for x, _ in b.epoch(3)]))
    assert (xa == 0).any() and not torch.equal(xa, torch.cat([x for x, _ in a.epoch(4)]))


def test_augment_applies_to_train_and_full_train_only() -> None:
    cfg = DataConfig(cutout=4, limit=200)
    plain, augmented = load_data(cfg), load_data(cfg, augment=True)
    assert plain.augmentation is None and augmented.augmentation == Augmentation(cutout=4)
    assert isinstance(augmented.train, AugmentedDataset) and isinstance(augmented.full_train(), AugmentedDataset)
    assert torch.equal(augmented.val.tensors[0], plain.val.tensors[0])
    assert torch.equal(augmented.test.tensors[0], plain.test.tensors[0])
    full = augmented.full_train()
    assert len(full) == len(plain.train) + len(plain.val)
    x_plain = torch.cat([x for x, _ in EpochLoader(plain.full_train(), 50, shuffle=True, seed=0).epoch(0)])
    x_aug = torch.cat([x for x, _ in EpochLoader(full, 50, shuffle=True, seed=0).epoch(0)])
    changed = (x_aug != x_plain).flatten(1).any(1)
    assert changed.float().mean() > 0.9 and torch.all((x_aug == x_plain) | (x_aug == 0))


def test_digits_without_cutout_get_no_augmentation() -> None:
    bundle = load_data(DataConfig(), augment=True)
    assert bundle.augmentation is None and isinstance(bundle.train, TensorDataset)
