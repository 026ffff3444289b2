"""PBT's checkpoints through the real CLI on a real local Ray: each trial's latest registered checkpoint is
the one it wrote last, every restart and exploit reads a checkpoint that exists, and a population killed and
resumed goes on from the states it had (fingerprints equal), with no Tune error on the console.

Asynchronous PBT (the shipped config's mode) is where Tune's per-trial retention used to delete checkpoints
that were still needed: one a paused exploiting trial had to restore, and, registered twice, the same
folder twice (see :mod:`raynas.tune.checkpoints`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pbt_checks import check_latest_checkpoints, check_restores, epoch_rows, fingerprint, noise_lines

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from cli_helpers import (SAVE_STATE_EVERY_SECOND, BackgroundRun, Hold, run_watching_sockets,  # noqa: E402
                         saved_latest_checkpoints)

CONFIG = "search_configs/pbt_nb201.yaml"
TINY = ["--set", "ray.num_cpus=2", "--set", "data.limit=128", "--set", "supernet.channels=4",
        "--set", "search.batch_size=32"]


@pytest.mark.slow  # 60-80 s on a busy 2-core machine
def test_asynchronous_pbt_runs_clean_and_every_checkpoint_it_registers_loads(tmp_path: Path) -> None:
    # The shipped config's asynchronous PBT, 4 trials side by side, a decision after every epoch: with a
    # per-trial retention of 4 checkpoints this failed every time here (an error dump, or a failed trial).
    run = run_watching_sockets("search", CONFIG, "--out", str(tmp_path), *TINY, "--set", "search.epochs=9",
                               "--set", "tune.pbt.perturbation_interval=1", timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    exp = tmp_path / "pbt-nb201"
    log = (exp / "logs" / "tune.log").read_text()
    assert not noise_lines(run.stdout, run.stderr, log), noise_lines(run.stdout, run.stderr, log)[:5]
    assert "[Exploit]" in log  # Tune's own report of each exploit went to the log file, not the console
    assert "[Exploit]" not in run.stdout + run.stderr
    rows = epoch_rows(exp)
    # Exploits happen here (asynchronous PBT decides as results come in; none guaranteed, so not counted:
    # test_tune_pbt_e2e counts them under synchronous PBT); whichever happened read the state its source had.
    check_restores(rows)
    check_latest_checkpoints(exp, rows)
    trials = pq.read_table(exp / "tables" / "trials.parquet").to_pylist()
    assert {t["status"] for t in trials} == {"TERMINATED"} and {t["epochs_done"] for t in trials} == {9}
    # kept while the population ran (an exploit may restore any), only each trial's last one after it ended
    folders = [folder for folder in (exp / "tune").glob("*/checkpoint_*")]
    assert sorted(path for _, path in saved_latest_checkpoints(exp / "tune").values()) == sorted(folders)


HELD = 3  # PBT decides after epoch 2 and 4 (interval 2): epoch 3 is no decision, so every trial reaches it


@pytest.mark.slow  # 80-115 s on a busy 2-core machine (a search, a kill, a resume)
def test_pbt_population_killed_and_resumed_goes_on_from_the_states_it_had(tmp_path: Path) -> None:
    # Asynchronous PBT (synchronous PBT cannot be resumed in Tune 2.60: its sync clock restarts and every
    # trial waits). A trial held after epoch 3 cannot report epoch 4, so no trial gets past its decision at
    # epoch 2, and an exploit there restores a state of epoch 2: every trial reaches the hold, whatever the
    # machine's speed and whichever exploits happen.
    exp = tmp_path / "pbt-nb201"
    hold = Hold(tmp_path / "hold", HELD)
    args = ["search", CONFIG, "--out", str(tmp_path), *TINY, "--set", "search.epochs=6",
            "--set", "tune.num_samples=3", "--set", "tune.pbt.perturbation_interval=2"]

    def ready(run: BackgroundRun) -> bool:  # every trial held, and Tune's saved state has their checkpoints
        held, saved = hold.held(), saved_latest_checkpoints(exp / "tune")
        return (len(held) == 3 and set(held.values()) == {HELD}
                and len(saved) == 3 and {epoch for epoch, _ in saved.values()} == {HELD})

    with BackgroundRun(*args, hold=hold, env=SAVE_STATE_EVERY_SECOND) as first:
        first.wait_until(ready, timeout=400)
        first.kill_driver()
        before_out, before_err = first.stdout, first.stderr
    from raynas.results import load_table

    before = {(r["trial_id"], r["epoch"]): fingerprint(r) for r in load_table(exp, "epochs").to_pylist()}
    assert {epoch for _, epoch in before} == {1, 2, 3}
    with BackgroundRun("resume", str(exp)) as second:
        code = second.wait(timeout=400)
        after_out, after_err = second.stdout, second.stderr
    assert code == 0, after_err[-3000:]
    log = (exp / "logs" / "tune.log").read_text()
    assert not noise_lines(before_out, before_err, after_out, after_err, log)
    rows = epoch_rows(exp)
    assert {epoch for _, epoch in rows} == set(range(1, 7))
    # the epochs before the kill stand as they were; each trial's first epoch after the resume went on from
    # its own checkpoint of epoch HELD: the state it had
    assert {key: fingerprint(rows[key]) for key in before} == before
    for trial_id in {t for t, _ in before}:
        first_after = rows[(trial_id, HELD + 1)]
        extra = dict(first_after["extra"])
        assert first_after["restored_from"] is None
        assert (extra["restored_epoch"], extra["restored_fingerprint"]) == (HELD, before[(trial_id, HELD)])
    check_restores(rows)  # and every exploit and PBT restart read the state its source had reported
    check_latest_checkpoints(exp, rows)
