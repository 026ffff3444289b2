"""Config -> Ray Tune objects: the trials' parameter space, the searcher and the scheduler.

Imported lazily by the driver (it imports Ray Tune).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ray import tune

from raynas.config import ExperimentConfig, TrialSpec


@dataclass(frozen=True)
class TuneObjects:
    """What :class:`ray.tune.Tuner` needs from a raynas config."""

    param_space: dict[str, Any]
    tune_config: tune.TuneConfig


def make_tune_objects(cfg: ExperimentConfig, trials: list[TrialSpec]) -> TuneObjects:
    """The parameter space and TuneConfig of ``cfg``'s population (``trials`` from the expanded grid).

    A trial's Tune config is ``{"overrides": {dotted key: value}}``: one grid search over the expanded
    trial list, so raynas decides trial order and repeat seeds.
    """
    param_space = {"overrides": tune.grid_search([t.overrides for t in trials])}
    tune_config = tune.TuneConfig(num_samples=1, max_concurrent_trials=cfg.tune.max_concurrent_trials,
                                  reuse_actors=cfg.tune.reuse_actors)
    return TuneObjects(param_space, tune_config)
