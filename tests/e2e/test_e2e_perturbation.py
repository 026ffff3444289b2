"""End to end: perturbation selection through the real CLI, and ``raynas resume`` after a SIGKILL in the
middle of the selection stage (real local Ray, 2 CPUs).

``search_configs/smoke/perturbation.yaml`` runs 2 search epochs and then the selection stage; with
``proj_intv`` 2 the stage has 11 epochs (6 NB201 decisions, two fine-tuning epochs apart). One run goes
through uninterrupted; another is killed (driver and every Ray process it started) once 2 edges are decided,
then resumed. The killed run is held after epoch ``HELD`` (the second decision; :mod:`raynas.tune.hold`)
until Tune's saved state has that epoch's checkpoint, so the kill comes at the same point on any machine. The
resumed search continues at its next undecided edge and ends with the same genotype and the same decisions as
the uninterrupted one.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import ROOT, SAVE_STATE_EVERY_SECOND, BackgroundRun, Hold, saved_checkpoint_epoch  # noqa: E402

pytestmark = pytest.mark.slow  # three CLI runs (about 75 s here): make test-all runs it

CONFIG = ROOT / "search_configs" / "smoke" / "perturbation.yaml"
SETTINGS = ("--set", "ray.num_cpus=2", "--set", "selection.proj_intv=2")
TOTAL = 2 + 2 * 5 + 1  # search epochs + stage epochs
HELD = 5  # epochs 3-4 decide edge 1, epoch 5 edge 2
LINE = re.compile(r"epoch +(\d+)/(\d+) .* decided (\d+) ", re.M)


def progress(text: str) -> list[tuple[int, int, int]]:
    """(epoch, total epochs, decided edges) of every progress line."""
    return [(int(e), int(t), int(d)) for e, t, d in LINE.findall(text)]


def decisions(exp: Path) -> list[tuple]:
    table = pq.read_table(exp / "tables" / "decisions.parquet")
    columns = ("round", "cell", "kind", "step", "edge", "op", "acc", "loss", "decision")
    return sorted(zip(*(table.column(c).to_pylist() for c in columns)))


def final_genotype(exp: Path) -> str:
    rows = pq.read_table(exp / "tables" / "trials.parquet").to_pylist()
    assert len(rows) == 1 and rows[0]["status"] == "TERMINATED", rows
    return rows[0]["genotype"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("pt")
    straight_exp = work / "straight" / "smoke-perturbation"
    with BackgroundRun("search", str(CONFIG), "--out", str(work / "straight"), *SETTINGS) as straight:
        straight_code = straight.wait(timeout=400)
        straight_out, straight_err = straight.stdout, straight.stderr
    assert straight_code == 0, straight_err[-3000:]

    exp = work / "killed" / "smoke-perturbation"
    hold = Hold(work / "hold", HELD)
    with BackgroundRun("search", str(CONFIG), "--out", str(work / "killed"), *SETTINGS, hold=hold,
                       env=SAVE_STATE_EVERY_SECOND) as first:
        first.wait_until(lambda run: list(hold.held().values()) == [HELD] and max(
            (d for _, _, d in progress(run.stdout)), default=0) == 2 and saved_checkpoint_epoch(exp / "tune") == HELD,
            timeout=400)
        first.kill_driver()
        before = first.stdout
    with BackgroundRun("resume", str(exp)) as second:
        code = second.wait(timeout=400)
        after, errors = second.stdout, second.stderr
    return {"straight_exp": straight_exp, "straight_out": straight_out, "exp": exp, "before": before,
            "after": after, "code": code, "stderr": errors}


def test_uninterrupted_run_reports_the_stage_and_writes_the_decisions_table(runs):
    lines = progress(runs["straight_out"])
    assert {total for _, total, _ in lines} == {TOTAL}
    assert [d for e, _, d in lines if e > 2] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6]  # a decision every 2 epochs
    rows = decisions(runs["straight_exp"])
    assert len(rows) == 6 * 5  # 6 decisions x 5 candidate ops (none included in NB201)
    assert sum(row[-1] == "keep" for row in rows) == 6
    kept = {row[4]: row[5] for row in rows if row[-1] == "keep"}
    genotype = final_genotype(runs["straight_exp"])
    assert [f"{kept[e]}~" for e in range(6)] == re.findall(r"(\w+~)\d", genotype)


def test_resume_mid_selection_continues_at_the_next_decision(runs):
    assert runs["code"] == 0, runs["stderr"][-3000:]
    killed_at = max(e for e, _, _ in progress(runs["before"]))
    decided_before = max(d for _, _, d in progress(runs["before"]))
    resumed = progress(runs["after"])
    assert resumed, runs["after"][-2000:]
    first_epoch, _, first_decided = resumed[0]
    assert killed_at == HELD and first_epoch == HELD + 1  # from the checkpoint Tune had saved at the kill
    assert first_decided >= decided_before  # earlier decisions came back with the checkpoint
    assert resumed[-1][0] == TOTAL


def test_resumed_search_ends_like_the_uninterrupted_one(runs):
    assert final_genotype(runs["exp"]) == final_genotype(runs["straight_exp"])
    assert decisions(runs["exp"]) == decisions(runs["straight_exp"])
