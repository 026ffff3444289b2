"""The selection contract: how a search turns its trained supernet into one genotype.

A selection is the last stage of a differentiable search (Liu et al., DARTS, ICLR 2019, Section 2.4 derives
the architecture from the strongest architecture weights; later methods perturb the supernet or measure
accuracy instead, which is why ``select`` receives the data and the step context too). A selection may
also run a *stage*: epochs after the supernet's training in which it decides the architecture piece by
piece while the supernet is fine-tuned (DARTS-PT's perturbation selection).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

if TYPE_CHECKING:
    import torch

    from raynas.config.schema import SelectionConfig
    from raynas.objectives.base import StepContext
    from raynas.spaces.base import SearchSpace
    from raynas.spaces.genotype import Genotype
    from raynas.supernet.base import Supernet

#: evaluates candidate architecture weights (``{cell: [edges, ops]}`` each) on the validation split and
#: returns ``(loss, accuracy)`` per candidate, in order
Evaluate = Callable[[Sequence[dict[str, "torch.Tensor"]]], list[tuple[float, float]]]


class Selection:
    """Base class of every selection method.

    Contract of :meth:`select`: given the trained ``supernet`` (a :class:`raynas.supernet.Supernet`, its
    space at ``supernet.space``), the search's ``data`` (a ``raynas.data.DataBundle``) and ``ctx`` (a
    :class:`raynas.objectives.base.StepContext` with the device and where the search stands), return a
    genotype of ``supernet.space``. It may run the supernet (under ``torch.no_grad``) but must leave its
    parameters, its train/eval mode and the global RNG state as it found them, so that calling it every
    epoch does not change the search. Options come from the config's ``selection`` section
    (:meth:`from_config`).

    A selection with a stage returns a positive :meth:`stage_epochs`; the search then runs that many epochs
    after ``search.epochs`` and calls :meth:`decide` at the start of each. Everything a stage decides must
    live in the supernet's ``projection`` (saved with the search's state) or be derivable from it and the
    stage epoch, so that a resumed search continues at the next decision.
    """

    name = "base"

    @classmethod
    def from_config(cls, cfg: "SelectionConfig", *, seed: int = 0, objectives: Any = None) -> "Selection":
        """An instance with the options of the config's ``selection`` section; ``seed`` is ``search.seed``,
        ``objectives`` the config's ``objectives`` section (for selections that score with a term's rule)."""
        return cls(skip_disconnected=cfg.skip_disconnected)  # type: ignore[call-arg]

    @classmethod
    def stage_epochs(cls, cfg: "SelectionConfig", space: "SearchSpace") -> int:
        """Epochs the selection stage adds after the supernet's training (0: no stage). Imports no torch."""
        return 0

    def select(self, supernet: "Supernet", data: Any, ctx: "StepContext") -> "Genotype":
        """The genotype derived from ``supernet``."""
        raise NotImplementedError

    def decide(self, supernet: "Supernet", stage_epoch: int, evaluate: Evaluate) -> Optional[dict[str, list]]:
        """Stage selections: make the decisions due at 0-based ``stage_epoch``; return their rows (None: none)."""
        return None

    def finetunes(self, stage_epoch: int) -> bool:
        """Stage selections: whether the supernet trains during stage epoch ``stage_epoch``."""
        return False
