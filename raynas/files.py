"""Durable file writes shared by checkpoints and saved models."""

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
