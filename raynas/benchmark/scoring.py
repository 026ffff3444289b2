"""Scoring searches against the ground truth: the ``benchmark`` section of a search config, decided and
applied.

Three steps, each where it belongs:

- :func:`check_scoring` (every entry point, right after loading a config and its trials, before anything is
  written): why an experiment that asks for scoring cannot be scored (not NB201, other data than the
  benchmark's, an unreadable protocol), as a one-line error naming the field; cheap, reads no table. It
  runs above the config loader because it reads the protocol with the loader;
- :func:`resolve_scoring` (the driver, before anything runs): ``auto`` decided by whether the table holds
  rows of the protocol, the cache folder placed in the experiment folder; the resolved section is what the
  experiment's ``config.yaml`` records and what every trial reads;
- :func:`ground_truth_for` and :func:`ground_truth_columns` (each trial): the lookup and the columns each
  epoch's report gets.

With ``benchmark.official`` the ground truth is an official NAS-Bench-201 / NATS-Bench file instead of the
embedded table (:mod:`raynas.benchmark.official`): the same steps and columns, for searches on CIFAR-10,
CIFAR-100 and ImageNet16-120; the driver reads the file (or its cached extraction) before anything is
written, so a malformed one is refused there.

Imports neither torch nor Ray.
"""

from __future__ import annotations

import functools
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Sequence

from raynas.benchmark.lookup import GroundTruth, matches_benchmark_data
from raynas.benchmark.official import OfficialGroundTruth, data_obstacle, official_cache_dir
from raynas.benchmark.protocol import check_protocol, data_setting, protocol_hash, shipped_protocol
from raynas.benchmark.table import read_rows, shipped_table_path
from raynas.config import ExperimentConfig, FieldError, config_to_dict, read_config_file, show_value
from raynas.config.schema import GROUND_TRUTH_METRICS
from raynas.errors import ConfigError

#: the folder inside an experiment that holds the cells its trials trained on demand
CACHE_FOLDER = "benchmark_cache"
#: the only space the ground truth covers
SPACE = "nb201"


def _stamp(path: str) -> tuple[int, int]:
    """A file's modification time and size: a cache key that changes when the file does."""
    stat = os.stat(path)
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=8)
def _protocol_file(path: str, stamp: tuple[int, int]) -> dict[str, Any]:
    return check_protocol(read_config_file(path))


def benchmark_protocol(path: Optional[str]) -> dict[str, Any]:
    """The protocol at ``path`` (checked), or the shipped one for None; a bad file raises ConfigError."""
    if path is None:
        return shipped_protocol()
    return dict(_protocol_file(path, _stamp(path)))


def data_difference(cfg: ExperimentConfig) -> Optional[str]:
    """None when ``cfg``'s data are the benchmark's images, else which setting differs, e.g.
    ``data.noise_std is 0.5, not the benchmark's 1.0``."""
    data = config_to_dict(cfg.data)
    protocol = benchmark_protocol(cfg.benchmark.protocol)
    if matches_benchmark_data(data, protocol):
        return None
    setting = data_setting(protocol)
    key = next(key for key, value in setting.items() if data.get(key) != value)
    return f"data.{key} is {_shown(data.get(key))}, not the benchmark's {_shown(setting[key])}"


def _shown(value: Any) -> str:
    return "null" if value is None else repr(value)


def wants_ground_truth(cfg: ExperimentConfig) -> bool:
    """Whether ``cfg`` requires scoring: ``benchmark.score: on`` or a ground-truth ``tune.metric``."""
    return cfg.benchmark.score == "on" or cfg.tune.metric in GROUND_TRUTH_METRICS


def scoring_obstacle(cfg: ExperimentConfig) -> Optional[str]:
    """Why ``cfg``'s search cannot be scored (another space, other data), or None; reads no table."""
    if cfg.space != SPACE:
        return f"space is {cfg.space!r} (the ground truth covers NB201 cells only)"
    if cfg.benchmark.official is not None:
        return data_obstacle(config_to_dict(cfg.data))
    difference = data_difference(cfg)
    if difference is not None:
        return f"{difference} (the search must train on the benchmark's images)"
    return None


def scoring_problem(cfg: ExperimentConfig) -> Optional[tuple[str, Any, str]]:
    """``(field, value, what is wrong)`` when ``cfg`` asks for scoring (``benchmark.score: on`` or a
    ground-truth ``tune.metric``) that cannot be done, else None; reads no table."""
    metric, score = cfg.tune.metric, cfg.benchmark.score
    if not wants_ground_truth(cfg) or score == "off":  # a metric with score off: the config checks refuse it
        return None
    try:
        obstacle = scoring_obstacle(cfg)
    except ConfigError as err:  # an unreadable or invalid protocol file
        return "benchmark.protocol", cfg.benchmark.protocol, str(err)
    if obstacle is None:
        return None
    if score == "on":
        return "benchmark.score", score, f"{obstacle}; set it to auto or off"
    return "tune.metric", metric, f"needs the ground truth, but {obstacle}"


def check_scoring(cfg: ExperimentConfig, trials: Sequence[Any] = ()) -> None:
    """Raise a one-line :class:`raynas.config.FieldError` when ``cfg`` or one of its ``trials``
    (:class:`raynas.config.TrialSpec`, whose grid values may change the space or the data) asks for scoring
    that cannot be done (:func:`scoring_problem`); the trial's grid values head its message."""
    problem = scoring_problem(cfg)
    if problem is not None:
        raise FieldError(problem[0], problem[2], problem[1])
    for trial in trials:
        problem = scoring_problem(trial.config)
        if problem is not None:
            shown = ", ".join(f"{key}={show_value(value)}" for key, value in trial.overrides.items())
            raise ConfigError(f"tune.grid combination ({shown}): {FieldError(problem[0], problem[2], problem[1])}")


def table_sources(cfg: ExperimentConfig) -> list[Path]:
    """The benchmark files or folders ``cfg`` names (default: the shipped table)."""
    return [Path(p) for p in cfg.benchmark.table] if cfg.benchmark.table is not None else [shipped_table_path()]


def resolve_scoring(cfg: ExperimentConfig, experiment_dir: str | os.PathLike) -> ExperimentConfig:
    """``cfg`` with ``benchmark.score`` decided (``on`` or ``off``) and, when on, ``benchmark.cache_dir`` set
    (default ``<experiment_dir>/benchmark_cache``, absolute).

    ``auto`` is on for an NB201 search on the benchmark's data when the table holds rows of the protocol.
    With ``benchmark.official`` it is on for an NB201 search on one of the file's data sets, and the file is
    read here (its extraction cached in ``cache_dir``, default :func:`raynas.benchmark.official.
    official_cache_dir`): a missing or malformed file is a one-line ConfigError whatever the mode.
    A search that requires scoring (:func:`wants_ground_truth`) and finds no rows raises a one-line
    :class:`ConfigError`; the config checks have already refused the other obstacles.
    """
    section = cfg.benchmark
    if section.score == "off":
        return cfg
    obstacle = scoring_obstacle(cfg)
    if obstacle is not None:
        if wants_ground_truth(cfg):  # only reached for a config the checks did not see
            raise ConfigError(f"benchmark.score = {section.score!r}: {obstacle}")
        return replace(cfg, benchmark=replace(section, score="off"))
    if section.official is not None:  # read now: a missing or malformed file is refused before anything runs
        cache_dir = str(Path(section.cache_dir or official_cache_dir()).resolve())
        OfficialGroundTruth.open(section.official, cfg.data.name, cache_dir)
        return replace(cfg, benchmark=replace(section, score="on", cache_dir=cache_dir))
    digest = protocol_hash(benchmark_protocol(section.protocol))
    sources = table_sources(cfg)
    if read_rows(sources, digest).num_rows == 0:
        if wants_ground_truth(cfg):
            field, value = (("benchmark.score", "on") if section.score == "on" else ("tune.metric", cfg.tune.metric))
            raise ConfigError(f"{field} = {value!r}: no rows of the benchmark protocol {digest} in "
                              f"{', '.join(map(str, sources))}; build the table first (raynas bench build) or "
                              "name one in benchmark.table")
        return replace(cfg, benchmark=replace(section, score="off"))
    cache_dir = section.cache_dir or str(Path(experiment_dir).resolve() / CACHE_FOLDER)
    return replace(cfg, benchmark=replace(section, score="on", cache_dir=cache_dir))


def describe_scoring(cfg: ExperimentConfig) -> Optional[str]:
    """One line for ``raynas validate``: whether ``cfg``'s search will be scored and against what; None for a
    search that cannot be (another space or data, ``score: off``). A missing table is said, not raised: the
    config is valid, the search refuses to start only if it requires scoring."""
    if cfg.benchmark.score == "off" or scoring_obstacle(cfg) is not None:
        return None
    if cfg.benchmark.official is not None:  # reads (and caches) the file: validate refuses a malformed one
        truth = OfficialGroundTruth.open(cfg.benchmark.official, cfg.data.name, cfg.benchmark.cache_dir)
        return f"ground truth: on ({truth.describe()})"
    digest = protocol_hash(benchmark_protocol(cfg.benchmark.protocol))
    sources = table_sources(cfg)
    rows = read_rows(sources, digest)
    where = f"protocol {digest} in {', '.join(map(str, sources))}"
    if rows.num_rows:
        return f"ground truth: on ({len(set(rows['cell_id'].to_pylist()))} unique cells of {where})"
    if wants_ground_truth(cfg):
        return (f"ground truth: required but not available yet: no rows of {where}; raynas search refuses to "
                "start until the table is built (raynas bench build) or benchmark.table names one")
    return f"ground truth: off (no rows of {where})"


def ground_truth_for(cfg: ExperimentConfig, *,
                     task_cpus: float = 0.0) -> Optional[GroundTruth | OfficialGroundTruth]:
    """The lookup of a trial whose (resolved) config scores it, else None: the official file's
    (``benchmark.official``, read from the extraction the driver cached) or the table's.

    ``task_cpus`` 0: a cell missing from the table is trained by a Ray task that asks for no CPU, since the
    trial waits for it with its own.
    """
    if cfg.benchmark.score != "on":
        return None
    if cfg.benchmark.official is not None:
        return OfficialGroundTruth.open(cfg.benchmark.official, cfg.data.name, cfg.benchmark.cache_dir)
    return GroundTruth(cfg.benchmark.table, cache_dir=cfg.benchmark.cache_dir,
                       protocol=benchmark_protocol(cfg.benchmark.protocol), task_cpus=task_cpus)


def ground_truth_columns(truth: GroundTruth | OfficialGroundTruth, genotype: str) -> dict[str, float]:
    """The epochs-table columns of ``genotype`` (gt_test_acc, gt_percentile, gt_regret).

    A cell the table lacks is trained on demand (a disconnected cell too); another trial of the experiment
    may have trained it since this lookup last read the cache, so the cache is read again first. An official
    file trains nothing: an arch it lacks is a one-line ConfigError.
    """
    if not truth.has(genotype):
        truth.refresh_cache()
    return truth.score(genotype).columns()
