"""The shipped smoke configs of the objectives run whole, in process and through the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from raynas.config import load_config
from raynas.search import Search

REPO = Path(__file__).resolve().parents[2]


def run_all(path: str) -> tuple[Search, list[dict]]:
    search = Search(load_config(str(REPO / path)))
    reports = []
    while not search.done:
        reports.append(search.run_epoch())
    search.close()
    return search, reports


def test_smoke_na_logs_its_loss_the_gap_and_the_sharpness():
    search, reports = run_all("search_configs/smoke/na.yaml")
    assert search.objective.name == "na" and len(reports) == 2
    for report in reports:
        assert math.isfinite(report["na_arch_loss"]) and math.isfinite(report["arch_sharpness"])
        assert report["discretization_gap"] == pytest.approx(report["val_acc"] - report["derived_val_acc"])


def test_smoke_na_sd_composes_both_terms_second_order_and_perturbation():
    search, reports = run_all("search_configs/smoke/na_sd.yaml")
    assert search.objective.name == "na+sd" and search.cfg.search.order == 2
    assert len(reports) == 2 + 6  # search epochs, then one decision per NB201 edge
    assert "sd_kl" not in reports[0] or reports[0]["sd_teachers"] < 2  # teachers still filling up
    assert reports[1]["sd_teachers"] == 2 and reports[1]["sd_kl"] > 0
    assert all(math.isfinite(r["na_arch_loss"]) for r in reports[:2])
    assert reports[-1]["decided_edges"] == 6
    assert search.genotype == search.space.genotype_from_choices(search.model.projection.choices())


@pytest.mark.slow  # moved from the default tier to keep it under 10 minutes; make test-all runs it
def test_smoke_ta_trains_the_aux_model_second_order_then_perturbation():
    search, reports = run_all("search_configs/smoke/ta.yaml")
    assert search.objective.name == "ta" and search.cfg.search.order == 2
    assert len(reports) == 2 + 6
    assert all(math.isfinite(r[key]) for r in reports[:2] for key in ("ta_qrs", "ta_aux_loss", "ta_aux_val_loss"))
    assert reports[1]["ta_aux_loss"] < reports[0]["ta_aux_loss"]  # the auxiliary model learns
    assert "ta_aux_val_loss" not in reports[-1]  # every edge decided: no architecture step in the stage
    assert reports[-1]["decided_edges"] == 6
    assert search.genotype == search.space.genotype_from_choices(search.model.projection.choices())


def test_validate_names_the_terms_and_refuses_idle_teacher_actors():
    import subprocess
    import sys

    def validate(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "raynas.cli", "validate", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=120)

    ok = validate("search_configs/smoke/na_sd.yaml")
    assert ok.returncode == 0 and "method darts + na+sd" in ok.stdout and "6 epochs of perturbation" in ok.stdout
    ta = validate("search_configs/smoke/ta.yaml")
    assert ta.returncode == 0 and "method darts + ta" in ta.stdout
    rs = validate("search_configs/smoke/na_rs.yaml")
    assert rs.returncode == 0 and "method rs, " in rs.stdout and "1 epoch of sampling selection" in rs.stdout
    bad = validate("search_configs/smoke/sd.yaml", "--set", "objectives.sd.actors=5")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "objectives.sd.actors = 5: must be <= objectives.sd.teachers + 1 (3)" in bad.stderr
