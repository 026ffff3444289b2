"""Small ImageNet16 files in the official format (downsampled ImageNet, 16x16, pickle), for tests.

Each file is a pickled dict: ``'data'`` (N x 768 uint8, the red, green and blue 16x16 planes in turn) and
``'labels'`` (a list of N ints 1..1000); the training files also carry ``'mean'`` (768 float64), as the
official ones do. Labels span 1..1000, so that a reader has to drop the images of classes 121..1000.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

TRAIN_FILES = [f"train_data_batch_{i}" for i in range(1, 11)]
TEST_FILE = "val_data"


def _labels(n: int, start: int) -> list[int]:
    """Every other label in 1..120, the rest in 121..1000; the boundaries 1, 120, 121 and 1000 occur."""
    labels = []
    for i in range(n):
        k = start + i
        labels.append(1 + (k * 7) % 120 if i % 2 == 0 else 121 + (k * 37) % 880)
    if n >= 4:
        labels[:4] = [1, 1000, 120, 121]
    return labels


def write_file(path: Path, n: int, start: int, *, with_mean: bool, protocol: int = 2) -> dict[str, np.ndarray]:
    """One file of ``n`` images; returns its arrays (``data`` uint8 [n, 768], ``labels`` int64 1-based)."""
    rng = np.random.default_rng(start)
    data = rng.integers(0, 256, size=(n, 768), dtype=np.uint8)
    labels = _labels(n, start)
    entry: dict = {"data": data, "labels": labels}
    if with_mean:
        entry["mean"] = data.mean(axis=0)
    path.write_bytes(pickle.dumps(entry, protocol=protocol))
    return {"data": data, "labels": np.asarray(labels, dtype=np.int64)}


def write_imagenet16(root: Path, per_file: int = 40, n_test: int = 60, protocol: int = 2) -> dict[str, np.ndarray]:
    """The eleven official files under ``root`` (created), with ``per_file`` images per training file.

    Returns the images and 0-based labels an ImageNet16-120 reader must keep, in file order:
    ``train_x`` (uint8 [n, 768]), ``train_y``, ``test_x``, ``test_y``, and ``all_train_y`` (1-based, all).
    """
    root.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for b, name in enumerate(TRAIN_FILES):
        written = write_file(root / name, per_file, 1000 * (b + 1), with_mean=True, protocol=protocol)
        xs.append(written["data"])
        ys.append(written["labels"])
    test = write_file(root / TEST_FILE, n_test, 99_000, with_mean=False, protocol=protocol)
    x, y = np.concatenate(xs), np.concatenate(ys)
    keep, keep_test = y <= 120, test["labels"] <= 120
    return {"train_x": x[keep], "train_y": y[keep] - 1, "test_x": test["data"][keep_test],
            "test_y": test["labels"][keep_test] - 1, "all_train_y": y}
