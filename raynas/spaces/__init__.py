"""Search spaces: the ``SPACES`` registry, ``get_space`` and the genotype types.

Spaces are registered lazily, so importing this package (and using a space's structure or genotypes)
imports neither torch nor ray; torch is imported only when a space builds a supernet or a network.
"""

from __future__ import annotations

from raynas.errors import SpaceError
from raynas.registry import Registry
from raynas.spaces.base import Choices, SearchSpace
from raynas.spaces.genotype import DartsGenotype, Genotype, NB201Genotype, parse_genotype

__all__ = ["SPACES", "Choices", "DartsGenotype", "Genotype", "NB201Genotype", "SearchSpace", "get_space",
           "parse_genotype"]

#: name -> SearchSpace instance (one shared, stateless instance per name)
SPACES: Registry[SearchSpace] = Registry("search space", SpaceError)


def _load_darts() -> SearchSpace:
    from raynas.spaces.darts import DARTS

    return DARTS


def _load_nb201() -> SearchSpace:
    from raynas.spaces.nb201 import NB201

    return NB201


SPACES.register_lazy("darts", _load_darts)
SPACES.register_lazy("nb201", _load_nb201)


def get_space(name: str) -> SearchSpace:
    """The search space registered as ``name`` (the same instance on every call); unknown names raise
    :class:`SpaceError` listing the valid ones."""
    return SPACES.get(name)
