"""Loss terms on the supernet's weight and architecture steps, composed from the config.

``TERMS`` maps a term name to its class (loaded lazily: importing this package imports neither torch nor
Ray). :func:`build_objective` turns a config into one :class:`~raynas.objectives.base.ComposedObjective`:

- ``method: rs``: the weight step trains one uniformly sampled path (``rs``, :mod:`raynas.objectives.uniform_path`);
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

from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from raynas.errors import ConfigError
from raynas.objectives.base import ComposedObjective, Objective, SearchEnv, StepContext, Term
from raynas.registry import Registry

if TYPE_CHECKING:
    from raynas.config.schema import ExperimentConfig

__all__ = ["TERMS", "ComposedObjective", "Objective", "SearchEnv", "StepContext", "Term", "build_objective",
           "prepare_experiment", "prepare_supernet", "prepare_trial", "term_names"]


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
    from raynas.objectives.uniform_path import UniformPathTerm

    return UniformPathTerm


#: term name -> Term subclass
TERMS: Registry[Any] = Registry("objective term", ConfigError)
TERMS.register_lazy("rs", _load_rs)
TERMS.register_lazy("e2nas", _load_e2nas)
TERMS.register_lazy("na", _load_na)
TERMS.register_lazy("sd", _load_sd)
TERMS.register_lazy("ta", _load_ta)


def term_names(cfg: "ExperimentConfig") -> list[str]:
    """The terms ``cfg`` enables, in the order they are composed: the method's own when the method is a term
    (``rs``, ``e2nas``), then each section of ``objectives`` that is set, in the section's field order. An
    objective that trains no architecture (:attr:`Term.trains_architecture`) leaves out the terms that act
    on the architecture step alone (:attr:`Term.architecture_step_only`): with ``method: rs``,
    ``objectives.na`` is the sampling selection's scoring rule, not a loss. Loads only the classes whose
    traits decide that (the method's term, and then the sections')."""
    names = [cfg.method] if cfg.method in TERMS else []
    sections = [f.name for f in fields(cfg.objectives) if getattr(cfg.objectives, f.name) is not None]
    if all(TERMS.get(name).trains_architecture for name in names):
        return names + sections
    return names + [name for name in sections if not TERMS.get(name).architecture_step_only]


def prepare_experiment(cfg: "ExperimentConfig", trials: Sequence["ExperimentConfig"], directory: Path,
                       echo: Callable[[str], None] = print) -> "ExperimentConfig":
    """The base config after each term that some of ``trials`` enable prepared the population on the driver
    (:meth:`Term.prepare_experiment`), in the order the terms first appear."""
    used: list[str] = []
    for trial in trials:
        used += [name for name in term_names(trial) if name not in used]
    for name in used:
        cfg = TERMS.get(name).prepare_experiment(cfg, trials, directory, echo)
    return cfg


def prepare_trial(cfg: "ExperimentConfig") -> "ExperimentConfig":
    """A trial's config as its search reads it: each enabled term's :meth:`Term.prepare_trial` applied."""
    for name in term_names(cfg):
        cfg = TERMS.get(name).prepare_trial(cfg)
    return cfg


def prepare_supernet(cfg: "ExperimentConfig", model: Any, space: Any, device: Any) -> None:
    """Each enabled term's :meth:`Term.prepare_supernet` on the freshly built supernet of ``cfg``."""
    for name in term_names(cfg):
        TERMS.get(name).prepare_supernet(cfg, model, space, device)


def build_objective(cfg: "ExperimentConfig", env: SearchEnv) -> ComposedObjective:
    """The objective of ``cfg``: cross-entropy on both steps plus the enabled terms."""
    return ComposedObjective([TERMS.get(name).from_config(cfg, env) for name in term_names(cfg)])
