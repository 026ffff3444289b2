"""Where a command will write: run names that stay inside ``--out``, and ``--out`` folders that can exist.

``raynas search``, ``train`` and ``bench build`` create ``<out>/<name>``. A name with a path in it
(``../../x``) would write outside ``--out``; an ``--out`` under a file (``afile/sub``) or on a file system
that takes no folders (``/proc/x``) would fail with an OSError after the config was read and Ray started.
Both are checked before anything is written, as one-line :class:`~raynas.errors.ConfigError`s.
Imports nothing heavy.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Optional

from raynas.errors import ConfigError
from raynas.remote import is_remote

#: what a run folder's name may hold: no separators, no '..', nothing hidden
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: the longest run name (file systems allow 255 bytes per name; the rest is room for suffixes)
MAX_NAME_LENGTH = 128
#: the longest name of one folder on common file systems
_MAX_COMPONENT_BYTES = 255


def folder_name_problem(name: object) -> Optional[str]:
    """What is wrong with ``name`` as the name of a run folder under ``--out``, or None."""
    if not isinstance(name, str) or not FOLDER_NAME.fullmatch(name):
        return ("must be a folder name: letters, digits, '.', '_' or '-', starting with a letter or digit "
                "(no '/' or '..')")
    if len(name) > MAX_NAME_LENGTH:
        return f"{len(name)} characters; a name may have at most {MAX_NAME_LENGTH}"
    return None


def check_folder_name(option: str, name: str) -> None:
    """Raise a one-line ConfigError naming ``option`` when ``name`` is not a plain folder name."""
    problem = folder_name_problem(name)
    if problem is not None:
        shown = name if not isinstance(name, str) or len(name) <= 60 else name[:57] + "..."
        raise ConfigError(f"{option} = {shown!r}: {problem}")


def check_output_parent(option: str, out: str | os.PathLike[str], given: Optional[str] = None) -> None:
    """Raise a one-line ConfigError unless the folder ``out`` exists or can be created; writes nothing that stays.

    ``given`` is the option's value as the user wrote it, when ``out`` is derived from it (a file's folder).

    The nearest existing folder on the way is tried by creating (and at once removing) an empty folder in it:
    permission bits do not tell (root may write anywhere, except where the file system refuses, as /proc does).
    """
    shown = os.fspath(out) if given is None else given
    if is_remote(os.fspath(out)):  # Path() would make 's3://b/x' a local folder 's3:/b/x'
        raise ConfigError(f"{option} = {shown!r}: takes a local folder here; object storage (s3://, gs://) is for "
                          "raynas search --out and the commands that read its folder (docs/storage.md)")
    path = Path(out).absolute()
    missing: list[str] = []
    existing = path
    while not existing.exists() and existing != existing.parent:
        if not existing.is_symlink():
            missing.append(existing.name)
        existing = existing.parent
    if not existing.is_dir():
        what = "it is a file" if existing == path else f"'{existing}' is a file"
        raise ConfigError(f"{option} = {shown!r}: {what}, not a folder; give a folder")
    for name in missing:
        if len(os.fsencode(name)) > _MAX_COMPONENT_BYTES:
            raise ConfigError(f"{option} = {shown[:60]!r}...: a folder name longer than {_MAX_COMPONENT_BYTES} "
                              "bytes; file systems allow at most that")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".raynas-probe-", dir=existing))
    except OSError as exc:
        raise ConfigError(f"{option} = {shown!r}: cannot create folders in '{existing}' "
                          f"({exc.strerror or exc})") from None
