"""What a trial with SD-DARTS teacher actors asks Ray for, and where each teacher runs."""

from __future__ import annotations

import pytest
from ray import tune

from raynas.config import config_from_dict
from raynas.errors import ConfigError
from raynas.tune.resources import teacher_bundles, trial_resources


def config(placement: str = "actor", actors: int = 2, selection: dict | None = None, **resources):
    return config_from_dict({"objectives": {"sd": {"placement": placement, "actors": actors}},
                             "selection": selection or {}, "resources": resources})


def test_local_teachers_ask_for_plain_trial_resources():
    cfg = config("local", cpus_per_trial=2, gpus_per_trial=1)
    assert trial_resources(cfg) == {"cpu": 2, "gpu": 1}
    assert teacher_bundles(cfg) == []
    assert trial_resources(config_from_dict({})) == {"cpu": 1, "gpu": 0}


def test_teachers_follow_the_trials_bundle():
    cfg = config(cpus_per_trial=2, gpus_per_trial=1, cpus_per_teacher=3, gpus_per_teacher=0.5)
    factory = trial_resources(cfg)
    assert isinstance(factory, tune.PlacementGroupFactory)
    assert factory.bundles == [{"CPU": 2, "GPU": 1}] + [{"CPU": 3, "GPU": 0.5}] * 2
    assert factory.strategy == "PACK"
    assert teacher_bundles(cfg) == [1, 2]


def test_teachers_follow_the_selection_workers():
    cfg = config(actors=1, selection={"name": "perturbation", "workers": 3}, cpus_per_selection_worker=0.5)
    assert trial_resources(cfg).bundles == [{"CPU": 1}] + [{"CPU": 0.5}] * 3 + [{"CPU": 1}]
    assert teacher_bundles(cfg) == [4]


def test_each_shard_gets_its_own_teachers_after_all_shards():
    cfg = config(actors=2, shards=3, cpus_per_trial=0.5, cpus_per_shard=2, gpus_per_shard=1, gpus_per_teacher=1)
    bundles = trial_resources(cfg).bundles
    assert bundles == [{"CPU": 0.5}] + [{"CPU": 2, "GPU": 1}] * 3 + [{"CPU": 1, "GPU": 1}] * 6
    layout = [teacher_bundles(cfg, rank, 3) for rank in range(3)]
    assert layout == [[4, 5], [6, 7], [8, 9]]  # 1 + shards + rank * actors + i
    assert sorted(i for ranks in layout for i in ranks) == list(range(4, len(bundles)))


def test_more_teacher_actors_than_kept_snapshots_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"objectives": {"sd": {"teachers": 2, "placement": "actor", "actors": 4}}})
    message = str(info.value)
    assert "objectives.sd.actors = 4: must be <= objectives.sd.teachers + 1 (3)" in message and "\n" not in message
    assert config_from_dict({"objectives": {"sd": {"teachers": 2, "actors": 4}}}).objectives.sd.placement == "local"
