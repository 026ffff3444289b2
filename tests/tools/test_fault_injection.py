"""tools/fault_injection.py: its case plans and table checks, and (slow) three real fault cases end to end.

The slow test runs the tool as a user would (real CLI subprocesses, real local Ray, SIGKILLs, torn files)
with three seeded cases and asserts what issue 24 asks of resume: no row lost, none duplicated or changed,
no run that needed a person.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from cli_helpers import cli_env  # noqa: E402
from fault_injection import COMMANDS, FAULTS, plan_cases  # noqa: E402
from fault_tables import compare_rows  # noqa: E402


def test_plans_are_seeded_and_cover_every_command_and_fault():
    plans = plan_cases(0, 9)
    assert plans == plan_cases(0, 9) and plans != plan_cases(1, 9)
    assert {(p.command, p.fault) for p in plans} == {(c, f) for c in COMMANDS for f in FAULTS}
    assert all(len(p.kill_fractions) >= (2 if p.command == "resume" else 1) for p in plans)
    assert all(0 <= f < 1 for p in plan_cases(3, 40) for f in p.kill_fractions)


def test_table_check_counts_lost_duplicated_and_differing_rows():
    reference = [(("00000", e), {"loss": float(e)}) for e in (1, 2, 3)]
    run = [(("00000", 1), {"loss": 1.0}), (("00000", 2), {"loss": 2.5}), (("00000", 2), {"loss": 2.0}),
           (("00001", 1), {"loss": 1.0})]
    check = compare_rows("epochs", run, reference, ("loss",))
    assert (check.expected, check.lost, check.duplicated, check.differing) == (3, 1, 2, 1)
    assert "epochs ('00000', 3) lost" in check.problems
    clean = compare_rows("epochs", list(reference), reference, ("loss",))
    assert (clean.lost, clean.duplicated, clean.differing) == (0, 0, 0)


@pytest.mark.slow
def test_three_fault_cases_lose_duplicate_and_change_nothing(tmp_path):
    out = tmp_path / "faults"
    result = subprocess.run([sys.executable, "tools/fault_injection.py", "--cases", "3", "--seed", "0", "--out",
                             str(out)], cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=3000)
    summary = json.loads((out / "summary.json").read_text())
    totals = summary["totals"]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert totals["runs"] == 3 and totals["rows_expected"] > 0 and totals["kills"] >= 3
    assert (totals["rows_lost"], totals["rows_duplicated"], totals["rows_differing"],
            totals["runs_needing_a_person"]) == (0, 0, 0, 0)
    for case in summary["cases"]:  # each case met its fault: a kill, and the torn file where it asked for one
        assert any(step["killed"] for step in case["steps"]), case
        if case["plan"]["fault"] != "kill":
            assert case["fault"].startswith("tore "), case
        assert case["steps"][-1]["args"][0] == "resume" and case["steps"][-1]["exit_code"] == 0, case
    assert (out / "summary.md").read_text().count("\n| ") >= 4
    left = [p for p in psutil.process_iter(["cmdline"]) if "/rnfi" in " ".join(p.info["cmdline"] or ())]
    assert not left, left  # every Ray process the cases started was killed
