"""Durable, atomic file writes: every file raynas writes goes through :func:`replace_together`.

A writer gets fresh temporary paths next to its targets, writes them, and only when every one of them is
written are they flushed to disk and renamed onto their targets, then the folders flushed too. So a
reader (or a process started after a crash or a power loss) sees each target's previous content or its new
one, never half a file; a group of targets is never left half old, half new by an error in a writer; two
writers of one target never share a temporary file (each gets its own random name), so the last rename
wins whole. New files get mode ``0666 & ~umask``, as ``open()`` gives, not ``tempfile.mkstemp``'s private
0600: tables, plots and models on a shared file system stay readable by the colleagues the umask allows.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any, Iterator, Sequence, Union

PathLike = Union[str, "os.PathLike[str]"]

TEMP_SUFFIX = ".tmp"
"""Temporary files are named ``.<target name>.<random>.tmp``: hidden, and never a ``*.parquet`` a reader lists."""


def temp_path_for(target: Path) -> Path:
    """A fresh temporary path in ``target``'s folder, created empty (exclusively) with mode 0666 & ~umask."""
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
        except FileExistsError:  # 48 random bits: practically never; then another name
            continue
        os.close(fd)
        return tmp


def fsync_file(path: PathLike) -> None:
    """Flush ``path``'s content to disk (its writer may have closed it: an fsync of any descriptor does)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: PathLike) -> None:
    """Make the renames and new entries in ``folder`` durable where the platform allows opening a folder."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def make_folder(folder: PathLike) -> Path:
    """Create ``folder`` and its missing parents, each new entry flushed into its parent folder."""
    folder = Path(folder)
    missing = []
    probe = folder
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        fsync_folder(path.parent)
    return folder


@contextlib.contextmanager
def replace_together(targets: Sequence[PathLike]) -> Iterator[list[Path]]:
    """Yield one fresh temporary path per target (same folder, mode 0666 & ~umask); when the block ends
    normally, flush each to disk, rename each onto its target, then flush their folders.

    Every rename happens after every write succeeded: an error in the block (or in a flush) leaves every
    target as it was and removes the temporary files. Missing folders are created. Renames are atomic one
    by one; a crash between two of them leaves some targets new and the others old, each one whole.
    """
    paths = [Path(os.fspath(target)) for target in targets]
    temps: list[Path] = []
    try:
        for path in paths:
            make_folder(path.parent)
            temps.append(temp_path_for(path))
        yield list(temps)
        for tmp in temps:
            fsync_file(tmp)
        for tmp, path in zip(temps, paths):
            os.replace(tmp, path)
    except BaseException:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    for folder in dict.fromkeys(path.parent for path in paths):  # each folder once, in order
        fsync_folder(folder)


@contextlib.contextmanager
def atomic_path(target: PathLike) -> Iterator[Path]:
    """Yield a fresh temporary path for ``target``; on success it replaces ``target`` durably
    (:func:`replace_together` of one target)."""
    with replace_together([target]) as (tmp,):
        yield tmp


def torch_save_atomically(obj: Any, path: PathLike) -> None:
    """``torch.save(obj)`` to ``path`` atomically and durably (:func:`atomic_path`).

    A killed process or a power loss leaves either the previous file or the new one, never a torn file.
    """
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(obj, handle)


def write_text_atomically(path: PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` like :func:`write_bytes_atomically`."""
    write_bytes_atomically(path, text.encode("utf-8"))


def write_bytes_atomically(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably (:func:`atomic_path`): a reader sees the old file or
    the new one, never half of it."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
