"""Expand ``tune.grid`` into the trials of an experiment, each with its own fully validated config.

Trials are the cartesian product of the grid (keys in the order written), the whole product repeated
``tune.num_samples`` times: trial ``i`` is repeat ``i // len(product)`` of combination ``i % len(product)``.
Every combination is validated before anything runs, so a bad grid value fails at once and names its entry.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from raynas.config.limits import MAX_TRIALS  # a guard against a grid of more trials than anyone means to run
from raynas.config.loader import FieldError, config_from_dict, config_to_dict, show_value
from raynas.config.moved_keys import current_key
from raynas.config.overrides import set_path
from raynas.config.params import check_population, check_setting_key, get_path
from raynas.config.schema import ExperimentConfig
from raynas.config.variants import check_variants
from raynas.errors import ConfigError



@dataclass(frozen=True)
class TrialSpec:
    """One trial: its position, the grid values it sets (dotted key -> value) and its validated config.

    ``sample`` is the repeat number (0 .. ``tune.num_samples`` - 1) of the grid combination.
    """

    index: int
    overrides: dict[str, Any]
    config: ExperimentConfig
    sample: int = field(default=0)


def _check_grid_key(key: str) -> None:
    """A grid key must name one setting outside the experiment-wide sections."""
    check_setting_key(key, "grid")


def _culprit(path: str, combo: dict[str, Any]) -> str:
    """The grid entry to blame for an error at ``path``: its own entry, else the whole combination."""
    path = current_key(path)
    for key, value in combo.items():
        if path == current_key(key) or path.startswith(current_key(key) + "."):  # the entry's setting, or in it
            return f"tune.grid[{key!r}] = {show_value(value)}"
    shown = ", ".join(f"{key}={show_value(value)}" for key, value in combo.items())
    return f"tune.grid combination ({shown})"


def _trial_config(base: dict[str, Any], combo: dict[str, Any]) -> tuple[dict[str, Any], ExperimentConfig]:
    """Apply one grid combination to ``base`` and validate it; returns the normalised values and the config."""
    data = copy.deepcopy(base)
    for key, value in combo.items():
        set_path(data, key, copy.deepcopy(value))
    try:
        config = config_from_dict(data)
    except FieldError as exc:
        raise ConfigError(f"{_culprit(exc.path, combo)}: {exc}") from None
    resolved = config_to_dict(config)
    # The validated values (3e-4 written as text becomes a float, 1 for a float field becomes 1.0).
    return {key: get_path(resolved, key) for key in combo}, config


def expand_trials(cfg: ExperimentConfig) -> list[TrialSpec]:
    """Every trial of ``cfg``: the grid's cartesian product, repeated ``cfg.tune.num_samples`` times.

    An empty grid gives ``num_samples`` trials of ``cfg`` itself. Raises ConfigError for a grid key that is
    unknown, not a single setting or under name/tune/ray/resources, for a value that makes a config invalid,
    for ``tune.variants`` that :func:`raynas.config.variants.check_variants` refuses, and for ``tune.params``
    or searcher/scheduler settings that :func:`raynas.config.params.check_population` refuses. A grid entry
    ``variant: [names]`` is one axis like any other: each trial's variant is applied when its config is built.
    With the random/optuna searcher a trial's ``tune.params`` values are drawn when it starts.
    """
    grid = cfg.tune.grid
    for key in grid:
        _check_grid_key(key)
    check_variants(cfg)
    total = math.prod(len(values) for values in grid.values()) * cfg.tune.num_samples
    if total > MAX_TRIALS:
        raise ConfigError(f"tune.grid: {total} trials (grid combinations x tune.num_samples "
                          f"{cfg.tune.num_samples}); at most {MAX_TRIALS} are allowed")
    base = config_to_dict(cfg)
    keys = list(grid)
    points = [_trial_config(base, dict(zip(keys, combo))) for combo in itertools.product(*grid.values())]
    check_population(cfg)
    specs: list[TrialSpec] = []
    for sample in range(cfg.tune.num_samples):
        for overrides, config in points:
            specs.append(TrialSpec(len(specs), copy.deepcopy(overrides), config, sample))
    return specs


def _label_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_label_value(v) for v in value) + "]"
    return show_value(value)


def trial_label(spec: TrialSpec) -> str:
    """A short label of what sets the trial apart, e.g. ``search.seed=1,search.arch_lr=0.01`` (``base`` if nothing)."""
    parts = [f"{key}={_label_value(value)}" for key, value in spec.overrides.items()]
    if spec.sample:
        parts.append(f"sample={spec.sample}")
    return ",".join(parts) or "base"
