"""expand_trials: grid product order, repeats, per-trial validation and grid-key rules."""

from __future__ import annotations

import pytest

from raynas.config import ExperimentConfig, TrialSpec, config_from_dict, expand_trials, trial_label
from raynas.config import trials as trials_module
from raynas.errors import ConfigError


def grid_config(grid: dict, num_samples: int = 1, **sections: dict) -> ExperimentConfig:
    return config_from_dict({"tune": {"grid": grid, "num_samples": num_samples}, **sections})


def grid_error(grid: dict, **sections: dict) -> str:
    with pytest.raises(ConfigError) as info:
        expand_trials(grid_config(grid, **sections))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_product_size_order_and_repeats() -> None:
    specs = expand_trials(grid_config({"search.seed": [0, 1, 2], "search.arch_lr": [0.01, 0.1]}, num_samples=2))
    assert len(specs) == 12
    assert [s.index for s in specs] == list(range(12))
    expected = [{"search.seed": s, "search.arch_lr": lr} for s in (0, 1, 2) for lr in (0.01, 0.1)]
    assert [s.overrides for s in specs] == expected * 2
    assert [s.sample for s in specs] == [0] * 6 + [1] * 6
    assert [(s.config.search.seed, s.config.search.arch_lr) for s in specs[:6]] == [
        (0, 0.01), (0, 0.1), (1, 0.01), (1, 0.1), (2, 0.01), (2, 0.1)]
    assert list(specs[0].overrides) == ["search.seed", "search.arch_lr"]


def test_empty_grid_gives_num_samples_base_trials() -> None:
    cfg = grid_config({}, num_samples=3, search={"epochs": 2})
    specs = expand_trials(cfg)
    assert [(s.index, s.overrides, s.sample) for s in specs] == [(0, {}, 0), (1, {}, 1), (2, {}, 2)]
    assert all(s.config == cfg for s in specs)


def test_overrides_hold_validated_values_and_are_not_shared() -> None:
    specs = expand_trials(grid_config({"search.weight_lr": [1, "3e-2"], "space": ["darts", "nb201"]}))
    assert [s.overrides["search.weight_lr"] for s in specs] == [1.0, 1.0, 0.03, 0.03]
    assert all(isinstance(s.overrides["search.weight_lr"], float) for s in specs)
    assert [s.config.space for s in specs] == ["darts", "nb201", "darts", "nb201"]
    specs[0].overrides["space"] = "changed"
    assert specs[1].overrides["space"] == "nb201"


def test_invalid_grid_value_names_the_entry() -> None:
    assert grid_error({"search.arch_lr": [0.1, -1]}) == (
        "tune.grid['search.arch_lr'] = -1: search.arch_lr = -1: must be > 0")
    assert grid_error({"space": ["nb210"]}).startswith("tune.grid['space'] = 'nb210': space = 'nb210': unknown search")


def test_cross_field_error_names_the_combination() -> None:
    assert grid_error({"search.weight_lr": [0.0001]}) == (
        "tune.grid combination (search.weight_lr=0.0001): search.weight_lr_min = 0.001: "
        "must be <= search.weight_lr (0.0001)")


def test_unknown_grid_key_suggests() -> None:
    message = grid_error({"search.arch_lrr": [0.1]})
    assert message.startswith("tune.grid['search.arch_lrr']: search.arch_lrr: unknown key; valid keys of search: ")
    assert message.endswith("(did you mean 'arch_lr'?)")


@pytest.mark.parametrize("key", ["tune.num_samples", "name", "ray.address", "resources.cpus_per_trial"])
def test_grid_key_under_fixed_sections(key: str) -> None:
    head = key.split(".")[0]
    assert grid_error({key: [1]}) == (f"tune.grid[{key!r}]: {head} cannot vary between trials; grid keys may "
                                      f"not lie under name, tune, ray or resources")


def test_selection_workers_cannot_vary() -> None:
    assert grid_error({"selection.workers": [1, 2]}) == (
        "tune.grid['selection.workers']: selection.workers cannot vary between trials (it sets every trial's Ray "
        "resources); set it once in the config")


def test_grid_key_must_be_a_leaf() -> None:
    assert grid_error({"search": [{"epochs": 1}]}).startswith("tune.grid['search']: search is a section")
    assert "is a single setting" in grid_error({"search.epochs.x": [1]})


def test_too_many_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trials_module, "MAX_TRIALS", 5)
    assert grid_error({"search.seed": [0, 1, 2], "search.order": [1, 2]}) == (
        "tune.grid: 6 trials (grid combinations x tune.num_samples 1); at most 5 are allowed")


def test_trial_label() -> None:
    specs = expand_trials(grid_config({"search.seed": [1], "search.arch_lr": [0.01]}, num_samples=2))
    assert trial_label(specs[0]) == "search.seed=1,search.arch_lr=0.01"
    assert trial_label(specs[1]) == "search.seed=1,search.arch_lr=0.01,sample=1"
    base = TrialSpec(0, {}, ExperimentConfig())
    assert trial_label(base) == "base"
    assert trial_label(TrialSpec(0, {"space": "darts", "search.eval_derived": False}, ExperimentConfig())) == (
        "space=darts,search.eval_derived=false")
