"""Which Ray a run in this process gets (raynas.ray_session): the settings that make raynas restart the Ray it
started, and a Ray it did not start (the session's ray_local fixture, as a user's ray.init) used as it is or
refused. Searches on several settings in one process: tests/api/test_api_runs.py (slow tier)."""

from __future__ import annotations

import pytest

import raynas
from raynas.config.schema import RayConfig
from raynas.errors import ConfigError
from raynas.ray_session import RaySettings, check_running, differences, settings_for, settle

MIMALLOC = (("LD_PRELOAD", "/lib/libmimalloc.so"),)
LOCAL_1 = RaySettings(address=None, num_cpus=1, allocator="mimalloc", env_vars=MIMALLOC)


def wanted(ray_cfg: RayConfig, env_vars=MIMALLOC) -> RaySettings:
    return settings_for(ray_cfg, dict(env_vars))


@pytest.mark.parametrize("ray_cfg, env_vars, expected", [
    (RayConfig(), MIMALLOC, []),  # nothing set: the running Ray serves
    (RayConfig(num_cpus=1), MIMALLOC, []),
    (RayConfig(num_cpus=2), MIMALLOC, ["ray.num_cpus 2 (running: 1)"]),
    (RayConfig(address="10.0.0.5:6379"), MIMALLOC, ["ray.address 10.0.0.5:6379 (running: a local instance)"]),
    (RayConfig(allocator="system"), (), ["ray.allocator system (running: mimalloc)"]),
    (RayConfig(num_cpus=2, allocator="system"), (), ["ray.num_cpus 2 (running: 1)",
                                                     "ray.allocator system (running: mimalloc)"]),
    (RayConfig(), MIMALLOC + (("RAYNAS_HOLD_DIR", "/tmp/h"),), ["the worker environment (RAYNAS_HOLD_*)"]),
])
def test_differences_from_a_local_ray_raynas_started(ray_cfg, env_vars, expected):
    assert differences(LOCAL_1, ray_cfg, wanted(ray_cfg, env_vars)) == expected


def test_differences_from_a_joined_cluster():
    joined = RaySettings(address="10.0.0.5:6379", num_cpus=None, allocator="mimalloc", env_vars=MIMALLOC)
    assert differences(joined, RayConfig(), wanted(RayConfig())) == []
    assert differences(joined, RayConfig(address="10.0.0.5:6379"), wanted(RayConfig(address="10.0.0.5:6379"))) == []
    assert differences(joined, RayConfig(num_cpus=2), wanted(RayConfig(num_cpus=2))) == \
        ["ray.num_cpus 2 (running: 10.0.0.5:6379)"]  # a local instance of 2 CPUs is asked for


def test_a_ray_raynas_did_not_start_is_used_as_it_is_or_refused(ray_local, tmp_path):
    node = ray_local.get_runtime_context().get_node_id()
    cpus = int(ray_local.cluster_resources()["CPU"])  # 2 (tests/conftest.py)
    said: list[str] = []
    assert settle(RayConfig(), wanted(RayConfig()), said.append) is True
    assert settle(RayConfig(num_cpus=cpus), wanted(RayConfig(num_cpus=cpus)), said.append) is True
    check_running(RayConfig(num_cpus=cpus))
    with pytest.raises(ConfigError) as info:
        check_running(RayConfig(num_cpus=cpus + 1))
    assert str(info.value) == (f"ray.num_cpus = {cpus + 1}: this process already runs a Ray it did not start through "
                               f"raynas (ray.init), with {cpus} CPUs; raynas runs on it as it is: leave the setting "
                               "unset (null), or call ray.shutdown() first")
    with pytest.raises(ConfigError, match=r"ray.address = '127.0.0.1:1': .* connected to 127.0.0.1:\d+; raynas runs"):
        settle(RayConfig(address="127.0.0.1:1"), wanted(RayConfig(address="127.0.0.1:1")), said.append)
    # raynas.search refuses before anything is written; the user's Ray runs on, untouched
    with pytest.raises(ConfigError, match=f"ray.num_cpus = {cpus + 1}: this process already runs a Ray"):
        raynas.search({"name": "refused", "ray": {"num_cpus": cpus + 1}}, out=tmp_path)
    assert list(tmp_path.iterdir()) == [] and said == []
    assert ray_local.is_initialized() and ray_local.get_runtime_context().get_node_id() == node
