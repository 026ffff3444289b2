"""The selection stage inside the search loop: its epochs, the fine-tuning restart and resume mid-stage."""

from __future__ import annotations

import math

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from raynas.config import config_from_dict
from raynas.ranking import TIME_COLUMNS
from raynas.runtime import load_state, save_state
from raynas.search import Search

STAGE = {
    "space": "s2",
    "data": {"name": "digits", "noise_std": 0.5, "limit": 128},
    "supernet": {"channels": 4, "layers": 1},
    "search": {"epochs": 1, "batch_size": 32, "arch_lr": 0.01, "seed": 5, "steps_per_epoch": 2,
               "eval_derived": False},
    "selection": {"name": "perturbation", "proj_intv": 1},
}


def stage_search(**selection) -> Search:
    return Search(config_from_dict({**STAGE, "selection": {**STAGE["selection"], **selection}}))


def strip(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("epoch_time_s", "reported_at", *TIME_COLUMNS)}


@pytest.fixture(scope="module")
def straight():
    """One uninterrupted search with its whole stage: (search, reports)."""
    search = stage_search()
    reports = []
    while not search.done:
        reports.append(search.run_epoch())
    return search, reports


def test_stage_runs_after_the_search_epochs_and_decides_everything(straight):
    search, reports = straight
    assert search.stage_epochs == 17  # 14 op rounds + 3 topology rounds, one epoch apart
    assert [r["epoch"] for r in reports] == list(range(1, 19))
    assert "decisions" not in reports[0] and all("decisions" in r for r in reports[1:])
    assert [r["decided_edges"] for r in reports] == [0, *range(2, 29, 2), 28, 28, 28]  # 2 cells per round
    kinds = [set(r["decisions"]["kind"]) for r in reports[1:]]
    assert kinds == [{"op"}] * 14 + [{"topology"}] * 3
    # fine-tuning restarts the weight lr at a tenth of search.weight_lr and keeps it (the released code)
    assert [r["weight_lr"] for r in reports[1:]] == [pytest.approx(0.0025)] * 17
    final = search.space.choices_from_genotype(search.genotype)
    assert final == search.model.projection.choices()  # the genotype is the projection's
    assert all(len(edges) == 8 for edges in final.values())


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_finetuning_lr_of_every_step(schedule):
    """The lr each SGD step of the stage runs with: search.weight_lr / 10 throughout (constant, the released
    code), or annealed from there to search.weight_lr_min over the stage's 17 fine-tuning epochs (cosine)."""
    search = stage_search(finetune_lr_schedule=schedule)
    steps = []

    def record(optimizer, args, kwargs):
        if isinstance(optimizer, torch.optim.SGD):  # the weight optimizer (the architecture's is Adam)
            steps.append((search.epoch, optimizer.param_groups[0]["lr"]))
    hook = register_optimizer_step_pre_hook(record)
    try:
        while not search.done:
            search.run_epoch()
    finally:
        hook.remove()
    assert [epoch for epoch, _ in steps] == [k for k in range(18) for _ in range(2)]  # 2 steps per epoch
    assert [lr for epoch, lr in steps if epoch == 0] == [0.025, 0.025]  # the search epoch
    stage = [lr for epoch, lr in steps if epoch >= 1]
    start = search.cfg.search.weight_lr * search.cfg.selection.perturbation.finetune_lr_factor
    assert start == pytest.approx(0.0025)
    if schedule == "constant":
        assert stage == [start] * 34  # exactly: no drift over the stage
    else:
        lr_min = search.cfg.search.weight_lr_min
        expected = [lr_min + (start - lr_min) * (1 + math.cos(math.pi * k / 17)) / 2 for k in range(17)]
        assert stage == pytest.approx([lr for lr in expected for _ in range(2)], rel=1e-9)
        assert stage[-1] < 0.0012


def test_no_finetuning_with_proj_intv_zero():
    search = stage_search(proj_intv=0)
    search.run_epoch()
    report = search.run_epoch()
    assert math.isnan(report["train_loss"]) and report["weight_lr"] == 0.0 and report["arch_lr"] == 0.0
    assert search.stage_epochs == 17


@pytest.mark.slow  # moved from the default tier to keep it under 10 minutes; make test-all runs it
def test_resume_mid_stage_continues_at_the_next_decision(tmp_path, straight):
    straight_search, reports = straight
    straight_reports = [strip(r) for r in reports]

    first = stage_search()
    for _ in range(6):  # the search epoch and 5 stage epochs: 10 edges decided
        first.run_epoch()
    path = str(tmp_path / "state.pt")
    save_state(first.get_state(), path)
    del first
    resumed = stage_search()
    resumed.set_state(load_state(path))
    assert resumed.model.projection.decided_count() == 10
    resumed_reports = []
    while not resumed.done:
        resumed_reports.append(strip(resumed.run_epoch()))
    assert resumed_reports == straight_reports[6:]
    assert str(resumed.genotype) == str(straight_search.genotype)
