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

from raynas.config.loader import (FieldError, config_from_dict, config_to_dict, resolve_field, section_type,
                                  show_value)
from raynas.config.overrides import set_path, split_key
from raynas.config.schema import ExperimentConfig
from raynas.errors import ConfigError

#: Top-level keys that belong to the experiment as a whole and so cannot vary between trials.
FIXED_KEYS = ("name", "tune", "ray", "resources")
#: A guard against a grid that would expand into more trials than anyone means to run.
MAX_TRIALS = 10_000


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
    entry = f"tune.grid[{key!r}]"
    head = key.split(".", 1)[0]
    if head in FIXED_KEYS:
        raise ConfigError(f"{entry}: {head} cannot vary between trials; grid keys may not lie under "
                          f"{', '.join(FIXED_KEYS[:-1])} or {FIXED_KEYS[-1]}")
    try:
        _, hint = resolve_field(key)
    except FieldError as exc:
        raise ConfigError(f"{entry}: {exc}") from None
    if section_type(hint) is not None:
        raise ConfigError(f"{entry}: {key} is a section, not a single setting; name one of its keys "
                          f"(e.g. {key}.<key>)")


def _get_path(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in split_key(dotted):
        node = node[part]
    return node


def _culprit(path: str, combo: dict[str, Any]) -> str:
    """The grid entry to blame for an error at ``path``: its own entry, else the whole combination."""
    for key, value in combo.items():
        if path == key or path.startswith(key + "."):
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
    return {key: _get_path(resolved, key) for key in combo}, config


def expand_trials(cfg: ExperimentConfig) -> list[TrialSpec]:
    """Every trial of ``cfg``: the grid's cartesian product, repeated ``cfg.tune.num_samples`` times.

    An empty grid gives ``num_samples`` trials of ``cfg`` itself. Raises ConfigError for a grid key that is
    unknown, not a single setting or under name/tune/ray/resources, and for a value that makes a config invalid.
    """
    grid = cfg.tune.grid
    for key in grid:
        _check_grid_key(key)
    total = math.prod(len(values) for values in grid.values()) * cfg.tune.num_samples
    if total > MAX_TRIALS:
        raise ConfigError(f"tune.grid: {total} trials (grid combinations x tune.num_samples "
                          f"{cfg.tune.num_samples}); at most {MAX_TRIALS} are allowed")
    base = config_to_dict(cfg)
    keys = list(grid)
    points = [_trial_config(base, dict(zip(keys, combo))) for combo in itertools.product(*grid.values())]
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
