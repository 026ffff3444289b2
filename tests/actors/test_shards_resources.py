"""What a sharded trial asks Ray for: a placement group with the trial's bundle first, then one per shard."""

from __future__ import annotations

import pytest
from ray import tune

from raynas.config import config_from_dict
from raynas.errors import ConfigError
from raynas.tune.resources import trial_resources


def resources(**values):
    return trial_resources(config_from_dict({"resources": values}))


def test_one_shard_asks_for_plain_trial_resources():
    assert resources(cpus_per_trial=2) == {"cpu": 2, "gpu": 0}


def test_shards_get_one_bundle_each_after_the_trials_own():
    factory = resources(shards=3, cpus_per_trial=0.5, cpus_per_shard=2, gpus_per_shard=1)
    assert isinstance(factory, tune.PlacementGroupFactory)
    assert factory.bundles == [{"CPU": 0.5}] + [{"CPU": 2, "GPU": 1}] * 3
    assert factory.strategy == "PACK"


def test_cpu_shards_ask_for_no_gpu():
    assert resources(shards=2).bundles == [{"CPU": 1}, {"CPU": 1}, {"CPU": 1}]


@pytest.mark.parametrize("values, fix", [
    ({"shards": 2, "gpus_per_shard": 0.5}, "resources.gpus_per_shard = 0.5: must be a whole number"),
    ({"shards": 2, "gpus_per_trial": 1}, "resources.gpus_per_trial = 1.0: must be 0 with shards = 2"),
])
def test_unshardable_gpu_settings_are_config_errors(values, fix):
    # Caught when the config is validated (raynas validate, before any folder is made), not at launch.
    with pytest.raises(ConfigError) as info:
        config_from_dict({"resources": values})
    assert fix in str(info.value) and "\n" not in str(info.value)


def test_a_shard_group_refuses_an_unknown_backend_before_starting_anything():
    # gloo and nccl only (None: the search's default, nccl on GPUs and gloo on CPUs); nothing is started first
    from raynas.actors.shard_group import ShardGroup

    with pytest.raises(ValueError, match=r"^backend 'mpi': not one of gloo, nccl"):
        ShardGroup(config_from_dict({"resources": {"shards": 2}}), backend="mpi")
