"""ASHA through the real CLI on a real local Ray: trials that learn nothing are stopped at the first rung."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from cli_helpers import raynas, run_watching_sockets  # noqa: E402

STRONG, WEAK = 0.1, 1.0e-5


@pytest.mark.slow  # moved from the default tier to keep it under 10 minutes; make test-all runs it
def test_asha_stops_weak_trials_early(tmp_path: Path) -> None:
    # Grid over a sane and a tiny weight lr (2 seeds each), one trial at a time so that rung order is fixed:
    # strong, weak, strong, weak. val_acc after two epochs: 0.33-0.48 vs 0.07-0.13 (chance) here.
    run = run_watching_sockets(
        "search", "search_configs/asha_nb201.yaml", "--out", str(tmp_path),
        "--set", "ray.num_cpus=2", "--set", "data.limit=256", "--set", "supernet.channels=4",
        "--set", "search.epochs=4", "--set", "search.batch_size=32",
        "--set", "tune.searcher=grid", "--set", "tune.params={}",
        "--set", f"tune.grid.search.weight_lr=[{STRONG}, {WEAK}]", "--set", "tune.num_samples=2",
        "--set", "tune.metric=val_acc", "--set", "tune.asha.grace_period=2", "--set", "tune.asha.reduction_factor=2",
        "--set", "tune.max_concurrent_trials=1", timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    tables = tmp_path / "asha-nb201" / "tables"
    trials = pq.read_table(tables / "trials.parquet").to_pylist()
    epochs = Counter(pq.read_table(tables / "epochs.parquet").column("trial_id").to_pylist())
    assert len(trials) == 4 and {t["status"] for t in trials} == {"TERMINATED"}
    ran = {"strong": [], "weak": []}
    for trial in trials:
        lr = json.loads(trial["overrides_json"])["search.weight_lr"]
        ran["strong" if lr == STRONG else "weak"].append(epochs[trial["trial_id"]])
        assert trial["epochs_done"] == epochs[trial["trial_id"]]
    assert ran["weak"] == [2, 2], ran  # stopped at the first rung (grace period 2): below every strong trial
    assert max(ran["strong"]) == 4, ran  # the first strong trial meets no better one and runs to max_t
    assert sum(ran["strong"]) > sum(ran["weak"])

    # The leaderboard tells the stopped trials from the finished ones: epochs run of planned, and who stopped them.
    for trial in trials:
        stopped = trial["epochs_done"] < 4
        assert (trial["epochs_planned"], trial["stopped_by"]) == (4, "asha" if stopped else None), trial
    summary = {line.split()[0]: line for line in run.stdout.splitlines() if line.split()[:1] in
               ([t["trial_id"]] for t in trials)}
    for trial in trials:
        line = summary[trial["trial_id"]]
        assert f" {trial['epochs_done']}/4 " in line
        assert line.endswith("(stopped by asha)") == (trial["epochs_done"] < 4), line
    board = raynas("results", str(tmp_path / "asha-nb201"), "--format", "json")
    rows = {row["trial_id"]: row for row in json.loads(board.stdout)}
    assert {(row["epochs_done"], row["epochs_planned"], row["stopped_by"]) for row in rows.values()} >= \
        {(2, 4, "asha"), (4, 4, None)}
