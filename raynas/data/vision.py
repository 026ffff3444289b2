"""File-backed image data sets: CIFAR-10/100 (torchvision's readers) and any ``ImageFolder`` tree.

These stay on disk (CIFAR: in torchvision's numpy arrays) and are decoded per sample, so they go through
:class:`raynas.data.EpochLoader`'s ``DataLoader`` path, where ``data.num_workers`` applies.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import torch
from torch.utils.data import Dataset
from torchvision import datasets, transforms

from raynas.data.base import SALT_NOISE, SALT_NOISE_TEST, DataBundle, FixedNoise, build_bundle
from raynas.data.loader import training_augmentation
from raynas.errors import DataError

if TYPE_CHECKING:
    from raynas.config.schema import DataConfig

CIFAR_SIZE = 32
IMAGEFOLDER_SIZE = 32
# ImageNet's channel statistics: the customary normalisation for arbitrary RGB photos.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _PresentFilesMixin:
    """Accept CIFAR files that are present instead of checking the official archive's md5 sums.

    torchvision refuses any file whose md5 differs from the official one. Users keep subsets or re-packed
    copies of CIFAR and the tests write tiny files in the real format; neither can match those sums, so
    presence is checked instead. Downloads still verify the archive's md5 (``download_and_extract_archive``).
    Overrides torchvision's private ``_check_integrity`` and ``_load_meta`` (stable since torchvision 0.2).
    """

    root: str
    base_folder: str
    train_list: list[list[str]]
    test_list: list[list[str]]
    meta: dict[str, str]

    def _check_integrity(self) -> bool:
        folder = os.path.join(self.root, self.base_folder)
        return all(os.path.isfile(os.path.join(folder, name)) for name, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        with open(os.path.join(self.root, self.base_folder, self.meta["filename"]), "rb") as handle:
            meta = pickle.load(handle, encoding="latin1")
        self.classes = list(meta[self.meta["key"]])
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


class PresentCIFAR10(_PresentFilesMixin, datasets.CIFAR10):
    """torchvision's CIFAR10 that trusts present files (see :class:`_PresentFilesMixin` for why)."""


class PresentCIFAR100(_PresentFilesMixin, datasets.CIFAR100):
    """torchvision's CIFAR100 that trusts present files (see :class:`_PresentFilesMixin` for why)."""


@dataclass(frozen=True)
class _CifarSpec:
    label: str
    reader: type[datasets.CIFAR10]  # PresentCIFAR10 or PresentCIFAR100 (CIFAR100 subclasses CIFAR10)
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


_CIFAR = {
    "cifar10": _CifarSpec("CIFAR-10", PresentCIFAR10, 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": _CifarSpec("CIFAR-100", PresentCIFAR100, 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def _to_tensor(size: Optional[int], native: Optional[int], mean: tuple[float, ...], std: tuple[float, ...]
               ) -> Any:
    steps: list[Any] = []
    if size is not None and size != native:
        steps.append(transforms.Resize((size, size), interpolation=transforms.InterpolationMode.BILINEAR,
                                       antialias=True))
    steps += [transforms.ToTensor(), transforms.Normalize(mean, std)]
    return transforms.Compose(steps)


def _with_noise(dataset: Dataset, cfg: "DataConfig", salt: int) -> Dataset:
    return FixedNoise(dataset, cfg.noise_std, cfg.seed, salt) if cfg.noise_std > 0 else dataset


def _cifar_files(spec: _CifarSpec) -> list[str]:
    reader = spec.reader
    return [name for name, _ in reader.train_list + reader.test_list] + [reader.meta["filename"]]


def _check_cifar_root(cfg: "DataConfig", spec: _CifarSpec) -> str:
    """The root folder of ``spec``'s files, or a one-line DataError saying what is missing and how to fix it."""
    folder = spec.reader.base_folder
    if cfg.root is None:
        raise DataError(f"data.root: not set for {cfg.name}; set it to the folder that holds {folder}/ "
                        f"(extract {spec.reader.url} there) or to an empty folder with data.download: true")
    root = os.path.expanduser(cfg.root)
    if cfg.download:
        return root
    expected = os.path.join(root, folder)
    missing = [name for name in _cifar_files(spec) if not os.path.isfile(os.path.join(expected, name))]
    if len(missing) == len(_cifar_files(spec)):
        raise DataError(f"data.root: no {spec.label} files under {cfg.root!r} (expected {expected}{os.sep}); "
                        f"extract {spec.reader.url} there or set data.download: true")
    if missing:
        raise DataError(f"data.root: {spec.label} files missing under {expected}{os.sep}: {', '.join(missing)}; "
                        f"extract {spec.reader.url} there again or set data.download: true")
    return root


def _read_cifar(spec: _CifarSpec, root: str, cfg: "DataConfig", tf: Any) -> tuple[Any, Any]:
    try:
        train = spec.reader(root, train=True, transform=tf, download=cfg.download)
        test = spec.reader(root, train=False, transform=tf)
    except (OSError, RuntimeError) as exc:  # download failures (URLError is an OSError) and unreadable files
        what = "download" if cfg.download else "root"
        raise DataError(f"data.{what}: could not get {spec.label} into {root!r} ({_first_line(exc)}); extract "
                        f"{spec.reader.url} under {root!r} by hand") from exc
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as exc:
        raise DataError(f"data.root: the {spec.label} files under {root!r} are not in the CIFAR python format "
                        f"({type(exc).__name__}: {_first_line(exc)}); extract {spec.reader.url} there again") from exc
    return train, test


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def build_cifar(cfg: "DataConfig", augment: bool) -> DataBundle:
    """CIFAR-10 or CIFAR-100 (``cfg.name``): the official train set is the search pool, the test set is test.

    Inputs are normalised with the usual CIFAR channel mean/std and resized to ``cfg.image_size`` when set.
    Training augmentation: random crop (padding size/8, 4 at 32 px), horizontal flip, cutout.
    """
    spec = _CIFAR[cfg.name]
    root = _check_cifar_root(cfg, spec)
    size = cfg.image_size or CIFAR_SIZE
    train, test = _read_cifar(spec, root, cfg, _to_tensor(size, CIFAR_SIZE, spec.mean, spec.std))
    labels = torch.as_tensor(list(train.targets) + list(test.targets), dtype=torch.long)
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise DataError(f"data.root: {spec.label} labels under {root!r} must lie in 0..{spec.num_classes - 1}; "
                        f"found {int(labels.min())}..{int(labels.max())}; check that the files are {spec.label}'s")
    augmentation = training_augmentation(augment, cfg.cutout or 0, crop_padding=max(1, size // 8), flip=True)
    return build_bundle(cfg.name, cfg, _with_noise(train, cfg, SALT_NOISE), labels[:len(train)],
                        test_source=_with_noise(test, cfg, SALT_NOISE_TEST), num_classes=spec.num_classes,
                        in_channels=3, image_size=size, augmentation=augmentation)


def build_cifar10(cfg: "DataConfig", augment: bool) -> DataBundle:
    """CIFAR-10 from ``cfg.root``/cifar-10-batches-py (see :func:`build_cifar`)."""
    return build_cifar(cfg, augment)


def build_cifar100(cfg: "DataConfig", augment: bool) -> DataBundle:
    """CIFAR-100 (fine labels) from ``cfg.root``/cifar-100-python (see :func:`build_cifar`)."""
    return build_cifar(cfg, augment)


def _image_folder(path: Path, tf: Any) -> datasets.ImageFolder:
    try:
        return datasets.ImageFolder(str(path), transform=tf)
    except (FileNotFoundError, OSError) as exc:
        raise DataError(f"data.root: no images in class subfolders of {str(path)!r} ({_first_line(exc)}); "
                        f"expected {path}{os.sep}<class>{os.sep}<image>.png") from exc


def build_imagefolder(cfg: "DataConfig", augment: bool) -> DataBundle:
    """An ``ImageFolder`` tree at ``cfg.root`` (``<root>/<class>/<image>``), RGB, resized to ``cfg.image_size`` (32).

    With a ``train/`` subfolder it is the search pool and ``test/`` (else ``val/``) the test split; without
    either of those, ``cfg.test_fraction`` of ``train/`` (or, with no ``train/``, of the root) is held out,
    seeded.
    Inputs are normalised with ImageNet's mean/std. Training augmentation as for CIFAR.
    """
    if cfg.root is None:
        raise DataError("data.root: not set for imagefolder; set it to a folder of class subfolders of images")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DataError(f"data.root: {cfg.root!r} is not a folder; set it to a folder of class subfolders of images")
    size = cfg.image_size or IMAGEFOLDER_SIZE
    tf = _to_tensor(size, None, IMAGENET_MEAN, IMAGENET_STD)
    held_out = next((root / name for name in ("test", "val") if (root / name).is_dir()), None)
    test: Optional[Dataset] = None
    if not (root / "train").is_dir():
        pool = _image_folder(root, tf)
    else:
        pool = _image_folder(root / "train", tf)
        if held_out is not None:
            test_folder = _image_folder(held_out, tf)
            if test_folder.classes != pool.classes:
                raise DataError(f"data.root: class folders of train/ ({', '.join(pool.classes)}) and "
                                f"{held_out.name}/ ({', '.join(test_folder.classes)}) differ; use the same class "
                                "subfolders in both")
            test = _with_noise(test_folder, cfg, SALT_NOISE_TEST)
    augmentation = training_augmentation(augment, cfg.cutout or 0, crop_padding=max(1, size // 8), flip=True)
    return build_bundle("imagefolder", cfg, _with_noise(pool, cfg, SALT_NOISE), torch.as_tensor(pool.targets),
                        test_source=test, num_classes=len(pool.classes), in_channels=3, image_size=size,
                        augmentation=augmentation)
