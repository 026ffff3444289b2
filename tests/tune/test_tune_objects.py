"""Config -> Tune objects, without running Tune: searchers, PBT's mutations and bounds, checkpoint retention."""

from __future__ import annotations

from raynas.config import check_population, expand_trials, load_config
from raynas.experiment import distinct_seeds
from raynas.tune.tune_setup import TrialOverrides, clip_to_params, make_tune_objects

PBT = "search_configs/pbt_nb201.yaml"
OPTUNA = "search_configs/optuna_nb201.yaml"


def objects_of(path: str, *overrides: str):
    cfg = load_config(path, list(overrides))
    return cfg, make_tune_objects(cfg, distinct_seeds(cfg, expand_trials(cfg)))


def test_optuna_suggestions_carry_each_trials_seed_and_stay_in_bounds() -> None:
    cfg, objects = objects_of(OPTUNA, "tune.num_samples=3", "search.seed=10")
    searcher = objects.tune_config.search_alg
    assert isinstance(searcher, TrialOverrides) and objects.tune_config.num_samples == 3
    assert objects.tune_config.metric is None  # the searcher holds it: Tune refuses it twice
    assert searcher.set_search_properties(None, None, objects.param_space)
    suggestions = [searcher.suggest(f"t{i}")["overrides"] for i in range(3)]
    assert [s["search.seed"] for s in suggestions] == [10, 11, 12]
    for s in suggestions:
        assert 1.0e-3 <= s["search.arch_lr"] <= 3.0e-2 and s["search.arch_weight_decay"] in (0.0, 1.0e-4, 1.0e-3)


def test_pbt_mutations_keep_values_in_range_and_checkpoints_for_exploits() -> None:
    cfg, objects = objects_of(PBT, "tune.pbt.perturbation_interval=3")
    scheduler = objects.tune_config.scheduler
    assert type(scheduler).__name__ == "PopulationBasedTraining"
    # every checkpoint kept while the population runs: an exploit may restore any of them later
    assert objects.num_to_keep is None and objects.tune_config.metric is None
    mutations = scheduler._hyperparam_mutations["overrides"]  # what PBT explores (choices as lists)
    assert mutations["search.arch_weight_decay"] == [0.0, 1.0e-4, 1.0e-3]
    params = check_population(cfg)
    clipped = clip_to_params(params, {"overrides": {"search.arch_lr": 0.03 * 1.2, "search.weight_lr": 0.01 * 0.8,
                                                    "search.arch_weight_decay": 1.0e-4}})["overrides"]
    assert clipped == {"search.arch_lr": 0.03, "search.weight_lr": 0.01, "search.arch_weight_decay": 1.0e-4}


def test_pbt_is_asynchronous_unless_synch_is_set() -> None:
    _, asynchronous = objects_of(PBT)
    _, synchronous = objects_of(PBT, "tune.pbt.synch=true")
    assert asynchronous.tune_config.scheduler._synch is False
    assert synchronous.tune_config.scheduler._synch is True


def test_random_searcher_draws_inside_the_trial_grid() -> None:
    cfg, objects = objects_of(PBT, "tune.scheduler=fifo", "tune.num_samples=2", "tune.grid.search.order=[1, 2]")
    entries = objects.param_space["overrides"]["grid_search"]
    assert [(e["search.order"], e["search.seed"]) for e in entries] == [(1, 0), (2, 0), (1, 1), (2, 1)]
    assert all(type(e["search.arch_lr"]).__name__ == "Float" for e in entries)  # a Tune distribution per trial
    assert objects.tune_config.scheduler is None and objects.num_to_keep == 2
