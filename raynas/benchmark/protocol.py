"""The benchmark's training protocol: the settings every cell of the ground-truth table is trained with.

The protocol is a :class:`raynas.config.TrainConfig` without genotype and seed, shipped as
``raynas/benchmark/protocol.yaml``. Its hash (:func:`protocol_hash`) is stored in every row of the table, so a
row trained under other settings is never mixed in. Execution settings that do not change what is computed
(device, torch threads) are left out of the hash.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources
from typing import Any, Mapping

import yaml

from raynas.config import TrainConfig, config_to_dict, train_config_from_dict
from raynas.errors import ConfigError

PROTOCOL_FILE = "protocol.yaml"
#: TrainConfig keys that say how, not what, is computed; they stay out of the protocol hash
EXECUTION_KEYS = ("device", "threads")
#: TrainConfig keys a benchmark training sets for itself
PER_CELL_KEYS = ("genotype", "seed")


@functools.lru_cache(maxsize=1)
def shipped_protocol() -> dict[str, Any]:
    """The protocol that ships with raynas (``raynas/benchmark/protocol.yaml``) as a plain dict."""
    text = resources.files("raynas.benchmark").joinpath(PROTOCOL_FILE).read_text(encoding="utf-8")
    return check_protocol(yaml.safe_load(text))


def check_protocol(protocol: Mapping[str, Any]) -> dict[str, Any]:
    """``protocol`` validated as training settings of an NB201 cell (one-line :class:`ConfigError` otherwise)."""
    protocol = dict(protocol)
    for key in PER_CELL_KEYS:
        if key in protocol:
            raise ConfigError(f"protocol.{key}: a benchmark protocol does not set {key!r} (each cell and seed sets it)")
    if protocol.get("space", "nb201") != "nb201":
        raise ConfigError(f"protocol.space: {protocol['space']!r} is not supported; the benchmark covers 'nb201'")
    train_config_from_dict({**protocol, "genotype": "|skip_connect~0|+|skip_connect~0|skip_connect~1|+"
                                                   "|skip_connect~0|skip_connect~1|skip_connect~2|"})
    return protocol


def cell_config(protocol: Mapping[str, Any], arch: str, seed: int, *, threads: int | None = 1) -> TrainConfig:
    """The training config of one cell and seed under ``protocol``."""
    return train_config_from_dict({**dict(protocol), "space": "nb201", "genotype": arch, "seed": int(seed),
                                   "threads": threads})


def resolved_settings(protocol: Mapping[str, Any]) -> dict[str, Any]:
    """What ``protocol`` computes: the resolved training settings (protocol defaults filled in) without the
    per-cell and execution keys."""
    from raynas.train import resolve_protocol

    cfg = resolve_protocol(cell_config(protocol, "|skip_connect~0|+|skip_connect~0|skip_connect~1|+"
                                                 "|skip_connect~0|skip_connect~1|skip_connect~2|", 0))
    settings = config_to_dict(cfg)
    for key in (*PER_CELL_KEYS, *EXECUTION_KEYS):
        settings.pop(key, None)
    return settings


def protocol_hash(protocol: Mapping[str, Any] | None = None) -> str:
    """A short SHA-256 of the resolved settings of ``protocol`` (default: the shipped one)."""
    settings = resolved_settings(shipped_protocol() if protocol is None else protocol)
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def data_setting(protocol: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The protocol's data settings that decide which images a cell is trained and tested on."""
    data = resolved_settings(shipped_protocol() if protocol is None else protocol)["data"]
    return {key: data[key] for key in ("name", "noise_std", "image_size", "seed")}
