"""The selection contract: how a search turns its trained supernet into one genotype.

A selection is the last stage of a differentiable search (Liu et al., DARTS, ICLR 2019, Section 2.4 derives
the architecture from the strongest architecture weights; later methods perturb the supernet or measure
accuracy instead, which is why ``select`` receives the data and the step context too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raynas.objectives.base import StepContext
    from raynas.spaces.genotype import Genotype
    from raynas.supernet.base import Supernet


class Selection:
    """Base class of every selection method.

    Contract of :meth:`select`: given the trained ``supernet`` (a :class:`raynas.supernet.Supernet`, its
    space at ``supernet.space``), the search's ``data`` (a ``raynas.data.DataBundle``) and ``ctx`` (a
    :class:`raynas.objectives.base.StepContext` with the device and where the search stands), return a
    genotype of ``supernet.space``. It may run the supernet (under ``torch.no_grad``) but must leave its
    parameters, its train/eval mode and the global RNG state as it found them, so that calling it every
    epoch does not change the search. Options come from the config's ``selection`` section as keyword
    arguments of the constructor.
    """

    name = "base"

    def select(self, supernet: "Supernet", data: Any, ctx: "StepContext") -> "Genotype":
        """The genotype derived from ``supernet``."""
        raise NotImplementedError
