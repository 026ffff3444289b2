"""Search spaces: the ``SPACES`` registry, ``get_space`` and the genotype types.

Spaces are registered lazily, so importing this package (and using a space's structure or genotypes)
imports neither torch nor ray; torch is imported only when a space builds a supernet or a network.
"""

from __future__ import annotations

from typing import Callable

from raynas.errors import SpaceError
from raynas.registry import Registry
from raynas.spaces.base import Choices, SearchSpace
from raynas.spaces.genotype import DartsGenotype, Genotype, NB201Genotype, parse_genotype

__all__ = ["SPACES", "Choices", "DartsGenotype", "Genotype", "NB201Genotype", "SearchSpace", "get_space",
           "guess_space", "parse_genotype"]

#: name -> SearchSpace instance (one shared, stateless instance per name)
SPACES: Registry[SearchSpace] = Registry("search space", SpaceError)


def _load_darts() -> SearchSpace:
    from raynas.spaces.darts import DARTS

    return DARTS


def _load_nb201() -> SearchSpace:
    from raynas.spaces.nb201 import NB201

    return NB201


def _robust_loader(name: str) -> Callable[[], SearchSpace]:
    """A loader for the space ``name`` of :mod:`raynas.spaces.robust` (RobustDARTS S1-S4, darts-nonone)."""
    def load() -> SearchSpace:
        from raynas.spaces.robust import ROBUST_SPACES

        return ROBUST_SPACES[name]
    return load


SPACES.register_lazy("darts", _load_darts)
SPACES.register_lazy("nb201", _load_nb201)
for _name in ("s1", "s2", "s3", "s4", "darts-nonone"):
    SPACES.register_lazy(_name, _robust_loader(_name))
del _name


def get_space(name: str) -> SearchSpace:
    """The search space registered as ``name`` (the same instance on every call); unknown names raise
    :class:`SpaceError` listing the valid ones."""
    return SPACES.get(name)


def guess_space(genotype: str) -> str:
    """The space a genotype text most likely belongs to: ``nb201`` for an arch string (``|op~0|+|...``), else
    ``darts`` (``Genotype(...)``); the RobustDARTS spaces share DARTS' text, so they need naming."""
    return "nb201" if genotype.strip().startswith("|") else "darts"
