"""``tune.variants``: named presets that set several settings at once, so that methods are one axis of a grid.

A method is rarely one setting: NA-RS is ``method: rs`` with ``selection.name: sampling`` and
``objectives.na: {}``. A config names each such bundle once and the grid varies the name::

    tune:
      grid:
        search.seed: [0, 1, 2]
        variant: [darts, darts-pt, na-rs]
      variants:
        darts: {}
        darts-pt: {selection.name: perturbation}
        na-rs: {method: rs, selection.name: sampling, objectives.na: {}}

A trial's ``variant`` (a top-level setting) is applied when its config is built
(:func:`raynas.config.loader.config_from_dict`): the variant's settings take the place of the config's,
whole sections included (``objectives.na: {}`` is NA with its defaults, whatever the config said). The trial
keeps only ``variant=<name>`` among its overrides, so progress lines, the trials table's ``overrides_json``
and the population plots show the name.

:func:`check_variants` holds the rules, checked before anything runs, each a one-line error naming the entry:
every variant builds a valid config; a variant sets no experiment-wide key (``name``, ``tune``, ``ray``,
``resources``, ``selection.workers``), nor ``variant``, nor a key ``tune.grid`` or ``tune.params`` varies too;
it does not move SD-DARTS' teachers into Ray actors (a trial's resources come from the config itself); the
grid names only defined variants; defined variants are used (by the grid or the config's own ``variant``),
not both; ``tune.params`` cannot draw a variant, and PBT cannot vary one (it copies one trial's search state
into another). Imports neither torch nor Ray.
"""

from __future__ import annotations

import copy

from raynas.config.loader import FieldError, config_from_dict, config_to_dict, resolve_field, show_value
from raynas.config.moved_keys import same_setting
from raynas.config.params import FIXED_KEYS, FIXED_SETTINGS
from raynas.config.schema import ExperimentConfig
from raynas.errors import ConfigError

#: the grid key (and top-level setting) that names a trial's variant
VARIANT_KEY = "variant"


def _entry(name: str) -> str:
    return f"tune.variants[{name!r}]"


def _check_key(name: str, key: str, varied: list[str]) -> None:
    """One key of variant ``name``: a setting or section that may differ between trials and that nothing
    else in the population varies (``varied``: the other grid and params keys)."""
    head = key.split(".", 1)[0]
    if head in FIXED_KEYS or key == VARIANT_KEY:
        raise ConfigError(f"{_entry(name)}: sets {key}, which a variant cannot set; a variant's keys may not lie "
                          f"under {', '.join(FIXED_KEYS)} nor be {VARIANT_KEY}")
    if key in FIXED_SETTINGS:
        raise ConfigError(f"{_entry(name)}: sets {key}, which shapes every trial's Ray resources; set it once in "
                          "the config")
    try:
        resolve_field(key)
    except FieldError as exc:
        raise ConfigError(f"{_entry(name)}: {exc}") from None
    for other in varied:
        if same_setting(key, other):
            raise ConfigError(f"{_entry(name)}: sets {key}, which tune.grid or tune.params varies too "
                              f"({other}); set it in one of them")


def _teacher_actors(cfg: ExperimentConfig) -> int:
    """SD-DARTS teacher actors per search (they get bundles of the trial's placement group)."""
    sd = cfg.objectives.sd
    return int(sd.actors) if sd is not None and sd.placement == "actor" else 0


def check_variants(cfg: ExperimentConfig) -> None:
    """Check ``tune.variants`` and how the config, ``tune.grid`` and ``tune.params`` use them (module docstring);
    raises a one-line :class:`ConfigError`."""
    t = cfg.tune
    variants, grid = t.variants, t.grid
    if VARIANT_KEY in t.params:
        raise ConfigError(f"tune.params[{VARIANT_KEY!r}]: a variant sets several settings at once and cannot be "
                          f"drawn; vary it with tune.grid (tune.grid.{VARIANT_KEY}: [name, ...])")
    if not variants:
        if VARIANT_KEY in grid:
            raise ConfigError(f"tune.grid[{VARIANT_KEY!r}]: tune.variants is empty; define each variant there, "
                              "e.g. tune.variants: {darts-pt: {selection.name: perturbation}}")
        return
    names = ", ".join(map(repr, variants))
    if VARIANT_KEY in grid:
        if cfg.variant is not None:
            raise ConfigError(f"{VARIANT_KEY} = {cfg.variant!r}: tune.grid[{VARIANT_KEY!r}] varies it too; set it "
                              "in one of them")
        for value in grid[VARIANT_KEY]:
            if not isinstance(value, str) or value not in variants:
                raise ConfigError(f"tune.grid[{VARIANT_KEY!r}]: {show_value(value)} is not an entry of tune.variants "
                                  f"(defined: {names})")
        if t.scheduler == "pbt":
            raise ConfigError(f"tune.grid[{VARIANT_KEY!r}]: not allowed with tune.scheduler 'pbt', which copies one "
                              "trial's search state into another: both must run the same variant")
    elif cfg.variant is None:
        raise ConfigError(f"tune.variants: {len(variants)} variant(s) defined ({names}) but no trial runs one; "
                          f"add tune.grid.{VARIANT_KEY}: [name, ...] or set {VARIANT_KEY}")
    varied = [key for key in (*grid, *t.params) if key != VARIANT_KEY]
    base = config_to_dict(cfg)
    for name, entry in variants.items():
        for key in entry:
            _check_key(name, key, varied)
        data = copy.deepcopy(base)
        data[VARIANT_KEY] = name
        try:
            varied_cfg = config_from_dict(data)
        except FieldError as exc:
            raise ConfigError(str(exc)) from None
        if _teacher_actors(varied_cfg) != _teacher_actors(cfg):
            raise ConfigError(f"{_entry(name)}: changes where SD-DARTS' teachers live (objectives.sd.placement "
                              "actor / actors), which shapes every trial's Ray resources; set objectives.sd's "
                              "placement in the config itself")

