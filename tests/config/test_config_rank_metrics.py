"""search.rank_metrics and a tune.metric of theirs: each bad combination is one line naming field and value."""

from __future__ import annotations

import pytest

from raynas.config import config_from_dict
from raynas.errors import ConfigError
from raynas.ranking import RANK_METRIC_COLUMNS, RANK_METRICS, kind_of
from raynas.results.schema import EPOCH_METRICS, EPOCHS


def error_of(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("data, expected", [
    ({"search": {"rank_metrics": ["bn", "fine-tune"]}},
     "search.rank_metrics[1] = 'fine-tune': must be one of 'bn', 'finetune', 'neighborhood', 'params'"),
    ({"search": {"rank_metrics": ["bn", "bn"]}}, "search.rank_metrics[1] = 'bn': is listed twice"),
    ({"search": {"rank_metrics": "bn"}}, "search.rank_metrics = 'bn': must be a list of strings; write [bn] for one"),
    ({"search": {"rank_metrics_every": 0}}, "search.rank_metrics_every = 0: must be >= 1"),
    ({"search": {"rank_finetune_steps": 0}}, "search.rank_finetune_steps = 0: must be >= 1"),
    ({"tune": {"metric": "derived_finetune_val_acc"}, "resources": {"shards": 2}},
     "search.rank_metrics = ['params', 'finetune']: must not hold 'finetune' with resources.shards = 2"),
    ({"search": {"rank_metrics": ["finetune"], "rank_metrics_every": 2},
      "tune": {"metric": "derived_finetune_val_acc", "scheduler": "asha"}},
     "search.rank_metrics_every = 2: must be 1 with tune.metric = 'derived_finetune_val_acc' and "
     "tune.scheduler = 'asha'"),
    ({"search": {"rank_metrics": ["finetune"]}, "resources": {"shards": 2}},
     "search.rank_metrics = ['finetune', 'params']: must not hold 'finetune' with resources.shards = 2"),
    ({"tune": {"metric": "derived_nbhd_val_acc"}}, "tune.metric = 'derived_nbhd_val_acc': must be one of"),
])
def test_bad_rank_metric_settings(data: dict, expected: str) -> None:
    assert error_of(data).startswith(expected)


@pytest.mark.parametrize("metric", RANK_METRIC_COLUMNS)
def test_every_rank_metric_is_a_tune_metric_and_an_epochs_column(metric: str) -> None:
    cfg = config_from_dict({"search": {"rank_metrics": [kind_of(metric)], "rank_metrics_every": 3},
                            "tune": {"metric": metric, "mode": "min" if metric.endswith("loss") else "max"}})
    assert cfg.tune.metric == metric
    assert metric in EPOCH_METRICS and EPOCHS.field(metric).type == "double"


def test_every_n_epochs_goes_with_fifo_and_the_kinds_default_off() -> None:
    cfg = config_from_dict({"search": {"rank_metrics": list(RANK_METRICS), "rank_metrics_every": 4}})
    assert cfg.search.rank_metrics == ["bn", "finetune", "neighborhood", "params"]
    assert config_from_dict({}).search.rank_metrics == ["params"]  # the default tune.metric's kind
    assert config_from_dict({}).tune.metric == "derived_params"


@pytest.mark.parametrize("metric", RANK_METRIC_COLUMNS)
def test_naming_a_rank_metric_turns_its_kind_on(metric: str) -> None:
    mode = "min" if metric.endswith("loss") else "max"
    cfg = config_from_dict({"search": {"rank_metrics": ["neighborhood"] if kind_of(metric) != "neighborhood"
                                       else []}, "tune": {"metric": metric, "mode": mode}})
    assert kind_of(metric) in cfg.search.rank_metrics and "neighborhood" in cfg.search.rank_metrics
    again = config_from_dict({"search": {"rank_metrics": cfg.search.rank_metrics},
                              "tune": {"metric": metric, "mode": mode}})
    assert again.search.rank_metrics == cfg.search.rank_metrics  # a resolved config reads back the same


@pytest.mark.parametrize("name", ["quickstart", "asha_nb201", "pbt_nb201", "optuna_nb201"])
def test_the_shipped_populations_rank_by_the_default_every_epoch(name: str) -> None:
    """The configs that rank a population without ground truth use the measured default (docs/ranking.md),
    measured at every epoch ASHA, PBT and Optuna may read."""
    from raynas.config import load_config
    from raynas.config.shipped import resolve_config

    cfg = load_config(resolve_config(name))
    assert (cfg.tune.metric, cfg.tune.mode) == ("derived_params", "max")
    assert "params" in cfg.search.rank_metrics and cfg.search.rank_metrics_every == 1
