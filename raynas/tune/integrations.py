"""Ray Tune's logger integrations of a search: TensorBoard event files, MLflow and Weights & Biases.

raynas turns Tune's automatic loggers off (:func:`raynas.experiment.quiet_tune`): its Parquet tables replace
Tune's per-trial ``progress.csv``/``result.json``. The loggers a person watches a population with come back
by name instead: ``tune.tensorboard`` (Tune's ``TBXLoggerCallback``, on by default, event files in each
trial's folder under ``<experiment>/tune/``) and ``tune.callbacks`` (``mlflow``: Ray's
``MLflowLoggerCallback``; ``wandb``: Ray's ``WandbLoggerCallback``). Each is used only when its package is
installed: :func:`check_installed` says which one to install, before anything is written, and
:func:`check_ready` refuses a tracking store MLflow would refuse, before Ray starts. Imports Ray and the
integrations' packages only in the functions that build or check them.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raynas.config.schema import ExperimentConfig
from raynas.errors import ConfigError


@dataclass(frozen=True)
class Integration:
    """A ``tune.callbacks`` name: the module it needs and the pip package that brings it."""

    name: str
    module: str
    pip: str


#: ``tune.callbacks`` name -> what it needs (mlflow-skinny holds MLflow's tracking client and stores)
INTEGRATIONS = {
    "mlflow": Integration("mlflow", "mlflow", "mlflow-skinny"),
    "wandb": Integration("wandb", "wandb", "wandb"),
}
TENSORBOARD = Integration("tensorboard", "tensorboardX", "tensorboardX")
#: the variable MLflow 3 wants before it opens a file store (file:///path/mlruns)
FILE_STORE_OPT_IN = "MLFLOW_ALLOW_FILE_STORE"


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported here (found, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken parent package, or a module without a spec
        return False


def check_installed(cfg: ExperimentConfig) -> None:
    """Refuse (one-line :class:`ConfigError`) an integration the config asks for whose package is missing,
    naming the pip package; imports nothing, writes nothing."""
    if cfg.tune.tensorboard and not is_installed(TENSORBOARD.module):
        raise ConfigError(f"tune.tensorboard = true: the Python package {TENSORBOARD.module} is not installed; "
                          f"install it (pip install {TENSORBOARD.pip}) or set tune.tensorboard: false")
    for name in cfg.tune.callbacks:
        need = INTEGRATIONS[name]
        if not is_installed(need.module):
            raise ConfigError(f"tune.callbacks names {name!r}, but the Python package {need.module} is not "
                              f"installed; install it (pip install {need.pip}) or remove {name} from tune.callbacks")


def mlflow_experiment(cfg: ExperimentConfig) -> str:
    """The MLflow experiment of a search: ``tune.mlflow.experiment_name``, else the search's name."""
    return cfg.tune.mlflow.experiment_name or cfg.name


def wandb_project(cfg: ExperimentConfig) -> str:
    """The W&B project of a search: ``tune.wandb.project``, else the search's name."""
    return cfg.tune.wandb.project or cfg.name


def quiet_mlflow() -> None:
    """Before MLflow is imported: it leaves its logger to raynas (:func:`raynas.tune.logs.ray_logs_to` sends it
    to the experiment's log file) instead of printing its INFO lines on the console."""
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")


def check_ready(cfg: ExperimentConfig) -> None:
    """Before Ray starts: open the MLflow tracking store of ``tune.callbacks: [mlflow]`` as the callback will,
    so that a store MLflow refuses (a malformed URI, the file store MLflow 3 keeps only behind
    ``MLFLOW_ALLOW_FILE_STORE``) is one line naming the setting, not a traceback from inside Tune."""
    if "mlflow" not in cfg.tune.callbacks:
        return
    quiet_mlflow()
    from mlflow import MlflowClient

    uri = cfg.tune.mlflow.tracking_uri
    try:
        MlflowClient(tracking_uri=uri)
    except Exception as exc:  # MlflowException and whatever a store's driver raises: one line
        reason = " ".join(str(exc).split())
        if FILE_STORE_OPT_IN in reason:  # MLflow's own text is a paragraph; this is what to do
            reason = (f"MLflow 3 opens its file store only with {FILE_STORE_OPT_IN}=true in the environment; set "
                      "it, or use a database (sqlite:///path/mlflow.db) or a tracking server (http://host:5000)")
        reason = reason if len(reason) <= 300 else reason[:297] + "..."
        shown = "null (MLflow's default)" if uri is None else repr(uri)
        raise ConfigError(f"tune.mlflow.tracking_uri = {shown}: MLflow cannot open this tracking store "
                          f"({type(exc).__name__}: {reason})") from None


def logger_callbacks(cfg: ExperimentConfig, directory: Path) -> list[Any]:
    """The Tune logger callbacks a search's config asks for (:data:`INTEGRATIONS`, ``tune.tensorboard``).

    TensorBoard files go where Tune keeps each trial (``<experiment>/tune/<trial folder>/``); an MLflow run
    per trial is tagged with the experiment folder; W&B writes its runs (offline ones in full) under
    ``<experiment>/wandb/``.
    """
    callbacks: list[Any] = []
    if cfg.tune.tensorboard:
        from raynas.tune.tensorboard import ScalarTBXLoggerCallback

        callbacks.append(ScalarTBXLoggerCallback())
    if "mlflow" in cfg.tune.callbacks:
        quiet_mlflow()
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        callbacks.append(MLflowLoggerCallback(tracking_uri=cfg.tune.mlflow.tracking_uri,
                                              experiment_name=mlflow_experiment(cfg),
                                              tags={"raynas.experiment_folder": str(directory)}))
    if "wandb" in cfg.tune.callbacks:
        from ray.air.integrations.wandb import WandbLoggerCallback

        wandb = cfg.tune.wandb
        if wandb.mode != "online":
            # Ray asks for an API key unless WANDB_MODE says offline/disabled; wandb.init gets the mode too.
            os.environ["WANDB_MODE"] = wandb.mode
        # Ray's default group is Tune's run name, "tune" for every raynas search: the search's name tells them apart.
        # dir: W&B writes each run under <experiment>/wandb/ itself; by default it writes into Tune's staging
        # copy of the trial folder, whose last copy into the experiment precedes the runs' final writes.
        callbacks.append(WandbLoggerCallback(project=wandb_project(cfg), group=wandb.group or cfg.name,
                                             mode=wandb.mode, dir=str(Path(directory).resolve())))
    return callbacks
