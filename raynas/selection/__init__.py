"""Deriving a discrete architecture from a trained supernet.

``SELECTIONS`` maps a selection name (the config's ``selection.name``) to its class; heavy modules load
lazily, so importing this package imports neither torch nor numpy. ``magnitude`` is the DARTS rule
(Liu et al., DARTS, ICLR 2019): keep the strongest architecture weights.
"""

from __future__ import annotations

from typing import Any

from raynas.errors import ConfigError
from raynas.registry import Registry
from raynas.selection.base import Selection


def _load_magnitude() -> type[Selection]:
    from raynas.selection.magnitude import MagnitudeSelection

    return MagnitudeSelection


#: selection name -> Selection subclass (called with the config's selection options)
SELECTIONS: Registry[type[Selection]] = Registry("selection", ConfigError)
SELECTIONS.register_lazy("magnitude", _load_magnitude)

_LAZY = {"MagnitudeSelection", "magnitude_choices"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from raynas.selection import magnitude

        return getattr(magnitude, name)
    raise AttributeError(f"module 'raynas.selection' has no attribute {name!r}")


__all__ = ["SELECTIONS", "MagnitudeSelection", "Selection", "magnitude_choices"]
