"""``--set KEY=VALUE`` overrides, applied to a plain config mapping before it is validated.

``KEY`` is a dotted path (``search.arch_lr``); ``VALUE`` is parsed as YAML, so ``0.01`` is a float,
``[1, 2]`` a list, ``null`` None, ``true`` a boolean and anything else text. Keys are not checked here:
:func:`raynas.config.config_from_dict` reports unknown keys with the valid ones.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import typing
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

import yaml

from raynas.config.moved_keys import MOVED_KEYS, current_key
from raynas.config.schema import ExperimentConfig
from raynas.config.yaml_input import load_yaml
from raynas.errors import ConfigError

_USAGE = "expected KEY=VALUE, e.g. search.epochs=5"


@functools.lru_cache(maxsize=None)
def _free_form_fields() -> tuple[str, ...]:
    """Dotted paths of mapping-typed fields (``tune.grid``), whose own keys contain dots."""
    found: list[str] = []

    def walk(cls: type, prefix: str) -> None:
        for name, hint in typing.get_type_hints(cls).items():
            if hint is dict or typing.get_origin(hint) is dict:
                found.append(prefix + name)
            elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
                walk(hint, f"{prefix}{name}.")

    walk(ExperimentConfig, "")
    return tuple(found)


def split_key(dotted: str) -> list[str]:
    """The path segments of ``dotted``; below ``tune.grid`` the rest is one key (``tune.grid.search.seed``).

    A key that moved (:mod:`raynas.config.moved_keys`) gives its new place's segments, so setting or reading
    it by its old name reaches the same field."""
    dotted = current_key(dotted)
    for field_path in _free_form_fields():
        if dotted.startswith(field_path + ".") and len(dotted) > len(field_path) + 1:
            return field_path.split(".") + [dotted[len(field_path) + 1:]]
    return dotted.split(".")


def set_path(data: MutableMapping[str, Any], dotted: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``dotted`` = ``"a.b.c"`` in place, creating missing mappings on the way."""
    parts = split_key(dotted)
    if not all(parts):
        raise ConfigError(f"{dotted!r}: empty key segment; {_USAGE}")
    _drop_old_names(data, ".".join(parts))
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, MutableMapping):
            where = ".".join(parts[:depth + 1])
            raise ConfigError(f"{where} is a single value ({child!r}), not a section, so {dotted} cannot be set")
        node = child
    node[parts[-1]] = value


def _drop_old_names(data: MutableMapping[str, Any], dotted: str) -> None:
    """Remove the old names (:mod:`raynas.config.moved_keys`) of the settings that setting ``dotted`` replaces,
    so a new-style override of a stored experiment's config replaces its old-style key rather than clashing."""
    for old, new in MOVED_KEYS.items():
        if new == dotted or new.startswith(dotted + "."):
            *parents, leaf = old.split(".")
            node: Any = data
            for part in parents:
                node = node.get(part) if isinstance(node, Mapping) else None
            if isinstance(node, MutableMapping):
                node.pop(leaf, None)


def with_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the nested config ``base`` with each dotted key of ``overrides`` set (a trial's config)."""
    data = copy.deepcopy(dict(base))
    for dotted, value in overrides.items():
        set_path(data, dotted, copy.deepcopy(value))
    return data


def parse_override(item: str) -> tuple[str, Any]:
    """Split ``"a.b=value"`` into the dotted key and the YAML-parsed value; bad syntax raises ConfigError."""
    if not isinstance(item, str) or "=" not in item:
        raise ConfigError(f"--set '{item}': {_USAGE}")
    key, text = item.split("=", 1)
    key = key.strip()
    if not key or not all(key.split(".")):
        raise ConfigError(f"--set '{item}': {_USAGE}")
    try:
        value = load_yaml(text)
    except yaml.YAMLError as exc:
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(f"--set '{item}': the value is not valid YAML ({problem}); quote text, "
                          f"e.g. {key}=\"'a: b'\"") from None
    return key, value


def _plain_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_copy(v) for v in value]
    return value


def _plain_value(value: Any) -> Any:
    """``value`` as plain data YAML can write: numpy scalars and arrays through ``tolist``, containers inside."""
    if isinstance(value, Mapping):
        return {k: _plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_value(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy: what Ray Tune's and Optuna's samplers may hand over
    return tolist() if callable(tolist) and not isinstance(value, (str, bytes)) else value


def override_items(overrides: Sequence[str] | Mapping[str, Any]) -> list[str]:
    """``--set`` items from ``KEY=VALUE`` strings (as they are; one string is one item) or from a mapping of
    dotted keys to values (the Python API): each value becomes its YAML text, which :func:`parse_override`
    reads back as the same value, so both go through :func:`apply_overrides` and its messages. A value YAML
    cannot write is a ConfigError."""
    if not isinstance(overrides, Mapping):
        return list(overrides) if not isinstance(overrides, str) else [overrides]
    items = []
    for key, value in overrides.items():
        if not isinstance(key, str) or not key or not all(key.split(".")):
            raise ConfigError(f"overrides: key {key!r} is not a dotted config key such as search.epochs")
        try:
            text = yaml.safe_dump(_plain_value(value), default_flow_style=True, width=2**31, allow_unicode=True)
        except yaml.YAMLError:
            raise ConfigError(f"overrides[{key!r}]: a value of type {type(value).__name__} is not a config value; "
                              "give a number, text, true/false, None, or a list or mapping of them") from None
        text = text.rstrip("\n")
        if text.endswith("\n..."):  # YAML's end-of-document marker after a plain scalar
            text = text[:-4]
        items.append(f"{key}={text}")
    return items


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A new dict: ``data`` (deep-copied, untouched) with each ``KEY=VALUE`` of ``overrides`` applied in order."""
    if isinstance(overrides, str):
        raise TypeError("overrides must be a sequence of 'KEY=VALUE' strings, not one string")
    result = _plain_copy(data)
    for item in overrides:
        key, value = parse_override(item)
        try:
            set_path(result, key, value)
        except ConfigError as exc:
            raise ConfigError(f"--set '{item}': {exc}") from None
    return result
