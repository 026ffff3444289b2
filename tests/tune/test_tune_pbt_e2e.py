"""PBT through the real CLI on a real local Ray: exploits happen, and each exploiting trial's state provably
comes from the source trial's checkpoint while it runs on with its own, perturbed architecture lr."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pyarrow.parquet as pq
from pbt_checks import check_latest_checkpoints, check_restores, noise_lines

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from cli_helpers import run_watching_sockets  # noqa: E402


@pytest.mark.slow  # moved from the default tier to keep it under 10 minutes; make test-all runs it
def test_pbt_exploits_with_lineage_and_own_hyperparameters(tmp_path: Path) -> None:
    # 3 trials side by side (0.5 CPU each on 2 CPUs), a decision after every epoch. Synchronous PBT: each
    # decision waits until every trial has reached it, so the bottom trial (of 3, quantile 0.25: one) exploits
    # the top one at every decision however the trials' reports interleave; PBT mutates the arch lr.
    run = run_watching_sockets(
        "search", "search_configs/pbt_nb201.yaml", "--out", str(tmp_path),
        "--set", "ray.num_cpus=2", "--set", "data.limit=128", "--set", "supernet.channels=4",
        "--set", "search.epochs=4", "--set", "search.batch_size=32", "--set", "tune.pbt.perturbation_interval=1",
        "--set", "tune.pbt.synch=true",
        "--set", "tune.num_samples=1", "--set", "tune.grid.search.weight_lr=[1.0e-5, 0.05, 0.1]",
        "--set", "tune.params={search.arch_lr: {loguniform: [1.0e-3, 3.0e-2]}}", "--set", "tune.metric=val_acc",
        timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    tables = tmp_path / "pbt-nb201" / "tables"
    trials = pq.read_table(tables / "trials.parquet").to_pylist()
    assert len(trials) == 3 and {t["status"] for t in trials} == {"TERMINATED"}
    ids = {t["trial_id"] for t in trials}
    rows = pq.read_table(tables / "epochs.parquet").to_pylist()
    by_key = {(r["trial_id"], r["epoch"]): r for r in rows}
    assert all("state_fingerprint" in dict(r["extra"]) for r in rows)

    restored = [r for r in rows if r["restored_from"]]
    # One exploit at each of the decisions after epochs 1, 2 and 3: the first report after each is its row.
    assert sorted(r["epoch"] for r in restored) == [2, 3, 4], [(r["trial_id"], r["epoch"]) for r in restored]
    proven = []
    for row in restored:
        extra = dict(row["extra"])
        assert row["restored_from"] in ids - {row["trial_id"]}
        assert extra["restored_epoch"] == row["epoch"] - 1  # the first report after the restore
        source = by_key[(row["restored_from"], int(extra["restored_epoch"]))]
        # The state it runs on is the one the source reported at that epoch.
        assert dict(source["extra"])["state_fingerprint"] == extra["restored_fingerprint"], (row, source)
        proven.append((row, source))
    # The exploiting trial runs on with its own (perturbed: x0.8, x1.2 or resampled) architecture lr.
    assert any(row["arch_lr"] != source["arch_lr"] for row, source in proven)
    assert all(row["arch_lr"] > 0 for row, _ in proven)
    # After the exploits: no Tune error anywhere, every restart (a PBT pause) went on from the state its
    # trial had reported, and each trial's latest registered checkpoint is the one it wrote last.
    exp = tmp_path / "pbt-nb201"
    assert not noise_lines(run.stdout, run.stderr, (exp / "logs" / "tune.log").read_text())
    exploits, own = check_restores({(r["trial_id"], r["epoch"]): r for r in rows})
    assert exploits == 3 and own >= 1, (exploits, own)
    check_latest_checkpoints(exp, {(r["trial_id"], r["epoch"]): r for r in rows})
