"""Load, validate and write configs: YAML file -> plain mapping -> frozen dataclasses, and back.

Validation follows the dataclasses themselves: each field's type hint gives its type, its ``metadata`` the
rules (``choices``, ``registry``, ``ge``/``gt``/``le``/``lt``), and :mod:`raynas.config.checks` the rules
across fields. The first problem found raises a one-line :class:`~raynas.errors.ConfigError` that names the
field path, the value and what is allowed, e.g. ``search.arch_lr = -0.1: must be > 0``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import re
import types
import typing
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Union, overload

import yaml

from raynas.config.checks import SECTION_CHECKS, SECTION_NORMALIZERS, join_path
from raynas.config.moved_keys import current_key, same_setting
from raynas.config.overrides import apply_overrides, set_path
from raynas.config.schema import ExperimentConfig, TrainConfig
from raynas.config.yaml_input import load_yaml
from raynas.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")  # a config dataclass

_MISSING = object()
# PyYAML follows YAML 1.1, where "3e-4" (no dot) is a string, not a float; such strings are numbers here.
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
_BOUNDS = (("gt", ">", lambda v, b: v > b), ("ge", ">=", lambda v, b: v >= b),
           ("lt", "<", lambda v, b: v < b), ("le", "<=", lambda v, b: v <= b))
_MAX_SHOWN = 80
#: the largest config file read (configs are a few KiB)
MAX_CONFIG_BYTES = 4 * 2**20


class FieldError(ConfigError):
    """A :class:`ConfigError` about one field; ``path`` is its dotted path, so callers can say where it came from."""

    def __init__(self, path: str, detail: str, value: Any = _MISSING) -> None:
        self.path = path
        self.detail = detail
        self.value = value
        head = path if value is _MISSING else f"{path} = {show_value(value)}"
        super().__init__(f"{head}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Ray pickles exceptions raised in workers; the plain ConfigError keeps the message.
        return ConfigError, (str(self),)


def show_value(value: Any) -> str:
    """A value as a message shows it: YAML words for null/booleans, ``repr`` otherwise, never multi-line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN - 3] + "..."


def _show_bound(bound: Any) -> str:
    if isinstance(bound, float) and bound.is_integer():
        return str(int(bound))
    return repr(bound)


@functools.lru_cache(maxsize=None)
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _split_optional(hint: Any) -> tuple[Any, bool]:
    """``Optional[X]`` -> ``(X, True)``; anything else -> ``(hint, False)``."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = typing.get_args(hint)
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return rest[0], True
    return hint, False


def _is_section(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def section_type(hint: Any) -> type | None:
    """The config dataclass a type hint names (through ``Optional``), or None for a single setting."""
    base = _split_optional(hint)[0]
    return base if _is_section(base) else None


def describe_type(hint: Any) -> str:
    """A field's type in words, as messages and the config reference show it ("an integer or null")."""
    base, optional = _split_optional(hint)
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if _is_section(base):
        text = "a mapping (section)"
    elif base is dict or typing.get_origin(base) is dict:
        text = "a mapping"
    elif typing.get_origin(base) is list:
        item = describe_type(typing.get_args(base)[0])
        text = f"a list of {item.split(' ', 1)[1]}s" if item.startswith(("a ", "an ")) else f"a list of {item}"
    else:
        text = words.get(base, getattr(base, "__name__", str(base)))
    return f"{text} or null" if optional else text


def _unknown_key(key: Any, cls: type, prefix: str) -> FieldError:
    valid = sorted(f.name for f in dataclasses.fields(cls) if f.init)
    where = f"valid keys of {prefix}" if prefix else "valid top-level keys"
    close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return FieldError(join_path(prefix, str(key)), f"unknown key; {where}: {', '.join(valid)}{hint}")


def resolve_field(dotted: str, cls: type = ExperimentConfig) -> tuple[dataclasses.Field, Any]:
    """The dataclass field and type hint at ``dotted`` (e.g. ``search.arch_lr``); unknown keys raise FieldError."""
    section: Any = cls
    prefix = ""
    parts = current_key(dotted).split(".")
    for i, part in enumerate(parts):
        if not _is_section(section):
            raise FieldError(prefix, f"is a single setting, not a section; it has no key {'.'.join(parts[i:])!r}")
        fields = {f.name: f for f in dataclasses.fields(section) if f.init}
        if part not in fields:
            raise _unknown_key(part, section, prefix)
        found, hint = fields[part], _type_hints(section)[part]
        prefix = join_path(prefix, part)
        section = _split_optional(hint)[0]
    return found, hint


def _plain(value: Any) -> Any:
    """A YAML-safe deep copy: dataclasses and mappings -> dicts, tuples -> lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _convert(value: Any, hint: Any, path: str) -> Any:
    """``value`` as the type ``hint`` asks for, or a FieldError; int widens to float, bool never counts as a number."""
    base, optional = _split_optional(hint)
    if value is None:
        if optional:
            return None
        raise FieldError(path, f"must be {describe_type(hint)}", value)
    if _is_section(base):
        if not isinstance(value, Mapping):
            raise FieldError(path, f"must be a mapping of {path} keys (write {{}} for the defaults)", value)
        return _build(base, value, path)
    if base is bool:
        if isinstance(value, bool):
            return value
    elif base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif base is float:
        number: Any = value
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
            number = float(value)
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            if not math.isfinite(number):
                raise FieldError(path, "must be a finite number", value)
            return float(number)
    elif base is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)):
            raise FieldError(path, f"must be {describe_type(hint)} (quote it in YAML: '{value}')", value)
    elif base is dict or typing.get_origin(base) is dict:
        if isinstance(value, Mapping):
            for key in value:
                if not isinstance(key, str):
                    raise FieldError(f"{path}[{show_value(key)}]", "keys must be strings")
            return _plain(value)
    elif typing.get_origin(base) is list:
        if isinstance(value, list):
            return _convert_items(value, typing.get_args(base)[0], path)
        if isinstance(value, str):  # the common slip of one path for a list of them
            raise FieldError(path, f"must be {describe_type(hint)}; write [{value}] for one", value)
    else:
        raise TypeError(f"{path}: unsupported field type {hint!r} in the config schema")
    raise FieldError(path, f"must be {describe_type(hint)}", value)


def _convert_items(values: list[Any], item: Any, path: str) -> list[Any]:
    """Each entry of a list setting converted to the item type (``list[str]``: strings)."""
    return [_convert(value, item, f"{path}[{i}]") for i, value in enumerate(values)]


def _check_rules(value: Any, raw: Any, meta: Mapping[str, Any], path: str) -> None:
    """Apply a field's metadata rules to its converted ``value``; messages show the ``raw`` value as written."""
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        words = [c for c in choices if isinstance(c, str)]
        close = difflib.get_close_matches(value, words, n=1, cutoff=0.6) if isinstance(value, str) else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise FieldError(path, f"must be one of {', '.join(show_value(c) for c in choices)}{hint}", raw)
    bounds = [(symbol, meta[key], ok) for key, symbol, ok in _BOUNDS if key in meta]
    if bounds and not all(ok(value, bound) for _, bound, ok in bounds):
        allowed = " and ".join(f"{symbol} {_show_bound(bound)}" for symbol, bound, _ in bounds)
        raise FieldError(path, f"must be {allowed}", raw)
    registry_name = meta.get("registry")
    if registry_name is not None:
        registry = registry_for(registry_name)
        if value not in registry:
            raise FieldError(path, registry.unknown_message(value), raw)


def registry_for(name: str) -> Any:
    """The registry a field's ``registry`` metadata names (imported here: the registries import no torch)."""
    if name == "spaces":
        from raynas.spaces import SPACES
        return SPACES
    if name == "datasets":
        from raynas.data import DATASETS
        return DATASETS
    if name == "selections":
        from raynas.selection import SELECTIONS
        return SELECTIONS
    raise ValueError(f"config schema names an unknown registry {name!r}")


def _move_old_keys(data: Mapping[Any, Any], prefix: str) -> tuple[Mapping[Any, Any], dict[str, str]]:
    """``data``, the mapping of the section at ``prefix``, with each key that moved (a stored experiment's
    ``selection.proj_intv``) put in its new place (``selection.perturbation.proj_intv``), and the new paths
    with the names they were written as. A setting given under both names is a FieldError."""
    moved: dict[str, str] = {}
    result: dict[Any, Any] | None = None
    for key in list(data):
        old = join_path(prefix, str(key))
        new = current_key(old)
        if new == old:
            continue
        if result is None:
            result = _plain(data)
        *parents, leaf = new[len(prefix) + 1 if prefix else 0:].split(".")
        node = result
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, MutableMapping):
                del result[key]  # under a subsection that is not a mapping, which the build reports
                break
            node = child
        else:
            if leaf in node:
                raise FieldError(old, f"is also given as {new}, its new name; give it once", data[key])
            node[leaf] = result.pop(key)
            moved[new] = old
    return (data if result is None else result), moved


def _written_as(exc: FieldError, moved: Mapping[str, str]) -> FieldError:
    """``exc`` naming the setting as the config wrote it (its old name), when it moved."""
    for new, old in moved.items():
        if exc.path == new or exc.path.startswith((new + ".", new + "[")):
            return FieldError(old + exc.path[len(new):], exc.detail, exc.value)
    return exc


def _build(cls: type[C], data: Mapping[Any, Any], prefix: str) -> C:
    data, moved = _move_old_keys(data, prefix)
    try:
        return _build_section(cls, data, prefix)
    except FieldError as exc:
        raise _written_as(exc, moved) from None


def _build_section(cls: type[C], data: Mapping[Any, Any], prefix: str) -> C:
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise _unknown_key(key, cls, prefix)
    hints = _type_hints(cls)
    kwargs = {}
    for name, spec in fields.items():
        if name not in data:
            continue
        path = join_path(prefix, name)
        raw = data[name]
        words = spec.metadata.get("bool_words")
        if words is not None and isinstance(raw, bool):
            raw = words[raw]  # YAML 1.1 reads the words on/off (yes/no) as booleans
        value = _convert(raw, hints[name], path)
        if value is not None and not _is_section(_split_optional(hints[name])[0]):
            _check_rules(value, raw, spec.metadata, path)
        kwargs[name] = value
    obj = cls(**kwargs)
    normalize = SECTION_NORMALIZERS.get(cls)
    if normalize is not None:
        obj = normalize(obj)
    for check in SECTION_CHECKS.get(cls, ()):
        problem = check(obj, prefix)
        if problem is not None:
            raise FieldError(problem.path, problem.detail, problem.value)
    return obj


@overload
def config_from_dict(data: Mapping[str, Any]) -> ExperimentConfig: ...
@overload
def config_from_dict(data: Mapping[str, Any], cls: type[C]) -> C: ...
def config_from_dict(data: Mapping[str, Any], cls: Any = ExperimentConfig) -> Any:
    """Validate a plain mapping (parsed YAML) into the config dataclass ``cls``; problems raise FieldError.

    Missing keys take the dataclass defaults, so ``config_from_dict({})`` is the default config.
    """
    if not _is_section(cls):
        raise TypeError(f"cls must be a config dataclass, not {cls!r}")
    if not isinstance(data, Mapping):
        raise ConfigError(f"a config must be a mapping of config keys, not {show_value(data)}")
    if cls is ExperimentConfig:
        return _build_with_variant(data)
    return _build(cls, data, "")


def _build_with_variant(data: Mapping[str, Any]) -> ExperimentConfig:
    """An :class:`ExperimentConfig` from ``data`` with its ``variant``'s settings (``tune.variants``) applied.

    The variant's settings take the place of the config's, as a grid entry's do. A problem with a value the
    variant set names the variant; any other problem of the varied config says which variant it ran with.
    Applying a variant to a config it was already applied to changes nothing, so a trial's resolved config
    reads back as itself.
    """
    name, tune = data.get("variant"), data.get("tune", {})
    variants = tune.get("variants", {}) if isinstance(tune, Mapping) else None
    if name is None or not isinstance(name, str) or not isinstance(variants, Mapping):
        return _build(ExperimentConfig, data, "")  # no variant, or a wrong type the build itself reports
    if name not in variants:
        defined = ", ".join(map(repr, variants)) or "none"
        raise FieldError("variant", f"not an entry of tune.variants (defined: {defined})", name)
    entry = variants[name]
    if not isinstance(entry, Mapping):
        raise FieldError(f"tune.variants[{name!r}]", "must be a mapping of dotted config keys to values, e.g. "
                         "{search.order: 2, objectives.na: {}}", entry)
    varied = _plain(data)
    for key, value in entry.items():
        if not isinstance(key, str) or not key or not all(key.split(".")):
            raise FieldError(f"tune.variants[{name!r}]", f"key {show_value(key)} is not a dotted config key "
                             "such as search.order")
        try:
            set_path(varied, key, _plain(value))
        except ConfigError as exc:
            raise FieldError(f"tune.variants[{name!r}]", str(exc)) from None
    try:
        return _build(ExperimentConfig, varied, "")
    except FieldError as exc:
        if any(same_setting(str(key), exc.path) for key in entry):
            raise FieldError(f"tune.variants[{name!r}]", f"sets {exc}") from None
        raise FieldError(exc.path, f"{exc.detail} (with variant {name!r})", exc.value) from None


def train_config_from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """Validate a plain mapping into a :class:`TrainConfig` (``raynas train``)."""
    return config_from_dict(data, TrainConfig)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as a plain, YAML-safe dict (tuples become lists); the inverse of config_from_dict."""
    if not (dataclasses.is_dataclass(cfg) and not isinstance(cfg, type)):
        raise TypeError(f"expected a config dataclass instance, not {cfg!r}")
    return _plain(cfg)


def dump_config(cfg: Any, path: str | os.PathLike[str]) -> None:
    """Write ``cfg`` as YAML to ``path`` atomically: a temp file in the same folder, then ``os.replace``."""
    from raynas.files import write_text_atomically

    write_text_atomically(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True,
                                               default_flow_style=False))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return " ".join(f"invalid YAML{where}: {problem}".split())


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The top-level mapping of a YAML config file; a missing, unreadable, oversized or malformed file raises
    ConfigError, and so do duplicate keys, deep nesting and alias bombs (:mod:`raynas.config.yaml_input`)."""
    source = Path(path)
    try:
        with source.open("rb") as stream:
            raw = stream.read(MAX_CONFIG_BYTES + 1)  # bounded: a config named /dev/zero must not fill memory
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{source}: larger than {MAX_CONFIG_BYTES // 2**20} MiB; a config file may hold at "
                              f"most {MAX_CONFIG_BYTES // 2**20} MiB")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a folder, not a config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the config file ({exc.strerror})") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {_yaml_problem(exc)}") from None
    if data is None:
        raise ConfigError(f"{source}: the file is empty; expected a mapping of config keys such as 'space: nb201'")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping of config keys such as 'space: nb201', "
                          f"not {show_value(data)}")
    return dict(data)


def _origin(path: str, overrides: Sequence[str], source: str) -> str:
    """Which input set the field at ``path``: the last ``--set`` that touches it, else the file."""
    for item in reversed(overrides):
        key = current_key(item.split("=", 1)[0].strip())
        if key == path or path.startswith((key + ".", key + "[")) or key.startswith(path + "."):
            return f"--set '{item}'"
    return source


#: how messages name a config given as a mapping (the Python API) rather than a file
MAPPING_SOURCE = "config dict"

ConfigSource = Union[str, "os.PathLike[str]", Mapping[str, Any]]
"""A config as :func:`load_config` takes it: a YAML file's path, or the mapping such a file holds."""


@overload
def load_config(path: ConfigSource, overrides: Sequence[str] = ()) -> ExperimentConfig: ...
@overload
def load_config(path: ConfigSource, overrides: Sequence[str] = (), *, cls: type[C]) -> C: ...
def load_config(path: ConfigSource, overrides: Sequence[str] = (), *, cls: Any = ExperimentConfig) -> Any:
    """Read a YAML config (or take the mapping one holds), apply ``--set KEY=VALUE`` overrides and validate
    it into ``cls``; a mapping is copied, never changed.

    Every problem raises a one-line ConfigError prefixed with where it came from: the file
    (``search_configs/x.yaml: search.arch_lr = -0.1: must be > 0``), ``config dict`` for a mapping, or the
    override that set the field.
    """
    is_mapping = isinstance(path, Mapping)
    data = apply_overrides(path if isinstance(path, Mapping) else read_config_file(path), overrides)
    try:
        return config_from_dict(data, cls)
    except FieldError as exc:
        source = MAPPING_SOURCE if is_mapping else str(path)
        raise ConfigError(f"{_origin(exc.path, overrides, source)}: {exc}") from None


def load_train_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> TrainConfig:
    """Like :func:`load_config` for a :class:`TrainConfig` YAML file."""
    return load_config(path, overrides, cls=TrainConfig)
