"""SD-DARTS teachers in Ray actors answer exactly as local ones, survive a resume, and find their bundles."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch

from raynas.actors.shard_group import ShardGroup

from raynas.actors.teacher import TeacherGroup
from raynas.config import config_from_dict, config_to_dict, load_config
from raynas.errors import RaynasError
from raynas.ranking import TIME_COLUMNS
from raynas.runtime import load_state, save_state
from raynas.search import Search

REPO = Path(__file__).resolve().parents[2]

TINY = {
    "space": "nb201",
    "data": {"name": "digits", "noise_std": 0.5, "limit": 128},  # 64 weight samples: 4 steps of 16
    "supernet": {"channels": 4, "layers": 1},
    "search": {"epochs": 2, "batch_size": 16, "arch_lr": 0.01, "seed": 3, "eval_derived": False},
}


def config(placement: str, *, epochs: int = 2, **sd):
    """A tiny SD search; half a CPU per teacher actor leaves room on the 2-CPU test cluster."""
    sd = {"teachers": 2, "interval": 1, "placement": placement, **sd}
    return config_from_dict({**TINY, "search": {**TINY["search"], "epochs": epochs}, "objectives": {"sd": sd},
                             "resources": {"cpus_per_teacher": 0.5}})


def strip(report: dict) -> dict:
    """A report without its timings, which legitimately differ between runs."""
    return {k: v for k, v in report.items() if k not in ("epoch_time_s", "reported_at", "sd_wait_s", *TIME_COLUMNS)}


def run(cfg, epochs: int) -> tuple[list[dict], dict, Search]:
    search = Search(cfg)
    reports = [search.run_epoch() for _ in range(epochs)]
    return reports, search.model.state_dict(), search


def sd_term(search: Search):
    (term,) = [t for t in search.objective.terms if t.name == "sd"]
    return term


def test_one_teacher_actor_trains_exactly_like_local_teachers(ray_local):
    local, local_model, _ = run(config("local"), 2)
    remote, remote_model, search = run(config("actor"), 2)
    try:
        assert isinstance(sd_term(search).teachers, TeacherGroup)
        assert [strip(r) for r in remote] == [strip(r) for r in local]
        assert all(r["sd_teachers"] == 2.0 for r in remote) and remote[0]["sd_wait_s"] >= 0.0
        for key, value in local_model.items():
            assert torch.equal(remote_model[key], value), key
    finally:
        search.close()


@pytest.mark.slow  # one actor's exact match runs by default
def test_two_actors_share_the_snapshots_and_match_local_teachers(ray_local):
    local, local_model, _ = run(config("local", teachers=3), 2)
    remote, remote_model, search = run(config("actor", teachers=3, actors=2), 2)
    try:
        term = sd_term(search)
        assert term.held_tags == [4, 5, 6, 7]
        # snapshot i (tag i here, interval 1) lives on actor i mod 2
        assert term.teachers.held_tags() == [[4, 6], [5, 7]]
        assert [r["sd_teachers"] for r in remote] == [r["sd_teachers"] for r in local] == [0.0, 3.0]
        for a, b in zip(remote, local, strict=True):
            assert a.keys() == b.keys() | {"sd_wait_s"}
            for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
                assert a[key] == pytest.approx(b[key], rel=1e-5), key
        assert remote[-1]["sd_kl"] == pytest.approx(local[-1]["sd_kl"], rel=1e-5)
        for key, value in local_model.items():
            assert torch.allclose(remote_model[key].double(), value.double(), rtol=1e-4, atol=1e-6), key
    finally:
        search.close()


@pytest.mark.slow  # local resume runs by default
def test_resume_pushes_the_saved_snapshots_to_new_actors(ray_local, tmp_path):
    straight = Search(config("actor", epochs=3))
    resumed = Search(config("actor", epochs=3))
    try:
        straight.run_epoch()
        straight.run_epoch()
        path = str(tmp_path / "state.pt")
        save_state(straight.get_state(), path)
        straight_last = strip(straight.run_epoch())

        saved = load_state(path)
        resumed.set_state(saved)
        term = sd_term(resumed)
        restored = term.get_state()["snapshots"]
        for mine, theirs in zip(restored, saved["objective"]["sd"]["snapshots"], strict=True):
            assert (mine["tag"], mine["index"]) == (theirs["tag"], theirs["index"])
            for key, value in theirs["model"].items():
                assert torch.equal(mine["model"][key], value), key
            for cell, value in theirs["arch_weights"].items():
                assert torch.equal(mine["arch_weights"][cell], value)
        assert term.teachers.held_tags() == [[5, 6, 7]]
        assert strip(resumed.run_epoch()) == straight_last
        for key, value in straight.model.state_dict().items():
            assert torch.equal(resumed.model.state_dict()[key], value), key
    finally:
        straight.close()
        resumed.close()


def test_close_kills_the_actors_and_is_idempotent(ray_local):
    import ray

    group = TeacherGroup(config("actor"), num_classes=10, in_channels=1)
    actor = group._actors[0]
    assert group.held_tags() == [[]]
    group.close()
    group.close()
    deadline = time.monotonic() + 60
    with pytest.raises(ray.exceptions.RayActorError):
        while time.monotonic() < deadline:  # ray.kill is asynchronous: a call may still get through at first
            ray.get(actor.device.remote(), timeout=60)
            time.sleep(0.2)


@pytest.mark.slow  # the CLI e2e runs the same config
def test_smoke_config_distils_in_its_last_epoch(ray_local):
    cfg = load_config(REPO / "search_configs" / "smoke" / "sd.yaml")
    assert cfg.objectives.sd.placement == "actor"
    search = Search(cfg)
    try:
        reports = []
        while not search.done:
            reports.append(search.run_epoch())
    finally:
        search.close()
    last = reports[-1]
    assert len(reports) == cfg.search.epochs
    assert last["sd_teachers"] == cfg.objectives.sd.teachers
    assert math.isfinite(last["sd_kl"]) and last["sd_kl"] > 0


def test_teacher_actors_run_in_their_bundles_of_the_trials_placement_group(ray_local):
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    ray = ray_local
    # bundles: trial, 2 selection workers, 1 teacher; only the teacher's bundle can hold the actor
    cfg = config_from_dict({**config_to_dict(config("actor")),
                            "selection": {"name": "perturbation", "workers": 2},
                            "resources": {"cpus_per_trial": 0.2, "cpus_per_selection_worker": 0.2,
                                          "cpus_per_teacher": 0.5}})

    def trial(cfg):  # stands in for a Tune trial in bundle 0
        group = TeacherGroup(cfg, num_classes=10, in_channels=1, start_timeout_s=60)
        try:
            return group.held_tags(), ray.util.get_current_placement_group().id.hex()
        finally:
            group.close()

    group = ray.util.placement_group([{"CPU": 0.2}] * 3 + [{"CPU": 0.5}], strategy="PACK")
    try:
        ray.get(group.ready(), timeout=60)
        strategy = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=0)
        held, group_id = ray.get(ray.remote(trial).options(num_cpus=0.2, scheduling_strategy=strategy)
                                 .remote(cfg), timeout=120)
    finally:
        ray.util.remove_placement_group(group)
    assert group_id == group.id.hex() and held == [[]]


def test_too_small_a_placement_group_is_a_one_line_error(ray_local, monkeypatch):
    class Group:
        bundle_specs = [{"CPU": 1.0}]

    monkeypatch.setattr(ray_local.util, "get_current_placement_group", lambda: Group())
    with pytest.raises(RaynasError) as info:
        TeacherGroup(config("actor"), num_classes=10, in_channels=1)
    message = str(info.value)
    assert "1 teacher actor(s) need bundles 1..1" in message and "trial_resources" in message
    assert "\n" not in message


@pytest.mark.slow
@pytest.mark.parametrize("placement", ["local", "actor"])
def test_sharded_search_distils_like_one_process(ray_local, placement):
    """Teachers answer per sample (eval mode), so two shards with their own teachers train what one does."""
    sd = {"teachers": 2, "interval": 1}
    single, single_model, _ = run(config_from_dict({**TINY, "objectives": {"sd": sd}}), 2)
    cfg = config_from_dict({**TINY, "objectives": {"sd": {**sd, "placement": placement}},
                            "resources": {"shards": 2, "cpus_per_shard": 0.5, "cpus_per_teacher": 0.5}})
    with ShardGroup(cfg) as group:
        sharded = [group.run_epoch() for _ in range(2)]
        state = group.get_state()
    for a, b in zip(sharded, single, strict=True):
        assert a["sd_teachers"] == b["sd_teachers"] == 2.0
        for key in ("train_loss", "val_loss", "val_acc"):
            assert a[key] == pytest.approx(b[key], rel=1e-5), key
    for key, value in single_model.items():
        if value.is_floating_point():
            scale = float(value.abs().max().clamp(min=1e-12))
            assert float((state["model"][key] - value).abs().max()) <= 1e-5 * scale, key
