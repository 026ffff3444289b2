"""What the Python API hands back: an :class:`Experiment` (a search folder), a :class:`Trial` of it, and an
:class:`Evaluation` (a ``raynas train`` run folder), plus :func:`load` for a finished folder.

They only read, through the readers of :mod:`raynas.results` (``raynas results`` reads the same way): a
folder is never written by them, and a running or killed experiment shows every report written so far.
Tables come as pandas DataFrames by default (``as_pandas=False``: pyarrow Tables). Nothing here imports
torch or Ray.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from raynas.errors import ResultsError

if TYPE_CHECKING:  # annotations only: importing the handles stays cheap
    from raynas.config.schema import ExperimentConfig
    from raynas.evaluation import EvaluationOutcome, EvaluationPlan
    from raynas.experiment import ExperimentOutcome
    from raynas.spaces.genotype import Genotype


@dataclass(frozen=True)
class Trial:
    """One search trial as the leaderboard ranks it: ``metric_value`` is ``metric`` at ``scope`` (``last``:
    its last epoch; ``best``: its best epoch), ``genotype`` the genotype of that epoch (parsed; ``str()``
    gives the text), and ``row`` its whole leaderboard row."""

    trial_id: str
    status: str
    metric: str
    metric_value: Optional[float]
    genotype: Optional["Genotype"]
    seed: Optional[int]
    row: dict[str, Any] = field(repr=False, compare=False)
    scope: str = "last"


class Experiment:
    """A search experiment folder (``<out>/<name>`` of :func:`raynas.search` or ``raynas search``).

    ``outcome`` is what the search that returned it reports (trials run, failures, whether it was
    interrupted); None for one from :func:`load`.
    """

    def __init__(self, directory: Union[str, os.PathLike], outcome: Optional["ExperimentOutcome"] = None) -> None:
        self.directory = Path(directory)
        self.outcome = outcome

    def __repr__(self) -> str:
        return f"Experiment({str(self.directory)!r})"

    @functools.cached_property
    def config(self) -> "ExperimentConfig":
        """The resolved config the search ran with (its ``config.yaml``)."""
        from raynas.config import load_config

        return load_config(self.directory / "config.yaml")

    @property
    def name(self) -> str:
        """The experiment's name (its folder's name)."""
        return self.directory.name

    def leaderboard(self, metric: Optional[str] = None, mode: Optional[str] = None, *, scope: Optional[str] = None,
                    where: Optional[str] = None, sort: Sequence[str] = (), as_pandas: bool = True) -> Any:
        """Trials ranked best first by ``metric`` (default: the search's ``tune.metric``) at ``scope`` (``last``,
        the default: each trial's last epoch; ``best``: its best epoch), as ``raynas results`` prints them
        (:func:`raynas.results.leaderboard`): the ranking column is named ``final_<metric>`` or
        ``best_<metric>``; ``where`` filters, ``sort`` reorders."""
        from raynas.results import leaderboard

        return leaderboard(self.directory, metric, mode, scope=scope, where=where, sort=sort, as_pandas=as_pandas)

    def table(self, name: str, *, where: Optional[str] = None, sort: Sequence[str] = (),
              as_pandas: bool = True) -> Any:
        """Table ``name`` of the experiment: trials, epochs, alphas, genotypes, decisions, events, or
        evaluations (every ``raynas train`` run of its genotypes) (:func:`raynas.results.load_table`)."""
        from raynas.results import load_table

        return load_table(self.directory, name, where=where, sort=sort, as_pandas=as_pandas)

    def trials(self, metric: Optional[str] = None, mode: Optional[str] = None,
               scope: Optional[str] = None) -> list[Trial]:
        """Every trial, best first by ``metric`` at ``scope`` (as :meth:`leaderboard`)."""
        from raynas.results import leaderboard, ranking_of
        from raynas.spaces import parse_genotype

        table = leaderboard(self.directory, metric, mode, scope=scope)
        ranking = ranking_of(table)
        return [Trial(row["trial_id"], row["status"], ranking["metric"], row[ranking["column"]],
                      parse_genotype(row["genotype"]) if row.get("genotype") else None, row.get("seed"), row,
                      ranking["scope"])
                for row in table.to_pylist()]

    def best(self, metric: Optional[str] = None, mode: Optional[str] = None, scope: Optional[str] = None) -> Trial:
        """The best trial by ``metric`` (default: the search's ``tune.metric``) at ``scope`` (default ``last``);
        :class:`ResultsError` when no trial has reported a value of it yet."""
        ranked = self.trials(metric, mode, scope)
        if not ranked or ranked[0].metric_value is None:
            metric = metric or self.config.tune.metric
            raise ResultsError(f"{self.directory}: no trial has a value of {metric} yet "
                               f"({len(ranked)} trial(s); see its leaderboard)")
        return ranked[0]

    def genotypes(self, top: Optional[int] = None) -> list["Genotype"]:
        """The distinct final genotypes with connected cells, best trial first (``top``: at most that many), as
        ``raynas train`` picks them from this folder; :class:`ConfigError` when no trial derived one."""
        from raynas.evaluation.plan import genotypes_from_experiment
        from raynas.spaces import parse_genotype

        return [parse_genotype(arch.genotype) for arch in genotypes_from_experiment(self.directory, (), top)]

    @property
    def failures(self) -> dict[str, str]:
        """Trial id -> the one-line reason of every failed trial (from the trials table)."""
        from raynas.experiment import failed_trials

        return failed_trials(self.directory)


class Evaluation:
    """An evaluation run folder (:func:`raynas.train` or ``raynas train``): architectures trained from
    scratch, one row per (architecture, seed) in its evaluations table. ``outcome`` is what the run that
    returned it reports; None for one from :func:`load`."""

    def __init__(self, directory: Union[str, os.PathLike], outcome: Optional["EvaluationOutcome"] = None) -> None:
        self.directory = Path(directory)
        self.outcome = outcome

    def __repr__(self) -> str:
        return f"Evaluation({str(self.directory)!r})"

    @functools.cached_property
    def plan(self) -> "EvaluationPlan":
        """The resolved plan the run trained (its ``evaluation.yaml``): architectures, seeds, settings."""
        from raynas.evaluation import read_plan

        return read_plan(self.directory)

    def table(self, *, where: Optional[str] = None, sort: Sequence[str] = (), as_pandas: bool = True) -> Any:
        """The evaluations table: per (architecture, seed) its status, params, MACs, test accuracy per epoch
        and final (:func:`raynas.results.load_table`)."""
        from raynas.results import load_table

        return load_table(self.directory, "evaluations", where=where, sort=sort, as_pandas=as_pandas)


def load(folder: Union[str, os.PathLike]) -> Union[Experiment, Evaluation]:
    """The finished (or running, or interrupted) experiment in ``folder``, to read: an :class:`Experiment` for
    a search folder, an :class:`Evaluation` for a ``raynas train`` run folder. Reads its settings file now
    (a one-line error for a damaged one) and writes nothing; any other folder is a one-line
    :class:`ResultsError`. A storage URI (``s3://``, ``gs://``) is downloaded into its working copy first
    (docs/storage.md)."""
    from raynas.evaluation.plan import is_search_experiment
    from raynas.remote import local_folder
    from raynas.results import EVALUATION_PLAN

    path = Path(local_folder(os.fspath(folder), "folder"))
    if not path.is_dir():
        raise ResultsError(f"experiment folder {path} does not exist")
    if (path / EVALUATION_PLAN).is_file():
        evaluation = Evaluation(path)
        _ = evaluation.plan  # a damaged evaluation.yaml fails here, not on first use
        return evaluation
    if is_search_experiment(path):
        experiment = Experiment(path)
        _ = experiment.config
        return experiment
    raise ResultsError(f"{path} is not a raynas experiment folder: it has neither config.yaml (raynas search) nor "
                       f"{EVALUATION_PLAN} (raynas train); pass <out>/<experiment name>")
