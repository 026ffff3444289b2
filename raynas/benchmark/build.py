"""``raynas bench build``: train NB201's unique cells under the benchmark protocol as a Ray Tune population.

One trial trains a chunk of cells (``cells_per_trial``) with one seed, reporting and checkpointing after each
cell, so a restored trial continues with the next cell. Cells are taken in the build order (a seeded
permutation of the unique cells), so a partial build is a uniform sample of the space; (cell, seed) pairs that
the base tables (by default the shipped table) already hold are not trained again.

Layout of a build folder ``<out>/<name>``::

    benchmark.yaml          the plan (protocol, cells, seeds, trials)
    tune/                   Ray Tune's experiment state and each trial's latest checkpoint
    parts/                  one Parquet file per trained (cell, seed), written as results arrive
    benchmark.parquet       the base rows plus every row of this build, written when the build ends
    cells.parquet           every NB201 arch string with its unique cell id (the key of benchmark.parquet)

``raynas resume <folder>`` continues an interrupted build. This module imports neither torch nor Ray at
import time.
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import yaml

from raynas.benchmark.protocol import check_protocol, protocol_hash
from raynas.benchmark.table import (ROWS_FILE, done_pairs, read_rows, shipped_table_path, write_cells_table,
                                    write_table)
from raynas.config import RayConfig, config_to_dict
from raynas.config_fingerprint import record_fingerprint
from raynas.config.limits import MAX_CPUS, MAX_GPUS, MAX_SEED, MAX_SEEDS, MAX_WORKERS, check_int
from raynas.config.yaml_input import load_yaml
from raynas.errors import ConfigError
from raynas.output_paths import check_folder_name, check_output_parent

BUILD_PLAN = "benchmark.yaml"
PARTS_DIR = "parts"
TUNE_DIR = "tune"
BUILD_TABLE = "benchmark.parquet"
CELLS_TABLE = "cells.parquet"


def build_order(seed: int = 0) -> list[int]:
    """Every unique cell id in the build's order: a permutation seeded by ``seed``, so any prefix of it is a
    uniform random sample of the space."""
    from raynas.benchmark.cells import unique_cells

    order = list(range(len(unique_cells())))
    random.Random(seed).shuffle(order)
    return order


@dataclass(frozen=True)
class BuildPlan:
    """What a build trains: the first ``cells`` unique cells of the build order (all when None) with every
    seed, minus the pairs that ``base`` tables hold; ``cells_per_trial`` per Tune trial."""

    name: str
    protocol: dict[str, Any]
    seeds: tuple[int, ...] = (0,)
    cells: Optional[int] = None
    cells_per_trial: int = 16
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 2
    order_seed: int = 0
    base: tuple[str, ...] = ()
    trials: tuple[dict[str, Any], ...] = ()  # fixed when the build starts (benchmark.yaml)
    ray: RayConfig = field(default_factory=RayConfig)

    @property
    def protocol_hash(self) -> str:
        """The hash every row of this build carries."""
        return protocol_hash(self.protocol)

    def wanted(self) -> list[tuple[int, int]]:
        """Every (cell id, seed) pair the build covers, seed-major in the build order."""
        order = build_order(self.order_seed)
        chosen = order if self.cells is None else order[:self.cells]
        return [(cell, seed) for seed in self.seeds for cell in chosen]

    def trial_specs(self, done: set[tuple[int, int]]) -> list[dict[str, Any]]:
        """Tune's config of each trial: a chunk of the pairs not in ``done``, one seed per trial."""
        from raynas.benchmark.cells import unique_cells

        representatives = unique_cells().representatives
        specs: list[dict[str, Any]] = []
        for seed in self.seeds:
            todo = [cell for cell, s in self.wanted() if s == seed and (cell, seed) not in done]
            for start in range(0, len(todo), self.cells_per_trial):
                chunk = todo[start:start + self.cells_per_trial]
                specs.append({"seed": seed, "cells": [[cell, representatives[cell]] for cell in chunk]})
        return specs

    def num_pairs(self) -> int:
        """How many (cell, seed) pairs the trials train."""
        return sum(len(spec["cells"]) for spec in self.trials)

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain data (``benchmark.yaml``)."""
        return {"name": self.name, "protocol": dict(self.protocol), "protocol_hash": self.protocol_hash,
                "seeds": list(self.seeds), "cells": self.cells, "cells_per_trial": self.cells_per_trial,
                "cpus_per_trial": self.cpus_per_trial, "gpus_per_trial": self.gpus_per_trial,
                "max_failures": self.max_failures,
                "order_seed": self.order_seed, "base": list(self.base), "trials": [dict(t) for t in self.trials],
                "ray": config_to_dict(self.ray)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = BUILD_PLAN) -> "BuildPlan":
        """Read back :meth:`to_dict` (a ConfigError names what is wrong with a damaged file)."""
        from raynas.config import config_from_dict

        try:
            return cls(name=str(data["name"]), protocol=check_protocol(data["protocol"]),
                       seeds=tuple(int(s) for s in data["seeds"]),
                       cells=None if data["cells"] is None else int(data["cells"]),
                       cells_per_trial=int(data["cells_per_trial"]), cpus_per_trial=float(data["cpus_per_trial"]),
                       gpus_per_trial=float(data.get("gpus_per_trial", 0.0)),  # plans written before it: none
                       max_failures=int(data["max_failures"]), order_seed=int(data["order_seed"]),
                       base=tuple(str(b) for b in data["base"]), trials=tuple(dict(t) for t in data["trials"]),
                       ray=config_from_dict(data.get("ray") or {}, RayConfig))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: not a raynas benchmark build plan ({type(exc).__name__}: {exc})") from None


def check_build_args(*, seeds: Sequence[int], cells: Optional[int], cells_per_trial: int, cpus_per_trial: float,
                     max_failures: int, gpus_per_trial: float = 0.0) -> None:
    """One-line ConfigErrors for build arguments out of range."""
    from raynas.benchmark.cells import unique_cells

    total = len(unique_cells())
    if not seeds:
        raise ConfigError("--seeds: at least one seed is needed")
    if len(seeds) > MAX_SEEDS or not all(0 <= seed <= MAX_SEED for seed in seeds):
        raise ConfigError(f"--seeds: {len(seeds)} seed(s) from {min(seeds)} to {max(seeds)}; allowed: at most "
                          f"{MAX_SEEDS} seeds, each >= 0 and <= {MAX_SEED}")
    if cells is not None and not 1 <= cells <= total:
        raise ConfigError(f"--cells: {cells} is out of range; allowed: 1 to {total} (NB201's unique cells)")
    if not 1 <= cells_per_trial <= total:
        raise ConfigError(f"--cells-per-trial: {cells_per_trial} is out of range; allowed: 1 to {total}")
    if not 0 < cpus_per_trial <= MAX_CPUS:
        raise ConfigError(f"--cpus-per-trial: {cpus_per_trial} is out of range; allowed: more than 0 and at most "
                          f"{MAX_CPUS}")
    if not 0 <= gpus_per_trial <= MAX_GPUS:  # also refuses NaN
        raise ConfigError(f"--gpus-per-trial: {gpus_per_trial} is out of range; allowed: 0 to {MAX_GPUS} "
                          "(fractions share a GPU: 0.25 runs 4 trials on one)")
    if not 0 <= max_failures <= MAX_WORKERS:
        raise ConfigError(f"--max-failures: {max_failures} is out of range; allowed: 0 to {MAX_WORKERS}")


def write_plan(plan: BuildPlan, directory: Path) -> Path:
    """Write ``directory/benchmark.yaml`` atomically."""
    from raynas.files import write_text_atomically

    path = directory / BUILD_PLAN
    write_text_atomically(path, yaml.safe_dump(plan.to_dict(), sort_keys=False, allow_unicode=True))
    return path


def read_plan(directory: Path) -> BuildPlan:
    """The plan of a build folder; a ConfigError when the folder is not one."""
    path = Path(directory) / BUILD_PLAN
    if not path.is_file():
        raise ConfigError(f"'{directory}' is not a raynas benchmark build folder: it has no {BUILD_PLAN}")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        detail = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(f"{path}: not a raynas benchmark build plan ({detail})") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: not a raynas benchmark build plan (expected a mapping)")
    return BuildPlan.from_dict(data, str(path))


def is_build_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a benchmark build folder."""
    return (Path(path) / BUILD_PLAN).is_file()


@dataclass(frozen=True)
class BuildOutcome:
    """What a finished (or already finished) build left behind."""

    directory: Path
    table: Path
    num_trials: int
    num_errors: int
    new_rows: int
    total_rows: int
    already_finished: bool = False
    pairs_left: int = 0  # planned (cell, seed) pairs without a row: an interrupted build (raynas resume goes on)


def prepare_build(*, name: str, out: str | os.PathLike, protocol: Mapping[str, Any], seeds: Sequence[int],
                  cells: Optional[int], cells_per_trial: int = 16, cpus_per_trial: float = 1.0,
                  max_failures: int = 2, base: Sequence[str | os.PathLike] | None = None,
                  ray: RayConfig | None = None, gpus_per_trial: float = 0.0) -> tuple[BuildPlan, Path]:
    """A checked plan and its (not yet existing) folder; trials fixed against what ``base`` holds (default:
    the shipped table)."""
    check_build_args(seeds=seeds, cells=cells, cells_per_trial=cells_per_trial, cpus_per_trial=cpus_per_trial,
                     max_failures=max_failures, gpus_per_trial=gpus_per_trial)
    check_int("--num-cpus", (ray or RayConfig()).num_cpus, 1, MAX_CPUS)
    check_folder_name("--name", name)  # the build folder stays inside --out
    directory = Path(out) / name
    if directory.exists():
        raise ConfigError(f"--name: '{directory}' exists already; resume it with raynas resume {directory}, "
                          "or pick another --name")
    check_output_parent("--out", out)
    from raynas.ray_address import check_reachable

    check_reachable((ray or RayConfig()).address)  # no cluster answers: one line now (bounded), nothing written
    base_paths = tuple(str(Path(b).resolve()) for b in (base if base is not None else [shipped_table_path()]))
    plan = BuildPlan(name=name, protocol=check_protocol(protocol), seeds=tuple(dict.fromkeys(int(s) for s in seeds)),
                     cells=cells, cells_per_trial=cells_per_trial, cpus_per_trial=cpus_per_trial,
                     gpus_per_trial=gpus_per_trial, max_failures=max_failures, base=base_paths,
                     ray=ray or RayConfig())
    done = done_pairs(read_rows(plan.base, plan.protocol_hash))
    return replace(plan, trials=tuple(plan.trial_specs(done))), directory


def trial_resources(plan: BuildPlan) -> dict[str, float]:
    """What each trial of ``plan`` asks Ray Tune for. A trial given a GPU trains its cells there (the
    protocol's ``device``, ``auto`` unless it says otherwise: an execution setting, outside the protocol hash)."""
    return {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial}


def _trainable(plan: BuildPlan) -> Any:
    from ray import tune

    from raynas.tune.benchmark import benchmark_trainable

    threads = max(1, int(plan.cpus_per_trial))
    return tune.with_resources(tune.with_parameters(benchmark_trainable, protocol=plan.protocol, threads=threads),
                               trial_resources(plan))


def _callbacks(plan: BuildPlan, directory: Path, done_before: int) -> list[Any]:
    from raynas.tune.benchmark import BenchmarkParts, BenchmarkProgress

    return [BenchmarkParts(str(directory / PARTS_DIR)), BenchmarkProgress(plan.num_pairs(), done_before)]


def _tuner(plan: BuildPlan, directory: Path) -> Any:
    from ray import tune

    return tune.Tuner(
        _trainable(plan),
        param_space={"benchmark": tune.grid_search(list(plan.trials))},
        tune_config=tune.TuneConfig(trial_dirname_creator=lambda trial: str(trial.trial_id), reuse_actors=True),
        run_config=tune.RunConfig(
            name=TUNE_DIR, storage_path=str(directory.resolve()), verbose=0,
            callbacks=_callbacks(plan, directory, 0),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=plan.max_failures),
        ),
    )


def run_build(plan: BuildPlan, directory: Path, *, echo: Callable[[str], None] = print) -> BuildOutcome:
    """Create the build folder, train every planned (cell, seed) as Tune trials, and write the table."""
    from raynas.folder_lock import folder_lock

    directory.mkdir(parents=True)
    with folder_lock(directory, "raynas bench build", echo=echo):  # one driver per folder (raynas.folder_lock)
        return _run_locked(plan, directory, echo)


def _run_locked(plan: BuildPlan, directory: Path, echo: Callable[[str], None]) -> BuildOutcome:
    """:func:`run_build` in its new folder, locked."""
    from raynas.experiment import start_ray

    try:
        write_plan(plan, directory)
        record_fingerprint(directory, BUILD_PLAN)  # a resume refuses a benchmark.yaml changed since
        if plan.trials:
            start_ray(plan.ray)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)  # nothing half-written
        raise
    wanted = len(plan.wanted())
    echo(f"raynas: benchmark build '{plan.name}' (protocol {plan.protocol_hash}): {wanted} (cell, seed) pair(s) "
         f"wanted, {wanted - plan.num_pairs()} already in the base table(s), {plan.num_pairs()} to train in "
         f"{len(plan.trials)} trial(s) of up to {plan.cells_per_trial} cells -> {directory}")
    if not plan.trials:
        return consolidate(directory, plan, num_trials=0, num_errors=0, already_finished=True)
    from raynas.tune.logs import ray_logs_to

    with ray_logs_to(directory):  # Ray's and Tune's own log lines: <build>/logs/tune.log
        grid = _tuner(plan, directory).fit()
    return consolidate(directory, plan, num_trials=len(grid), num_errors=grid.num_errors)


def resume_build(directory: str | os.PathLike, *, address: str | None = None,
                 echo: Callable[[str], None] = print, accept_config_change: bool = False,
                 max_failures: int | None = None) -> BuildOutcome:
    """Continue an interrupted build: finished trials stay finished, the others continue after their last
    finished cell (errored ones too), and trials not started yet start. The folder is checked and locked
    first, and a ``benchmark.yaml`` (protocol, plan) changed since the build started is refused unless
    ``accept_config_change`` (:func:`raynas.resume_guard.resume_guard`; rows keep their protocol hash).
    ``max_failures``: retries of a trial whose process dies in this run, instead of the build's
    ``--max-failures`` (:mod:`raynas.tune.retries`)."""
    from raynas.config.limits import MAX_WORKERS, check_int
    from raynas.ray_address import check_reachable
    from raynas.resume_guard import resume_guard

    check_int("--max-failures", max_failures, 0, MAX_WORKERS)

    directory = Path(directory)
    plan = read_plan(directory)
    if address:
        plan = replace(plan, ray=replace(plan.ray, address=address))
    check_reachable(plan.ray.address, "--address" if address else "ray.address")  # bounded, before any write
    with resume_guard(directory, source=BUILD_PLAN, experiment=plan.name, what=f"benchmark build '{directory}'",
                      accept_config_change=accept_config_change, echo=echo, events=False):
        return _resume_checked(plan, directory, echo, max_failures)


def _resume_checked(plan: BuildPlan, directory: Path, echo: Callable[[str], None],
                    max_failures: int | None = None) -> BuildOutcome:
    """:func:`resume_build` once the folder is checked and locked and its plan is the one to run."""
    from raynas.experiment import quiet_tune, reattach_callbacks, saved_trial_statuses, start_ray
    from raynas.tune.retries import retry_callbacks, retry_line

    quiet_tune()
    from ray import tune

    tune_dir = (directory / TUNE_DIR).resolve()
    if not plan.trials:
        return consolidate(directory, plan, num_trials=0, num_errors=0, already_finished=True)
    before = saved_trial_statuses(tune_dir, f"benchmark build '{directory}'", "build again")
    unfinished = sum(status != "TERMINATED" for status in before.values())
    not_started = max(0, len(plan.trials) - len(before))
    if not unfinished and not not_started:
        echo(f"raynas: benchmark build '{plan.name}' had already finished; nothing to resume")
        return consolidate(directory, plan, num_trials=len(before), num_errors=0, already_finished=True)
    start_ray(plan.ray)
    tuner = tune.Tuner.restore(str(tune_dir), trainable=_trainable(plan), resume_unfinished=True,
                               resume_errored=True)
    done_before = len(read_rows([directory / PARTS_DIR], plan.protocol_hash))
    reattach_callbacks(tuner, _callbacks(plan, directory.resolve(), done_before) + retry_callbacks(max_failures))
    echo(f"raynas: resuming benchmark build '{plan.name}' ({unfinished} of {len(before)} trial(s) unfinished, "
         f"{not_started} not started, {done_before} of {plan.num_pairs()} pair(s) done) -> {directory}")
    for line in filter(None, [retry_line(max_failures)]):
        echo(line)
    from raynas.tune.logs import ray_logs_to

    with ray_logs_to(directory):  # appends to the log of the build it continues
        grid = tuner.fit()
    return consolidate(directory, plan, num_trials=len(grid), num_errors=grid.num_errors)


def checkpoint_rows(directory: Path) -> list[Path]:
    """The rows files of every trial's latest checkpoint (a row whose report the driver never saw is there)."""
    return sorted((Path(directory) / TUNE_DIR).glob(f"*/checkpoint_*/{ROWS_FILE}"))


def consolidate(directory: str | os.PathLike, plan: BuildPlan | None = None, *, num_trials: int = 0,
                num_errors: int = 0, already_finished: bool = False) -> BuildOutcome:
    """Write ``benchmark.parquet``: the base tables' rows plus every row of this build (its parts and its
    trials' checkpoints), one per (cell, seed), under the plan's protocol."""
    directory = Path(directory)
    plan = plan or read_plan(directory)
    new = read_rows([directory / PARTS_DIR, *checkpoint_rows(directory)], plan.protocol_hash)
    table = read_rows([*plan.base, directory / PARTS_DIR, *checkpoint_rows(directory)], plan.protocol_hash)
    path = write_table(table, directory / BUILD_TABLE)
    write_cells_table(directory / CELLS_TABLE)
    planned = {(int(cell), int(spec["seed"])) for spec in plan.trials for cell, _ in spec["cells"]}
    left = len(planned - done_pairs(new))
    return BuildOutcome(directory, path, num_trials, num_errors, new.num_rows, table.num_rows, already_finished,
                        left)


def build_summary(outcome: BuildOutcome) -> list[str]:
    """The lines printed when a build ends."""
    from raynas.benchmark.table import read_file

    table = read_file(outcome.table)
    cells = len(set(table["cell_id"].to_pylist()))
    lines = [f"raynas: {outcome.new_rows} row(s) trained by this build; {outcome.table} holds {outcome.total_rows} "
             f"row(s) over {cells} unique cell(s)"]
    if outcome.num_errors:
        lines.append(f"raynas: {outcome.num_errors} trial(s) failed; raynas resume {outcome.directory} retries them")
    elif outcome.pairs_left:  # stopped (Ctrl+C) before every planned pair was trained
        from raynas.experiment import resume_hint

        lines.append(f"raynas: interrupted: {outcome.pairs_left} planned (cell, seed) pair(s) not trained yet")
        lines.append(f"resume with: {resume_hint(outcome.directory)}")
    return lines
