"""ImageNet16-120 read from small files in the official pickle format written here, through the real code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from raynas.config import config_from_dict
from raynas.config.schema import DataConfig
from raynas.data import EpochLoader, load_data
from raynas.data.loader import AugmentedDataset
from raynas.errors import ConfigError, DataError

from imagenet16_files import TEST_FILE, TRAIN_FILES, write_file, write_imagenet16

MEAN = torch.tensor([122.68, 116.66, 104.01]).view(3, 1, 1) / 255
STD = torch.tensor([63.22, 61.26, 65.09]).view(3, 1, 1) / 255


def _cfg(root: Path, **kwargs) -> DataConfig:
    return DataConfig(name="imagenet16", root=str(root), **kwargs)


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    return message


def test_the_written_files_are_in_the_official_format(tmp_path: Path) -> None:
    raw = write_imagenet16(tmp_path)
    with open(tmp_path / "train_data_batch_1", "rb") as handle:
        entry = pickle.load(handle, encoding="latin1")  # how NAS-Bench-201's reader opens them
    assert entry["data"].shape == (40, 768) and entry["data"].dtype == np.uint8
    assert all(isinstance(label, int) for label in entry["labels"]) and entry["mean"].shape == (768,)
    labels = raw["all_train_y"]
    assert labels.min() == 1 and labels.max() == 1000 and (labels > 120).sum() == (labels <= 120).sum() == 200


def test_keeps_only_the_first_120_classes_with_0_based_labels(tmp_path: Path) -> None:
    raw = write_imagenet16(tmp_path)
    bundle = load_data(_cfg(tmp_path))
    assert (bundle.num_classes, bundle.in_channels, bundle.image_size) == (120, 3, 16)
    assert bundle.sizes() == {"train": 100, "val": 100, "test": 30}
    assert sorted(torch.cat([bundle.indices["train"], bundle.indices["val"]]).tolist()) == list(range(200))
    for split in ("train", "val"):
        dataset = getattr(bundle, split)
        for k, i in enumerate(bundle.indices[split].tolist()):
            x, y = dataset[k]
            assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y == raw["train_y"][i]
    assert [bundle.test[i][1] for i in range(30)] == raw["test_y"].tolist()
    labels = set(raw["train_y"].tolist()) | set(raw["test_y"].tolist())
    assert min(labels) == 0 and max(labels) == 119  # labels 1 and 120 of the files


def test_pixels_are_channel_planar_and_normalised_with_nb201_statistics(tmp_path: Path) -> None:
    raw = write_imagenet16(tmp_path)
    bundle = load_data(_cfg(tmp_path))
    x, _ = bundle.test[5]
    pixels = torch.as_tensor(raw["test_x"][5], dtype=torch.float32).view(3, 16, 16) / 255
    assert torch.allclose(x * STD + MEAN, pixels, atol=1e-5)
    # the red plane is the first 256 bytes of the row
    assert torch.allclose((x[0] * STD[0] + MEAN[0]).flatten() * 255,
                          torch.as_tensor(raw["test_x"][5][:256], dtype=torch.float32), atol=1e-3)


def test_images_are_kept_as_bytes(tmp_path: Path) -> None:
    write_imagenet16(tmp_path)
    bundle = load_data(_cfg(tmp_path))
    source = bundle.train.dataset  # a Subset of the training images
    assert source.images.dtype == torch.uint8 and tuple(source.images.shape) == (200, 3, 16, 16)


def test_augmentation_is_nb201s_crop_with_padding_2_and_flip(tmp_path: Path) -> None:
    write_imagenet16(tmp_path)
    bundle = load_data(_cfg(tmp_path), augment=True)
    assert isinstance(bundle.train, AugmentedDataset) and not isinstance(bundle.val, AugmentedDataset)
    aug = bundle.augmentation
    assert aug is not None and (aug.crop_padding, aug.flip, aug.cutout) == (2, True, 0)
    assert load_data(_cfg(tmp_path), augment=False).augmentation is None

    def first_epoch() -> torch.Tensor:
        return torch.cat([x for x, _ in EpochLoader(bundle.full_train(), 16, shuffle=True, seed=3).epoch(0)])

    batches = first_epoch()
    assert batches.shape == (200, 3, 16, 16) and torch.equal(batches, first_epoch())


def test_resize_limit_and_batches(tmp_path: Path) -> None:
    write_imagenet16(tmp_path)
    bundle = load_data(_cfg(tmp_path, image_size=32, limit=40), augment=True)
    assert bundle.sizes() == {"train": 20, "val": 20, "test": 30} and bundle.image_size == 32
    assert bundle.augmentation is not None and bundle.augmentation.crop_padding == 4
    x, y = next(EpochLoader(bundle.test, 8, shuffle=False, seed=0).epoch(0))
    assert x.shape == (8, 3, 32, 32) and y.dtype == torch.long and int(y.max()) < 120


def test_noise_is_fixed_per_sample(tmp_path: Path) -> None:
    write_imagenet16(tmp_path)
    clean = load_data(_cfg(tmp_path))
    noisy = load_data(_cfg(tmp_path, noise_std=0.5))
    again = load_data(_cfg(tmp_path, noise_std=0.5, train_portion=0.3))
    diff = torch.stack([noisy.test[i][0] - clean.test[i][0] for i in range(30)])
    assert abs(float(diff.std()) - 0.5) < 0.05
    assert torch.equal(noisy.test[0][0], again.test[0][0])


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_every_pickle_protocol_of_numpy_arrays_loads(tmp_path: Path, protocol: int) -> None:
    raw = write_imagenet16(tmp_path, per_file=8, n_test=8, protocol=protocol)
    bundle = load_data(_cfg(tmp_path))
    assert bundle.sizes()["test"] == len(raw["test_y"]) == 4


def test_a_malicious_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    write_imagenet16(tmp_path)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    (tmp_path / "train_data_batch_4").write_bytes(pickle.dumps({"data": Payload(), "labels": [1]}, protocol=2))
    with pytest.raises(DataError) as err:
        load_data(_cfg(tmp_path))
    message = _one_line(err)
    assert message.startswith(f"data.root: refused to load '{tmp_path / 'train_data_batch_4'}'")
    assert "posix.mkdir" in message and not marker.exists()


def test_a_pickle_naming_eval_is_refused(tmp_path: Path) -> None:
    write_imagenet16(tmp_path)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (eval, (f"__import__('os').mkdir({str(marker)!r})",))

    (tmp_path / TEST_FILE).write_bytes(pickle.dumps(Payload(), protocol=2))
    with pytest.raises(DataError,
                       match=r"refused to load .*val_data': the pickle asks for (__builtin__|builtins)\.eval"):
        load_data(_cfg(tmp_path))
    assert not marker.exists()


def test_missing_root_or_files_is_one_line_naming_path_and_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_data(DataConfig(name="imagenet16"))
    assert _one_line(err).startswith("data.root: not set for imagenet16; set it to the folder that holds "
                                     "train_data_batch_1 .. train_data_batch_10 and val_data")
    with pytest.raises(DataError) as err:
        load_data(_cfg(tmp_path / "nowhere"))
    assert _one_line(err).startswith(f"data.root: '{tmp_path / 'nowhere'}': not a folder; imagenet16 reads "
                                     "train_data_batch_1 .. train_data_batch_10 and val_data there")
    with pytest.raises(DataError) as err:
        load_data(_cfg(tmp_path))
    assert _one_line(err).startswith(f"data.root: '{tmp_path}': no ImageNet16 files there; expected "
                                     "train_data_batch_1 .. train_data_batch_10 and val_data")
    write_imagenet16(tmp_path)
    (tmp_path / "train_data_batch_7").unlink()
    (tmp_path / TEST_FILE).unlink()
    with pytest.raises(DataError) as err:
        load_data(_cfg(tmp_path))
    assert _one_line(err).startswith(f"data.root: '{tmp_path}': ImageNet16 files missing there: "
                                     "train_data_batch_7, val_data; expected")


@pytest.mark.parametrize("content, found", [
    (b"not a pickle", "UnpicklingError"),
    ("truncated", "is not an ImageNet16 file"),
    ({"data": np.zeros((4, 768), np.float32), "labels": [1, 2, 3, 4]}, "'data' is a float32 array of shape (4, 768)"),
    ({"data": np.zeros((4, 3072), np.uint8), "labels": [1, 2, 3, 4]}, "'data' is a uint8 array of shape (4, 3072)"),
    ({"data": np.zeros((4, 768), np.uint8), "labels": [1, 2, 3]}, "'labels' is a list of 3 for 4 images"),
    ({"data": np.zeros((2, 768), np.uint8), "labels": ["a", "b"]}, "'labels' is a list of 2 for 2 images"),
    ({"data": np.zeros((2, 768), np.uint8), "labels": [0, 5]}, "labels 0..5"),
    ({"data": np.zeros((2, 768), np.uint8), "labels": [1, 1001]}, "labels 1..1001"),
    ({"images": np.zeros((2, 768), np.uint8)}, "a dict with keys 'images'"),
    ([1, 2, 3], "a list of 3"),
])
def test_a_file_in_another_format_is_one_line_naming_it(tmp_path: Path, content, found: str) -> None:
    write_imagenet16(tmp_path)
    target = tmp_path / "train_data_batch_2"
    if content == "truncated":
        target.write_bytes(target.read_bytes()[:100])
    else:
        target.write_bytes(content if isinstance(content, bytes) else pickle.dumps(content, protocol=2))
    with pytest.raises(DataError) as err:
        load_data(_cfg(tmp_path))
    message = _one_line(err)
    assert message.startswith(f"data.root: '{target}' is not an ImageNet16 file (") and found in message, message


def test_files_without_any_of_the_120_classes_are_refused(tmp_path: Path) -> None:
    write_imagenet16(tmp_path)
    for name in TRAIN_FILES:
        path = tmp_path / name
        path.write_bytes(pickle.dumps({"data": np.zeros((3, 768), np.uint8), "labels": [121, 500, 1000]}))
    with pytest.raises(DataError) as err:
        load_data(_cfg(tmp_path))
    assert "no image labelled 1..120 in train_data_batch_1" in _one_line(err)


def test_one_file_with_no_kept_image_is_fine(tmp_path: Path) -> None:
    write_imagenet16(tmp_path)
    write_file(tmp_path / "train_data_batch_9", 5, 7, with_mean=True)  # labels 1, 1000, 120, 121, ...
    (tmp_path / "train_data_batch_10").write_bytes(pickle.dumps({"data": np.zeros((1, 768), np.uint8),
                                                                 "labels": [777]}))
    assert len(load_data(_cfg(tmp_path)).train) + len(load_data(_cfg(tmp_path)).val) == 160 + 3


def test_config_validation_knows_imagenet16(tmp_path: Path) -> None:
    write_imagenet16(tmp_path)
    cfg = config_from_dict({"data": {"name": "imagenet16", "root": str(tmp_path)}})
    assert cfg.data.name == "imagenet16"
    with pytest.raises(ConfigError, match=r"^data\.root = null: required when data\.name is 'imagenet16'"):
        config_from_dict({"data": {"name": "imagenet16"}})
    with pytest.raises(ConfigError, match=r"^data\.download = true: imagenet16 cannot be downloaded"):
        config_from_dict({"data": {"name": "imagenet16", "root": str(tmp_path), "download": True}})
    # the files are checked when the config is read, before any trial starts
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError) as err:
        config_from_dict({"data": {"name": "imagenet16", "root": str(empty)}})
    assert _one_line(err).startswith(f"data.root = {str(empty)!r}: no ImageNet16 files there; expected "
                                     "train_data_batch_1 .. train_data_batch_10 and val_data")
    write_imagenet16(empty)
    (empty / "train_data_batch_10").unlink()
    with pytest.raises(ConfigError, match=r"ImageNet16 files missing there: train_data_batch_10; expected"):
        config_from_dict({"data": {"name": "imagenet16", "root": str(empty)}})


def test_a_search_epoch_runs_on_imagenet16_with_a_supernet_sized_for_it(tmp_path: Path) -> None:
    # In process, as a trial runs it (tests/e2e/test_e2e_imagenet16.py runs it through the CLI in the slow tier)
    import math

    from raynas.search import Search

    write_imagenet16(tmp_path)
    cfg = config_from_dict({"name": "in16", "space": "nb201", "data": {"name": "imagenet16", "root": str(tmp_path)},
                            "supernet": {"channels": 4, "layers": 1},
                            "search": {"epochs": 1, "batch_size": 32, "arch_lr": 0.01, "threads": 1}})
    search = Search(cfg)
    try:
        report = search.run_epoch()
        weights = search.model.state_dict()
    finally:
        search.close()
    assert tuple(weights["classifier.weight"].shape) == (120, 16)  # 4C channels after the last stage
    assert tuple(weights["stem.0.weight"].shape) == (4, 3, 3, 3)
    # an untrained 120-way classifier starts near ln(120) = 4.79 (ln(10) = 2.30 for 10 classes)
    assert abs(report["train_loss"] - math.log(120)) < 0.5, report["train_loss"]
    assert report["genotype"].count("|+|") == 2  # an NB201 cell was derived
