"""What a trial with parallel selection workers asks Ray for: its own bundle, then one per worker."""

from __future__ import annotations

from ray import tune

from raynas.config import config_from_dict
from raynas.tune.resources import trial_resources


def resources(workers: int, **values):
    return trial_resources(config_from_dict({"selection": {"name": "perturbation", "workers": workers},
                                             "resources": values}))


def test_one_worker_asks_for_plain_trial_resources():
    assert resources(1, cpus_per_trial=2, gpus_per_trial=1) == {"cpu": 2, "gpu": 1}


def test_workers_get_one_bundle_each_after_the_trials_own():
    factory = resources(3, cpus_per_trial=2, gpus_per_trial=1, cpus_per_selection_worker=0.5,
                        gpus_per_selection_worker=0.25)
    assert isinstance(factory, tune.PlacementGroupFactory)
    assert factory.bundles == [{"CPU": 2, "GPU": 1}] + [{"CPU": 0.5, "GPU": 0.25}] * 3
    assert factory.strategy == "PACK"


def test_cpu_workers_and_trial_ask_for_no_gpu():
    assert resources(2).bundles == [{"CPU": 1}, {"CPU": 1}, {"CPU": 1}]
    assert resources(2, gpus_per_selection_worker=1).bundles == [{"CPU": 1}, {"CPU": 1, "GPU": 1},
                                                                 {"CPU": 1, "GPU": 1}]
