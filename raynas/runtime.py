"""The process's runtime state: the device a search runs on, the global RNGs and state files.

Every layer that trains (the search loop, scratch training, shard and teacher actors, selection workers)
shares these: seeding and capturing every RNG the same way is what lets a resumed run continue bit for bit.
"""

from __future__ import annotations

import random
from typing import Any, cast

import numpy as np
import torch


def pick_device(name: str) -> torch.device:
    """``auto``: the first visible GPU when there is one (Ray sets CUDA_VISIBLE_DEVICES per trial)."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state() -> dict[str, Any]:
    """The global RNG states (torch, CUDA, numpy, Python) in types ``torch.load(weights_only=True)`` reads."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": _numpy_state_to_plain(cast(tuple, np.random.get_state(legacy=True))),
        "python": _python_state_to_plain(random.getstate()),
    }


def restore_rng_state(rng: dict[str, Any]) -> None:
    """Set the global RNG states :func:`capture_rng_state` returned."""
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    np.random.set_state(_numpy_state_from_plain(rng["numpy"]))
    random.setstate(_python_state_from_plain(rng["python"]))


def save_state(state: dict[str, Any], path: str) -> None:
    """Write a search state atomically and durably: a temp file, flushed to disk, then ``os.replace``.

    A killed process or a power loss leaves either the previous state or the new one, never a torn file.
    """
    from raynas.files import torch_save_atomically

    torch_save_atomically(state, path)


def load_state(path: str) -> dict[str, Any]:
    """Read a search state written by :func:`save_state` (no arbitrary unpickling)."""
    return torch.load(path, map_location="cpu", weights_only=True)


# weights_only loading accepts tensors, lists, tuples, dicts and scalars: keep RNG states in those types.
def _numpy_state_to_plain(state: tuple) -> list:
    name, keys, pos, has_gauss, cached = state
    return [name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)]


def _numpy_state_from_plain(plain: list) -> tuple:
    name, keys, pos, has_gauss, cached = plain
    return (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached)


def _python_state_to_plain(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _python_state_from_plain(plain: list) -> tuple:
    version, internal, gauss = plain
    return (version, tuple(internal), gauss)
