"""CIFAR-10/100 and ImageFolder read from small real files written here, through the real code."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from raynas.config.schema import DataConfig
from raynas.data import EpochLoader, load_data
from raynas.data.loader import AugmentedDataset
from raynas.errors import DataError

CIFAR10_MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(3, 1, 1)
CIFAR10_STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(3, 1, 1)


class _Py2Str(bytes):
    """A Python 2 ``str``: the official CIFAR pickles were written by Python 2, whose keys are such strings."""


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler lets us emit Python 2 string opcodes
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2str(self, obj: _Py2Str) -> None:
        data = bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)

    dispatch[_Py2Str] = _save_py2str


def _py2(value):
    """Turn the str keys/values of ``value`` into Python 2 strings, recursively."""
    if isinstance(value, str):
        return _Py2Str(value.encode("latin1"))
    if isinstance(value, dict):
        return {_py2(k): _py2(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_py2(v) for v in value]
    return value


def _dump(path: Path, obj: dict) -> None:
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(_py2(obj))
    path.write_bytes(buffer.getvalue())


def _images(n: int, offset: int) -> np.ndarray:
    """``n`` distinct images in CIFAR's row layout (uint8, [n, 3072], channel-major)."""
    rng = np.random.default_rng(offset)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _write_cifar10(root: Path, per_batch: int = 4, n_test: int = 6) -> dict[str, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    data, labels = [], []
    for b in range(1, 6):
        x = _images(per_batch, b)
        y = [(b * per_batch + i) % 10 for i in range(per_batch)]
        _dump(folder / f"data_batch_{b}", {"batch_label": f"training batch {b} of 5", "data": x, "labels": y,
                                           "filenames": [f"img_{b}_{i}.png" for i in range(per_batch)]})
        data.append(x)
        labels += y
    test_x, test_y = _images(n_test, 99), [i % 10 for i in range(n_test)]
    _dump(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "data": test_x, "labels": test_y,
                                  "filenames": [f"test_{i}.png" for i in range(n_test)]})
    _dump(folder / "batches.meta", {"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": 4,
                                    "num_vis": 3072})
    return {"train_x": np.concatenate(data), "train_y": np.array(labels), "test_x": test_x,
            "test_y": np.array(test_y)}


def _write_cifar100(root: Path, n_train: int = 30, n_test: int = 8) -> None:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n, offset in (("train", n_train, 1), ("test", n_test, 2)):
        fine = [(7 * i + offset) % 100 for i in range(n)]
        _dump(folder / name, {"data": _images(n, offset), "fine_labels": fine, "coarse_labels": [f // 5 for f in fine],
                              "filenames": [f"{name}_{i}.png" for i in range(n)]})
    _dump(folder / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                            "coarse_label_names": [f"coarse{i}" for i in range(20)]})


def test_the_written_files_are_in_the_official_format(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as handle:
        batch = pickle.load(handle, encoding="bytes")  # how the CIFAR web page reads them
    assert batch[b"data"].shape == (4, 3072) and batch[b"data"].dtype == np.uint8 and len(batch[b"labels"]) == 4


def test_cifar10_reads_shapes_labels_and_pixels(tmp_path: Path) -> None:
    raw = _write_cifar10(tmp_path)
    bundle = load_data(DataConfig(name="cifar10", root=str(tmp_path)))
    assert bundle.sizes() == {"train": 10, "val": 10, "test": 6}
    assert (bundle.num_classes, bundle.in_channels, bundle.image_size) == (10, 3, 32)
    for k, i in enumerate(bundle.indices["train"].tolist()):
        x, y = bundle.train[k]
        assert x.shape == (3, 32, 32) and y == raw["train_y"][i]
    x, y = bundle.test[2]
    assert y == raw["test_y"][2]
    pixels = torch.as_tensor(raw["test_x"][2], dtype=torch.float32).view(3, 32, 32) / 255
    assert torch.allclose(x * CIFAR10_STD + CIFAR10_MEAN, pixels, atol=1e-5)
    assert set(torch.cat([bundle.indices["train"], bundle.indices["val"]]).tolist()) == set(range(20))


def test_cifar10_resize_limit_and_batches(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    bundle = load_data(DataConfig(name="cifar10", root=str(tmp_path), image_size=16, limit=8))
    assert bundle.sizes() == {"train": 4, "val": 4, "test": 6} and bundle.image_size == 16
    x, y = next(EpochLoader(bundle.test, 4, shuffle=False, seed=0).epoch(0))
    assert x.shape == (4, 3, 16, 16) and y.tolist() == [0, 1, 2, 3]


def test_cifar10_augmented_train_batches_are_seeded(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    bundle = load_data(DataConfig(name="cifar10", root=str(tmp_path), cutout=8), augment=True)
    assert isinstance(bundle.train, AugmentedDataset) and not isinstance(bundle.val, AugmentedDataset)
    aug = bundle.augmentation
    assert aug is not None and (aug.crop_padding, aug.flip, aug.cutout) == (4, True, 8)

    def first_epoch() -> torch.Tensor:
        return torch.cat([x for x, _ in EpochLoader(bundle.full_train(), 8, shuffle=True, seed=1).epoch(0)])

    assert torch.equal(first_epoch(), first_epoch())


def test_worker_processes_do_not_change_the_batches(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    bundle = load_data(DataConfig(name="cifar10", root=str(tmp_path), cutout=8, noise_std=0.3), augment=True)

    def epoch(workers: int) -> torch.Tensor:
        loader = EpochLoader(bundle.full_train(), 8, shuffle=True, seed=1, num_workers=workers)
        return torch.cat([x for x, _ in loader.epoch(2)])

    assert torch.equal(epoch(0), epoch(1))


def test_cifar100_reads_fine_labels(tmp_path: Path) -> None:
    _write_cifar100(tmp_path)
    bundle = load_data(DataConfig(name="cifar100", root=str(tmp_path)))
    assert bundle.num_classes == 100 and bundle.sizes() == {"train": 15, "val": 15, "test": 8}
    assert [bundle.test[i][1] for i in range(8)] == [(7 * i + 2) % 100 for i in range(8)]
    assert bundle.val[0][0].shape == (3, 32, 32)


def test_cifar_noise_is_fixed_per_sample(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    clean = load_data(DataConfig(name="cifar10", root=str(tmp_path)))
    noisy = load_data(DataConfig(name="cifar10", root=str(tmp_path), noise_std=0.5))
    again = load_data(DataConfig(name="cifar10", root=str(tmp_path), noise_std=0.5, train_portion=0.3))
    diff = torch.stack([noisy.test[i][0] - clean.test[i][0] for i in range(6)])
    assert abs(float(diff.std()) - 0.5) < 0.05
    assert torch.equal(noisy.test[0][0], again.test[0][0])


def test_cifar_without_root_or_files_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^data\.root: not set for cifar10") as err:
        load_data(DataConfig(name="cifar10"))
    assert "\n" not in str(err.value)
    with pytest.raises(DataError) as err:
        load_data(DataConfig(name="cifar10", root=str(tmp_path)))
    message = str(err.value)
    assert message.startswith(f"data.root: no CIFAR-10 files under '{tmp_path}'")
    assert str(tmp_path / "cifar-10-batches-py") in message and "cifar-10-python.tar.gz" in message
    assert "data.download: true" in message and "\n" not in message
    with pytest.raises(DataError, match="no CIFAR-100 files"):
        load_data(DataConfig(name="cifar100", root=str(tmp_path / "missing")))


def test_cifar_with_some_files_missing_names_them(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="files missing .*: data_batch_3;"):
        load_data(DataConfig(name="cifar10", root=str(tmp_path)))


def test_cifar_in_a_wrong_format_is_a_data_error(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not in the CIFAR python format"):
        load_data(DataConfig(name="cifar10", root=str(tmp_path)))


def _write_images(folder: Path, classes: dict[str, int], start: int = 0) -> None:
    for c, (name, count) in enumerate(classes.items()):
        (folder / name).mkdir(parents=True)
        for i in range(count):
            colour = (40 * c + i, 255 - 40 * c, (start + i * 17) % 256)
            Image.new("RGB", (10 + i % 3, 12), colour).save(folder / name / f"{i}.png")


def test_imagefolder_without_subfolders_holds_out_a_seeded_test_split(tmp_path: Path) -> None:
    _write_images(tmp_path, {"cat": 6, "dog": 6, "eel": 8})
    bundle = load_data(DataConfig(name="imagefolder", root=str(tmp_path), test_fraction=0.25))
    assert bundle.sizes() == {"train": 8, "val": 7, "test": 5}
    assert (bundle.num_classes, bundle.in_channels, bundle.image_size) == (3, 3, 32)
    every = torch.cat([bundle.indices[s] for s in ("train", "val", "test")])
    assert sorted(every.tolist()) == list(range(20))
    x, y = bundle.test[0]
    assert x.shape == (3, 32, 32) and y in (0, 1, 2)
    other = load_data(DataConfig(name="imagefolder", root=str(tmp_path), test_fraction=0.25, seed=9))
    assert not torch.equal(other.indices["test"], bundle.indices["test"])


def test_imagefolder_uses_train_and_test_subfolders(tmp_path: Path) -> None:
    _write_images(tmp_path / "train", {"a": 5, "b": 5})
    _write_images(tmp_path / "test", {"a": 2, "b": 3}, start=100)
    bundle = load_data(DataConfig(name="imagefolder", root=str(tmp_path), image_size=8))
    assert bundle.num_classes == 2 and bundle.sizes() == {"train": 5, "val": 5, "test": 5}
    assert [bundle.test[i][1] for i in range(5)] == [0, 0, 1, 1, 1]
    x, _ = next(EpochLoader(bundle.train, 4, shuffle=True, seed=0).epoch(0))
    assert x.shape == (4, 3, 8, 8)


def test_imagefolder_with_only_a_train_subfolder_holds_out_from_it(tmp_path: Path) -> None:
    _write_images(tmp_path / "train", {"a": 5, "b": 5})
    bundle = load_data(DataConfig(name="imagefolder", root=str(tmp_path), test_fraction=0.2))
    assert bundle.num_classes == 2 and bundle.sizes() == {"train": 4, "val": 4, "test": 2}
    assert sorted(bundle.test[i][1] for i in range(2)) == [0, 1]


def test_imagefolder_accepts_val_as_the_test_folder_and_checks_classes(tmp_path: Path) -> None:
    _write_images(tmp_path / "train", {"a": 4, "b": 4})
    _write_images(tmp_path / "val", {"a": 2, "c": 2})
    with pytest.raises(DataError, match=r"class folders of train/ \(a, b\) and val/ \(a, c\) differ"):
        load_data(DataConfig(name="imagefolder", root=str(tmp_path)))


def test_imagefolder_errors_name_the_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data.root: not set"):
        load_data(DataConfig(name="imagefolder"))
    with pytest.raises(DataError, match="is not a folder"):
        load_data(DataConfig(name="imagefolder", root=str(tmp_path / "nope")))
    with pytest.raises(DataError, match="no images in class subfolders"):
        load_data(DataConfig(name="imagefolder", root=str(tmp_path)))
