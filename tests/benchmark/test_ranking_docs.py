"""docs/ranking.md's measured tables are what the tools print for the committed runs in benchmarks/ranking/
(the real tools as subprocesses on the real Parquet tables), and the committed study is the one the page
describes: 20 finished searches drawn over the seed, the architecture learning rate, the weight decay and
the method."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
from cli_helpers import ROOT, cli_env  # noqa: E402

from raynas.results import load_table  # noqa: E402

RUNS = ROOT / "benchmarks" / "ranking"
DOC = ROOT / "docs" / "ranking.md"


def table_rows(*args: str) -> list[str]:
    """The Markdown table rows a tool prints for ``args`` (its default bootstrap draws and seed)."""
    run = subprocess.run([sys.executable, *args], cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| `")]
    assert rows, run.stdout
    return rows


def test_the_tau_table_of_the_page_is_the_committed_studys():
    rows = table_rows("tools/ranking_study.py", str(RUNS / "ranking-study"))
    assert len(rows) == 11  # every candidate, accuracy and loss
    documented = set(DOC.read_text().splitlines())
    assert [row for row in rows if row not in documented] == []


def test_the_asha_table_of_the_page_is_the_committed_runs():
    rows = table_rows("tools/asha_ranking.py", str(RUNS / "asha-derived"), str(RUNS / "asha-params"))
    assert [row.split(" | ")[0] for row in rows] == ["| `derived_val_acc`", "| `derived_params`"]
    documented = set(DOC.read_text().splitlines())
    assert [row for row in rows if row not in documented] == []


def test_the_committed_study_drew_seed_learning_rate_weight_decay_and_method():
    trials = load_table(RUNS / "ranking-study", "trials").to_pylist()
    finished = [json.loads(t["overrides_json"]) for t in trials
                if t["status"] == "TERMINATED" and t["epochs_done"] == t["epochs_planned"]]
    assert len(finished) == 20
    for key in ("search.seed", "search.arch_lr", "search.weight_decay"):
        assert len({o[key] for o in finished}) == 20, key
    methods = [o["selection.name"] for o in finished]
    assert (methods.count("magnitude"), methods.count("perturbation")) == (6, 14)  # as the page says
