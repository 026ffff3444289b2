"""``raynas resume --max-failures N``: a resumed run retries a trial whose process dies, whatever the search
set (real CLI, real local Ray).

A one-trial search with ``tune.max_failures: 0`` is held after epoch 2 and its Ray worker SIGKILLed: the
trial fails (Tune counts 1 failure) and the search exits 1. ``raynas resume --max-failures 1`` runs it on,
held after epoch 4, where its worker is killed again: it is retried from its checkpoint and finishes, so
the earlier failure did not use up the new budget (Tune alone would keep the limit 0, and a limit of 1
counted over both runs would end it too).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import BackgroundRun, Hold, busy_trial_workers, raynas  # noqa: E402

EPOCHS = 6


def kill_when_held(run: BackgroundRun, hold: Hold) -> None:
    """Wait until the trial is held after ``hold.epoch`` and is the only one at work, kill its worker, let
    the retry (if any) through the hold."""
    run.wait_until(lambda r: list(hold.held().values()) == [hold.epoch] and len(busy_trial_workers(r)) == 1)
    busy_trial_workers(run)[0].kill()
    hold.release()


@pytest.mark.slow
def test_resume_max_failures_retries_a_killed_trial(tmp_path):
    args = ("search", "search_configs/smoke/nb201.yaml", "--out", str(tmp_path), "--set", "name=retries",
            "--set", "ray.num_cpus=2", "--set", "data.limit=128", "--set", f"search.epochs={EPOCHS}",
            "--set", 'tune.grid={"search.seed": [0]}', "--set", "tune.max_failures=0")
    first = Hold(tmp_path / "hold1", 2)
    with BackgroundRun(*args, hold=first) as run:
        kill_when_held(run, first)
        assert run.wait() == 1, run.stdout[-2000:] + run.stderr[-2000:]
        assert "retrying" not in run.stdout  # tune.max_failures 0: the kill ended the trial
    second = Hold(tmp_path / "hold2", 4)
    with BackgroundRun("resume", str(tmp_path / "retries"), "--max-failures", "1", hold=second) as run:
        kill_when_held(run, second)
        code = run.wait()
        stdout = run.stdout
        assert code == 0, stdout[-3000:] + run.stderr[-3000:]
    assert "retried up to 1 time(s) in this run" in stdout
    lines = re.findall(r"^\[\S+ [^\]]*\] (.*)$", stdout, re.M)
    retry = [i for i, line in enumerate(lines) if "lost its process; retrying" in line]
    assert len(retry) == 1, lines
    after = [int(m.group(1)) for m in (re.match(r"epoch +(\d+)/", line) for line in lines[retry[0] + 1:]) if m]
    assert after and after[0] <= 5 and after[-1] == EPOCHS, lines  # from the checkpoint of epoch 4 (or before)
    rows = pq.read_table(tmp_path / "retries" / "tables" / "trials.parquet").to_pylist()
    assert [(row["status"], row["epochs_done"]) for row in rows] == [("TERMINATED", EPOCHS)]


def test_resume_max_failures_out_of_range_is_one_line(tmp_path):
    result = raynas("resume", str(tmp_path), "--max-failures", "-1")
    assert result.returncode == 2
    assert result.stderr == "error: --max-failures = -1: must be >= 0 and <= 1024\n", result.stderr
