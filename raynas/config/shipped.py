"""The search configs shipped in the package (``raynas/configs/*.yaml``; the repository's ``search_configs``
links to that folder): their names, one-line descriptions, and a CONFIG argument that is a path or a name.

A config's name is its file name without ``.yaml`` (``quickstart``); its description is its first line, a
``#`` comment. ``raynas configs`` lists them; ``raynas search NAME`` and ``raynas validate NAME`` run one.
Reading them imports neither torch nor ray.
"""

from __future__ import annotations

import os
from pathlib import Path

from raynas.errors import ConfigError

#: the folder of the shipped configs (inside the installed package)
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "configs"
_SUFFIXES = (".yaml", ".yml")


def shipped_configs() -> dict[str, Path]:
    """Name -> file of every shipped config, by name (the folder's subfolders, such as the repository's
    ``smoke/``, are not shipped)."""
    return {path.stem: path for path in sorted(SHIPPED_DIR.glob("*.yaml"))}


def describe(path: Path) -> str:
    """The one-line description of a config: its first line without the ``#`` (empty when it is no comment)."""
    with open(path, encoding="utf-8") as handle:
        first = handle.readline().strip()
    return first.lstrip("#").strip() if first.startswith("#") else ""


def resolve_config(config: str | os.PathLike[str]) -> Path:
    """The file a CONFIG argument names: an existing file as given; else a shipped config's name (with or
    without ``.yaml``). A bare name that is neither raises a one-line :class:`ConfigError` listing the
    shipped names; a missing path is returned as given, for the loader to report.
    """
    path = Path(config)
    try:
        is_file = path.is_file()
    except (OSError, ValueError):  # a name too long for the OS, a NUL character: not a file
        is_file = False
    if is_file or len(path.parts) != 1:  # a path with folders is a path, never a name
        return path
    name = path.stem if path.suffix in _SUFFIXES else path.name
    shipped = shipped_configs()
    if name in shipped:
        return shipped[name]
    if path.suffix in _SUFFIXES:
        return path  # a YAML file name: a missing file (the loader's error)
    raise ConfigError(f"CONFIG = {str(config)!r}: no such file and no shipped config of that name; shipped: "
                      f"{', '.join(shipped) or 'none'} (raynas configs describes them), or give a YAML file's path")
