"""Whether one trial fits where it runs: its demand (own process, shards, selection workers, teachers), the
one-line refusal on a local instance, and the line a joined cluster gets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from raynas.config import config_from_dict, load_config
from raynas.errors import ConfigError
from raynas.tune.capacity import check_fits, check_local_cpus, demand_text, trial_demand, waiting_line
from raynas.tune.resources import trial_bundles

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from cli_helpers import ROOT, BackgroundRun, raynas  # noqa: E402

SHARDS = ROOT / "search_configs" / "shards_nb201.yaml"


def config(**sections):
    return config_from_dict({"space": "nb201", **sections})


def test_demand_adds_every_process_of_a_trial():
    shards = config(resources={"cpus_per_trial": 1, "shards": 2, "cpus_per_shard": 1})
    assert trial_demand(shards) == {"CPU": 3, "GPU": 0}
    assert demand_text(shards, "CPU") == "3 CPUs (1 for the trial + 2 shards x 1)"

    teachers = config(objectives={"sd": {"placement": "actor", "actors": 2}},
                      resources={"cpus_per_trial": 0.5, "shards": 2, "cpus_per_shard": 1, "cpus_per_teacher": 0.25})
    assert trial_demand(teachers)["CPU"] == 0.5 + 2 * 1 + 4 * 0.25  # 2 teachers per shard
    assert demand_text(teachers, "CPU") == "3.5 CPUs (0.5 for the trial + 2 shards x 1 + 4 teachers x 0.25)"

    workers = config(selection={"name": "perturbation", "workers": 3},
                     resources={"cpus_per_trial": 2, "gpus_per_trial": 1, "gpus_per_selection_worker": 0.5})
    assert trial_demand(workers) == {"CPU": 5, "GPU": 2.5}
    assert demand_text(workers, "GPU") == "2.5 GPUs (1 for the trial + 3 selection workers x 0.5)"
    # the demand is the sum of the placement group's bundles, the layout the actors rely on
    for cfg in (shards, teachers, workers):
        assert sum(b["CPU"] for b in trial_bundles(cfg)) == trial_demand(cfg)["CPU"]
        assert sum(b.get("GPU", 0) for b in trial_bundles(cfg)) == trial_demand(cfg)["GPU"]


def test_a_trial_larger_than_the_local_instance_is_refused_in_one_line():
    cfg = load_config(SHARDS, ["ray.num_cpus=2"])
    with pytest.raises(ConfigError) as err:
        check_local_cpus(cfg)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("resources: one trial needs 3 CPUs (1 for the trial + 2 shards x 1)")
    assert "has 2 CPUs (ray.num_cpus=2)" in message and "at most 2" in message and "--set ray.num_cpus=3" in message
    check_local_cpus(load_config(SHARDS, ["ray.num_cpus=3"]))  # fits: no error
    check_local_cpus(load_config(SHARDS, ["ray.num_cpus=2", "ray.address=127.0.0.1:6379"]))  # joined: not refused


def test_gpus_are_checked_against_the_started_instance():
    cfg = config(resources={"gpus_per_trial": 1})
    with pytest.raises(ConfigError, match=r"needs 1 GPU \(1 for the trial\) but the local Ray instance has 0 GPUs"):
        check_fits(cfg, {"CPU": 2.0})
    check_fits(cfg, {"CPU": 2.0, "GPU": 1.0})


def test_joined_cluster_gets_one_line_of_what_a_trial_waits_for():
    cfg = load_config(SHARDS, ["ray.address=10.0.0.1:6379"])
    line = waiting_line(cfg, {"CPU": 2.0})
    assert line.startswith("raynas: each trial needs 3 CPUs (1 for the trial + 2 shards x 1) at once")
    assert "the cluster has 2 CPUs now" in line and "\n" not in line
    assert waiting_line(cfg, {"CPU": 4.0}) is None


def test_cli_refuses_the_shipped_shards_config_on_two_cpus_before_anything_runs(tmp_path):
    # 2 CPUs whatever this machine has: the config's trial needs 3
    result = raynas("search", str(SHARDS), "--out", str(tmp_path), "--set", "ray.num_cpus=2", timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: resources: one trial needs 3 CPUs"), result.stderr
    assert "--set ray.num_cpus=3" in lines[0]
    assert list(tmp_path.iterdir()) == []  # no experiment folder, no Tune trial folder
    assert result.stdout == ""  # no trial started, no Ray instance


def test_cli_on_a_joined_cluster_says_what_the_trial_waits_for(ray_local, tmp_path):
    address = ray_local.get_runtime_context().gcs_address  # 2 CPUs: the trial needs 3
    exp = tmp_path / "shards-nb201"
    with BackgroundRun("search", str(SHARDS), "--out", str(tmp_path), "--address", address) as run:
        run.wait_until(lambda r: "raynas: each trial needs" in r.stdout)
        line = [text for text in run.stdout.splitlines() if text.startswith("raynas: each trial needs")]
        assert line == ["raynas: each trial needs 3 CPUs (1 for the trial + 2 shards x 1) at once and the "
                        "cluster has 2 CPUs now: the trials wait until nodes with enough join (an autoscaling "
                        "cluster adds them)"]
    assert not list((exp / "tables" / "parts").rglob("*.parquet"))  # nothing ran while it waited
