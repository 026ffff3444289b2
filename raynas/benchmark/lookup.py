"""Ground-truth lookups: an NB201 arch string's accuracy under the benchmark protocol, its percentile among
the table's unique cells and its regret to the best one.

The reference population is the table's cells (the shipped table by default): a cell's ground truth is the
mean test accuracy over its seeds; its percentile is the share of the table's cells whose mean is at or below
it; its regret is the best cell's mean minus its own. A cell the table lacks is trained on demand under the
same protocol (a Ray task when Ray is running, else in this process) and its row cached as a Parquet part in
``cache_dir``, so a lookup is never silently missing and each missing cell is trained once per cache.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import pyarrow as pa

from raynas.benchmark.cells import unique_cells
from raynas.benchmark.protocol import data_setting, protocol_hash, shipped_protocol
from raynas.benchmark.table import read_rows, shipped_table_path, write_part
from raynas.errors import ConfigError, GenotypeError

CACHE_ENV = "RAYNAS_BENCHMARK_CACHE"
#: the ground-truth columns a search records every epoch
GROUND_TRUTH_COLUMNS = ("gt_test_acc", "gt_percentile", "gt_regret")


def default_cache_dir() -> Path:
    """Where on-demand trainings are cached outside an experiment: ``$RAYNAS_BENCHMARK_CACHE``, else
    ``~/.cache/raynas/benchmark``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "raynas" / "benchmark")


@dataclass(frozen=True)
class Score:
    """The ground truth of one arch string."""

    arch: str
    cell_id: int
    test_acc: float  # mean over the seeds below
    seeds: tuple[int, ...]
    percentile: float  # 0-100: share of the reference cells whose mean is at or below test_acc
    regret: float  # best reference cell's mean minus test_acc
    trained_now: bool = False  # trained on demand by this lookup

    def columns(self) -> dict[str, float]:
        """The epochs-table columns of this score."""
        return {"gt_test_acc": self.test_acc, "gt_percentile": self.percentile, "gt_regret": self.regret}


def _train_rows(pairs: Sequence[tuple[str, int]], protocol: Mapping[str, Any],
                task_cpus: float) -> list[dict[str, Any]]:
    """Train each (arch, seed) under ``protocol``: Ray tasks when Ray is running, else in this process."""
    from raynas.benchmark.training import train_cell

    try:
        import ray

        running = ray.is_initialized()
    except ImportError:  # pragma: no cover - Ray is a dependency
        running = False
    if running:
        remote = ray.remote(num_cpus=task_cpus, max_retries=2)(train_cell)
        return ray.get([remote.remote(arch, seed, dict(protocol)) for arch, seed in pairs])
    return [train_cell(arch, seed, protocol) for arch, seed in pairs]


class GroundTruth:
    """The benchmark table (and its cache) as a lookup of NB201 arch strings.

    ``sources``: benchmark Parquet files or folders (default: the shipped table). ``cache_dir``: where
    on-demand rows are written and read (default :func:`default_cache_dir`). ``train_missing``: train a
    missing cell (else a lookup of one raises). ``task_cpus``: CPUs each on-demand Ray task asks for (0 from
    inside a trial, which waits for it with its own CPU).
    """

    def __init__(self, sources: Optional[Iterable[str | os.PathLike]] = None, *,
                 cache_dir: Optional[str | os.PathLike] = None, protocol: Optional[Mapping[str, Any]] = None,
                 train_missing: bool = True, seeds: Sequence[int] = (0,), task_cpus: float = 1.0) -> None:
        self.protocol = dict(protocol or shipped_protocol())
        self.protocol_hash = protocol_hash(self.protocol)
        self.sources = [Path(s) for s in (sources if sources is not None else [shipped_table_path()])]
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.train_missing = train_missing
        self.seeds = tuple(seeds)
        self.task_cpus = task_cpus
        reference = read_rows(self.sources, self.protocol_hash)
        if reference.num_rows == 0:
            raise ConfigError(f"benchmark: no rows of protocol {self.protocol_hash} in "
                              f"{', '.join(map(str, self.sources))}; build the table first (raynas bench build)")
        self._reference = _cell_means(reference)
        self._sorted = sorted(mean for mean, _ in self._reference.values())
        self.best = self._sorted[-1]
        self._cached = _cell_means(read_rows([self.cache_dir], self.protocol_hash))

    @property
    def num_cells(self) -> int:
        """How many unique cells the reference table holds."""
        return len(self._reference)

    def percentile(self, accuracy: float) -> float:
        """The share (0-100) of the reference cells whose mean accuracy is at or below ``accuracy``."""
        return 100.0 * bisect.bisect_right(self._sorted, accuracy) / len(self._sorted)

    def has(self, arch: str) -> bool:
        """Whether ``arch``'s cell is in the table or the cache (no training needed)."""
        cell = cell_of(arch)
        return cell in self._reference or cell in self._cached

    def refresh_cache(self) -> None:
        """Read ``cache_dir`` again: rows that other lookups (other trials) trained since are then found."""
        self._cached = _cell_means(read_rows([self.cache_dir], self.protocol_hash))

    def score(self, arch: str) -> Score:
        """The ground truth of ``arch`` (training its cell on demand when the table and cache lack it)."""
        return self.scores([arch])[0]

    def scores(self, archs: Sequence[str]) -> list[Score]:
        """The ground truth of each of ``archs``; the missing cells are trained together (in parallel on Ray)."""
        cells = [cell_of(arch) for arch in archs]
        missing = sorted({cell for cell in cells if cell not in self._reference and cell not in self._cached})
        trained = set(missing)
        if missing:
            if not self.train_missing:
                raise ConfigError(f"benchmark: cell {missing[0]} ({unique_cells().representatives[missing[0]]}) "
                                  "is not in the table and on-demand training is off")
            representatives = unique_cells().representatives
            rows = _train_rows([(representatives[c], s) for c in missing for s in self.seeds], self.protocol,
                               self.task_cpus)
            write_part(rows, self.cache_dir)
            self._cached.update(_cell_means(pa.Table.from_pylist(rows)))
        out = []
        for arch, cell in zip(archs, cells):
            mean, seeds = self._reference.get(cell) or self._cached[cell]
            out.append(Score(arch=arch, cell_id=cell, test_acc=mean, seeds=seeds, percentile=self.percentile(mean),
                             regret=self.best - mean, trained_now=cell in trained))
        return out


def cell_of(arch: str) -> int:
    """The unique cell id of an NB201 arch string; a one-line GenotypeError for anything else."""
    try:
        return unique_cells().cell_id(arch)
    except (KeyError, GenotypeError, ValueError):
        raise GenotypeError(f"benchmark: {arch!r} is not an NB201 arch string (|op~0|+|op~0|op~1|+|op~0|op~1|op~2| "
                            "with ops none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3)") from None


def _cell_means(table: pa.Table) -> dict[int, tuple[float, tuple[int, ...]]]:
    """Each cell's mean final test accuracy over its seeds, with the seeds."""
    accs: dict[int, list[tuple[int, float]]] = {}
    for cell, seed, acc in zip(table["cell_id"].to_pylist(), table["seed"].to_pylist(), table["test_acc"].to_pylist()):
        accs.setdefault(int(cell), []).append((int(seed), float(acc)))
    return {cell: (sum(a for _, a in pairs) / len(pairs), tuple(sorted(s for s, _ in pairs)))
            for cell, pairs in accs.items()}


def matches_benchmark_data(data: Mapping[str, Any], protocol: Optional[Mapping[str, Any]] = None) -> bool:
    """Whether a search's data settings (a DataConfig as a dict) use the benchmark's images: same data set,
    noise, image size and data seed (the splits may differ)."""
    setting = data_setting(protocol)
    return all(data.get(key) == value for key, value in setting.items())
