"""The data bundle of a search and the seeded splits that produce it.

Every data set ends up as a :class:`DataBundle`: the two halves of the bilevel search split (``train`` for
the weights, ``val`` for the architecture) and a held-out ``test`` split. All randomness here (held-out
split, ``limit`` subset, weight/architecture split, fixed input noise) comes from generators seeded from
``(cfg.seed, purpose)``, so one data config gives the same splits in every trial and every process, and
changing one purpose (say ``limit``) never reshuffles another (the test split).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Optional

import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, Dataset, Subset, TensorDataset

from raynas.data.loader import Augmentation, AugmentedDataset, seeded_generator
from raynas.errors import DataError

if TYPE_CHECKING:
    from raynas.config.schema import DataConfig

# Purposes of the seeded generators; each gets its own stream derived from (seed, purpose). The batch
# order uses purpose 7 (raynas.data.loader.SALT_EPOCH).
SALT_TEST = 1
SALT_LIMIT = 2
SALT_SPLIT = 3
SALT_NOISE = 4
SALT_NOISE_TEST = 5
SALT_SYNTHETIC = 6


def _rounded(x: float) -> int:
    return int(math.floor(x + 0.5))


def stratified_split(labels: torch.Tensor, first: int, generator: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Split positions ``0..len(labels)-1`` into ``first`` and the rest, each class in proportion.

    A seeded permutation ranks every sample within its class; sorting by relative rank then fills the first
    part class by class in turn, so the first part has exactly ``first`` samples and every class within one
    sample of its proportional share. Both parts come back sorted.
    """
    n = len(labels)
    perm = torch.randperm(n, generator=generator)
    shuffled = labels[perm].long()
    counts = torch.bincount(shuffled)
    by_class = torch.argsort(shuffled, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.long)
    rank[by_class] = torch.arange(n) - starts[shuffled[by_class]]
    key = (rank.double() + 0.5) / counts[shuffled].double()
    order = perm[torch.argsort(key, stable=True)]
    return torch.sort(order[:first]).values, torch.sort(order[first:]).values


def holdout_split(labels: torch.Tensor, cfg: "DataConfig") -> tuple[torch.Tensor, torch.Tensor]:
    """``(search, test)`` positions: a stratified share ``cfg.test_fraction`` is held out, seeded by ``cfg.seed``."""
    n = len(labels)
    if n < 3:
        raise DataError(f"data.name: data set {cfg.name!r} has {n} samples; at least 3 are needed for "
                        "the train, val and test splits")
    n_test = min(max(_rounded(n * cfg.test_fraction), 1), n - 2)
    test, search = stratified_split(labels, n_test, seeded_generator(cfg.seed, SALT_TEST))
    return search, test


def search_split(labels: torch.Tensor, cfg: "DataConfig") -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, val)`` positions in the search pool: ``cfg.limit`` caps the pool, ``cfg.train_portion`` divides it."""
    n = len(labels)
    if n < 2:
        raise DataError(f"data.name: the search split of {cfg.name!r} has {n} samples; at least 2 are needed "
                        "(one for the weights, one for the architecture)")
    pool = torch.arange(n)
    if cfg.limit is not None and cfg.limit < n:
        pool, _ = stratified_split(labels, cfg.limit, seeded_generator(cfg.seed, SALT_LIMIT))
    m = len(pool)
    n_train = min(max(_rounded(m * cfg.train_portion), 1), m - 1)
    train, val = stratified_split(labels[pool], n_train, seeded_generator(cfg.seed, SALT_SPLIT))
    return pool[train], pool[val]


def subset(dataset: Dataset, indices: torch.Tensor) -> Dataset:
    """The samples of ``dataset`` at ``indices``: a new ``TensorDataset`` when it is one, else a ``Subset``."""
    if isinstance(dataset, TensorDataset):
        return TensorDataset(*(t[indices] for t in dataset.tensors))
    return Subset(dataset, indices.tolist())


def concat(first: Dataset, second: Dataset) -> Dataset:
    """``first`` followed by ``second``, kept in memory when both are ``TensorDataset`` s."""
    if isinstance(first, TensorDataset) and isinstance(second, TensorDataset):
        return TensorDataset(*(torch.cat(pair) for pair in zip(first.tensors, second.tensors)))
    return ConcatDataset([first, second])


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of a ``[N, C, H, W]`` batch to ``size x size`` (antialiased when shrinking)."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < max(x.shape[-2:])
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


def add_fixed_noise(x: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    """``x`` plus one Gaussian noise tensor drawn from ``seed``: the same sample always gets the same noise."""
    if std <= 0:
        return x
    noise = torch.randn(x.shape, generator=seeded_generator(seed, SALT_NOISE), dtype=x.dtype)
    return x + std * noise


class FixedNoise(Dataset):
    """Adds fixed Gaussian noise to the inputs of a file-backed data set, seeded per sample index.

    The in-memory data sets draw one noise tensor for all samples (:func:`add_fixed_noise`); a file-backed
    one cannot, so sample ``i`` draws its noise from ``(seed, salt, i)``: the same noise in every epoch,
    split, worker process and run.
    """

    def __init__(self, base: Dataset, std: float, seed: int, salt: int = SALT_NOISE) -> None:
        self.base = base
        self.std = float(std)
        self.seed = int(seed)
        self.salt = int(salt)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        x, y = self.base[index]
        noise = torch.randn(x.shape, generator=seeded_generator(self.seed, self.salt, index), dtype=x.dtype)
        return x + self.std * noise, y


@dataclass(frozen=True)
class DataBundle:
    """The splits of one data set as a search and a training run use them.

    ``train`` trains the weights and ``val`` the architecture (the two halves of the bilevel search split);
    ``test`` is held out. ``indices`` records where each split came from: positions in the data set's
    search pool for ``train``/``val`` and in its test pool for ``test`` (one and the same pool for data sets
    without an official test split, so the three are disjoint). ``augmentation`` is set only when the bundle
    was loaded with ``augment=True``; it then applies to ``train`` and :meth:`full_train`, never to
    ``val``/``test``.
    """

    name: str
    train: Dataset = field(repr=False)
    val: Dataset = field(repr=False)
    test: Dataset = field(repr=False)
    num_classes: int
    in_channels: int
    image_size: int
    augmentation: Optional[Augmentation] = None
    indices: Mapping[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def full_train(self) -> Dataset:
        """``train`` followed by ``val`` (with the training augmentation, if any): for training from scratch."""
        base = self.train.base if isinstance(self.train, AugmentedDataset) else self.train
        merged = concat(base, self.val)
        return AugmentedDataset(merged, self.augmentation) if self.augmentation is not None else merged

    def sizes(self) -> dict[str, int]:
        """Number of samples per split: ``{"train": ..., "val": ..., "test": ...}``."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}  # type: ignore[arg-type]


def build_bundle(name: str, cfg: "DataConfig", source: Dataset, labels: torch.Tensor, *,
                 test_source: Optional[Dataset] = None, num_classes: int, in_channels: int, image_size: int,
                 augmentation: Optional[Augmentation] = None) -> DataBundle:
    """Split ``source`` (whose class labels are ``labels``) into a :class:`DataBundle`.

    Without ``test_source`` a share ``cfg.test_fraction`` of ``source`` is held out as test; with it,
    ``source`` is the whole search pool and ``test_source`` the test split. The search pool is then capped
    by ``cfg.limit`` and divided by ``cfg.train_portion``.
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    if test_source is None:
        pool, test_idx = holdout_split(labels, cfg)
        test = subset(source, test_idx)
    else:
        pool, test = torch.arange(len(labels)), test_source
        test_idx = torch.arange(len(test_source))  # type: ignore[arg-type]
    train_pos, val_pos = search_split(labels[pool], cfg)
    train_idx, val_idx = pool[train_pos], pool[val_pos]
    train = subset(source, train_idx)
    if augmentation is not None:
        train = AugmentedDataset(train, augmentation)
    return DataBundle(name=name, train=train, val=subset(source, val_idx), test=test, num_classes=num_classes,
                      in_channels=in_channels, image_size=image_size, augmentation=augmentation,
                      indices={"train": train_idx, "val": val_idx, "test": test_idx})
