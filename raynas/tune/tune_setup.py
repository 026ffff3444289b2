"""Config -> Ray Tune objects: the trials' parameter space, the searcher, the scheduler, checkpoint retention.

A trial's Tune config is always ``{"overrides": {dotted key: value}}`` (the trainable and the results
callback read it). By ``tune.searcher``:

- ``grid``: one ``tune.grid_search`` over raynas' expanded trial list, so raynas decides the trials, their
  order and their repeat seeds;
- ``random``: the same grid search, each entry also holding ``tune.params`` as Tune distributions, which
  Tune's ``BasicVariantGenerator`` draws for every trial (seeded by ``tune.seed``);
- ``optuna``: ``OptunaSearch`` over ``tune.params`` (seeded by ``tune.seed``); suggestion ``n`` also gets the
  fixed overrides of raynas' trial ``n`` (its seed), and Tune's ``ConcurrencyLimiter`` applies
  ``tune.max_concurrent_trials``.

By ``tune.scheduler``: ``fifo`` (Tune's default), ``asha`` (``ASHAScheduler`` on epochs) or ``pbt``
(``PopulationBasedTraining`` mutating ``tune.params``). The metric and mode go to the scheduler (asha, pbt)
and to the searcher (optuna), never to ``TuneConfig`` as well: Tune refuses them twice.
Imported lazily by the driver (it imports Ray Tune).
"""

from __future__ import annotations

import copy
import functools
import random
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ray import tune
from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining, TrialScheduler
from ray.tune.search import BasicVariantGenerator, SearchAlgorithm, Searcher

from raynas.config import ExperimentConfig, ParamSpec, TrialSpec, asha_max_t, check_population

#: Tune's count of results a trial reported; raynas reports once per epoch, so it counts epochs.
TIME_ATTR = "training_iteration"
#: Checkpoints each trial keeps without PBT (the newest to resume, an older one if it is torn), deleted by
#: raynas.tune.retention (Tune's own retention can delete the one its saved state names).
CHECKPOINTS_TO_KEEP = 2


@dataclass(frozen=True)
class TuneObjects:
    """What :class:`ray.tune.Tuner` needs from a raynas config.

    ``num_to_keep`` is the checkpoints each trial keeps (None: every one), for :mod:`raynas.tune.retention`;
    Tune itself always keeps them all.
    """

    param_space: dict[str, Any]
    tune_config: tune.TuneConfig
    num_to_keep: Optional[int] = CHECKPOINTS_TO_KEEP


def tune_domain(spec: ParamSpec) -> Any:
    """The Ray Tune distribution of one ``tune.params`` entry."""
    if spec.kind == "choice":
        return tune.choice(list(spec.values))
    return {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint}[spec.kind](
        spec.low, spec.high)


def pbt_mutation(spec: ParamSpec) -> Any:
    """How PBT explores one entry: a list for choices (PBT shifts to a neighbour), else the distribution.

    PBT multiplies numbers by 0.8 or 1.2, which cannot apply to a choice such as a method name.
    """
    return list(spec.values) if spec.kind == "choice" else tune_domain(spec)


def clip_to_params(params: Sequence[ParamSpec], config: dict[str, Any]) -> dict[str, Any]:
    """PBT's ``custom_explore_fn``: bring perturbed values back into their distributions' ranges.

    PBT scales a value by 0.8 or 1.2 without looking at its bounds; a value past them could make the
    trial's config invalid (a momentum above 1) or leave the searched range.
    """
    overrides = config.get("overrides", {})
    for spec in params:
        if spec.key in overrides:
            overrides[spec.key] = spec.clip(overrides[spec.key])
    return config


def checkpoints_to_keep(cfg: ExperimentConfig) -> Optional[int]:
    """Checkpoints each trial keeps while the experiment runs: with PBT all of them (None).

    Tune's retention is per trial, but under PBT a trial's checkpoint is also the restore point of the
    trials that exploit it, possibly many epochs later; no window of the source's own checkpoints is safe
    (see :mod:`raynas.tune.checkpoints`, which also removes the superseded ones once the population ends).
    """
    if cfg.tune.scheduler == "pbt":
        return None
    return CHECKPOINTS_TO_KEEP


def make_scheduler(cfg: ExperimentConfig, params: Sequence[ParamSpec]) -> Optional[TrialScheduler]:
    """The trial scheduler of ``tune.scheduler`` (None: Tune's FIFO), with the metric and mode."""
    t = cfg.tune
    if t.scheduler == "asha":
        return ASHAScheduler(time_attr=TIME_ATTR, metric=t.metric, mode=t.mode, max_t=asha_max_t(cfg, list(params)),
                             grace_period=t.asha.grace_period, reduction_factor=t.asha.reduction_factor)
    if t.scheduler == "pbt":
        return PopulationBasedTraining(
            time_attr=TIME_ATTR, metric=t.metric, mode=t.mode,
            perturbation_interval=t.pbt.perturbation_interval,
            quantile_fraction=t.pbt.quantile_fraction, resample_probability=t.pbt.resample_probability,
            synch=t.pbt.synch,
            hyperparam_mutations={"overrides": {spec.key: pbt_mutation(spec) for spec in params}},
            custom_explore_fn=functools.partial(clip_to_params, tuple(params)))
    return None


class TrialOverrides(Searcher):
    """Adds raynas' fixed overrides of trial ``n`` (e.g. its seed) to the ``n``-th suggestion of a searcher.

    Everything else (results, completion, concurrency, state) goes to the wrapped searcher unchanged.
    """

    def __init__(self, searcher: Searcher, fixed: Sequence[dict[str, Any]]) -> None:
        self.searcher = searcher
        self.fixed = [dict(f) for f in fixed]
        self.suggested = 0
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def set_search_properties(self, metric: Optional[str], mode: Optional[str], config: dict, **spec: Any) -> bool:
        """Hand Tune's metric, mode and parameter space to the wrapped searcher."""
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Let the wrapped searcher handle concurrency itself if it can."""
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> Optional[dict]:
        """The wrapped searcher's suggestion, with the next trial's fixed overrides under ``overrides``."""
        config = self.searcher.suggest(trial_id)
        if not isinstance(config, dict):
            return config  # None (wait) or Searcher.FINISHED
        fixed = self.fixed[self.suggested] if self.suggested < len(self.fixed) else {}
        self.suggested += 1
        config["overrides"] = {**fixed, **config.get("overrides", {})}
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Forward an intermediate result."""
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: Optional[dict] = None, error: bool = False) -> None:
        """Forward a trial's end."""
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def get_state(self) -> dict:
        """This wrapper's own state (Tune saves the wrapped searcher separately, as with its own wrappers)."""
        return copy.deepcopy({key: value for key, value in self.__dict__.items() if key != "searcher"})

    def set_state(self, state: dict) -> None:
        """Restore what :meth:`get_state` returned."""
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        """Save the wrapped searcher."""
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        """Restore the wrapped searcher."""
        self.searcher.restore(checkpoint_path)


def make_search_alg(cfg: ExperimentConfig, trials: list[TrialSpec]) -> Optional[SearchAlgorithm | Searcher]:
    """The search algorithm of ``tune.searcher`` (None for grid: Tune's default generator)."""
    t = cfg.tune
    if t.searcher == "random":
        return BasicVariantGenerator(max_concurrent=t.max_concurrent_trials or 0, random_state=t.seed)
    if t.searcher == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        return TrialOverrides(OptunaSearch(metric=t.metric, mode=t.mode, seed=t.seed), [s.overrides for s in trials])
    return None


def make_tune_objects(cfg: ExperimentConfig, trials: list[TrialSpec]) -> TuneObjects:
    """The parameter space, TuneConfig and checkpoint retention of ``cfg``'s population.

    ``trials`` is raynas' expanded trial list (the grid, repeats and their seeds). With ``tune.seed`` and
    PBT, Python's and numpy's global random generators of this (driver) process are seeded: PBT draws its
    exploit sources and resampled values from them and has no seed of its own.
    """
    t = cfg.tune
    params = check_population(cfg)
    domains = {spec.key: tune_domain(spec) for spec in params}
    if t.searcher == "optuna":
        param_space: dict[str, Any] = {"overrides": domains}
        num_samples = len(trials)
    else:
        param_space = {"overrides": tune.grid_search([{**trial.overrides, **domains} for trial in trials])}
        num_samples = 1
    search_alg = make_search_alg(cfg, trials)
    scheduler = make_scheduler(cfg, params)
    if t.scheduler == "pbt" and t.seed is not None:
        import numpy as np

        random.seed(t.seed)
        np.random.seed(t.seed)
    tune_config = tune.TuneConfig(
        num_samples=num_samples, search_alg=search_alg, scheduler=scheduler,
        # A BasicVariantGenerator takes the limit itself; Tune wraps a Searcher in a ConcurrencyLimiter.
        max_concurrent_trials=None if isinstance(search_alg, BasicVariantGenerator) else t.max_concurrent_trials,
        reuse_actors=t.reuse_actors)
    return TuneObjects(param_space, tune_config, checkpoints_to_keep(cfg))
