"""The file operations raynas does itself on object storage (listing, deleting, checking a bucket), through
the pyarrow file system a URI gives (``FileSystem.from_uri``, as Ray Tune resolves it); every failure is one
line (:class:`raynas.errors.StorageError`). Imports pyarrow only when called."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Any

from raynas.errors import StorageError
from raynas.remote.location import Remote, is_remote


def storage_error(what: str, exc: BaseException) -> StorageError:
    """The one-line error of a failed storage operation: ``what`` and the reason pyarrow gives."""
    reason = " ".join(str(exc).split())
    return StorageError(f"{what}: {reason[:300] or type(exc).__name__} (docs/storage.md: endpoint and credentials)")


def filesystem(uri: str) -> tuple[Any, str]:
    """(pyarrow file system, path) of a storage URI, as Ray Tune resolves it; one-line :class:`StorageError`."""
    from pyarrow import fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except (OSError, ValueError) as exc:
        raise storage_error(f"cannot open {uri}", exc) from None


def entries(uri: str, recursive: bool) -> list[Any]:
    """The pyarrow ``FileInfo`` of the entries under ``uri`` (all levels with ``recursive``; [] when none)."""
    from pyarrow import fs as pafs

    fs, path = filesystem(uri)
    try:
        return fs.get_file_info(pafs.FileSelector(path, recursive=recursive, allow_not_found=True))
    except OSError as exc:
        raise storage_error(f"cannot list {uri}", exc) from None


def names(location: str | os.PathLike[str]) -> list[str]:
    """The names of the entries directly in a folder (a local path or a URI; [] when it does not exist)."""
    if not is_remote(location):
        folder = Path(location)
        return sorted(os.listdir(folder)) if folder.is_dir() else []
    return sorted(posixpath.basename(info.path) for info in entries(str(location), recursive=False))


def subfolders(uri: str) -> list[str]:
    """The names of the folders directly under a URI."""
    from pyarrow import fs as pafs

    return sorted(posixpath.basename(info.path) for info in entries(uri, recursive=False)
                  if info.type == pafs.FileType.Directory)


def holds_files(uri: str) -> bool:
    """Whether any object lies under ``uri`` (folder markers do not count)."""
    from pyarrow import fs as pafs

    return any(info.type == pafs.FileType.File for info in entries(uri, recursive=True))


def remove_tree(location: str | os.PathLike[str]) -> None:
    """Delete a folder and everything under it, locally or remotely; a missing one is no error."""
    if not is_remote(location):
        import shutil

        shutil.rmtree(location, ignore_errors=True)
        return
    fs, path = filesystem(str(location))
    try:
        fs.delete_dir(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise storage_error(f"cannot delete {location}", exc) from None


def check_bucket(remote: Remote, option: str) -> None:
    """A one-line error unless ``remote``'s bucket exists and can be listed with the credentials at hand."""
    from pyarrow import fs as pafs

    fs, _ = filesystem(remote.uri)
    try:
        kind = fs.get_file_info(remote.bucket).type
    except OSError as exc:
        raise storage_error(f"{option} = {remote.uri!r}: cannot reach bucket '{remote.bucket}'", exc) from None
    if kind == pafs.FileType.NotFound:
        raise StorageError(f"{option} = {remote.uri!r}: bucket '{remote.bucket}' does not exist (or these "
                           "credentials cannot see it); create it first: raynas creates no buckets")
