"""The fingerprint of a folder's settings file, taken when the run starts and compared on every resume.

A search folder's ``config.yaml``, an evaluation run's ``evaluation.yaml`` and a benchmark build's
``benchmark.yaml`` are what ``raynas resume`` reads to continue. Edited between a kill and a resume, they
would make the trials still running train partly with the old settings and partly with the new ones, and
record only the new. So the run that creates a folder writes ``<folder>/config_fingerprint.json``: the
SHA-256 of the file's content as parsed (comments and layout do not count) and the values themselves, so
a resume that finds the file changed can say which keys changed (:func:`check_config`). A deliberate
change is accepted explicitly (:func:`accept_change`): the fingerprint then follows the new content and
keeps a history of every accepted change (when, which keys, old and new values, by which command).

Nothing here imports torch or Ray.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shlex
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from raynas.errors import ConfigError

FINGERPRINT_FILE = "config_fingerprint.json"
FORMAT_VERSION = 1
ABSENT = "(absent)"
"""How a key that one side does not have is shown."""


def canonical(values: Any) -> Any:
    """``values`` as plain JSON data (what is hashed, stored and compared): YAML's dates become text."""
    return json.loads(json.dumps(values, sort_keys=True, default=str))


def digest(values: Any) -> str:
    """SHA-256 (hex) of ``values``' canonical JSON."""
    text = json.dumps(canonical(values), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value of every leaf of nested mappings (lists are leaves)."""
    if not isinstance(values, Mapping) or (prefix and not values):
        return {prefix: values}
    flat: dict[str, Any] = {}
    for key, value in values.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def changed_keys(old: Any, new: Any) -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (old value, new value) of every leaf that differs (:data:`ABSENT` where missing)."""
    before, after = flatten(canonical(old)), flatten(canonical(new))
    return {key: (before.get(key, ABSENT), after.get(key, ABSENT))
            for key in sorted(set(before) | set(after)) if before.get(key, ABSENT) != after.get(key, ABSENT)}


def show(value: Any, limit: int = 40) -> str:
    """A value in a message: compact JSON, cut to ``limit`` characters."""
    text = value if value == ABSENT else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def utc_now() -> str:
    """The time now, UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ConfigChange:
    """How a folder's settings file differs from its fingerprint."""

    source: str  # the settings file's name, e.g. config.yaml
    changed: dict[str, tuple[Any, Any]]
    old_sha256: str
    new_sha256: str
    new_values: Any = field(repr=False, default=None)

    def summary(self, limit: int = 6) -> str:
        """``search.arch_lr 0.01 -> 0.3, data.noise_std 0.5 -> 0.0`` (the first ``limit`` keys, then a count)."""
        items = [f"{key} {show(old)} -> {show(new)}" for key, (old, new) in self.changed.items()]
        more = len(items) - limit
        return ", ".join(items[:limit]) + (f" and {more} more key(s)" if more > 0 else "")

    def detail(self) -> dict[str, Any]:
        """The change as plain data (the history in the fingerprint file, the events table)."""
        return {"file": self.source, "changed": {key: [old, new] for key, (old, new) in self.changed.items()},
                "old_sha256": self.old_sha256, "new_sha256": self.new_sha256}


def fingerprint_path(directory: Path) -> Path:
    """The fingerprint file of ``directory``."""
    return Path(directory) / FINGERPRINT_FILE


def read_values(directory: Path, source: str) -> dict[str, Any]:
    """The content of ``directory/source`` as parsed (a bounded, safe YAML read; ConfigError if unreadable)."""
    from raynas.config import read_config_file

    return read_config_file(Path(directory) / source)


def _write(directory: Path, data: Mapping[str, Any]) -> Path:
    from raynas.files import write_text_atomically

    path = fingerprint_path(directory)
    write_text_atomically(path, json.dumps(data, indent=1, sort_keys=False) + "\n")
    return path


def record_fingerprint(directory: str | os.PathLike, source: str) -> Path:
    """Write the fingerprint of ``directory/source`` as it is now (a run that creates its folder)."""
    values = canonical(read_values(Path(directory), source))
    return _write(Path(directory), {"version": FORMAT_VERSION, "file": source, "sha256": digest(values),
                                    "recorded": utc_now(), "values": values, "accepted_changes": []})


def read_fingerprint(directory: Path) -> Optional[dict[str, Any]]:
    """The fingerprint file's content; None when there is none; a one-line ConfigError when it is damaged."""
    path = fingerprint_path(directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())[:120]}); it "
                          "holds the settings the run started with: restore it, or remove it to take the "
                          "current settings as they are") from None
    if not isinstance(data, dict) or not {"sha256", "values", "file"} <= set(data):
        raise ConfigError(f"{path} is not a raynas config fingerprint (expected the keys file, sha256, values): "
                          "restore it, or remove it to take the current settings as they are")
    return data


def check_config(directory: str | os.PathLike, source: str) -> tuple[bool, Optional[ConfigChange]]:
    """Compare ``directory/source`` with its fingerprint: ``(recorded_now, change)``.

    ``change`` is None when the content is the fingerprinted one. A folder made before raynas took
    fingerprints has none: it is recorded now from the file as it is (``recorded_now`` True), and later
    resumes compare against it.
    """
    directory = Path(directory)
    stored = read_fingerprint(directory)
    if stored is None:
        record_fingerprint(directory, source)
        return True, None
    values = canonical(read_values(directory, source))
    new = digest(values)
    if new == stored["sha256"]:
        return False, None
    return False, ConfigChange(source, changed_keys(stored["values"], values), str(stored["sha256"]), new, values)


def accept_change(directory: str | os.PathLike, change: ConfigChange) -> Path:
    """Make ``change`` the folder's settings: the fingerprint follows the new content, and its history of
    accepted changes gets this one (time, keys, hashes, host, pid, command)."""
    directory = Path(directory)
    stored = read_fingerprint(directory) or {"version": FORMAT_VERSION, "file": change.source,
                                             "recorded": utc_now(), "accepted_changes": []}
    history = list(stored.get("accepted_changes") or [])
    history.append({"at": utc_now(), **change.detail(), "host": socket.gethostname(), "pid": os.getpid(),
                    "command": shlex.join(sys.argv)})
    return _write(directory, {**stored, "sha256": change.new_sha256, "values": change.new_values,
                              "accepted_changes": history})
