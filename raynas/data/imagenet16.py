"""ImageNet16-120: the 16x16 downsampled ImageNet restricted to its first 120 classes, as NAS-Bench-201 uses it.

The official files (Chrabaszcz et al. 2017, "A Downsampled Variant of ImageNet", pickle format from
image-net.org) are ``train_data_batch_1`` .. ``train_data_batch_10`` and ``val_data`` in one folder, each a
pickled dict with ``'data'`` (N x 768 uint8: the red, green and blue 16x16 planes of each image in turn) and
``'labels'`` (N ints, 1-based, 1..1000). ImageNet16-120 keeps the images labelled 1..120 and numbers the
classes 0..119: 151,700 training images and 6,000 validation images in the official files. As for CIFAR,
the official training files are the search pool and ``val_data`` is the test split.

The files are read with :mod:`raynas.data.safe_pickle` (a data file cannot run code) one at a time, and
only the kept images stay in memory, as uint8 (about 116 MB for the training images instead of ~1 GB for
all 1,000 classes); pixels are normalised per sample when a batch is drawn.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from raynas.data.base import SALT_NOISE, SALT_NOISE_TEST, DataBundle, FixedNoise, build_bundle, resize_images
from raynas.data.imagenet16_layout import EXPECTED_FILES, TEST_FILE, TRAIN_FILES, WHERE_FROM, layout_problem
from raynas.data.loader import training_augmentation
from raynas.data.safe_pickle import RefusedGlobal, load_data_pickle
from raynas.errors import DataError

if TYPE_CHECKING:
    from raynas.config.schema import DataConfig

NATIVE_SIZE = 16
PIXELS = 3 * NATIVE_SIZE * NATIVE_SIZE
SOURCE_CLASSES = 1000
NUM_CLASSES = 120
# NAS-Bench-201's channel statistics of ImageNet16 (on the 0..255 scale in its code), as fractions.
MEAN = (122.68 / 255, 116.66 / 255, 104.01 / 255)
STD = (63.22 / 255, 61.26 / 255, 65.09 / 255)
# NAS-Bench-201's random crop pads 2 pixels at 16 px; a resized image scales it (side / 8).
CROP_PADDING_DIVISOR = 8

_FORMAT = f"a pickled dict with 'data' (N x {PIXELS} uint8) and 'labels' (N ints 1..{SOURCE_CLASSES})"


def check_root(cfg: "DataConfig") -> Path:
    """The folder of the ImageNet16 files, or a one-line DataError naming the path and the files expected there."""
    if cfg.root is None or not cfg.root.strip():
        raise DataError(f"data.root: not set for imagenet16; set it to the folder that holds {EXPECTED_FILES} "
                        f"({WHERE_FROM})")
    root = Path(cfg.root).expanduser()
    problem = layout_problem(root)
    if problem is not None:
        raise DataError(f"data.root: {str(root)!r}: {problem}")
    return root


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unpickle(path: Path) -> Any:
    try:
        with open(path, "rb") as handle:
            return load_data_pickle(handle)
    except RefusedGlobal as exc:
        raise DataError(f"data.root: refused to load {str(path)!r}: {exc}, so it is not an ImageNet16 file "
                        f"({_FORMAT}); nothing it names was run") from exc
    except OSError as exc:
        raise DataError(f"data.root: cannot read {str(path)!r} ({_first_line(exc)})") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            MemoryError, RecursionError) as exc:
        raise DataError(f"data.root: {str(path)!r} is not an ImageNet16 file ({type(exc).__name__}: "
                        f"{_first_line(exc)}); expected {_FORMAT}") from exc


def _not_the_format(path: Path, what: str) -> DataError:
    return DataError(f"data.root: {str(path)!r} is not an ImageNet16 file ({what}); expected {_FORMAT}")


def _describe(value: Any) -> str:
    """A short account of what a file held where the format wants something else."""
    if isinstance(value, dict):
        keys = [repr(k)[:40] for k in list(value)[:5]]
        return f"a dict with keys {', '.join(keys)}{', ...' if len(value) > 5 else ''}"
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


def _as_labels(raw: Any) -> np.ndarray | None:
    """``raw`` as a 1-D integer array, or None when it is not a list, tuple or array of integers."""
    if not isinstance(raw, (list, tuple, np.ndarray)):
        return None
    try:
        labels = np.asarray(raw)
    except (ValueError, TypeError):  # ragged or mixed lists
        return None
    return labels if labels.ndim == 1 and labels.dtype.kind in "iu" else None


def read_batch(path: Path, num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """The images of one file whose label is at most ``num_classes``: ``(uint8 [n, 768], int64 [n] 0-based)``.

    The file's format is checked (a dict; ``data`` a 2-D uint8 array of 768 columns; as many integer
    ``labels`` as rows, each in 1..1000); anything else is a one-line DataError naming the file.
    """
    entry = _unpickle(path)
    if not isinstance(entry, dict) or "data" not in entry or "labels" not in entry:
        raise _not_the_format(path, _describe(entry))
    data = entry["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        raise _not_the_format(path, f"'data' is {_describe(data)}")
    labels = _as_labels(entry["labels"])
    if labels is None or labels.shape != (len(data),):
        raise _not_the_format(path, f"'labels' is {_describe(entry['labels'])} for {len(data)} images")
    if len(labels) and (labels.min() < 1 or labels.max() > SOURCE_CLASSES):
        raise _not_the_format(path, f"labels {int(labels.min())}..{int(labels.max())}")
    keep = labels <= num_classes
    # copies: the file's full arrays (~100 MB per training file) are freed when this returns
    return data[keep].copy(), labels[keep].astype(np.int64) - 1


def read_split(root: Path, names: Sequence[str], num_classes: int = NUM_CLASSES
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The kept images of ``names`` under ``root``, in file order: ``(uint8 [N, 3, 16, 16], int64 [N])``.

    Files are read one at a time, so memory holds one whole file plus the images kept so far.
    """
    images, labels = [], []
    for name in names:
        x, y = read_batch(root / name, num_classes)
        images.append(x)
        labels.append(y)
    x = np.concatenate(images) if images else np.empty((0, PIXELS), np.uint8)
    y = np.concatenate(labels) if labels else np.empty(0, np.int64)
    if len(y) == 0:
        raise DataError(f"data.root: no image labelled 1..{num_classes} in {', '.join(names)} under "
                        f"{str(root)!r}; ImageNet16-{num_classes} keeps only those classes (are these "
                        "ImageNet16's files?)")
    return torch.from_numpy(x.reshape(-1, 3, NATIVE_SIZE, NATIVE_SIZE)), torch.from_numpy(y)


class ImageNet16Images(Dataset):
    """uint8 ``[N, 3, 16, 16]`` images and their labels; a sample is normalised (and resized) when it is read.

    Keeping the images as bytes holds a quarter of the memory of float32 tensors; the per-sample work
    (a division, a subtraction, optionally a bilinear resize) is small beside a network's step.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, size: int = NATIVE_SIZE) -> None:
        self.images = images
        self.labels = labels
        self.targets = labels.tolist()
        self.size = int(size)
        self._mean = torch.tensor(MEAN).view(3, 1, 1)
        self._std = torch.tensor(STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.images[index].float().div_(255.0)
        if self.size != NATIVE_SIZE:
            x = resize_images(x[None], self.size)[0]
        return (x - self._mean) / self._std, self.targets[index]


def _with_noise(dataset: Dataset, cfg: "DataConfig", salt: int) -> Dataset:
    return FixedNoise(dataset, cfg.noise_std, cfg.seed, salt) if cfg.noise_std > 0 else dataset


def build_imagenet16(cfg: "DataConfig", augment: bool) -> DataBundle:
    """ImageNet16-120 from ``cfg.root``: the official training files are the search pool, ``val_data`` the test split.

    120 classes, 3 x 16 x 16 inputs (resized to ``cfg.image_size`` when set), normalised with NAS-Bench-201's
    ImageNet16 mean/std. Training augmentation as NAS-Bench-201's: random crop with 2 pixels of padding
    (side / 8 when resized) and horizontal flip; cutout when ``cfg.cutout`` asks for it.
    """
    root = check_root(cfg)
    size = cfg.image_size or NATIVE_SIZE
    train_x, train_y = read_split(root, TRAIN_FILES)
    test_x, test_y = read_split(root, (TEST_FILE,))
    train = ImageNet16Images(train_x, train_y, size)
    test = ImageNet16Images(test_x, test_y, size)
    augmentation = training_augmentation(augment, cfg.cutout or 0,
                                         crop_padding=max(1, size // CROP_PADDING_DIVISOR), flip=True)
    return build_bundle("imagenet16", cfg, _with_noise(train, cfg, SALT_NOISE), train_y,
                        test_source=_with_noise(test, cfg, SALT_NOISE_TEST), num_classes=NUM_CLASSES,
                        in_channels=3, image_size=size, augmentation=augmentation)

