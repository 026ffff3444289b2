"""``tune.params`` (dotted config key -> one distribution) and the population rules around it.

A distribution is a mapping with one key, the kind, as Ray Tune names its sampling functions:

- ``{choice: [v1, v2, ...]}``: one of the values (``tune.choice``);
- ``{uniform: [low, high]}``: a number between the bounds (``tune.uniform``);
- ``{loguniform: [low, high]}``: a number between the bounds, uniform in log space, ``low > 0``
  (``tune.loguniform``);
- ``{randint: [low, high]}``: an integer ``low <= n < high`` (``tune.randint``: ``high`` is excluded).

Every value a distribution can give at its edges (each choice, both bounds; ``high - 1`` for randint) is
applied to the config and validated, so a bad bound fails before anything runs and names its entry.
:func:`check_population` adds the rules that tie ``tune.searcher``, ``tune.scheduler``, ``tune.grid`` and
``tune.params`` together. Imports neither torch nor Ray.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Optional

from raynas.config.limits import MAX_CHOICES
from raynas.config.loader import (FieldError, config_from_dict, config_to_dict, describe_type, resolve_field,
                                  section_type, show_value)
from raynas.config.overrides import set_path, split_key
from raynas.config.schema import ExperimentConfig
from raynas.errors import ConfigError

#: Distribution kinds of ``tune.params``, in the order messages list them.
KINDS = ("choice", "uniform", "loguniform", "randint")
#: Top-level keys that belong to the experiment as a whole and so cannot vary between trials.
FIXED_KEYS = ("name", "tune", "ray", "resources")
#: Single settings that shape every trial's Ray resources, so they cannot vary between trials either.
FIXED_SETTINGS = ("selection.workers",)

_EXAMPLE = "e.g. {loguniform: [1.0e-4, 1.0e-2]} or {choice: [0, 1]}"
_SCALARS = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class ParamSpec:
    """One validated entry of ``tune.params``: its dotted key, kind and values.

    ``values`` holds the choices (kind ``choice``) or ``(low, high)``; every value is as the config
    normalises it (``"3e-4"`` becomes ``0.0003``, an integer for a float setting becomes a float).
    """

    key: str
    kind: str
    values: tuple[Any, ...]

    @property
    def low(self) -> Any:
        """The lower bound (inclusive) of a numeric distribution."""
        return self.values[0]

    @property
    def high(self) -> Any:
        """The upper bound of a numeric distribution (randint: excluded)."""
        return self.values[1]

    def clip(self, value: Any) -> Any:
        """``value`` brought back into the distribution's range (PBT's perturbations scale values past it)."""
        if self.kind == "choice":
            return value
        if self.kind == "randint":
            return int(min(max(round(value), self.low), self.high - 1))
        return float(min(max(value, self.low), self.high))


def entry_name(section: str, key: str) -> str:
    """How messages name one entry of ``tune.grid`` or ``tune.params``: ``tune.params['search.arch_lr']``."""
    return f"tune.{section}[{key!r}]"


def check_setting_key(key: str, section: str) -> Any:
    """A key of ``tune.<section>`` (grid or params) must name one setting outside the experiment-wide sections.

    Returns the setting's type hint; raises ConfigError naming the entry.
    """
    entry = entry_name(section, key)
    head = key.split(".", 1)[0]
    if head in FIXED_KEYS:
        raise ConfigError(f"{entry}: {head} cannot vary between trials; {section} keys may not lie under "
                          f"{', '.join(FIXED_KEYS[:-1])} or {FIXED_KEYS[-1]}")
    if key in FIXED_SETTINGS:
        raise ConfigError(f"{entry}: {key} cannot vary between trials (it sets every trial's Ray resources); "
                          "set it once in the config")
    try:
        _, hint = resolve_field(key)
    except FieldError as exc:
        raise ConfigError(f"{entry}: {exc}") from None
    if section_type(hint) is not None:
        raise ConfigError(f"{entry}: {key} is a section, not a single setting; name one of its keys "
                          f"(e.g. {key}.<key>)")
    return hint


def _setting_kind(hint: Any) -> type:
    """The scalar type of a setting's hint (``Optional[float]`` -> ``float``)."""
    args = [a for a in getattr(hint, "__args__", ()) if a is not type(None)]
    return args[0] if len(args) == 1 else hint


def get_path(data: dict[str, Any], dotted: str) -> Any:
    """The value at ``dotted`` in the nested config mapping ``data`` (the inverse of ``set_path``)."""
    node: Any = data
    for part in split_key(dotted):
        node = node[part]
    return node


def _applied(base: dict[str, Any], key: str, value: Any, entry: str, what: str) -> Any:
    """``value`` as the config normalises it once set at ``key``; an invalid value raises ConfigError."""
    data = copy.deepcopy(base)
    set_path(data, key, copy.deepcopy(value))
    try:
        resolved = config_to_dict(config_from_dict(data))
    except FieldError as exc:
        raise ConfigError(f"{entry}: {what} {show_value(value)} makes the config invalid: {exc}") from None
    return get_path(resolved, key)


def _numbers(entry: str, kind: str, raw: Any) -> tuple[Any, Any]:
    """The two bounds of a numeric distribution as written (numbers, or numbers in text such as '1e-4')."""
    if not isinstance(raw, list) or len(raw) != 2:
        raise ConfigError(f"{entry} = {show_value({kind: raw})}: {kind} takes [low, high], two numbers")
    bounds = []
    for bound in raw:
        number = bound
        if isinstance(bound, str):
            try:
                number = float(bound)
            except ValueError:
                number = bound
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise ConfigError(f"{entry} = {show_value({kind: raw})}: bound {show_value(bound)} is not a "
                              f"finite number")
        bounds.append(number)
    return bounds[0], bounds[1]


def parse_param(cfg_dict: dict[str, Any], key: str, raw: Any) -> ParamSpec:
    """Validate one ``tune.params`` entry against the config ``cfg_dict`` (plain mapping); ConfigError if bad."""
    entry = entry_name("params", key)
    hint = check_setting_key(key, "params")
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ConfigError(f"{entry} = {show_value(raw)}: must be a mapping with one distribution, {_EXAMPLE}")
    (kind, spec), = raw.items()
    if kind not in KINDS:
        raise ConfigError(f"{entry}: unknown distribution {show_value(kind)}; kinds: {', '.join(KINDS)}")
    setting = _setting_kind(hint)
    if kind == "choice":
        if not isinstance(spec, list) or not spec:
            raise ConfigError(f"{entry} = {show_value(raw)}: choice takes a non-empty list of values, "
                              f"e.g. {{choice: [0.0, 0.001]}}")
        if len(spec) > MAX_CHOICES:  # each value is validated as a whole config below
            raise ConfigError(f"{entry}: choice of {len(spec)} values; at most {MAX_CHOICES} are allowed")
        for value in spec:
            if not isinstance(value, _SCALARS):
                raise ConfigError(f"{entry}: choice value {show_value(value)} must be a single value "
                                  f"(null, true/false, a number or text)")
        values = tuple(_applied(cfg_dict, key, value, entry, "choice") for value in spec)
        return ParamSpec(key, kind, values)
    if kind in ("uniform", "loguniform") and setting is not float:
        raise ConfigError(f"{entry}: {kind} draws real numbers but {key} is {describe_type(hint)}; "
                          f"use randint or choice")
    if kind == "randint" and setting not in (int, float):
        raise ConfigError(f"{entry}: randint draws integers but {key} is {describe_type(hint)}; use choice")
    low, high = _numbers(entry, kind, spec)
    shown = f"{entry} = {show_value(raw)}"
    if kind == "randint":
        if not (isinstance(low, int) and isinstance(high, int)):
            raise ConfigError(f"{shown}: randint bounds must be integers")
        if high <= low:
            raise ConfigError(f"{shown}: high must be > low (randint draws low <= n < high)")
        _applied(cfg_dict, key, low, entry, "low bound")
        _applied(cfg_dict, key, high - 1, entry, "largest value (high - 1)")
        return ParamSpec(key, kind, (low, high))
    if high <= low:
        raise ConfigError(f"{shown}: high must be > low")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{shown}: loguniform needs low > 0")
    low = _applied(cfg_dict, key, float(low), entry, "low bound")
    high = _applied(cfg_dict, key, float(high), entry, "high bound")
    return ParamSpec(key, kind, (low, high))


def parse_params(cfg: ExperimentConfig) -> list[ParamSpec]:
    """Every entry of ``cfg.tune.params``, validated (see :func:`parse_param`), in the order written."""
    base = config_to_dict(cfg)
    specs = []
    for key, raw in cfg.tune.params.items():
        if key in cfg.tune.grid:
            raise ConfigError(f"{entry_name('params', key)}: {key} is in tune.grid too; set it in one of them")
        specs.append(parse_param(base, key, raw))
    return specs


def max_epochs(cfg: ExperimentConfig, params: list[ParamSpec]) -> int:
    """The most epochs any trial can run: ``search.epochs`` (or the largest grid or params value of it)
    plus the epochs of the base config's selection stage."""
    from raynas.selection import stage_epochs

    found = [cfg.search.epochs, *cfg.tune.grid.get("search.epochs", [])]
    for spec in params:
        if spec.key == "search.epochs":
            found += [max(spec.values)] if spec.kind == "choice" else [spec.high - 1]
    return max(int(v) for v in found) + stage_epochs(cfg)


def asha_max_t(cfg: ExperimentConfig, params: Optional[list[ParamSpec]] = None) -> int:
    """ASHA's last rung: ``tune.asha.max_t``, by default the most epochs a trial can run."""
    if cfg.tune.asha.max_t is not None:
        return cfg.tune.asha.max_t
    return max_epochs(cfg, parse_params(cfg) if params is None else params)


def check_population(cfg: ExperimentConfig) -> list[ParamSpec]:
    """Validate ``tune.params`` and how searcher, scheduler, grid and params fit together; returns the params.

    Rules: the grid searcher takes no params; optuna takes params but no grid; PBT mutates params, so it needs
    some and the random searcher (Tune refuses other search algorithms with PBT); ASHA's grace period must
    not pass its last rung; PBT's interval must leave an epoch to exploit in.
    """
    t = cfg.tune
    params = parse_params(cfg)
    if t.searcher == "grid" and params:
        raise ConfigError(f"tune.params: {len(params)} distribution(s) but tune.searcher is 'grid', which only "
                          f"runs tune.grid; set tune.searcher to random or optuna to sample them")
    if t.searcher == "optuna":
        if t.grid:
            raise ConfigError(f"tune.grid: not allowed with tune.searcher 'optuna' (keys {', '.join(t.grid)}); "
                              f"Optuna picks every value: write them as tune.params entries, e.g. {{choice: [...]}}")
        if not params:
            raise ConfigError("tune.params: empty, but tune.searcher 'optuna' needs at least one distribution "
                              f"to optimise, {_EXAMPLE}")
    if t.scheduler == "pbt":
        if t.searcher != "random":
            raise ConfigError(f"tune.searcher = {show_value(t.searcher)}: tune.scheduler 'pbt' needs the random "
                              f"searcher (PBT samples tune.params itself and Tune allows no other searcher with it)")
        if not params:
            raise ConfigError("tune.params: empty, but tune.scheduler 'pbt' mutates the values of tune.params; "
                              f"give at least one distribution, {_EXAMPLE}")
        epochs = max_epochs(cfg, params)
        if t.pbt.perturbation_interval >= epochs:
            raise ConfigError(f"tune.pbt.perturbation_interval = {t.pbt.perturbation_interval}: must be < the "
                              f"trials' epochs ({epochs}), or PBT never exploits")
    if t.scheduler == "asha":
        last = asha_max_t(cfg, params)
        if t.asha.grace_period > last:
            where = "tune.asha.max_t" if t.asha.max_t is not None else "search.epochs, the default of tune.asha.max_t"
            raise ConfigError(f"tune.asha.grace_period = {t.asha.grace_period}: must be <= {last} ({where})")
    return params
