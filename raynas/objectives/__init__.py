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

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from raynas.errors import ConfigError
from raynas.objectives.base import ComposedObjective, Objective, SearchEnv, StepContext, Term
from raynas.registry import Registry

if TYPE_CHECKING:
    from raynas.config.schema import ExperimentConfig

__all__ = ["TERMS", "TERM_TRAITS", "ComposedObjective", "Objective", "SearchEnv", "StepContext", "Term",
           "TermTraits", "build_objective", "prepare_experiment", "prepare_supernet", "prepare_trial",
           "register_term", "term_names", "traits_of", "unregister_term"]


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


@dataclass(frozen=True)
class TermTraits:
    """What the search and the driver know of a term before they import it (a term's module imports torch,
    which the driver of a population and ``raynas validate`` never need)."""

    #: False for a method without an architecture step (random sampling's uniform paths): the search runs none
    trains_architecture: bool = True
    #: the term acts on the architecture step alone: left out of an objective that trains no architecture
    architecture_step_only: bool = False
    #: its :meth:`Term.prepare_experiment` has work for the driver (the class is imported there only then)
    prepares_experiment: bool = False
    #: its :meth:`Term.prepare_trial` changes a trial's config
    prepares_trial: bool = False


#: term name -> Term subclass
TERMS: Registry[Any] = Registry("objective term", ConfigError)
#: term name -> its :class:`TermTraits`, given when it is registered (:func:`register_term`)
TERM_TRAITS: dict[str, TermTraits] = {}


def register_term(name: str, load: Callable[[], Any], traits: TermTraits = TermTraits()) -> None:
    """Register the term ``name``: ``load()`` imports and returns its :class:`Term` subclass on first use;
    ``traits`` is what the search and the driver may know of it without importing it."""
    TERMS.register_lazy(name, load)
    TERM_TRAITS[name] = traits


def unregister_term(name: str) -> None:
    """Remove a term :func:`register_term` added (a plug-in's or a test's); an unknown name raises."""
    TERMS.unregister(name)
    TERM_TRAITS.pop(name, None)


register_term("rs", _load_rs, TermTraits(trains_architecture=False))
register_term("e2nas", _load_e2nas, TermTraits(prepares_experiment=True, prepares_trial=True))
register_term("na", _load_na, TermTraits(architecture_step_only=True))
register_term("sd", _load_sd)
register_term("ta", _load_ta)


def term_names(cfg: "ExperimentConfig") -> list[str]:
    """The terms ``cfg`` enables, in the order they are composed: the method's own when the method is a term
    (``rs``, ``e2nas``), then each section of ``objectives`` that is set, in the section's field order. An
    objective that trains no architecture (:attr:`TermTraits.trains_architecture`) leaves out the terms that
    act on the architecture step alone (:attr:`TermTraits.architecture_step_only`): with ``method: rs``,
    ``objectives.na`` is the sampling selection's scoring rule, not a loss. Imports no term."""
    names = [cfg.method] if cfg.method in TERMS else []
    sections = [f.name for f in fields(cfg.objectives) if getattr(cfg.objectives, f.name) is not None]
    if trains_architecture(names):
        return names + sections
    return names + [name for name in sections if not traits_of(name).architecture_step_only]


def traits_of(name: str) -> TermTraits:
    """The registered traits of term ``name`` (the defaults for a term registered without them)."""
    return TERM_TRAITS.get(name, TermTraits())


def trains_architecture(names: Sequence[str]) -> bool:
    """Whether an objective of the terms ``names`` runs architecture steps."""
    return all(traits_of(name).trains_architecture for name in names)


def prepare_experiment(cfg: "ExperimentConfig", trials: Sequence["ExperimentConfig"], directory: Path,
                       echo: Callable[[str], None] = print) -> "ExperimentConfig":
    """The base config after each term that some of ``trials`` enable prepared the population on the driver
    (:meth:`Term.prepare_experiment`), in the order the terms first appear."""
    used: list[str] = []
    for trial in trials:
        used += [name for name in term_names(trial) if name not in used]
    for name in used:
        if traits_of(name).prepares_experiment:  # only then is the term imported on the driver
            cfg = TERMS.get(name).prepare_experiment(cfg, trials, directory, echo)
    return cfg


def prepare_trial(cfg: "ExperimentConfig") -> "ExperimentConfig":
    """A trial's config as its search reads it: each enabled term's :meth:`Term.prepare_trial` applied."""
    for name in term_names(cfg):
        if traits_of(name).prepares_trial:
            cfg = TERMS.get(name).prepare_trial(cfg)
    return cfg


def prepare_supernet(cfg: "ExperimentConfig", model: Any, space: Any, device: Any) -> None:
    """Each enabled term's :meth:`Term.prepare_supernet` on the freshly built supernet of ``cfg``."""
    for name in term_names(cfg):
        TERMS.get(name).prepare_supernet(cfg, model, space, device)


def build_objective(cfg: "ExperimentConfig", env: SearchEnv) -> ComposedObjective:
    """The objective of ``cfg``: cross-entropy on both steps plus the enabled terms."""
    names = term_names(cfg)
    return ComposedObjective([TERMS.get(name).from_config(cfg, env) for name in names],
                             trains_architecture=trains_architecture(names))
