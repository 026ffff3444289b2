"""Durable file writes shared by checkpoints, saved models and written configs."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Union


def torch_save_atomically(obj: Any, path: Union[str, "os.PathLike[str]"]) -> None:
    """``torch.save(obj)`` to ``path`` through a temp file that is flushed to disk, then ``os.replace``d.

    A killed process or a power loss leaves either the previous file or the new one, never a torn file.
    """
    import torch

    tmp = f"{os.fspath(path)}.tmp"
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomically(path: Union[str, "os.PathLike[str]"], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` like :func:`write_bytes_atomically`."""
    write_bytes_atomically(path, text.encode("utf-8"))


def write_bytes_atomically(path: Union[str, "os.PathLike[str]"], data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 644) through a hidden temp file in the same folder, flushed to disk,
    then ``os.replace``d: a reader sees the old file or the new one, never half of it."""
    import tempfile

    target = os.fspath(path)
    folder, name = os.path.split(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder or ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
