"""Ctrl+C (SIGINT) on a running ``raynas search`` (real CLI, real local Ray): Ray Tune saves the state, raynas
says how to go on with ``raynas resume DIR`` (not Tune's ``Tuner.restore(...)``), exits with 130, and the
printed command finishes the experiment.

The signal comes while both trials are held after epoch 1 (:mod:`raynas.tune.hold`): a state the run
reaches by construction and stays in, whatever the machine's speed.
"""

from __future__ import annotations

import shlex
import signal
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import ROOT, BackgroundRun, Hold  # noqa: E402

CONFIG = ROOT / "search_configs" / "smoke" / "nb201.yaml"  # 2 trials


@pytest.mark.slow  # 70-100 s on a busy 2-core machine (a search, a SIGINT, a resume)
def test_ctrl_c_prints_how_to_resume_and_the_printed_command_finishes(tmp_path):
    exp = tmp_path / "smoke-nb201"
    hold = Hold(tmp_path / "hold", 1)
    with BackgroundRun("search", str(CONFIG), "--out", str(tmp_path), "--set", "ray.num_cpus=2",
                       "--set", "search.epochs=3", hold=hold) as run:
        run.wait_until(lambda r: len(hold.held()) == 2)
        run.proc.send_signal(signal.SIGINT)
        code = run.wait(timeout=300)
        out, err = run.stdout, run.stderr
    assert code == 130, err[-3000:]
    hint = [line for line in out.splitlines() if line.startswith("resume with: ")]
    assert hint == [f"resume with: raynas resume {shlex.quote(str(exp))}"], out
    assert "raynas: interrupted: 2 of 2 trial(s) unfinished" in out
    assert "Tuner.restore" not in out + err and "Traceback" not in out + err
    assert "Tuner.restore" in (exp / "logs" / "tune.log").read_text()  # Tune's own text stays in the log

    command = shlex.split(hint[0].removeprefix("resume with: "))
    assert command[:2] == ["raynas", "resume"]
    with BackgroundRun(*command[1:]) as again:
        assert again.wait(timeout=300) == 0, again.stderr[-3000:]
    trials = pq.read_table(exp / "tables" / "trials.parquet").to_pylist()
    assert {(t["status"], t["epochs_done"]) for t in trials} == {("TERMINATED", 3)}
