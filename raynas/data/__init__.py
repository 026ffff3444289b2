"""Data sets for the search and for training from scratch.

``load_data(cfg)`` returns a :class:`DataBundle` whose ``train``/``val`` are the two halves of the bilevel
search split (weights / architecture) and whose ``test`` is held out; :class:`EpochLoader` iterates
batches in an order that depends only on ``(seed, epoch)``. ``DATASETS`` maps names to builders
``(cfg: DataConfig, augment: bool) -> DataBundle``.

Importing this package imports neither torch, torchvision nor scikit-learn: builders are registered
lazily, and ``DataBundle``/``EpochLoader`` are imported on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable

from raynas.errors import DataError
from raynas.registry import Registry

if TYPE_CHECKING:
    from raynas.config.schema import DataConfig
    from raynas.data.base import DataBundle
    from raynas.data.loader import EpochLoader

__all__ = ["DATASETS", "DataBundle", "EpochLoader", "load_data"]

Builder = Callable[["DataConfig", bool], "DataBundle"]

DATASETS: Registry[Builder] = Registry("data set", DataError)


def _lazy(module: str, attr: str) -> Callable[[], Builder]:
    """A loader that imports ``module`` and returns its ``attr`` when the registry first needs it."""
    def load() -> Builder:
        return getattr(importlib.import_module(module), attr)
    return load


DATASETS.register_lazy("digits", _lazy("raynas.data.digits", "build_digits"))
DATASETS.register_lazy("cifar10", _lazy("raynas.data.vision", "build_cifar10"))
DATASETS.register_lazy("cifar100", _lazy("raynas.data.vision", "build_cifar100"))
DATASETS.register_lazy("imagenet16", _lazy("raynas.data.imagenet16", "build_imagenet16"))
DATASETS.register_lazy("imagefolder", _lazy("raynas.data.vision", "build_imagefolder"))
DATASETS.register_lazy("synthetic", _lazy("raynas.data.synthetic", "build_synthetic"))

_LAZY_EXPORTS = {"DataBundle": "raynas.data.base", "EpochLoader": "raynas.data.loader"}


def load_data(cfg: "DataConfig", *, augment: bool = False) -> "DataBundle":
    """Build the data set ``cfg.name`` with its seeded splits.

    ``augment=True`` (training from scratch) adds the data set's training augmentation to ``train`` and
    ``full_train()``; ``val`` and ``test`` are never augmented. Unknown names and missing or unreadable
    files raise a one-line :class:`raynas.errors.DataError`.
    """
    return DATASETS.get(cfg.name)(cfg, augment)


def __getattr__(name: str) -> Any:
    if name in _LAZY_EXPORTS:
        value = getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
