"""Loss terms on the supernet's weight and architecture steps, composed from the config.

``TERMS`` maps a term name to its class (loaded lazily: importing this package imports neither torch nor
Ray). :func:`build_objective` turns a config into one :class:`~raynas.objectives.base.ComposedObjective`:

- ``method: rs``: the weight step trains one uniformly sampled path (``rs``, :mod:`raynas.objectives.sampling`);
- ``method: e2nas``: exploration enhancement and architecture complementation on a latent-space search
  (``e2nas``, :mod:`raynas.objectives.e2nas`);
- ``objectives.na``: the neighbourhood-aware architecture loss (NA-DARTS, :mod:`raynas.objectives.na`);
- ``objectives.sd``: self-distillation from voting teacher snapshots (SD-DARTS, :mod:`raynas.objectives.sd`);
- ``objectives.ta``: transfer to an auxiliary model and the nested hypergradient (TA-DARTS,
  :mod:`raynas.objectives.ta`).

With none of them the objective is plain DARTS. Every term class has
``from_config(cfg: ExperimentConfig, env: SearchEnv) -> Term``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from raynas.errors import ConfigError
from raynas.objectives.base import ComposedObjective, Objective, SearchEnv, StepContext, Term
from raynas.registry import Registry

if TYPE_CHECKING:
    from raynas.config import ExperimentConfig

__all__ = ["TERMS", "ComposedObjective", "Objective", "SearchEnv", "StepContext", "Term", "build_objective",
           "term_names"]


def _load_na() -> Any:
    from raynas.objectives.na import NeighborhoodTerm

    return NeighborhoodTerm


def _load_sd() -> Any:
    from raynas.objectives.sd import SelfDistillationTerm

    return SelfDistillationTerm


def _load_ta() -> Any:
    from raynas.objectives.ta import TransferTerm

    return TransferTerm


def _load_e2nas() -> Any:
    from raynas.objectives.e2nas import E2NASTerm

    return E2NASTerm


def _load_rs() -> Any:
    from raynas.objectives.sampling import UniformPathTerm

    return UniformPathTerm


#: term name -> Term subclass
TERMS: Registry[Any] = Registry("objective term", ConfigError)
TERMS.register_lazy("rs", _load_rs)
TERMS.register_lazy("e2nas", _load_e2nas)
TERMS.register_lazy("na", _load_na)
TERMS.register_lazy("sd", _load_sd)
TERMS.register_lazy("ta", _load_ta)


def term_names(cfg: "ExperimentConfig") -> list[str]:
    """The terms ``cfg`` enables, in the order they are composed (no torch import)."""
    names = {"rs": ["rs"], "e2nas": ["e2nas"]}.get(cfg.method, [])
    # with rs there is no architecture step: objectives.na is then only the sampling selection's scoring rule
    names += [name for name in ("na", "sd", "ta") if getattr(cfg.objectives, name) is not None
              and not (name == "na" and cfg.method == "rs")]
    return names


def build_objective(cfg: "ExperimentConfig", env: SearchEnv) -> ComposedObjective:
    """The objective of ``cfg``: cross-entropy on both steps plus the enabled terms."""
    return ComposedObjective([TERMS.get(name).from_config(cfg, env) for name in term_names(cfg)])
