"""The selection stage inside the search loop: its epochs, the fine-tuning restart and resume mid-stage."""

from __future__ import annotations

import math

import pytest

from raynas.config import config_from_dict
from raynas.ranking import TIME_COLUMNS
from raynas.search import Search, load_state, save_state

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
    # fine-tuning restarts the weight lr at a tenth of search.weight_lr and anneals it
    assert reports[1]["weight_lr"] == pytest.approx(0.0025)
    assert reports[-1]["weight_lr"] < reports[1]["weight_lr"]
    final = search.space.choices_from_genotype(search.genotype)
    assert final == search.model.projection.choices()  # the genotype is the projection's
    assert all(len(edges) == 8 for edges in final.values())


def test_no_finetuning_with_proj_intv_zero():
    search = stage_search(proj_intv=0)
    search.run_epoch()
    report = search.run_epoch()
    assert math.isnan(report["train_loss"]) and report["weight_lr"] == 0.0 and report["arch_lr"] == 0.0
    assert search.stage_epochs == 17


@pytest.mark.slow  # moved from the default tier to keep it under 10 minutes; CI runs it
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
