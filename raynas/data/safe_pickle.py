"""Unpickling data files without running their code: plain containers, numbers, strings and numpy arrays.

A pickle is a program: ``pickle.load`` calls whatever importable callable the file names, so a data file
from anywhere can run any code. :func:`load_data_pickle` reads such files with an unpickler whose
``find_class`` answers only the few callables that rebuild numpy arrays and scalars (the protocol 2
``_reconstruct`` path, protocol 5's ``_frombuffer`` and protocol 2's ``_codecs.encode`` for ``bytes``,
limited to latin-1); dicts, lists, tuples, ints, floats and strings need no callable at all. Any other
global ends the load with :class:`RefusedGlobal` before it is called.
"""

from __future__ import annotations

import importlib
import pickle
from functools import lru_cache
from typing import Any, BinaryIO, Callable


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle named a callable outside the allowed set; it was neither imported nor called."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"the pickle asks for {module}.{name}, which a data file never needs")
        self.module = module
        self.name = name


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol 2 pickles of ``bytes`` use it, for latin-1 only (no other codec runs)."""
    if not isinstance(text, str) or encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise RefusedGlobal("_codecs", f"encode({encoding!r})")
    return text.encode("latin1")


def _numpy_module(suffix: str) -> Any:
    """numpy's ``_core.<suffix>`` (numpy 2) or ``core.<suffix>`` (numpy 1): pickles may name either."""
    try:
        return importlib.import_module(f"numpy._core.{suffix}")
    except ImportError:  # numpy 1.x
        return importlib.import_module(f"numpy.core.{suffix}")


@lru_cache(maxsize=1)
def _allowed() -> dict[tuple[str, str], Callable[..., Any]]:
    import numpy as np

    multiarray, numeric = _numpy_module("multiarray"), _numpy_module("numeric")
    allowed: dict[tuple[str, str], Callable[..., Any]] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    # arrays written by numpy 1.x name numpy.core, by numpy 2.x numpy._core: accept both spellings
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class _DataUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals of :func:`_allowed` and refuses every other one."""

    def find_class(self, module: str, name: str) -> Any:
        found = _allowed().get((module, name))
        if found is None:
            raise RefusedGlobal(module, name)
        return found


def load_data_pickle(handle: BinaryIO) -> Any:
    """Unpickle one object from ``handle`` allowing only containers, numbers, strings and numpy arrays.

    Python 2 strings are decoded as latin-1 (how Python 3 reads numpy arrays pickled by Python 2). Raises
    :class:`RefusedGlobal` (an ``UnpicklingError``) for any other callable the file names, before it is
    imported or called; malformed files raise what ``pickle`` raises for them.
    """
    return _DataUnpickler(handle, encoding="latin1").load()
