"""The official NAS-Bench-201 / NATS-Bench files as the ground truth of NB201 searches on CIFAR-10,
CIFAR-100 and ImageNet16-120 (``benchmark.official``, docs/benchmark.md "The official files").

A search's data set picks the benchmark's key (:data:`DATA_KEYS`). An arch string's ground truth is the
file's test accuracy of that arch string after the 200-epoch training (mean over the file's seeds), as a
fraction like the embedded table's (94.37 % is 0.9437). Its percentile is the share of the benchmark's
unique cells (6,466, NB201's isomorphism rule, :mod:`raynas.benchmark.cells`) whose accuracy is at or below
it, a cell's accuracy being the mean over its arch strings in the file, as the embedded table ranks unique
cells. Its regret is the file's best arch string's accuracy minus its own: 94.37 / 73.51 / 47.31 % in the
published files; a file whose best differs is measured against its own best (:meth:`OfficialGroundTruth.
best_note` says which).

Reading a real file takes minutes and gigabytes, so it is read once: :func:`load_official` keeps the
extracted accuracies as a small Parquet file in a cache folder, refreshed when the file's size or
modification time changes; the trials of a search read that. Imports neither torch nor Ray.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from raynas.benchmark.cells import unique_cells
from raynas.benchmark.lookup import Score, cell_of, default_cache_dir
from raynas.benchmark.official_files import META_FILE, TEST_SETS, official_kind, read_official
from raynas.errors import ConfigError, GenotypeError
from raynas.files import atomic_path, make_folder

#: raynas data set -> the benchmark's data-set key (``cifar10-valid``, trained on half of CIFAR-10's
#: training images, is not used: a CIFAR-10 search is scored by the cell trained on all of them)
DATA_KEYS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16": "ImageNet16-120"}
#: each data set's native image side (the benchmark's images are not resized)
NATIVE_SIZES = {"cifar10": 32, "cifar100": 32, "imagenet16": 16}
#: the best published 200-epoch test accuracies (percent) of the official files
PUBLISHED_BEST = {"cifar10": 94.37, "cifar100": 73.51, "ImageNet16-120": 47.31}
#: the extraction's layout version: a change makes every cached extraction stale
EXTRACTION_VERSION = "1"
ALL_ARCHS = 15_625


def official_cache_dir() -> Path:
    """Where extractions go by default: ``official/`` under :func:`raynas.benchmark.lookup.default_cache_dir`
    (``$RAYNAS_BENCHMARK_CACHE`` or ``~/.cache/raynas/benchmark``)."""
    return default_cache_dir() / "official"


def data_key(name: str) -> Optional[str]:
    """The benchmark's key for raynas data set ``name`` (None for a data set the files do not cover)."""
    return DATA_KEYS.get(name)


def data_obstacle(data: Mapping[str, Any]) -> Optional[str]:
    """Why a search on ``data`` (a DataConfig as a dict) cannot be scored by an official file, or None: the
    data set must be one the files cover, clean and at its native size."""
    name = data.get("name")
    if name not in DATA_KEYS:
        return (f"data.name is {name!r}; the official files cover "
                f"{', '.join(map(repr, DATA_KEYS))} (the benchmark's CIFAR-10, CIFAR-100, ImageNet16-120)")
    if data.get("noise_std"):
        return f"data.noise_std is {data['noise_std']!r}, not 0 (the benchmark's images are clean)"
    size = data.get("image_size")
    if size is not None and size != NATIVE_SIZES[name]:
        return f"data.image_size is {size!r}, not null or {NATIVE_SIZES[name]} ({name}'s own size, the benchmark's)"
    return None


def _stamp(path: Path) -> str:
    """What changes when the official file or folder does: its size and modification time (a folder's
    meta file and its entry count, which a copy or an added arch file changes)."""
    if path.is_dir():
        meta = (path / META_FILE).stat()
        return f"dir:{meta.st_size}:{meta.st_mtime_ns}:{path.stat().st_mtime_ns}:{len(os.listdir(path))}"
    stat = path.stat()
    return f"file:{stat.st_size}:{stat.st_mtime_ns}"


def extraction_path(official: str | os.PathLike, cache_dir: str | os.PathLike) -> Path:
    """The cached extraction of ``official`` in ``cache_dir``: named after the file's absolute path."""
    digest = hashlib.sha256(str(Path(official).resolve()).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"official-{digest}.parquet"


def load_official(official: str | os.PathLike, cache_dir: Optional[str | os.PathLike] = None) -> pa.Table:
    """The accuracies of ``official`` (:func:`raynas.benchmark.official_files.read_official`), from the
    cache folder when its extraction is current, else read from the file and cached (atomically).

    A file that is not visible here (another node of a cluster) is served from a cached extraction; without
    one it is a one-line ConfigError, as is a missing or malformed file.
    """
    official = Path(official)
    cache = extraction_path(official, cache_dir if cache_dir is not None else official_cache_dir())
    visible = official.exists()
    kind = official_kind(official) if visible else None  # a folder without its meta file is refused here
    stamp = _stamp(official) if visible else None
    if cache.is_file():
        try:
            table = pq.read_table(cache)
            meta = table.schema.metadata or {}
            current = (meta.get(b"version") == EXTRACTION_VERSION.encode()
                       and (stamp is None or meta.get(b"stamp") == stamp.encode()))
        except (OSError, pa.ArrowInvalid):  # a damaged cache entry is read again from the file
            current = False
        if current:
            return table
    if not visible:
        official_kind(official)  # the one-line error of a missing path
    table = read_official(official)
    table = table.replace_schema_metadata({"version": EXTRACTION_VERSION, "stamp": stamp,
                                           "source": str(official.resolve()), "kind": kind})
    make_folder(cache.parent)
    with atomic_path(cache) as tmp:
        pq.write_table(table, tmp)
    return table


class OfficialGroundTruth:
    """The official file's accuracies on one data set as a lookup of NB201 arch strings (the interface of
    :class:`raynas.benchmark.lookup.GroundTruth` that scoring uses: ``has``, ``refresh_cache``, ``score``,
    ``scores``, ``percentile``, ``best``, ``num_cells``)."""

    def __init__(self, table: pa.Table, dataset: str, source: str | os.PathLike) -> None:
        if dataset not in TEST_SETS:
            raise ConfigError(f"benchmark.official: no data set {dataset!r} in the benchmark; one of "
                              f"{', '.join(TEST_SETS)}")
        self.dataset, self.source = dataset, str(source)
        self.kind = (table.schema.metadata or {}).get(b"kind", b"").decode() or official_kind(source)
        accuracies = {arch: acc / 100.0 for arch, acc in zip(table["arch"].to_pylist(), table[dataset].to_pylist())
                      if acc is not None}
        if not accuracies:
            raise ConfigError(f"benchmark.official: '{source}' has no 200-epoch test accuracies on {dataset}")
        self._accuracies = accuracies
        cells = unique_cells()
        per_cell: dict[int, list[float]] = {}
        for arch, acc in accuracies.items():
            per_cell.setdefault(cells.cell_id(arch), []).append(acc)
        self._sorted = sorted(sum(accs) / len(accs) for accs in per_cell.values())
        self.best = max(accuracies.values())
        self.num_archs = len(accuracies)

    @classmethod
    def open(cls, official: str | os.PathLike, data_name: str,
             cache_dir: Optional[str | os.PathLike] = None) -> "OfficialGroundTruth":
        """The lookup of ``official`` for a search on raynas data set ``data_name`` (through the cache)."""
        key = data_key(data_name)
        if key is None:
            raise ConfigError(f"benchmark.official: data.name {data_name!r} is not a benchmark data set; one of "
                              f"{', '.join(map(repr, DATA_KEYS))}")
        return cls(load_official(official, cache_dir), key, official)

    @property
    def num_cells(self) -> int:
        """How many unique cells have an accuracy in the file (6,466 for a complete one)."""
        return len(self._sorted)

    @property
    def published_best(self) -> Optional[float]:
        """The best published accuracy (fraction) of this data set, None for ``cifar10-valid``."""
        best = PUBLISHED_BEST.get(self.dataset)
        return None if best is None else best / 100.0

    def best_note(self) -> str:
        """The best the regret is measured against, and whether it is the published one."""
        published = PUBLISHED_BEST.get(self.dataset)
        text = f"best {100 * self.best:.2f} %"
        if published is None or round(100 * self.best, 2) == published:
            return text + ("" if published is None else " (the published best)")
        return text + f" (this file's own best; the published one is {published:.2f} %)"

    def percentile(self, accuracy: float) -> float:
        """The share (0-100) of the file's unique cells whose accuracy (mean over their arch strings) is at or
        below ``accuracy``."""
        return 100.0 * bisect.bisect_right(self._sorted, accuracy) / len(self._sorted)

    def has(self, arch: str) -> bool:
        """Whether the file holds ``arch``'s accuracy on this data set."""
        try:
            return _normal(arch) in self._accuracies
        except GenotypeError:
            return False

    def refresh_cache(self) -> None:
        """Nothing to refresh: an official file trains nothing on demand."""

    def score(self, arch: str) -> Score:
        """The ground truth of ``arch``; a one-line ConfigError when the file lacks it (a complete file holds
        all 15,625 arch strings)."""
        normal = _normal(arch)
        accuracy = self._accuracies.get(normal)
        if accuracy is None:
            raise ConfigError(f"benchmark.official: '{self.source}' has no 200-epoch {self.dataset} test accuracy "
                              f"for {normal} ({self.num_archs} of the {ALL_ARCHS:,} arch strings have one; a "
                              "complete file has them all)")
        return Score(arch=arch, cell_id=cell_of(normal), test_acc=accuracy, seeds=(),
                     percentile=self.percentile(accuracy), regret=self.best - accuracy)

    def scores(self, archs: Sequence[str]) -> list[Score]:
        """The ground truth of each of ``archs``."""
        return [self.score(arch) for arch in archs]

    def describe(self) -> str:
        """One line: the file, the data set and what the lookup holds."""
        return (f"{self.kind} file '{self.source}': {self.dataset} test accuracy after 200 epochs, "
                f"{self.num_archs:,} arch strings in {self.num_cells:,} unique cells, {self.best_note()}")


def _normal(arch: str) -> str:
    """``arch`` as raynas writes NB201 arch strings (the extraction's form); a one-line GenotypeError for
    anything else."""
    from raynas.spaces.genotype import NB201Genotype

    try:
        return str(NB201Genotype.parse(arch))
    except (GenotypeError, ValueError, TypeError, AttributeError):
        cell_of(arch)  # raises the lookup's own one-line message
        raise
