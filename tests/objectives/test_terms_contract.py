"""Every registered objective term keeps the contract the search relies on, and a new term plugs in as its own
code plus one registration: the search loop, the driver's and the trials' preparation ask the term's hooks,
never its name.

The toy term below is defined here, registered for the test only, and enabled by a config section of its own
(a subclass of the objectives section, built directly: the YAML schema lists the shipped sections). A real
search runs with it, on real data, without an edit anywhere else in raynas.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import pytest
import torch

from raynas.config import config_from_dict
from raynas.config.schema import ExperimentConfig, ObjectivesConfig
from raynas.objectives import (TERM_TRAITS, TERMS, SearchEnv, Term, TermTraits, build_objective,
                               prepare_experiment, prepare_supernet, prepare_trial, register_term, term_names,
                               unregister_term)
from raynas.objectives.base import Batch, StepContext
from raynas.search import Search
from raynas.spaces import get_space

TINY = {
    "space": "nb201",
    "data": {"name": "digits", "noise_std": 0.5, "limit": 160},
    "supernet": {"channels": 4, "layers": 1},
    "search": {"epochs": 2, "batch_size": 32, "arch_lr": 0.01, "seed": 3},
}

#: a config that enables each shipped term (a method that is a term, or a section of objectives)
ENABLING = {
    "rs": {"method": "rs", "selection": {"name": "sampling"}},
    "e2nas": {"method": "e2nas"},
    "na": {"objectives": {"na": {}}},
    "sd": {"objectives": {"sd": {}}},
    "ta": {"objectives": {"ta": {}}},
}


@pytest.mark.parametrize("name", TERMS.names())
def test_every_registered_term_keeps_the_contract(name):
    cls = TERMS.get(name)
    assert issubclass(cls, Term) and cls.name == name
    assert isinstance(TERM_TRAITS[name], TermTraits)  # registered with what the driver may know unimported
    # a term whose traits say it has no driver or trial work keeps the neutral hooks
    traits = TERM_TRAITS[name]
    if not traits.prepares_experiment:
        assert cls.prepare_experiment.__func__ is Term.prepare_experiment.__func__
    if not traits.prepares_trial:
        assert cls.prepare_trial.__func__ is Term.prepare_trial.__func__
    for hook in ("from_config", "prepare_experiment", "prepare_trial", "prepare_supernet"):
        assert callable(getattr(cls, hook))
    # the config that enables it names it among the objective's terms
    cfg = config_from_dict({"space": "nb201", **ENABLING[name]})
    assert name in term_names(cfg)


def test_every_shipped_term_has_an_enabling_config():
    assert sorted(ENABLING) == sorted(TERMS.names())


# ----------------------------------------------------------------------------------------- the toy term
@dataclass(frozen=True)
class ToyConfig:
    """The toy's own section: an L2 penalty of this weight on the architecture weights' logits."""

    weight: float = 0.5


@dataclass(frozen=True)
class ToyObjectivesConfig(ObjectivesConfig):
    toy: Optional[ToyConfig] = None


CALLS: list[str] = []


class ToyTerm(Term):
    """Adds ``weight * sum(alpha^2)`` to the architecture step and reports its mean; records its hooks."""

    name = "toy"

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.penalties: list[float] = []

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, env: SearchEnv) -> "ToyTerm":
        return cls(cfg.objectives.toy.weight)

    @classmethod
    def prepare_experiment(cls, cfg: ExperimentConfig, trials: Sequence[ExperimentConfig], directory: Path,
                           echo: Callable[[str], None]) -> ExperimentConfig:
        CALLS.append(f"experiment:{len(trials)}")
        return replace(cfg, name=cfg.name + "-prepared")

    @classmethod
    def prepare_trial(cls, cfg: ExperimentConfig) -> ExperimentConfig:
        CALLS.append("trial")
        return cfg

    @classmethod
    def prepare_supernet(cls, cfg: ExperimentConfig, model: Any, space: Any, device: torch.device) -> None:
        CALLS.append(f"supernet:{type(model).__name__}")

    def arch_term(self, model: Any, batch: Batch, logits: Callable[[], torch.Tensor],
                  ctx: StepContext) -> torch.Tensor:
        penalty = sum((alpha ** 2).sum() for alpha in model.arch_parameters())
        self.penalties.append(float(penalty.detach()))
        return self.weight * penalty

    def on_epoch_end(self, model: Any, ctx: StepContext) -> dict[str, float]:
        mean = sum(self.penalties) / max(len(self.penalties), 1)
        self.penalties = []
        return {"toy_penalty": mean}


@pytest.fixture
def toy_registered():
    register_term("toy", lambda: ToyTerm, TermTraits(prepares_experiment=True, prepares_trial=True))
    CALLS.clear()
    yield
    unregister_term("toy")


def toy_config(weight: float = 0.5) -> ExperimentConfig:
    base = config_from_dict(TINY)
    return replace(base, objectives=ToyObjectivesConfig(toy=ToyConfig(weight)))


def test_a_new_term_is_named_by_its_section_and_its_hooks_run(toy_registered, tmp_path):
    cfg = toy_config()
    assert term_names(cfg) == ["toy"]
    assert [f.name for f in fields(cfg.objectives)][-1] == "toy"
    assert prepare_experiment(cfg, [cfg, cfg], tmp_path).name == cfg.name + "-prepared"
    assert prepare_trial(cfg) is cfg
    env = SearchEnv(space=get_space("nb201"), num_classes=10, in_channels=1, device=torch.device("cpu"))
    objective = build_objective(cfg, env)
    assert [type(t) for t in objective.terms] == [ToyTerm] and objective.trains_architecture
    prepare_supernet(cfg, torch.nn.Identity(), env.space, env.device)
    assert CALLS == ["experiment:2", "trial", "supernet:Identity"]


def test_a_search_runs_the_new_term_and_reports_it(toy_registered):
    search = Search(toy_config(weight=5.0))
    assert CALLS == ["supernet:NB201Supernet"]
    report = search.run_epoch()
    assert report["toy_penalty"] > 0.0
    # the penalty pulls the alphas towards 0: they end smaller than without the term, from the same start
    plain = Search(config_from_dict(TINY))
    plain.run_epoch()
    with_toy = torch.cat([a.detach().flatten() for a in search.model.arch_parameters()])
    without = torch.cat([a.detach().flatten() for a in plain.model.arch_parameters()])
    assert with_toy.norm() < without.norm()


def test_unregistered_the_toy_is_gone(toy_registered):
    unregister_term("toy")
    try:
        assert "toy" not in TERMS and "toy" not in TERM_TRAITS
    finally:
        register_term("toy", lambda: ToyTerm)  # the fixture unregisters it again


def test_the_driver_and_validate_import_no_term_without_work_for_them(tmp_path):
    # a term's module imports torch: a population of SD-DARTS searches must not bring it into the driver
    import subprocess
    import sys

    code = ("import sys; from raynas.config import config_from_dict; "
            "from raynas.objectives import prepare_experiment, prepare_trial, term_names; "
            "cfg = config_from_dict({'space': 'nb201', 'objectives': {'sd': {}, 'na': {}}}); "
            "rs = config_from_dict({'space': 'nb201', 'method': 'rs', 'selection': {'name': 'sampling'}, "
            "'objectives': {'na': {}}}); "
            f"prepare_experiment(cfg, [cfg, rs], {str(tmp_path)!r}); prepare_trial(cfg); "
            "assert term_names(cfg) == ['na', 'sd'] and term_names(rs) == ['rs'], (term_names(cfg), term_names(rs)); "
            "assert 'torch' not in sys.modules, 'a term was imported'")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
