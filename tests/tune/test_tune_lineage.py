"""PBT lineage in the trainable's restore path, on real searches: whose state, which settings, which report keys."""

from __future__ import annotations

import copy
import math

import torch

from raynas.config import config_from_dict
from raynas.search import Search
from raynas.tune.trainable import restore_state

TINY = {"space": "nb201", "data": {"name": "digits", "noise_std": 0.5, "limit": 96},
        "supernet": {"channels": 4, "layers": 1},
        "search": {"epochs": 4, "batch_size": 32, "arch_lr": 0.01, "weight_lr": 0.05, "weight_lr_min": 0.0}}


def make_search(owner: str, **search: object) -> Search:
    data = {**TINY, "search": {**TINY["search"], **search}}
    found = Search(config_from_dict(data))
    found.owner = owner
    return found


def test_state_of_another_trial_keeps_its_tensors_but_takes_own_hyperparameters() -> None:
    source = make_search("src_00000", arch_lr=0.01, weight_lr=0.05, weight_momentum=0.9)
    source.run_epoch()
    report = source.run_epoch()
    state = source.get_state()
    assert state["owner"] == "src_00000" and state["fingerprint"] == report["state_fingerprint"]

    target = make_search("dst_00001", arch_lr=0.002, weight_lr=0.08, weight_momentum=0.5, arch_weight_decay=0.0)
    lineage = restore_state(target, state)

    assert lineage == {"restored_from": "src_00000", "restored_epoch": 2,
                       "restored_fingerprint": report["state_fingerprint"]}
    assert target.epoch == 2
    for cell in target.space.cell_types:  # the source's alphas and Adam moments, bit for bit
        assert torch.equal(target.model.alphas[cell], source.model.alphas[cell])
    src_adam, dst_adam = source.arch_optimizer.state_dict(), target.arch_optimizer.state_dict()
    assert all(torch.equal(src_adam["state"][k]["exp_avg"], dst_adam["state"][k]["exp_avg"]) for k in src_adam["state"])
    arch_group = target.arch_optimizer.param_groups[0]
    assert arch_group["lr"] == 0.002 and arch_group["weight_decay"] == 0.0  # the target's own settings
    weight_group = target.weight_optimizer.param_groups[0]
    assert weight_group["momentum"] == 0.5
    expected_lr = 0.08 * (1 + math.cos(math.pi * 2 / 4)) / 2  # cosine from the target's weight_lr at epoch 2
    assert math.isclose(weight_group["lr"], expected_lr, rel_tol=1e-12)
    nxt = target.run_epoch()
    assert nxt["arch_lr"] == 0.002 and math.isclose(nxt["weight_lr"], expected_lr, rel_tol=1e-12)
    assert math.isclose(target.weight_optimizer.param_groups[0]["lr"],
                        0.08 * (1 + math.cos(math.pi * 3 / 4)) / 2, rel_tol=1e-9)  # the schedule goes on


def test_own_state_resumes_unchanged_and_says_which_checkpoint() -> None:
    first = make_search("trial_00002")
    first.run_epoch()
    state = copy.deepcopy(first.get_state())  # the live tensors move on with the next epoch
    groups = copy.deepcopy(first.arch_optimizer.state_dict()["param_groups"])
    weight_lr = first.weight_optimizer.param_groups[0]["lr"]
    expected = first.run_epoch()["state_fingerprint"]

    again = make_search("trial_00002")
    # a resume of the same trial is no exploit: no source, but the epoch and state it goes on from
    assert restore_state(again, state) == {"restored_epoch": 1, "restored_fingerprint": state["fingerprint"]}
    assert again.arch_optimizer.state_dict()["param_groups"] == groups
    assert again.weight_optimizer.param_groups[0]["lr"] == weight_lr
    assert again.run_epoch()["state_fingerprint"] == expected  # continues bit for bit
