"""Run and resume an evaluation plan as a Ray Tune population (``raynas train``, ``raynas resume``).

Layout of an evaluation run folder (``<experiment>/evaluations/<name>`` for a search experiment's genotypes,
``<out>/<name>`` otherwise)::

    evaluation.yaml                 the resolved plan (architectures, seeds, shared training settings)
    tune/                           Ray Tune's experiment state and each trial's latest checkpoint
    tables/evaluations.parquet      one row per (architecture, seed), see raynas.results.schema.EVALUATIONS

This module imports neither torch nor Ray at import time.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from raynas.config.limits import MAX_WORKERS, check_int
from raynas.config_fingerprint import record_fingerprint
from raynas.errors import ConfigError
from raynas.evaluation.plan import EvaluationPlan, PreparedEvaluation, read_plan, write_plan
from raynas.folder_lock import folder_lock
from raynas.ray_address import check_reachable
from raynas.results.query import EVALUATION_PLAN
from raynas.resume_guard import resume_guard

TUNE_DIR = "tune"


@dataclass(frozen=True)
class EvaluationOutcome:
    """What a finished evaluation run left behind."""

    directory: Path
    table: Path
    num_trials: int
    num_errors: int
    already_finished: bool = False
    rows: list[dict[str, Any]] = field(default_factory=list)  # the evaluations table at the end


def trial_dirname(trial: Any) -> str:
    """A trial's folder under ``tune/``: its id (where :func:`trial_checkpoint` looks)."""
    return str(trial.trial_id)


def trial_checkpoint(directory: str | os.PathLike, trial_id: str) -> Path:
    """The training state file of a trial's latest checkpoint in an evaluation run folder."""
    from raynas.train import TRAIN_STATE_FILE

    folder = Path(directory) / TUNE_DIR / trial_id
    found = sorted(folder.glob(f"checkpoint_*/{TRAIN_STATE_FILE}"))
    if not found:
        raise ConfigError(f"trial {trial_id!r} of evaluation '{directory}' has no checkpoint (under {folder}); "
                          "its trials: see raynas results " + str(directory))
    return found[-1]


def _trainable(plan: EvaluationPlan) -> Any:
    from ray import tune

    from raynas.tune.evaluation import evaluation_trainable

    resources = {"cpu": plan.cpus_per_trial, "gpu": plan.gpus_per_trial}
    return tune.with_resources(tune.with_parameters(evaluation_trainable, base=plan.base_config()), resources)


def _callbacks(plan: EvaluationPlan, directory: Path) -> list[Any]:
    from raynas.results.evaluation_callback import EvaluationsCallback
    from raynas.tune.progress import EvaluationProgress
    from raynas.tune.retention import CheckpointRetention

    # Tune keeps every checkpoint (num_to_keep=None): the retention deletes them, never ahead of its saved state
    return [EvaluationsCallback(str(directory), plan.name, plan.base_config()), EvaluationProgress(),
            CheckpointRetention(Path(directory) / TUNE_DIR)]


def _prune_checkpoints(directory: Path) -> None:
    """After ``fit``: each trial's latest checkpoint only once every trial has ended (two while any has not:
    the newest older one is the fallback of a torn latest), never one Tune's saved state restores from."""
    from ray import tune

    from raynas.tune.retention import KEEP, prune_checkpoints, trial_folders

    tune_dir = (directory / TUNE_DIR).resolve()
    trials = tune.ExperimentAnalysis(str(tune_dir)).trials
    ended = all(trial.status in ("TERMINATED", "ERROR") for trial in trials)
    prune_checkpoints(tune_dir, trial_folders(trials), 1 if ended else KEEP)


def run_evaluation(prepared: PreparedEvaluation, *, echo: Callable[[str], None] = print) -> EvaluationOutcome:
    """Create the run folder, train every (architecture, seed) as a Tune trial, and consolidate the table."""
    plan, directory = prepared.plan, prepared.directory
    directory.mkdir(parents=True)
    with folder_lock(directory, "raynas train", echo=echo):  # one driver per folder (raynas.folder_lock)
        return _run_locked(plan, directory, echo)


def _run_locked(plan: EvaluationPlan, directory: Path, echo: Callable[[str], None]) -> EvaluationOutcome:
    """:func:`run_evaluation` in its new folder, locked."""
    from raynas.experiment import start_ray

    try:
        write_plan(plan, directory)
        record_fingerprint(directory, EVALUATION_PLAN)  # a resume refuses an evaluation.yaml changed since
        start_ray(plan.ray, echo)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)  # nothing half-written
        raise
    return _run_new(plan, directory, echo)


def _run_new(plan: EvaluationPlan, directory: Path, echo: Callable[[str], None]) -> EvaluationOutcome:
    """Run every trial of ``plan`` in ``directory`` (written, locked, Ray started) from the beginning."""
    from ray import tune

    specs = plan.trial_specs()
    echo(f"raynas: training {len(plan.architectures)} architecture(s) x {len(plan.seeds)} seed(s) = "
         f"{len(specs)} trial(s) from scratch ({plan.train.epochs or 'protocol'} epochs) -> {directory}")
    tuner = tune.Tuner(
        _trainable(plan),
        param_space={"evaluation": tune.grid_search(specs)},
        tune_config=tune.TuneConfig(trial_dirname_creator=trial_dirname, reuse_actors=True),
        run_config=tune.RunConfig(
            name=TUNE_DIR, storage_path=str(directory.resolve()), verbose=0, callbacks=_callbacks(plan, directory),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            failure_config=tune.FailureConfig(max_failures=plan.max_failures),
        ),
    )
    grid = tuner.fit()
    _prune_checkpoints(directory)
    return _outcome(directory, len(grid))


def resume_evaluation(directory: str | os.PathLike, *, address: str | None = None,
                      echo: Callable[[str], None] = print, accept_config_change: bool = False,
                      max_failures: int | None = None) -> EvaluationOutcome:
    """Continue an interrupted evaluation run from its folder: finished trials stay finished, the others
    continue from their last checkpoint (errored ones too) and trials not started yet start. The folder is
    checked and locked first, and a changed ``evaluation.yaml`` refused unless ``accept_config_change``
    (:func:`raynas.resume_guard.resume_guard`). ``max_failures``: retries of a trial whose process dies in
    this run, instead of the run's ``--max-failures`` (:mod:`raynas.tune.retries`)."""
    check_int("--max-failures", max_failures, 0, MAX_WORKERS)
    directory = Path(directory)
    plan = read_plan(directory)
    if address:
        plan = replace(plan, ray=replace(plan.ray, address=address))
    check_reachable(plan.ray.address, "--address" if address else "ray.address")  # bounded, before any write
    with resume_guard(directory, source=EVALUATION_PLAN, experiment=plan.name, what=f"evaluation '{directory}'",
                      accept_config_change=accept_config_change, echo=echo):
        return _resume_checked(plan, directory, echo, max_failures)


def _resume_checked(plan: EvaluationPlan, directory: Path, echo: Callable[[str], None],
                    max_failures: int | None = None) -> EvaluationOutcome:
    """:func:`resume_evaluation` once the folder is checked and locked and its plan is the one to run."""
    from raynas.experiment import (nothing_ran, quiet_tune, reattach_callbacks, restore_tuner, saved_trial_statuses,
                                   start_over_line, start_ray)
    from raynas.tune.retries import retry_callbacks, retry_line

    quiet_tune()
    from raynas.results.recovery import evaluation_recovery
    from raynas.results.writer import ResultsWriter

    if nothing_ran(directory):  # killed while Ray or Tune started: without this it needed a person to delete it
        echo(start_over_line(f"evaluation '{directory}'"))
        shutil.rmtree(directory / TUNE_DIR, ignore_errors=True)  # Tune's settings (tuner.pkl) at most
        start_ray(plan.ray, echo)
        return _run_new(plan if max_failures is None else replace(plan, max_failures=max_failures), directory, echo)
    tune_dir = (directory / TUNE_DIR).resolve()
    before = saved_trial_statuses(tune_dir, f"evaluation '{directory}'", "run raynas train again")
    unfinished = sum(status != "TERMINATED" for status in before.values())
    not_started = max(0, len(plan.trial_specs()) - len(before))
    # before anything runs: refuses a run whose parts were deleted or lost, repairs a torn part (from the
    # consolidated table or what Tune saved, raynas.results.recovery)
    recover = evaluation_recovery(tune_dir, plan.name, plan.base_config())
    ResultsWriter(directory, plan.name, recover=recover).consolidate(["evaluations"])
    if not unfinished and not not_started:
        echo(f"raynas: evaluation '{plan.name}' had already finished; nothing to resume")
        return _outcome(directory, len(before), already_finished=True)
    start_ray(plan.ray, echo)
    tuner = restore_tuner(tune_dir, _trainable(plan), f"evaluation '{directory}'", "run raynas train again")
    reattach_callbacks(tuner, _callbacks(plan, directory.resolve()) + retry_callbacks(max_failures))
    echo(f"raynas: resuming evaluation '{plan.name}' ({unfinished} of {len(before)} trial(s) unfinished, "
         f"{not_started} not started) -> {directory}")
    for line in filter(None, [retry_line(max_failures)]):
        echo(line)
    grid = tuner.fit()
    _prune_checkpoints(directory)
    return _outcome(directory, len(grid))


def _outcome(directory: Path, num_trials: int, already_finished: bool = False) -> EvaluationOutcome:
    from raynas.results import load_table

    rows = load_table(str(directory), "evaluations").to_pylist()
    errors = sum(row["status"] != "TERMINATED" for row in rows) + max(0, num_trials - len(rows))
    return EvaluationOutcome(directory, directory / "tables" / "evaluations.parquet", num_trials, errors,
                             already_finished, rows)


def evaluation_summary(outcome: EvaluationOutcome) -> list[str]:
    """Each trial's result, the mean over seeds of each architecture, and where the table is."""
    from statistics import mean, stdev

    rows = outcome.rows
    lines = [f"{'trial':<12} {'seed':>4} {'test_acc':>8} {'best':>6} {'params':>10} {'MACs':>9}  genotype"]
    by_genotype: dict[str, list[float]] = {}
    for row in rows:
        acc = row["test_acc"]
        shown = "-" if acc is None else f"{acc:.4f}"
        best = "-" if row["best_test_acc"] is None else f"{row['best_test_acc']:.4f}"
        macs = "-" if row["macs"] is None else f"{row['macs'] / 1e6:.2f}M"
        params = "-" if row["params"] is None else f"{row['params']:,}"
        status = "" if row["status"] == "TERMINATED" else f"  [{row['status']}: {row['error'] or 'unfinished'}]"
        lines.append(f"{row['trial_id']:<12} {row['seed']!s:>4} {shown:>8} {best:>6} {params:>10} {macs:>9}  "
                     f"{row['genotype']}{status}")
        if acc is not None and row["status"] == "TERMINATED":
            by_genotype.setdefault(row["genotype"], []).append(acc)
    if any(len(accs) > 1 for accs in by_genotype.values()):
        lines.append("mean test_acc over seeds (+- sample standard deviation):")
        lines.extend(f"  {mean(accs):.4f} +- {stdev(accs) if len(accs) > 1 else 0.0:.4f} (n={len(accs)})  {genotype}"
                     for genotype, accs in by_genotype.items())
    lines.append(f"table: {outcome.table} (raynas results {outcome.directory} --table evaluations)")
    if outcome.num_errors:
        lines.append(f"{outcome.num_errors} of {outcome.num_trials} trial(s) did not finish "
                     f"(tracebacks: error.txt under {outcome.directory / TUNE_DIR})")
    return lines
