"""Writing small files in the official NAS-Bench-201 / NATS-Bench topology formats, for tests.

The real files cannot be downloaded here, so tests write their own: the per-arch entries are built with the
``nats_bench`` package's own classes (``ResultsCount`` for one training, ``ArchResults`` for an arch on its
data sets and seeds, saved with ``state_dict()``), laid out as the package reads them (see
raynas/benchmark/official_files.py for the layouts). Accuracies are made up; each training's accuracy at
its last epoch is the one given, and the earlier epochs are lower, so a reader of the wrong epoch is caught.
"""

from __future__ import annotations

import bz2
import collections
import pickle
import random
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

#: the test split each data set's ``test-accuracy`` comes from, and the other splits the real files hold
SPLITS = {"cifar10-valid": ("x-valid", "ori-test"), "cifar10": ("ori-test",),
          "cifar100": ("x-valid", "x-test", "ori-test"), "ImageNet16-120": ("x-valid", "x-test", "ori-test")}


def training(arch: str, dataset: str, seed: int, accuracy: float, epochs: int):
    """One training as a ``ResultsCount``: ``accuracy`` on every evaluation split at the last epoch."""
    from nats_bench.api_utils import ResultsCount

    ramp = [accuracy * (i + 1) / epochs for i in range(epochs)]  # lower, then the final one
    train = collections.OrderedDict((i, ramp[i]) for i in range(epochs))
    losses = collections.OrderedDict((i, 2.0 - ramp[i] / 100) for i in range(epochs))
    result = ResultsCount(dataset, None, train, losses, params=np.float64(0.37), flop=np.float64(49.5),
                          arch_config={"name": "infer.tiny", "arch_str": arch, "channel": 16, "num_cells": 5,
                                       "class_num": 10},
                          seed=seed, epochs=epochs, latency=[0.01])
    result.update_train_info(train, None, losses, collections.OrderedDict((i, 10.0) for i in range(epochs)))
    for split in SPLITS[dataset]:
        keys = [f"{split}@{i}" for i in range(epochs)]
        result.update_eval({k: ramp[i] for i, k in enumerate(keys)},
                           {k: 2.0 - ramp[i] / 100 for i, k in enumerate(keys)}, {k: 1.0 for k in keys})
    return result


def arch_results(index: int, arch: str, accuracies: Mapping[str, Sequence[float]], epochs: int) -> dict:
    """An ``ArchResults`` state dict: per data set, one training per accuracy (seeds 777, 888, 999)."""
    from nats_bench.api_utils import ArchResults

    results = ArchResults(index, arch)
    for dataset, per_seed in accuracies.items():
        for seed, accuracy in zip((777, 888, 999), per_seed):
            results.update(dataset, seed, training(arch, dataset, seed, accuracy, epochs))
    return results.state_dict()


def shuffled_archs(seed: int = 0) -> list[str]:
    """The 15,625 NB201 arch strings in a seeded order (the file's indices are not raynas' enumeration's)."""
    from raynas.benchmark.cells import unique_cells

    archs = list(unique_cells().arch_strings)
    random.Random(seed).shuffle(archs)
    return archs


def write_nb201_pth(path: Path, archs: Sequence[str], entries: Mapping[int, Mapping[str, Sequence[float]]],
                    epochs: int = 200) -> Path:
    """A NAS-Bench-201 file: ``torch.save`` of ``{"meta_archs", "arch2infos": {i: {"less", "full"}},
    "evaluated_indexes"}``; ``entries`` maps an index of ``archs`` to its per-data-set accuracies (percent,
    one per seed) at 200 epochs ("full"); "less" (12 epochs) holds cifar10-valid only, as in v1_0."""
    import torch

    infos = {}
    for index, accuracies in entries.items():
        less = {"cifar10-valid": [a - 10 for a in accuracies.get("cifar10-valid", [50.0])]}
        infos[index] = {"less": arch_results(index, archs[index], less, min(epochs, 12)),
                        "full": arch_results(index, archs[index], accuracies, epochs)}
    torch.save({"meta_archs": list(archs), "arch2infos": infos, "evaluated_indexes": sorted(entries)}, path)
    return path


def write_nats_folder(folder: Path, archs: Sequence[str], entries: Mapping[int, Mapping[str, Sequence[float]]],
                      epochs: int = 200) -> Path:
    """A NATS-Bench topology folder in fast mode: ``meta.pickle.pbz2`` and ``<index:06d>.pickle.pbz2`` per
    entry, each ``{"12": ..., "200": ...}``, written as ``nats_bench.pickle_save`` writes them."""
    from nats_bench import pickle_save

    folder.mkdir(parents=True, exist_ok=True)
    pickle_save({"meta_archs": list(archs), "evaluated_indexes": sorted(entries)}, str(folder / "meta.pickle"))
    for index, accuracies in entries.items():
        less = {key: [a - 10 for a in values] for key, values in accuracies.items()}
        pickle_save({"12": arch_results(index, archs[index], less, min(epochs, 12)),
                     "200": arch_results(index, archs[index], accuracies, epochs)},
                    str(folder / f"{index:06d}.pickle"))
    return folder


def write_nats_file(path: Path, archs: Sequence[str], entries: Mapping[int, Mapping[str, Sequence[float]]],
                    epochs: int = 200) -> Path:
    """The single-file NATS-Bench topology archive (``*.pickle.pbz2``): the whole dict, bz2-compressed."""
    infos = {index: {"200": arch_results(index, archs[index], accuracies, epochs)}
             for index, accuracies in entries.items()}
    with bz2.BZ2File(path, "wb") as handle:
        pickle.dump({"meta_archs": list(archs), "arch2infos": infos, "evaluated_indexes": sorted(entries)}, handle,
                    protocol=4)
    return path
