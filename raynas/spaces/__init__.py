"""Search spaces: the ``SPACES`` registry, ``get_space`` and the genotype types.

Spaces are registered lazily, so importing this package (and using a space's structure or genotypes)
imports neither torch nor ray; torch is imported only when a space builds a supernet or a network.
A genotype text or object belongs to the first space, in registration order, whose form it has
(:func:`guess_space`): ``darts`` is registered before the RobustDARTS spaces, which share its text.
"""

from __future__ import annotations

from typing import Any, Callable

from raynas.errors import GenotypeError, SpaceError
from raynas.registry import Registry
from raynas.spaces.base import CellGraph, Choices, SearchSpace
from raynas.spaces.genotype import DartsGenotype, Genotype, NB201Genotype

__all__ = ["SPACES", "CellGraph", "Choices", "DartsGenotype", "Genotype", "NB201Genotype", "SearchSpace",
           "get_space", "guess_space", "is_genotype", "parse_genotype"]

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


def _spaces() -> list[SearchSpace]:
    """Every registered space, in registration order."""
    return [SPACES.get(name) for name in SPACES.in_order()]


def _claims(space: SearchSpace, genotype: Any) -> bool:
    if isinstance(genotype, str):
        return space.is_genotype_text(genotype)
    return isinstance(genotype, space.genotype_type)


def guess_space(genotype: Any) -> str:
    """The name of the space a genotype (its text or the object) most likely belongs to: the first
    registered space whose form it has (``nb201`` for an arch string ``|op~0|+|...``, ``darts`` for
    ``Genotype(...)``; the RobustDARTS spaces share DARTS' text, so they need naming). Anything no space
    claims gets the first registered space, whose parser then names what is wrong with it."""
    spaces = _spaces()
    return next((space.name for space in spaces if _claims(space, genotype)), spaces[0].name)


def is_genotype(obj: Any) -> bool:
    """Whether ``obj`` is a genotype object of a registered space."""
    return not isinstance(obj, str) and any(_claims(space, obj) for space in _spaces())


def _formats() -> str:
    return " or ".join(dict.fromkeys(space.genotype_format for space in _spaces()))


def parse_genotype(text: str) -> Genotype:
    """Parse genotype text of any registered space's form (format only: not validated against a space, see
    :meth:`SearchSpace.read_genotype`); text of no space's form raises :class:`GenotypeError`."""
    if not isinstance(text, str):
        raise GenotypeError(f"a genotype must be text, got {type(text).__name__}; expected {_formats()}")
    for space in _spaces():
        if space.is_genotype_text(text):
            return space.read_genotype(text)
    source = text.strip()
    shown = source if len(source) <= 60 else source[:57] + "..."
    raise GenotypeError(f"unrecognised genotype text {shown!r}; expected {_formats()}")
