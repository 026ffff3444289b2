"""Batches per epoch: a seeded order and seeded training augmentation.

:class:`EpochLoader` makes the batches of epoch ``e`` a function of ``(seed, e)`` alone, so a search resumed
from a checkpoint at epoch ``e`` sees exactly the batches it would have seen. In-memory tensor data take a
fast path (index the tensors, augment whole batches); any other data set goes through a torch
``DataLoader`` whose sampler carries the seeded order (and, for augmented data, one seed per sample).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from raynas.errors import DataError

SALT_EPOCH = 7  # purpose tag of the per-epoch stream; the data purposes (1-6) live in raynas.data.base

TensorView = tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixed from non-negative integers (numpy's SeedSequence), stable across processes."""
    words = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def seeded_generator(*parts: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` of ``parts``."""
    return torch.Generator().manual_seed(derive_seed(*parts))


@dataclass(frozen=True)
class Augmentation:
    """Training augmentation of normalised image batches: random crop with zero padding, flip, cutout.

    Zero is the data set's mean after normalisation, so padding and cutout fill with the mean colour.
    ``cutout`` is the side of the square that is zeroed (DeVries & Taylor 2017; 0: off).
    """

    crop_padding: int = 0
    flip: bool = False
    cutout: int = 0

    def apply(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Augment a ``[B, C, H, W]`` batch; every random draw comes from ``generator``."""
        batch, _, height, width = x.shape
        if self.crop_padding > 0:
            x = self._crop(x, generator)
        if self.flip:
            flipped = torch.rand(batch, generator=generator) < 0.5
            x = torch.where(flipped[:, None, None, None], x.flip(-1), x)
        if self.cutout > 0:
            x = self._cutout(x, generator, height, width)
        return x

    def _crop(self, x: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        batch, _, height, width = x.shape
        pad = self.crop_padding
        padded = torch.nn.functional.pad(x, (pad, pad, pad, pad)).permute(0, 2, 3, 1)
        dy = torch.randint(0, 2 * pad + 1, (batch,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (batch,), generator=generator)
        rows = dy[:, None, None] + torch.arange(height)[None, :, None]
        cols = dx[:, None, None] + torch.arange(width)[None, None, :]
        return padded[torch.arange(batch)[:, None, None], rows, cols].permute(0, 3, 1, 2).contiguous()

    def _cutout(self, x: torch.Tensor, generator: Optional[torch.Generator], height: int, width: int
                ) -> torch.Tensor:
        batch = x.shape[0]
        cy = torch.randint(0, height, (batch,), generator=generator)
        cx = torch.randint(0, width, (batch,), generator=generator)
        y0, x0 = cy - self.cutout // 2, cx - self.cutout // 2
        rows = torch.arange(height)[None, :]
        cols = torch.arange(width)[None, :]
        in_rows = (rows >= y0[:, None]) & (rows < (y0 + self.cutout)[:, None])
        in_cols = (cols >= x0[:, None]) & (cols < (x0 + self.cutout)[:, None])
        return x.masked_fill((in_rows[:, :, None] & in_cols[:, None, :])[:, None], 0.0)


def training_augmentation(augment: bool, cutout: int, *, crop_padding: int = 0, flip: bool = False
                          ) -> Optional[Augmentation]:
    """The augmentation a data set applies when ``augment`` is on, or None when there is nothing to apply."""
    if not augment or (crop_padding <= 0 and not flip and cutout <= 0):
        return None
    return Augmentation(crop_padding=crop_padding, flip=flip, cutout=cutout)


class AugmentedDataset(Dataset):
    """``base`` with :class:`Augmentation` applied to its inputs.

    Indexed with ``(index, sample_seed)`` (what :class:`EpochLoader` does) the augmentation is drawn from
    ``sample_seed``; indexed with a plain ``index`` it uses torch's global generator.
    """

    def __init__(self, base: Dataset, augmentation: Augmentation) -> None:
        self.base = base
        self.augmentation = augmentation

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, item: Any) -> tuple[torch.Tensor, Any]:
        generator = None
        if isinstance(item, tuple):
            item, sample_seed = item
            generator = torch.Generator().manual_seed(int(sample_seed))
        x, y = self.base[item]
        return self.augmentation.apply(x[None], generator)[0], y


def _tensor_view(dataset: Dataset) -> Optional[TensorView]:
    """``(x, y, positions)`` when ``dataset`` is a two-tensor ``TensorDataset`` or a ``Subset`` chain of one."""
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        return dataset.tensors[0], dataset.tensors[1], None
    if isinstance(dataset, Subset):
        inner = _tensor_view(dataset.dataset)
        if inner is None:
            return None
        x, y, positions = inner
        local = torch.as_tensor(list(dataset.indices), dtype=torch.long)
        return x, y, local if positions is None else positions[local]
    return None


class EpochLoader:
    """Iterates ``(x, y)`` batches of ``dataset``; the batches of epoch ``e`` depend only on ``(seed, e)``.

    ``shuffle`` permutes the samples each epoch with a generator seeded from ``(seed, e)``; augmentation of
    an :class:`AugmentedDataset` draws from the same seeded stream. ``num_workers`` only matters for data
    sets that are not in-memory tensors (those go through a torch ``DataLoader``).
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, shuffle: bool, seed: int, drop_last: bool = False,
                 num_workers: int = 0) -> None:
        if batch_size < 1:
            raise DataError(f"batch_size: {batch_size!r} is not allowed; use a batch size of at least 1")
        if seed < 0:
            raise DataError(f"seed: {seed!r} is not allowed; use a seed of 0 or more")
        if num_workers < 0:
            raise DataError(f"num_workers: {num_workers!r} is not allowed; use 0 (no workers) or more")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.num_workers = int(num_workers)
        self._augmentation: Optional[Augmentation] = None
        inner = dataset
        if isinstance(dataset, AugmentedDataset):
            self._augmentation, inner = dataset.augmentation, dataset.base
        self._tensors = _tensor_view(inner)

    @property
    def num_samples(self) -> int:
        """Samples per epoch (before ``drop_last``)."""
        return len(self.dataset)  # type: ignore[arg-type]

    def __len__(self) -> int:
        """Batches per epoch."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """An iterator over the ``(x, y)`` batches of epoch ``epoch`` (0-based, any non-negative integer)."""
        if epoch < 0:
            raise DataError(f"epoch: {epoch!r} is not allowed; epochs are counted from 0")
        generator = seeded_generator(self.seed, SALT_EPOCH, epoch)
        n = self.num_samples
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        if self._tensors is not None:
            return self._tensor_batches(self._tensors, order, generator)
        return self._loader_batches(order, generator)

    def _tensor_batches(self, tensors: TensorView, order: torch.Tensor, generator: torch.Generator
                        ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y, positions = tensors
        if positions is not None:
            order = positions[order]
        stop = len(self) * self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            idx = order[start:start + self.batch_size]
            xb = x[idx]
            if self._augmentation is not None:
                xb = self._augmentation.apply(xb, generator)
            yield xb, y[idx]

    def _loader_batches(self, order: torch.Tensor, generator: torch.Generator
                        ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        items: list[Any] = order.tolist()
        if self._augmentation is not None:
            sample_seeds = torch.randint(0, 2**62, (len(items),), generator=generator).tolist()
            items = list(zip(items, sample_seeds))
        worker_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        loader = DataLoader(self.dataset, batch_size=self.batch_size, sampler=items, drop_last=self.drop_last,
                            num_workers=self.num_workers,
                            generator=torch.Generator().manual_seed(worker_seed))
        return iter(loader)
