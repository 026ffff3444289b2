"""Deriving a discrete architecture from a trained supernet.

``SELECTIONS`` maps a selection name (the config's ``selection.name``) to its class; heavy modules load
lazily, so importing this package imports neither torch nor numpy. ``magnitude`` is the DARTS rule
(Liu et al., DARTS, ICLR 2019): keep the strongest architecture weights. ``perturbation`` is DARTS-PT
(Wang et al., ICLR 2021): a stage after training that fixes edges one by one by the validation accuracy
the supernet loses without each op, fine-tuning in between. ``sampling`` is random search with weight
sharing (Li & Talwalkar, UAI 2019), neighbourhood-aware with ``objectives.na`` (NA-RS, Wang et al., BMVC
2021): a stage that scores uniformly drawn architectures with the supernet's weights and keeps the best.
:func:`total_epochs` is a search's length with its selection stage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from raynas.errors import ConfigError
from raynas.registry import Registry
from raynas.selection.base import Selection

if TYPE_CHECKING:
    from raynas.config.schema import ExperimentConfig


def _load_magnitude() -> type[Selection]:
    from raynas.selection.magnitude import MagnitudeSelection

    return MagnitudeSelection


def _load_perturbation() -> type[Selection]:
    from raynas.selection.perturbation import PerturbationSelection

    return PerturbationSelection


def _load_sampling() -> type[Selection]:
    from raynas.selection.random_sampling import SamplingSelection

    return SamplingSelection


#: selection name -> Selection subclass (called with the config's selection options)
SELECTIONS: Registry[type[Selection]] = Registry("selection", ConfigError)
SELECTIONS.register_lazy("magnitude", _load_magnitude)
SELECTIONS.register_lazy("perturbation", _load_perturbation)
SELECTIONS.register_lazy("sampling", _load_sampling)


def stage_epochs(cfg: "ExperimentConfig") -> int:
    """Epochs the selection stage of ``cfg`` adds after ``search.epochs`` (0 for magnitude)."""
    from raynas.spaces import get_space

    return SELECTIONS.get(cfg.selection.name).stage_epochs(cfg.selection, get_space(cfg.space))


def total_epochs(cfg: "ExperimentConfig") -> int:
    """Every epoch a trial of ``cfg`` reports: ``search.epochs`` plus the selection stage's."""
    return cfg.search.epochs + stage_epochs(cfg)

_LAZY = {"MagnitudeSelection": "magnitude", "magnitude_choices": "magnitude",
         "PerturbationSelection": "perturbation", "SamplingSelection": "random_sampling"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"raynas.selection.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'raynas.selection' has no attribute {name!r}")


__all__ = ["SELECTIONS", "MagnitudeSelection", "PerturbationSelection", "SamplingSelection", "Selection",
           "magnitude_choices", "stage_epochs", "total_epochs"]
