"""``tune.params`` and population settings are checked by the real CLI before anything runs (one-line errors)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from cli_helpers import raynas  # noqa: E402

OPTUNA = "search_configs/optuna_nb201.yaml"
PBT = "search_configs/pbt_nb201.yaml"
ASHA = "search_configs/asha_nb201.yaml"


@pytest.mark.parametrize("config, sets, message", [
    (OPTUNA, ["tune.params.search.arch_lr={normal: [0, 1]}"],
     "tune.params['search.arch_lr']: unknown distribution 'normal'; kinds: choice, uniform, loguniform, randint"),
    (OPTUNA, ["tune.params.search.arch_lr={loguniform: [0, 0.1]}"],
     "tune.params['search.arch_lr'] = {'loguniform': [0, 0.1]}: loguniform needs low > 0"),
    (OPTUNA, ["tune.params.search.arch_lr={uniform: [0.1, 0.01]}"],
     "tune.params['search.arch_lr'] = {'uniform': [0.1, 0.01]}: high must be > low"),
    (OPTUNA, ["tune.params.search.arch_lr={uniform: [0.1]}"], "uniform takes [low, high], two numbers"),
    (OPTUNA, ["tune.params.search.weight_momentum={uniform: [0.5, 1.5]}"],
     "tune.params['search.weight_momentum']: high bound 1.5 makes the config invalid: "
     "search.weight_momentum = 1.5: must be >= 0 and < 1"),
    (OPTUNA, ["tune.params.search.weight_lr={loguniform: [1.0e-4, 0.1]}", "search.weight_lr_min=0.001"],
     "tune.params['search.weight_lr']: low bound 0.0001 makes the config invalid: "
     "search.weight_lr_min = 0.001: must be <= search.weight_lr (0.0001)"),
    (OPTUNA, ["tune.params.search.order={choice: [1, 3]}"],
     "tune.params['search.order']: choice 3 makes the config invalid: search.order = 3: must be one of 1, 2"),
    (OPTUNA, ["tune.params.search.order={choice: []}"], "choice takes a non-empty list of values"),
    (OPTUNA, ["tune.params.search.epochs={uniform: [2, 6]}"],
     "tune.params['search.epochs']: uniform draws real numbers but search.epochs is an integer; use randint or choice"),
    (OPTUNA, ["tune.params.search.seed={randint: [3, 3]}"], "high must be > low (randint draws low <= n < high)"),
    (OPTUNA, ["tune.params.search.seed={randint: [0.5, 3]}"], "randint bounds must be integers"),
    (OPTUNA, ["tune.params.tune.seed={randint: [0, 3]}"],
     "tune.params['tune.seed']: tune cannot vary between trials; params keys may not lie under name, tune, ray "
     "or resources"),
    (OPTUNA, ["tune.params.search.arch_lrr={uniform: [0.1, 0.2]}"],
     "tune.params['search.arch_lrr']: search.arch_lrr: unknown key"),
    (OPTUNA, ["tune.params.search={choice: [1]}"], "tune.params['search']: search is a section"),
    (OPTUNA, ["tune.params.search.arch_lr=0.01"], "must be a mapping with one distribution"),
    (OPTUNA, ["tune.grid.search.seed=[0, 1]"], "tune.grid: not allowed with tune.searcher 'optuna'"),
    (OPTUNA, ["tune.params={}"], "tune.params: empty, but tune.searcher 'optuna' needs at least one distribution"),
    (ASHA, ["tune.searcher=grid"], "tune.params: 3 distribution(s) but tune.searcher is 'grid'"),
    (ASHA, ["tune.asha.grace_period=20"],
     "tune.asha.grace_period = 20: must be <= 12 (search.epochs, the default of tune.asha.max_t)"),
    (ASHA, ["tune.grid.search.arch_lr=[0.01]"], "tune.params['search.arch_lr']: search.arch_lr is in tune.grid too"),
    (PBT, ["tune.searcher=optuna"], "tune.searcher = 'optuna': tune.scheduler 'pbt' needs the random searcher"),
    (PBT, ["tune.params={}"], "tune.params: empty, but tune.scheduler 'pbt' mutates the values of tune.params"),
    (PBT, ["tune.pbt.perturbation_interval=12"],
     "tune.pbt.perturbation_interval = 12: must be < the trials' epochs (12), or PBT never exploits"),
])
def test_bad_population_settings_fail_validate_with_one_line(config: str, sets: list[str], message: str) -> None:
    args = [arg for item in sets for arg in ("--set", item)]
    result = raynas("validate", config, *args, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_shipped_population_configs_validate() -> None:
    for config, trials in ((ASHA, 8), (PBT, 4), (OPTUNA, 12)):
        result = raynas("validate", config, timeout=60)
        assert result.returncode == 0 and f"{trials} trial(s)" in result.stdout, result.stderr


def test_search_with_bad_params_writes_nothing(tmp_path: Path) -> None:
    result = raynas("search", PBT, "--out", str(tmp_path), "--set", "tune.params.search.arch_lr={loguniform: [-1, 1]}",
                    timeout=60)
    assert result.returncode == 2 and "loguniform needs low > 0" in result.stderr
    assert list(tmp_path.iterdir()) == []
