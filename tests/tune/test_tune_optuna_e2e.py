"""Optuna through the real CLI on a real local Ray: a population of suggested trials, two at a time."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pytest
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from cli_helpers import LOOPBACK, BackgroundRun, Hold  # noqa: E402


@pytest.mark.slow  # moved from the default tier to keep it under 10 minutes; make test-all runs it
def test_optuna_population_runs_two_at_a_time(tmp_path: Path) -> None:
    # 0.5 CPU per trial: 4 trials would fit on 2 CPUs, so only max_concurrent_trials (2) keeps it to two.
    # Trials are held after epoch 1 until two of them are held at once: running together is then observed,
    # not hoped for (on a fast machine a trial can end before the next one starts).
    hold = Hold(tmp_path / "hold", 1)
    with BackgroundRun(
            "search", "search_configs/optuna_nb201.yaml", "--out", str(tmp_path),
            "--set", "ray.num_cpus=2", "--set", "data.limit=128", "--set", "supernet.channels=4",
            "--set", "search.epochs=2", "--set", "search.batch_size=32", "--set", "tune.num_samples=4",
            "--set", "resources.cpus_per_trial=0.5", "--set", "tune.max_concurrent_trials=2", hold=hold) as run:
        run.wait_until(lambda _: len(hold.held()) == 2, timeout=300)
        together = set(hold.held())
        hold.release()
        code = run.wait(timeout=300)
        stderr = run.stderr
    assert code == 0, stderr[-3000:]
    assert run.listening and run.listening <= LOOPBACK, run.listening
    tables = tmp_path / "optuna-nb201" / "tables"
    trials = pq.read_table(tables / "trials.parquet").to_pylist()
    assert len(trials) == 4 and {t["status"] for t in trials} == {"TERMINATED"}
    assert all(t["epochs_done"] == 2 for t in trials)
    assert sorted(t["seed"] for t in trials) == [0, 1, 2, 3]  # trial i gets search.seed + i
    overrides = [json.loads(t["overrides_json"]) for t in trials]
    for values in overrides:  # Optuna's suggestions, inside the configured distributions
        assert 1.0e-3 <= values["search.arch_lr"] <= 3.0e-2 and 1.0e-3 <= values["search.weight_lr"] <= 1.0e-1
        assert values["search.arch_weight_decay"] in (0.0, 1.0e-4, 1.0e-3)
        assert 0.5 <= values["search.weight_momentum"] <= 0.95
    assert len({v["search.arch_lr"] for v in overrides}) == 4

    rows = pq.read_table(tables / "epochs.parquet").to_pylist()
    spans = {}  # trial -> (start of its first epoch, its last report), both trial-side clocks
    for trial_id, group in itertools.groupby(sorted(rows, key=lambda r: (r["trial_id"], r["epoch"])),
                                             key=lambda r: r["trial_id"]):
        group = list(group)
        spans[trial_id] = (group[0]["reported_at"] - group[0]["epoch_time_s"], group[-1]["reported_at"])
    assert together <= set(spans)  # two of them were running (held) at the same moment
    most = max(sum(s[0] <= t < s[1] for s in spans.values()) for t in (s[0] for s in spans.values()))
    assert most <= 2, spans  # and never more than max_concurrent_trials
