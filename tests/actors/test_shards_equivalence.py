"""Two shard actors (real Ray actors, gloo on loopback) train exactly what one process trains on the full batch.

Tolerance: every compared tensor (architecture parameters after each epoch, final weights and BatchNorm
statistics) within ``RTOL`` relative to its largest magnitude or ``ATOL`` absolute (max |a - b| <=
max(RTOL * max |b|, ATOL)), float32. Measured: 1e-6 to 3e-6 relative before issue 9, about what separates
one float32 process from the same search in float64. Since one shared ReLU per edge sums its gradients in
another order (issue 9), where rounding falls moves and Adam's first steps amplify it: after three epochs
1.0e-5 for the first-order alphas, 4.5e-5 for the stem's weights and 4e-6 absolute (1.5e-4 of its largest
entry, 0.028) for the stem BatchNorm's bias, whose entries are near zero. Why the shared ReLU widens the
gap between the sharded and the one-process run (the mixed op itself matches the plain sum to 1e-5,
tests/supernet/test_supernet_memory.py) is not yet understood. A wrong reduction (a sum instead of a
mean, a missing shard's batch) is off by far more than these bounds. Beyond
these horizons float32 itself is chaotic here: one process in float32 and in float64 drift apart by 5e-3 in
the third second-order epoch (the finite-difference Hessian term amplifies rounding), and a one-sample batch
of 8x8 images (BatchNorm over a 2x2 map of one image) by 1e-5 in the second epoch, so the empty-slice case
runs on 16x16 images. Even there one process alone drifts in the second epoch: the same search with the
gradients of a node's shared ReLU summed in another order (issue 28, one ReLU per node instead of per edge)
ends epoch 1 within 9e-7 of the earlier order, epoch 2 at 1.5e-2 and epoch 3 at 1e-1 (relative, first-order
alphas, 1 thread), so the empty-slice case compares one epoch, which holds the empty slice's step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from raynas.actors.shard_group import ShardGroup
from raynas.config import ExperimentConfig, config_from_dict, config_to_dict
from raynas.ranking import TIME_COLUMNS
from raynas.runtime import load_state, save_state
from raynas.search import Search

RTOL = 1e-4
ATOL = 1e-5
BATCH = 32


def tiny(order: int, limit: int, epochs: int, image_size: int | None = None) -> ExperimentConfig:
    return config_from_dict({
        "space": "nb201",
        "data": {"name": "digits", "noise_std": 0.5, "limit": limit, "image_size": image_size},
        "supernet": {"channels": 4, "layers": 1},
        "search": {"epochs": epochs, "batch_size": BATCH, "arch_lr": 0.01, "seed": 3, "order": order},
        "resources": {"shards": 2},
    })


def rel_err(a: Any, b: Any) -> float:
    """max |a - b| relative to max |b|, or 0.0 when max |a - b| is within ``ATOL``."""
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    diff = float((a - b).abs().max())
    return 0.0 if diff <= ATOL else diff / float(b.abs().max().clamp(min=1e-12))


def strip(report: dict) -> dict:
    """A report without its timings, which legitimately differ between runs."""
    return {k: v for k, v in report.items() if k not in ("epoch_time_s", "reported_at", *TIME_COLUMNS)}


def assert_same_epoch(sharded: dict, single: dict) -> None:
    assert sharded["epoch"] == single["epoch"]
    assert rel_err(sharded["alphas"]["alpha"], single["alphas"]["alpha"]) <= RTOL
    assert sharded["genotype"] == single["genotype"]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "derived_val_loss", "derived_val_acc"):
        assert math.isclose(sharded[key], single[key], rel_tol=RTOL), key


def assert_same_model(sharded: dict, single: dict) -> None:
    assert sharded.keys() == single.keys()
    for key, value in single.items():
        if value.is_floating_point():
            assert rel_err(sharded[key], value) <= RTOL, key
        else:
            assert torch.equal(sharded[key], value), key


@dataclass
class Run:
    single: list[dict]
    single_model: dict
    sharded: list[dict]
    sharded_state: dict
    resumed: list[dict]
    resumed_state: dict
    train_size: int


@pytest.fixture(scope="module")
def first_order(ray_local, tmp_path_factory) -> Run:
    """Three epochs in one process and with two shards; the shards are then restored to epoch 1 and rerun."""
    cfg = tiny(order=1, limit=150, epochs=3)  # 75 samples: the last batch (11) splits 6 / 5
    single = Search(cfg)
    single_reports = [single.run_epoch() for _ in range(3)]
    path = str(Path(tmp_path_factory.mktemp("shards")) / "state.pt")
    with ShardGroup(cfg) as group:
        sharded = [group.run_epoch()]
        save_state(group.get_state(), path)
        sharded += [group.run_epoch() for _ in range(2)]
        sharded_state = group.get_state()
        group.set_state(load_state(path))
        resumed = [group.run_epoch() for _ in range(2)]
        resumed_state = group.get_state()
    return Run(single_reports, single.model.state_dict(), sharded, sharded_state, resumed, resumed_state,
               len(single.data.train))


def test_first_order_alpha_trajectory_matches_one_process(first_order):
    assert first_order.train_size % BATCH == 11
    for sharded, single in zip(first_order.sharded, first_order.single):
        assert_same_epoch(sharded, single)
    assert first_order.sharded[-1]["alphas"]["alpha"] != first_order.sharded[0]["alphas"]["alpha"]


def test_first_order_weights_match_one_process(first_order):
    assert_same_model(first_order.sharded_state["model"], first_order.single_model)


def test_checkpoint_holds_each_shards_rng(first_order):
    assert len(first_order.sharded_state["shard_rngs"]) == 2
    assert first_order.sharded_state["epoch"] == 3


def test_restored_shards_continue_identically(first_order):
    assert [strip(r) for r in first_order.resumed] == [strip(r) for r in first_order.sharded[1:]]
    for key, value in first_order.sharded_state["model"].items():
        assert torch.equal(first_order.resumed_state["model"][key], value), key


def assert_two_epochs_match_one_process(cfg: ExperimentConfig) -> tuple[Search, dict, list[dict], list[dict]]:
    """2 epochs of ``cfg`` sharded and in one process: the same reports and final weights.

    Returns the one-process search, the sharded state, and the sharded and one-process reports."""
    single = Search(cfg)
    single_reports = [single.run_epoch() for _ in range(2)]
    with ShardGroup(cfg) as group:
        sharded = [group.run_epoch() for _ in range(2)]
        state = group.get_state()
    for a, b in zip(sharded, single_reports):
        assert_same_epoch(a, b)
    assert_same_model(state["model"], single.model.state_dict())
    return single, state, sharded, single_reports


@pytest.mark.slow  # moved from the default tier to keep it under 10 minutes; make test-all runs it
def test_second_order_matches_one_process(ray_local):
    assert_two_epochs_match_one_process(tiny(order=2, limit=150, epochs=2))  # 75 samples: last batch 11 = 6 + 5


@pytest.mark.slow  # an edge case of the equivalence the default tier checks
def test_an_empty_slice_contributes_nothing(ray_local):
    # 65 samples: the last batch has one, so shard 1's slice of it is empty (its third step of every epoch).
    # One epoch: past it this case is chaotic in float32 (module docstring), so a second epoch would test
    # rounding, not the empty slice.
    cfg = tiny(order=1, limit=130, epochs=1, image_size=16)
    single = Search(cfg)
    assert len(single.data.train) % BATCH == 1
    single_reports = [single.run_epoch()]
    with ShardGroup(cfg) as group:
        sharded_reports = [group.run_epoch()]
        state = group.get_state()
    for a, b in zip(sharded_reports, single_reports):
        assert_same_epoch(a, b)
    assert_same_model(state["model"], single.model.state_dict())


@pytest.mark.slow  # the stage's equality is checked in process and with tasks in the default tier
def test_sharded_perturbation_stage_decides_like_one_process(ray_local):
    """Every shard takes the same decisions (their evaluations are summed over the shards) as one process."""
    cfg = config_from_dict({
        "space": "nb201",
        "data": {"name": "digits", "noise_std": 0.5, "limit": 96},
        "supernet": {"channels": 4, "layers": 1},
        "search": {"epochs": 1, "batch_size": BATCH, "arch_lr": 0.01, "seed": 3},
        "selection": {"name": "perturbation", "proj_intv": 0},
        "resources": {"shards": 2},
    })
    single = Search(cfg)
    single_reports = []
    while not single.done:
        single_reports.append(single.run_epoch())
    with ShardGroup(cfg) as group:
        sharded_reports = []
        while not group.done:
            sharded_reports.append(group.run_epoch())
    assert len(sharded_reports) == len(single_reports) == 1 + 6
    for sharded, one in zip(sharded_reports, single_reports):
        assert sharded.get("decided_edges") == one.get("decided_edges")
        if "decisions" in one:
            assert chosen(sharded["decisions"]) == chosen(one["decisions"])
            assert sharded["decisions"]["acc"] == pytest.approx(one["decisions"]["acc"], abs=1e-9)
    assert sharded_reports[-1]["genotype"] == single_reports[-1]["genotype"]


def chosen(decisions: dict) -> list[tuple[int, str]]:
    """(edge, op) of every candidate a decision kept or dropped."""
    return [(e, op) for e, op, d in zip(decisions["edge"], decisions["op"], decisions["decision"]) if d]


@pytest.mark.parametrize("objectives", [
    pytest.param({"na": {"neighbors": 2}}, marks=pytest.mark.slow),  # default tier budget; make test-all runs both
    pytest.param({"na": {"neighbors": 2}, "sd": {"teachers": 2, "interval": 1}}, marks=pytest.mark.slow),
])
def test_sharded_objective_terms_match_one_process(ray_local, objectives):
    """Objective terms draw from (seed, step) and act per sample, so shards still train what one process does."""
    cfg = config_from_dict({**config_to_dict(tiny(order=1, limit=128, epochs=2)), "objectives": objectives})
    assert_two_epochs_match_one_process(cfg)


def ta_config(transfer_weight: float) -> ExperimentConfig:
    return config_from_dict({**config_to_dict(tiny(order=1, limit=128, epochs=2)), "objectives": {
        "ta": {"aux_depth": 8, "aux_channels": 4, "quadruples": 64, "transfer_weight": transfer_weight}}})


@pytest.mark.slow  # default suite budget; make test-all runs it
def test_sharded_ta_trains_the_auxiliary_model_like_one_process(ray_local):
    """Without transfer (lambda 0) every TA-DARTS computation is per sample or averaged over the shards (the
    auxiliary step, both virtual steps, v2), so two shards train what one process does, auxiliary model
    included. (With lambda > 0 each shard's QRS uses its own slice's quadruples: see the slow test below.)"""
    single, state, sharded, single_reports = assert_two_epochs_match_one_process(ta_config(0.0))
    for a, b in zip(sharded, single_reports):
        assert math.isclose(a["ta_aux_loss"], b["ta_aux_loss"], rel_tol=RTOL)
        assert math.isclose(a["ta_aux_val_loss"], b["ta_aux_val_loss"], rel_tol=RTOL)
    assert_same_model(state["objective"]["ta"]["aux"], single.objective.terms[0].aux.state_dict())


@pytest.mark.slow
def test_sharded_ta_with_transfer_keeps_every_replica_identical(ray_local):
    import ray

    with ShardGroup(ta_config(1.0)) as group:
        reports = [group.run_epoch() for _ in range(2)]
        states = ray.get([actor.get_state.remote(True) for actor in group._actors])
    assert all(math.isfinite(r["ta_qrs"]) and r["ta_qrs"] > 0 for r in reports)
    first, second = states
    for part in ("model",):
        assert all(torch.equal(first[part][k], second[part][k]) for k in first[part])
    aux_a, aux_b = first["objective"]["ta"]["aux"], second["objective"]["ta"]["aux"]
    assert all(torch.equal(aux_a[k], aux_b[k]) for k in aux_a)


@pytest.mark.slow  # default suite budget; make test-all runs it
@pytest.mark.parametrize("estimator", ["ours", "released"])
def test_sharded_e2nas_matches_one_process(ray_local, nb201_autoencoder, estimator):
    """E2NAS draws its complementary architecture (and, released, the cells of both steps) from (seed, step)
    and its archive follows the latent, which the shards share, so two shards search the latent exactly as
    one process does."""
    cfg = config_from_dict({**config_to_dict(tiny(order=1, limit=128, epochs=2)), "method": "e2nas",
                            "e2nas": {"autoencoder": nb201_autoencoder, "estimator": estimator}})
    single, state, sharded, single_reports = assert_two_epochs_match_one_process(cfg)
    for a, b in zip(sharded, single_reports):
        assert a["e2nas_distinct"] == b["e2nas_distinct"] and a["genotype"] == b["genotype"]
        assert math.isclose(a["e2nas_density"], b["e2nas_density"], rel_tol=RTOL)
