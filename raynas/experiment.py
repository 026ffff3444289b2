"""The experiment driver behind ``raynas search``: config -> Ray Tune population -> Parquet tables.

Everything that can be checked is checked before anything is written: the config, every trial's config
(the grid expanded) and the experiment folder. Then the folder is created with the resolved config, Ray is
started on loopback (or joined with an address), and Tune runs one trial per search. Results reach
``<experiment>/tables/`` through :class:`raynas.results.callback.ResultsCallback`.
:func:`resume_experiment` (``raynas resume``) continues an interrupted experiment from its folder.
This module imports neither torch nor Ray at import time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

from raynas import ray_auth, ray_dashboard, ray_session
from raynas.allocator import worker_env
from raynas.config import (ExperimentConfig, RayConfig, TrialSpec, config_from_dict, config_to_dict, dump_config,
                           expand_trials, load_config, with_overrides)
from raynas.config.limits import MAX_WORKERS, check_int
from raynas.config_fingerprint import record_fingerprint
from raynas.errors import ConfigError
from raynas.folder_lock import folder_lock
from raynas.objectives import prepare_experiment as prepare_terms
from raynas.output_paths import check_output_parent
from raynas.ray_address import check_reachable
from raynas.remote import display, is_remote, location_of, names, remove_tree, sync_up, tune_location
from raynas.resume_guard import resume_guard
from raynas.selection import total_epochs
from raynas.tune.capacity import check_fits, check_local_cpus, is_local, waiting_line
from raynas.tune.hold import hold_env
from raynas.tune.integrations import check_installed as check_integrations
from raynas.tune.integrations import check_ready
from raynas.tune.logs import ray_logs_to

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
    failures: dict[str, str] = field(default_factory=dict)  # trial id -> one-line reason (trials table)
    already_finished: bool = False  # a resume that found nothing left to run
    unfinished: int = 0  # trials Tune left unfinished: the run was interrupted (Ctrl+C); raynas resume goes on


def prepare_experiment(config: str | os.PathLike | Mapping[str, Any], overrides: Sequence[str] = (), *,
                       out: str | os.PathLike = DEFAULT_OUT, address: str | None = None) -> PreparedExperiment:
    """Load and validate a search config (a YAML file, or its mapping) and its trials; raises
    :class:`ConfigError`; writes nothing."""
    cfg = load_config(config, overrides)
    if address:
        cfg = replace(cfg, ray=replace(cfg.ray, address=address))
    trials = distinct_seeds(cfg, expand_trials(cfg))
    check_scoring(cfg, trials)  # the ground truth it asks for can be had (reads the protocol, no table)
    check_local_cpus(cfg)  # a trial a local instance cannot fit would wait for ever
    check_integrations(cfg)  # tune.tensorboard, tune.callbacks: the package to install, before anything is written
    ray_dashboard.check_installed(cfg.ray)  # ray.dashboard: Ray's dashboard packages
    if is_remote(str(out)):  # object storage: a local working copy of <out>/<name> (raynas.remote)
        from raynas.remote import new_experiment

        directory = new_experiment(str(out), cfg.name)
        check_output_parent("--out", directory.parent, str(out))
    else:
        directory = Path(out) / cfg.name
        if directory.exists():
            raise ConfigError(f"experiment folder '{directory}' already exists; choose another --out or name "
                              f"(e.g. --set name={cfg.name}-2), or remove it")
        check_output_parent("--out", out)  # a file or /proc on the way fails now, not after Ray started
    check_reachable(cfg.ray.address, "--address" if address else "ray.address")  # no cluster: fail now, bounded
    ray_session.check_running(cfg.ray)  # a Ray of the user's that ray.* contradicts (the Python API): fail now
    return PreparedExperiment(resolve_benchmark(cfg, directory), trials, directory)


def check_scoring(cfg: ExperimentConfig, trials: Sequence[Any] = ()) -> None:
    """The scoring ``cfg`` and its trials ask for can be done (:func:`raynas.benchmark.scoring.check_scoring`)."""
    from raynas.benchmark.scoring import check_scoring as check

    check(cfg, trials)


def resolve_benchmark(cfg: ExperimentConfig, directory: Path) -> ExperimentConfig:
    """``cfg`` with its ground-truth scoring decided (:func:`raynas.benchmark.scoring.resolve_scoring`): the
    resolved config the experiment folder records and every trial reads."""
    from raynas.benchmark.scoring import resolve_scoring

    return resolve_scoring(cfg, directory)


def distinct_seeds(cfg: ExperimentConfig, trials: list[TrialSpec]) -> list[TrialSpec]:
    """Give repeated samples of one grid point their own seed (base seed + repeat index).

    Without this, ``tune.num_samples: 3`` would run three identical searches. The same rule holds for every
    searcher: with random/optuna and no grid, trial ``i`` gets ``search.seed + i`` (Optuna's ``i``-th
    suggestion). A grid or ``tune.params`` entry that sets ``search.seed`` itself is left alone.
    """
    if cfg.tune.num_samples == 1 or "search.seed" in cfg.tune.grid or "search.seed" in cfg.tune.params:
        return trials
    seeded = []
    for spec in trials:
        overrides = {**spec.overrides, "search.seed": cfg.search.seed + spec.sample}
        seeded.append(replace(spec, overrides=overrides,
                              config=replace(spec.config, search=replace(spec.config.search,
                                                                         seed=overrides["search.seed"]))))
    return seeded


def start_ray(ray_cfg: RayConfig, echo: Callable[[str], None] = print) -> None:
    """Join ``ray_cfg.address`` or start a local Ray bounded to ``ray_cfg.num_cpus`` on 127.0.0.1 only, with
    token authentication (:mod:`raynas.ray_auth`); the job's worker processes run on ``ray_cfg.allocator``
    (:mod:`raynas.allocator`).

    A Ray already running in this process serves when it can (:func:`raynas.ray_session.settle`): one raynas
    started with other ``ray.*`` settings is restarted (a line on ``echo`` says why), one it did not start
    is used as it is or refused (:class:`ConfigError`) when a set ``ray.address``/``ray.num_cpus`` contradicts it.
    With ``ray.dashboard`` a local instance serves the dashboard (:mod:`raynas.ray_dashboard`) and ``echo`` gets
    its URL.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet_tune()
    if not ray_cfg.address or is_loopback_address(ray_cfg.address):
        keep_local_ray_on_loopback()
    import ray

    # The job's workers (trials, shards, teachers, selection workers) start with the allocator's variables.
    env_vars = {**worker_env(ray_cfg.allocator), **hold_env()}  # hold_env: the off-by-default run control
    settings = ray_session.settings_for(ray_cfg, env_vars)
    if ray_session.settle(ray_cfg, settings, echo):
        _say_dashboard(ray_cfg, ray_dashboard.running_url(), echo)
        return
    runtime_env = {"env_vars": env_vars} if env_vars else None
    if ray_cfg.address:
        check_reachable(ray_cfg.address)  # bounded: ray.init waits minutes for an address nobody answers
        ray_auth.enable_for_join()  # sends the token when there is one
        context = ray.init(address=ray_cfg.address, log_to_driver=False, runtime_env=runtime_env)
    else:
        ray_auth.enable_for_local_ray()  # token auth on, with a private token file
        try:
            context = ray.init(num_cpus=settings.num_cpus, log_to_driver=False, **ray_dashboard.init_kwargs(ray_cfg),
                               _temp_dir=os.environ.get("RAYNAS_RAY_TEMP_DIR"), runtime_env=runtime_env)
        except ValueError as exc:  # Ray refuses a taken ray.dashboard_port before it starts anything
            taken = ray_dashboard.port_taken(ray_cfg, exc)
            if taken is None:
                raise
            raise taken from None
    ray_session.record_started(settings)
    _say_dashboard(ray_cfg, getattr(context, "dashboard_url", "") or "", echo)


def _say_dashboard(ray_cfg: RayConfig, address: str, echo: Callable[[str], None]) -> None:
    """With ``ray.dashboard``: the line with the dashboard's URL, or that the joined cluster serves none."""
    if not ray_cfg.dashboard:
        return
    line = ray_dashboard.url_line(address)
    echo(line or "raynas: ray.dashboard: the Ray this run joined serves no dashboard")


def is_loopback_address(address: str) -> bool:
    """Whether a Ray address (``host:port``) names this machine's loopback (a loopback-only local cluster)."""
    import ipaddress

    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def keep_local_ray_on_loopback() -> None:
    """Make the local Ray instance this process starts listen on 127.0.0.1 only.

    By default a local Ray binds to the machine's interface address. Ray reads
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when ``ray._private.ray_constants`` is first imported, so
    the variable must be set before that; if Ray was already imported (a notebook, a test), the constant it
    derived is set as well. Never call this when joining a cluster on another address: multi-node clusters
    need it on (joining a loopback-only cluster on this machine needs it, so the driver stays on 127.0.0.1).
    """
    import sys

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False  # type: ignore[attr-defined]  # read by Ray at call time


def quiet_tune() -> None:
    """Leave progress output to raynas' own callback; our Parquet tables replace Tune's result files."""
    import logging

    # no result.json/progress.csv per trial; TensorBoard files come from tune.tensorboard (raynas.tune.integrations)
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the legacy reporter honours verbose=0 completely
    # Short epochs checkpoint every few seconds, and with num_to_keep set each one forces a snapshot of the
    # experiment state; that is what keeps `raynas resume` close to the last epoch, so don't warn about it.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Without Tune's result files its ResultGrid warns that it cannot fetch metrics; the tables hold them.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    logging.getLogger("ray.tune.tune").setLevel(logging.WARNING)


def check_capacity(cfg: ExperimentConfig) -> Optional[str]:
    """After Ray started: refuse (:class:`ConfigError`) a trial that does not fit the local instance (its
    GPUs are known now); on a joined cluster, the line that says what a trial waits for (None: it fits)."""
    import ray

    available = ray.cluster_resources()
    if is_local(cfg):
        check_fits(cfg, available)
        return None
    return waiting_line(cfg, available)


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
    # one driver per folder (raynas.folder_lock); Ray's and Tune's own log lines: <experiment>/logs/tune.log
    with folder_lock(directory, "raynas search", echo=echo), ray_logs_to(directory):
        try:
            # what a term needs done once before any trial (E2NAS: its autoencoder), into the resolved config
            cfg = prepare_terms(cfg, [trial.config for trial in prepared.trials], directory, echo=echo)
            dump_config(cfg, directory / RESOLVED_CONFIG)
            record_fingerprint(directory, RESOLVED_CONFIG)  # a resume refuses a config.yaml changed since
            check_ready(cfg)  # tune.callbacks: a tracking store MLflow refuses is one line, before Ray starts
            start_ray(cfg.ray, echo)
            waiting = check_capacity(cfg)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)  # nothing half-written
            raise
        with uploaded_at_exit(directory):  # a working copy of object storage (raynas.remote): its last upload
            return _run_tuner(cfg, prepared, waiting, echo)


@contextlib.contextmanager
def uploaded_at_exit(directory: Path) -> Iterator[None]:
    """At the end of the block, however it ends, upload what changed in ``directory`` when it is a working
    copy of a remote folder (:func:`raynas.remote.sync_up`; a failure is a warning line: the files stay
    in the working copy). Nothing for a local folder."""
    try:
        yield
    finally:
        sync_up(directory, warn_only=True)


def _run_tuner(cfg: ExperimentConfig, prepared: PreparedExperiment, waiting: Optional[str],
               echo: Callable[[str], None]) -> ExperimentOutcome:
    """Build the Tuner of a started experiment and run it to the end (or to an interruption)."""
    from ray import tune

    from raynas.results import TABLES
    from raynas.tune.tune_setup import make_tune_objects

    directory = prepared.directory
    base = trial_base_config(cfg)
    trainable = make_trainable(cfg, base)
    results_cb, callbacks = make_callbacks(cfg, directory, base)
    callbacks = with_uploads(directory, results_cb, callbacks)
    echo(f"raynas: {len(prepared.trials)} trial(s) of '{cfg.name}' ({cfg.space}, {cfg.method}) -> "
         f"{display(directory)}")
    if waiting:
        echo(waiting)
    objects = make_tune_objects(cfg, prepared.trials)
    tuner = tune.Tuner(
        trainable,
        param_space=objects.param_space,
        tune_config=objects.tune_config,
        run_config=tune.RunConfig(
            # a working copy's experiment: Tune keeps its state and checkpoints at the URI (raynas.remote)
            name=TUNE_DIR, storage_path=str(storage_path(directory)), verbose=0,
            callbacks=callbacks,
            # Tune keeps every checkpoint: raynas.tune.retention deletes them, never ahead of Tune's saved state
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            failure_config=tune.FailureConfig(max_failures=cfg.tune.max_failures),
        ),
    )
    grid = tuner.fit()
    tables = {name: results_cb.writer.table_path(name) for name in TABLES}  # consolidated at experiment end
    unfinished = finish_tune_state(cfg, directory)
    failures = failed_trials(directory)
    return ExperimentOutcome(directory, tables, len(grid), max(grid.num_errors, len(failures)), cfg.tune.metric,
                             failures, unfinished=unfinished)


def storage_path(directory: Path) -> str | Path:
    """Ray Tune's ``storage_path`` of the experiment in ``directory``: the folder itself, or the URI whose
    working copy it is (Tune resolves the URI's file system as :func:`raynas.remote.filesystem` does)."""
    remote = location_of(directory)
    return remote.uri if remote is not None else directory.resolve()


def make_trainable(cfg: ExperimentConfig, base: dict[str, Any]) -> Any:
    """The Tune trainable of ``cfg``'s trials (the same for a run and its resume: Tune checks the name)."""
    from ray import tune

    from raynas.tune.resources import trial_resources
    from raynas.tune.trainable import search_trainable

    return tune.with_resources(tune.with_parameters(search_trainable, base=base), trial_resources(cfg))


def make_callbacks(cfg: ExperimentConfig, directory: Path, base: dict[str, Any]) -> tuple[Any, list[Any]]:
    """raynas' Tune callbacks of an experiment folder: the results callback (its writer names the tables),
    and the list Tune gets: the results tables, the progress lines, the population status line, the loggers
    the config asks for (TensorBoard, MLflow, W&B) and (but with PBT) the checkpoint retention."""
    from raynas.results.callback import ResultsCallback
    from raynas.tune.integrations import logger_callbacks
    from raynas.tune.progress import ProgressCallback
    from raynas.tune.retention import CheckpointRetention
    from raynas.tune.tune_setup import checkpoints_to_keep
    from raynas.tune.status import PopulationStatus

    # fifo never ends a trial early; asha does (stopped_by), pbt does not but would be named if it did
    scheduler = None if cfg.tune.scheduler == "fifo" else cfg.tune.scheduler
    results_cb = ResultsCallback(str(directory), cfg.name, cfg.tune.metric, cfg.tune.mode, base_config=base,
                                 scheduler=scheduler)
    planned = lambda o: total_epochs(config_from_dict(with_overrides(base, o)))  # noqa: E731 (a trial's epochs)
    progress_cb = ProgressCallback(planned)
    status_cb = PopulationStatus(cfg.tune.metric, cfg.tune.mode, planned, len(expand_trials(cfg)), total_epochs(cfg),
                                 cfg.tune.status_every)
    keep = checkpoints_to_keep(cfg)  # None (PBT): every checkpoint stays while the population runs
    retention = [] if keep is None else [CheckpointRetention(tune_location(directory, TUNE_DIR), keep)]
    return results_cb, [results_cb, progress_cb, status_cb, *logger_callbacks(cfg, directory), *retention]


def with_uploads(directory: Path, results_cb: Any, callbacks: list[Any]) -> list[Any]:
    """``callbacks`` with, when ``directory`` is the working copy of a remote folder, the callback that uploads
    its files (:mod:`raynas.tune.remote_sync`) right after the results callback, whose parts it uploads."""
    remote = location_of(directory)
    if remote is None:
        return callbacks
    from raynas.tune.remote_sync import RemoteSync

    after = callbacks.index(results_cb) + 1
    return [*callbacks[:after], RemoteSync(remote, results_cb.writer), *callbacks[after:]]


def finish_tune_state(cfg: ExperimentConfig, directory: Path) -> int:
    """After ``Tuner.fit`` returned: the trials Tune's saved state has neither finished nor failed (the run
    was interrupted, Ctrl+C). Checkpoints no saved state needs any more are removed (:mod:`raynas.tune.retention`);
    a PBT population's, which keeps all of them while it runs, once none is unfinished
    (:mod:`raynas.tune.checkpoints`)."""
    from ray import tune

    from raynas.tune.retention import prune_checkpoints, trial_folders
    from raynas.tune.tune_setup import checkpoints_to_keep

    tune_dir = tune_location(directory, TUNE_DIR)  # a URI for a working copy of a remote folder
    trials = tune.ExperimentAnalysis(str(tune_dir)).trials
    unfinished = sum(trial.status not in ("TERMINATED", "ERROR") for trial in trials)
    keep = checkpoints_to_keep(cfg)
    if keep is not None:  # the rounds of CheckpointRetention lag Tune's saved state: catch up with its last one
        prune_checkpoints(tune_dir, trial_folders(trials), keep)
    elif not unfinished:
        from raynas.tune.checkpoints import prune_superseded_checkpoints

        prune_superseded_checkpoints(tune_dir)
    return unfinished


def failed_trials(directory: Path) -> dict[str, str]:
    """Trial id -> the one-line reason of every trial whose row in the trials table has status ERROR."""
    from raynas.results import load_table

    rows = load_table(str(directory), "trials").to_pylist()
    return {row["trial_id"]: row["error"] or "unknown error" for row in rows if row["status"] == "ERROR"}



def saved_trial_statuses(tune_dir: Path | str, what: str, again: str) -> dict[str, str]:
    """Trial id -> status in the Ray Tune state saved under ``tune_dir`` (what a resume starts from); a
    one-line ConfigError naming ``what`` and how to start ``again`` when Tune saved nothing there or its
    state cannot be read. A torn newest state with an intact older one: the older one, said on stderr
    (:func:`raynas.tune.saved_state.usable_experiment_state`)."""
    import sys

    from ray import tune

    from raynas.tune.saved_state import usable_experiment_state

    if not tune.Tuner.can_restore(str(tune_dir)):
        raise ConfigError(f"{what} cannot be resumed: {tune_dir} holds no Ray Tune experiment state (it stopped "
                          f"before Tune started); remove the folder and {again}")
    if not is_remote(tune_dir):  # an object is whole or absent: Tune uploads each state once it is written
        usable_experiment_state(Path(tune_dir), what, again,
                                warn=lambda line: print(f"raynas: warning: {line}", file=sys.stderr, flush=True))
    try:
        trials = tune.ExperimentAnalysis(str(tune_dir)).trials
    except Exception as exc:  # whatever Tune trips over in a damaged folder: one line, not its traceback
        reason = " ".join(str(exc).split())[:200]
        raise ConfigError(f"{what} cannot be resumed: Ray Tune cannot read its saved state under {tune_dir} "
                          f"({type(exc).__name__}: {reason}); {again} in a new folder") from None
    return {trial.trial_id: trial.status for trial in trials}

def restore_tuner(tune_dir: Path | str, trainable: Any, what: str, again: str) -> Any:
    """``tune.Tuner.restore`` of ``tune_dir`` (unfinished and errored trials resume); a torn ``tuner.pkl``
    (a crash while Tune wrote it) is a one-line ConfigError naming ``what`` and how to start ``again``."""
    import pickle

    from ray import tune

    try:
        return tune.Tuner.restore(str(tune_dir), trainable=trainable, resume_unfinished=True, resume_errored=True)
    except (EOFError, pickle.UnpicklingError, OSError) as exc:
        reason = " ".join(str(exc).split())[:200] or "truncated"
        raise ConfigError(f"{what} cannot be resumed: Ray Tune's saved settings {tune_dir}/tuner.pkl cannot be "
                          f"read ({type(exc).__name__}: {reason}); {again} in a new folder") from None


def resume_experiment(directory: str | os.PathLike, *, address: str | None = None,
                      echo: Callable[[str], None] = print, accept_config_change: bool = False,
                      max_failures: int | None = None) -> ExperimentOutcome:
    """Continue an interrupted experiment (driver killed, machine rebooted) from its folder.

    Loads the resolved ``<directory>/config.yaml``, starts Ray like :func:`run_experiment` (``address``
    joins a cluster instead), and restores the Tune experiment under ``<directory>/tune`` with
    ``resume_unfinished=True, resume_errored=True``: finished trials stay finished, running and errored
    ones continue from their last checkpoint, trials not started yet start. A diverged trial is finished as
    far as Tune is concerned (the trainable ends it with a divergence report), so it is not run again.
    Raises :class:`ConfigError` for a folder that is not a raynas experiment or has no restorable state,
    and :class:`ResultsError` (before anything runs or is written) when result parts were deleted or lost
    while the tables hold their rows (:meth:`raynas.results.writer.ResultsWriter.consolidate`).

    Before anything is read from ``tune/`` or written (:func:`raynas.resume_guard.resume_guard`): a folder not
    yours alone is refused (a resume unpickles its saved state), the folder's lock is taken (another driver
    on it: :class:`FolderError`), and a ``config.yaml`` changed since the search started is refused naming
    the keys (:class:`ConfigError`) unless ``accept_config_change``, which records the change.

    ``max_failures`` (``--max-failures``): in this run, a trial whose process dies is retried up to that many
    times, whatever ``tune.max_failures`` was (:mod:`raynas.tune.retries`); None keeps each trial's own limit.
    """
    check_int("--max-failures", max_failures, 0, MAX_WORKERS)
    directory = Path(directory)
    if not (directory / RESOLVED_CONFIG).is_file():
        raise ConfigError(f"'{directory}' is not a raynas experiment folder: it has no {RESOLVED_CONFIG} "
                          "(pass the folder raynas search created, <out>/<name>)")
    cfg = resolve_benchmark(load_config(directory / RESOLVED_CONFIG), directory)
    if address:
        cfg = replace(cfg, ray=replace(cfg.ray, address=address))
    check_local_cpus(cfg)
    check_integrations(cfg)  # the packages of its loggers, before anything is read from tune/ or written
    ray_dashboard.check_installed(cfg.ray)
    check_reachable(cfg.ray.address, "--address" if address else "ray.address")  # bounded, before any write
    with resume_guard(directory, source=RESOLVED_CONFIG, experiment=cfg.name,
                      what=f"experiment '{display(directory)}'", accept_config_change=accept_config_change, echo=echo):
        with uploaded_at_exit(directory):  # a working copy of object storage (raynas.remote): its last upload
            return _resume_checked(cfg, directory, echo, max_failures)


def nothing_ran(directory: Path) -> bool:
    """Whether the run in ``directory`` died before Ray Tune saved any state and before any result was written
    (:func:`raynas.tune.saved_state.never_saved`): a resume then starts it from the beginning, in its folder."""
    from raynas.tune.saved_state import never_saved

    return never_saved(tune_location(directory, TUNE_DIR)) and \
        not any((directory / "tables" / "parts").rglob("*.parquet*"))


def start_over_line(what: str) -> str:
    """What a resume prints when it starts a run from the beginning (:func:`nothing_ran`)."""
    return (f"raynas: {what} stopped before Ray Tune saved any state (no trial had reported): starting it from "
            "the beginning")


def _resume_checked(cfg: ExperimentConfig, directory: Path, echo: Callable[[str], None],
                    max_failures: int | None = None) -> ExperimentOutcome:
    """:func:`resume_experiment` once the folder is checked and locked and its config is the one to run."""
    from raynas.tune.retries import retry_callbacks, retry_line

    check_ready(cfg)  # tune.callbacks: a tracking store MLflow refuses is one line, before Ray starts
    quiet_tune()
    what = f"experiment '{display(directory)}'"  # a working copy of a remote folder: its URI
    if nothing_ran(directory):  # killed while Ray or Tune started: without this it needed a person to delete it
        echo(start_over_line(what))
        remove_tree(tune_location(directory, TUNE_DIR))  # Tune's settings (tuner.pkl) at most
        if max_failures is not None:  # a new Tuner: its FailureConfig takes the limit
            cfg = replace(cfg, tune=replace(cfg.tune, max_failures=max_failures))
        with ray_logs_to(directory):
            start_ray(cfg.ray, echo)
            waiting = check_capacity(cfg)
            prepared = PreparedExperiment(cfg, distinct_seeds(cfg, expand_trials(cfg)), directory)
            return _run_tuner(cfg, prepared, waiting, echo)
    tune_dir = tune_location(directory, TUNE_DIR)
    before = saved_trial_statuses(tune_dir, what, "run raynas search again")
    unfinished = sum(status != "TERMINATED" for status in before.values())
    # Every searcher runs one Tune trial per entry of the expanded trial list (raynas.tune.tune_setup).
    not_started = max(0, len(expand_trials(cfg)) - len(before))
    from raynas.results.recovery import search_recovery
    from raynas.results.writer import ResultsWriter

    # Before Ray starts, and before a finished experiment is called finished: refuse a folder whose parts were
    # deleted or lost (its tables are the only copy of those rows), repair a torn part from the tables or from
    # what Tune saved (or set it aside when the resumed trial writes it again).
    recover = search_recovery(tune_dir, make_callbacks(cfg, directory.resolve(), trial_base_config(cfg))[0])
    tables = ResultsWriter(directory, cfg.name, recover=recover).consolidate()
    if not unfinished and not not_started:
        echo(f"raynas: experiment '{cfg.name}' had already finished; nothing to resume")
        return _finished_outcome(cfg, directory, len(before), tables)
    with ray_logs_to(directory):  # appends to the log of the run it continues
        start_ray(cfg.ray, echo)
        waiting = check_capacity(cfg)
        base = trial_base_config(cfg)
        tuner = restore_tuner(tune_dir, make_trainable(cfg, base), what, "run raynas search again")
        results_cb, callbacks = make_callbacks(cfg, directory.resolve(), base)
        callbacks = with_uploads(directory, results_cb, callbacks)
        reattach_callbacks(tuner, callbacks + retry_callbacks(max_failures))
        echo(f"raynas: resuming '{cfg.name}' ({unfinished} of {len(before)} trial(s) unfinished, "
             f"{not_started} not started) -> {display(directory)}")
        for line in filter(None, [retry_line(max_failures)]):
            echo(line)
        if waiting:
            echo(waiting)
        grid = tuner.fit()
        unfinished_now = finish_tune_state(cfg, directory)
    from raynas.results import TABLES

    tables = {name: results_cb.writer.table_path(name) for name in TABLES}
    failures = failed_trials(directory)
    return ExperimentOutcome(directory, tables, len(grid), max(grid.num_errors, len(failures)), cfg.tune.metric,
                             failures, unfinished=unfinished_now)


def _finished_outcome(cfg: ExperimentConfig, directory: Path, num_trials: int,
                      tables: dict[str, Path]) -> ExperimentOutcome:
    """The outcome of an experiment Tune had finished, with its ``tables`` (consolidated by the resume: the
    driver may have died before it consolidated them)."""
    failures = failed_trials(directory)
    return ExperimentOutcome(directory, tables, num_trials, len(failures), cfg.tune.metric, failures,
                             already_finished=True)


def reattach_callbacks(tuner: Any, callbacks: list[Any]) -> None:
    """Give a restored Tuner fresh raynas callbacks for this folder and this process's stdout.

    Tune 2.60 restores the RunConfig, callbacks included, from the ``tuner.pkl`` pickled when the
    experiment started: those hold the folder path as given then (relative to that run's working folder)
    and their own trial bookkeeping. ``Tuner.restore`` takes no RunConfig and the restored one has no public
    accessor (ray-project/ray#41364), so the callback list of the restored RunConfig is replaced in place.
    """
    local = getattr(tuner, "_local_tuner", None)
    if local is None or not hasattr(local, "get_run_config"):
        raise ConfigError("raynas resume cannot attach its result callbacks through this Ray version or a "
                          "Ray Client (ray://) connection; run it on the cluster's head node")
    local.get_run_config().callbacks = list(callbacks)


def resume_hint(directory: Path) -> str:
    """The command that continues the experiment in ``directory`` (shell-quoted)."""
    import shlex

    return f"raynas resume {shlex.quote(display(directory))}"  # a working copy: its URI


def interrupted_lines(directory: Path, unfinished: Optional[int] = None, total: Optional[int] = None) -> list[str]:
    """What ``raynas search``/``resume`` print when stopped (Ctrl+C): what is left and how to go on.

    Replaces Ray Tune's own hint (``Tuner.restore(...)``, which the log file keeps): a raynas experiment is
    continued with ``raynas resume``. Without Tune's saved state (stopped before Tune started) there is
    nothing to resume.
    """
    tune_dir = tune_location(directory, TUNE_DIR) if location_of(directory) else directory / TUNE_DIR
    if not (names(tune_dir) if is_remote(tune_dir) else Path(tune_dir).is_dir()):
        return ["raynas: interrupted before any trial started; nothing to resume"]
    if unfinished is None or total is None:  # a second Ctrl+C: Tune's last save may have been skipped
        state = f"raynas: interrupted; Ray Tune's last saved state is under {tune_dir}"
    else:
        state = f"raynas: interrupted: {unfinished} of {total} trial(s) unfinished; Ray Tune saved their state " \
                f"under {tune_dir}"
    return [state, f"resume with: {resume_hint(directory)}"]


def summary_lines(outcome: ExperimentOutcome) -> list[str]:
    """Each trial's metric, epochs and genotype, and where the tables are, for the end of ``raynas search``
    (an interrupted run: how to resume it).

    ``epochs`` is ``done/planned``; a trial the scheduler ended early (ASHA at a rung) says so.
    """
    if outcome.unfinished:
        return interrupted_lines(outcome.directory, outcome.unfinished, outcome.num_trials)
    from raynas.results import leaderboard, ranking_of

    table = leaderboard(str(outcome.directory))
    column = ranking_of(table)["column"]  # final_<tune.metric>: its value at each trial's last epoch
    board = table.to_pylist()
    # the final cell's ground truth, when scored and not already the ranking metric
    scored = outcome.metric != "gt_test_acc" and any(row.get("final_gt_test_acc") is not None for row in board)
    width = max(16, len(column))
    lines = [f"{'trial':<12} {column:>{width}}" + (f" {'gt_acc':>7}" if scored else "")
             + f" {'skip':>4} {'epochs':>7}  genotype (final)"]
    for row in board:
        value = row.get(column)
        shown = "nan" if value is None else f"{value:.4f}"
        truth = row.get("final_gt_test_acc")
        gt = (f" {'':>7}" if truth is None else f" {truth:>7.4f}") if scored else ""
        planned = row.get("epochs_planned")
        epochs = f"{row.get('epochs_done')}" + (f"/{planned}" if planned is not None else "")
        lines.append(f"{row['trial_id']:<12} {shown:>{width}}{gt} {row.get('num_skip')!s:>4} {epochs:>7}  "
                     f"{row.get('genotype')}"
                     + ("" if row.get("connected") in (True, None) else "  (DISCONNECTED cell)")
                     + (f"  (stopped by {row['stopped_by']})" if row.get("stopped_by") else ""))
    lines.append(f"tables: {display(outcome.directory)}/tables ({', '.join(sorted(outcome.tables))})")
    if outcome.num_errors:
        lines.append(f"{outcome.num_errors} of {outcome.num_trials} trial(s) failed "
                     f"(tracebacks of crashed ones: error.txt under {display(outcome.directory)}/{TUNE_DIR}):")
        lines.extend(f"  {trial_id} FAILED: {reason}" for trial_id, reason in sorted(outcome.failures.items()))
    return lines
