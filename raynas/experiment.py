"""The experiment driver behind ``raynas search``: config -> Ray Tune population -> Parquet tables.

Everything that can be checked is checked before anything is written: the config, every trial's config
(the grid expanded) and the experiment folder. Then the folder is created with the resolved config, Ray is
started on loopback (or joined with an address), and Tune runs one trial per search. Results reach
``<experiment>/tables/`` through :class:`raynas.results.callback.ResultsCallback`.
This module imports neither torch nor Ray at import time.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from raynas.config import (ExperimentConfig, TrialSpec, config_to_dict, dump_config, expand_trials,
                           load_config, with_overrides)
from raynas.errors import ConfigError

DEFAULT_OUT = "raynas_results"
RESOLVED_CONFIG = "config.yaml"
TUNE_DIR = "tune"


@dataclass(frozen=True)
class PreparedExperiment:
    """A validated experiment, not yet started: its config, its trials and where it will be written."""

    config: ExperimentConfig
    trials: list[TrialSpec]
    directory: Path


@dataclass(frozen=True)
class ExperimentOutcome:
    """What a finished experiment left behind."""

    directory: Path
    tables: dict[str, Path]
    num_trials: int
    num_errors: int
    metric: str


def prepare_experiment(config_path: str | os.PathLike, overrides: Sequence[str] = (), *,
                       out: str | os.PathLike = DEFAULT_OUT, address: str | None = None) -> PreparedExperiment:
    """Load and validate a search config and its trials; raises :class:`ConfigError`; writes nothing."""
    cfg = load_config(config_path, overrides)
    if address:
        cfg = replace(cfg, ray=replace(cfg.ray, address=address))
    trials = distinct_seeds(cfg, expand_trials(cfg))
    directory = Path(out) / cfg.name
    if directory.exists():
        raise ConfigError(f"experiment folder '{directory}' already exists; choose another --out or name "
                          f"(e.g. --set name={cfg.name}-2), or remove it")
    return PreparedExperiment(cfg, trials, directory)


def distinct_seeds(cfg: ExperimentConfig, trials: list[TrialSpec]) -> list[TrialSpec]:
    """Give repeated samples of one grid point their own seed (base seed + repeat index).

    Without this, ``tune.num_samples: 3`` would run three identical searches. A grid that sets
    ``search.seed`` itself is left alone.
    """
    if cfg.tune.num_samples == 1 or "search.seed" in cfg.tune.grid:
        return trials
    per_repeat = len(trials) // cfg.tune.num_samples
    seeded = []
    for spec in trials:
        overrides = {**spec.overrides, "search.seed": cfg.search.seed + spec.index // per_repeat}
        seeded.append(replace(spec, overrides=overrides,
                              config=replace(spec.config, search=replace(spec.config.search,
                                                                         seed=overrides["search.seed"]))))
    return seeded


def start_ray(cfg: ExperimentConfig) -> None:
    """Join ``cfg.ray.address`` or start a local Ray bounded to ``cfg.ray.num_cpus`` on 127.0.0.1 only."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet_tune()
    import ray

    if ray.is_initialized():
        return
    if cfg.ray.address:
        ray.init(address=cfg.ray.address, log_to_driver=False)
        return
    # A local instance binds to the machine's interface address unless this is set before Ray starts.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    # Without this the first init writes ~/.ray/auth_token and later heads turn token auth on by themselves.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=cfg.ray.num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
             _temp_dir=os.environ.get("RAYNAS_RAY_TEMP_DIR"))


def quiet_tune() -> None:
    """Leave progress output to raynas' own callback; our Parquet tables replace Tune's result files."""
    import logging

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no result.json/progress.csv/TB files
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the legacy reporter honours verbose=0 completely
    # Without Tune's result files its ResultGrid warns that it cannot fetch metrics; the tables hold them.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    logging.getLogger("ray.tune.tune").setLevel(logging.WARNING)


def trial_base_config(cfg: ExperimentConfig) -> dict[str, Any]:
    """The plain config every trial starts from; torch threads default to the trial's CPUs."""
    base = config_to_dict(cfg)
    if base["search"]["threads"] is None:
        base["search"]["threads"] = max(1, int(cfg.resources.cpus_per_trial))
    return base


def run_experiment(prepared: PreparedExperiment, *, echo: Callable[[str], None] = print) -> ExperimentOutcome:
    """Create the experiment folder, run every trial through Ray Tune, and consolidate the tables."""
    cfg, directory = prepared.config, prepared.directory
    directory.mkdir(parents=True)
    try:
        dump_config(cfg, directory / RESOLVED_CONFIG)
        start_ray(cfg)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)  # nothing half-written
        raise
    from ray import tune

    from raynas.results import TABLES
    from raynas.results.callback import ResultsCallback
    from raynas.tune.progress import ProgressCallback
    from raynas.tune.resources import trial_resources
    from raynas.tune.schedulers import make_tune_objects
    from raynas.tune.trainable import search_trainable

    base = trial_base_config(cfg)
    trainable = tune.with_resources(tune.with_parameters(search_trainable, base=base), trial_resources(cfg))
    results_cb = ResultsCallback(str(directory), cfg.name, cfg.tune.metric, cfg.tune.mode, base_config=base)
    progress_cb = ProgressCallback(lambda o: int(with_overrides(base, o)["search"]["epochs"]))
    echo(f"raynas: {len(prepared.trials)} trial(s) of '{cfg.name}' ({cfg.space}, {cfg.method}) -> {directory}")
    objects = make_tune_objects(cfg, prepared.trials)
    tuner = tune.Tuner(
        trainable,
        param_space=objects.param_space,
        tune_config=objects.tune_config,
        run_config=tune.RunConfig(
            name=TUNE_DIR, storage_path=str(directory.resolve()), verbose=0,
            callbacks=[results_cb, progress_cb],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            failure_config=tune.FailureConfig(max_failures=cfg.tune.max_failures),
        ),
    )
    grid = tuner.fit()
    tables = {name: results_cb.writer.table_path(name) for name in TABLES}  # consolidated at experiment end
    return ExperimentOutcome(directory, tables, len(grid), grid.num_errors, cfg.tune.metric)


def summary_lines(outcome: ExperimentOutcome) -> list[str]:
    """Each trial's genotype and metric, and where the tables are, for the end of ``raynas search``."""
    from raynas.results import leaderboard

    board = leaderboard(str(outcome.directory)).to_pylist()
    lines = [f"{'trial':<12} {outcome.metric:>16} {'skip':>4}  genotype (final)"]
    for row in board:
        value = row.get("metric_value")
        shown = "nan" if value is None else f"{value:.4f}"
        lines.append(f"{row['trial_id']:<12} {shown:>16} {row.get('num_skip')!s:>4}  {row.get('genotype')}"
                     + ("" if row.get("connected") in (True, None) else "  (DISCONNECTED cell)"))
    lines.append(f"tables: {outcome.directory / 'tables'} ({', '.join(sorted(outcome.tables))})")
    if outcome.num_errors:
        lines.append(f"{outcome.num_errors} of {outcome.num_trials} trial(s) failed; "
                     f"see error.txt under {outcome.directory / TUNE_DIR}")
    return lines
