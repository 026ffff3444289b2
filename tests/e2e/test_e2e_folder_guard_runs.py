"""The folder guard with real drivers (real CLI, real local Ray, 2 CPUs): one driver per folder, a stale lock
taken over after a SIGKILL, a changed settings file refused and then accepted on purpose.

Search: ``raynas search`` (under umask 002: raynas' own folders must still pass its trust check) is held
after epoch 1 (:mod:`raynas.tune.hold`), so it is alive by construction when a ``raynas resume`` of its
folder is refused; then it is SIGKILLed, ``config.yaml`` is edited (architecture lr 0.01 -> 0.3, noise 0.5
-> 0.0), a resume is refused naming both keys (and reports the killed driver's stale lock), and a resume
with ``--accept-config-change`` finishes the trials and records the change in the events table, at a time
after epoch 1 and before epochs 2 and 3 of every trial.

Train: the run is killed after epoch 1; a resume with a changed ``evaluation.yaml`` is refused; the resume
that accepts it is held after epoch 2, when a second resume of the folder is refused naming it.

Build: ``raynas bench build`` held after its first cell refuses a resume; killed, its ``benchmark.yaml`` with
another protocol is refused; an accepted plan change (``max_failures``) is recorded in the folder.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import (ROOT, SAVE_STATE_EVERY_SECOND, BackgroundRun, Hold, raynas,  # noqa: E402
                         saved_latest_checkpoints)

from raynas.config_fingerprint import FINGERPRINT_FILE  # noqa: E402
from raynas.folder_lock import LOCK_FILE  # noqa: E402

pytestmark = pytest.mark.slow  # three populations started, killed and resumed: minutes on 2 busy cores

SMOKE = ROOT / "search_configs" / "smoke" / "nb201.yaml"  # 2 trials; arch_lr 0.01, noise_std 0.5
CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
EPOCH_LINE = re.compile(r"^\[\S+ [^\]]*\] epoch +(\d+)/", re.M)
HOST = socket.gethostname()
TINY_PROTOCOL = """\
data: {name: digits, noise_std: 1.0, test_fraction: 0.5}
epochs: 1
batch_size: 256
lr: 0.05
channels: 4
layers: 1
"""


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    return lines[0]


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new))


def all_saved_at(tune_dir: Path, trials: int, epoch: int) -> bool:
    """Tune's saved state registers a checkpoint of ``epoch`` for each of ``trials`` trials."""
    latest = saved_latest_checkpoints(tune_dir)
    return len(latest) == trials and {e for e, _ in latest.values()} == {epoch}


# ------------------------------------------------------------------------------------------ search
@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("guard-search")
    exp = out / "smoke-nb201"
    hold = Hold(out / "hold", 1)
    loose = os.umask(0o002)  # the CLI inherits it (group-writable files by default)
    try:
        first = BackgroundRun("search", str(SMOKE), "--out", str(out), "--set", "ray.num_cpus=2",
                              "--set", "search.epochs=3", hold=hold, env=SAVE_STATE_EVERY_SECOND)
    finally:
        os.umask(loose)
    with first:
        first.wait_until(lambda run: len(hold.held()) == 2 and all_saved_at(exp / "tune", 2, 1))
        while_running = raynas("resume", str(exp))
        record = json.loads((exp / LOCK_FILE).read_text())
        first.kill_driver()
        driver = first.proc.pid
    modes = {str(p): stat.S_IMODE(p.stat().st_mode) for p in [exp, *exp.rglob("*")]}
    parts = {p: p.read_bytes() for p in (exp / "tables" / "parts").rglob("*.parquet")}
    replace_in(exp / "config.yaml", "arch_lr: 0.01", "arch_lr: 0.3")
    replace_in(exp / "config.yaml", "noise_std: 0.5", "noise_std: 0.0")
    refused = raynas("resume", str(exp))
    parts_after_refusal = {p: p.read_bytes() for p in (exp / "tables" / "parts").rglob("*.parquet")}
    loose = os.umask(0o002)
    try:
        second = BackgroundRun("resume", str(exp), "--accept-config-change")
    finally:
        os.umask(loose)
    with second:
        code = second.wait(timeout=400)
        accepted, accepted_err = second.stdout, second.stderr
    again = raynas("resume", str(exp))
    return {"exp": exp, "driver": driver, "while_running": while_running, "record": record, "modes": modes,
            "parts": parts, "refused": refused, "parts_after_refusal": parts_after_refusal, "code": code,
            "accepted": accepted, "accepted_err": accepted_err, "again": again}


def test_a_resume_while_the_search_runs_is_refused_naming_the_search(search):
    error = one_line_error(search["while_running"])
    assert f"'{search['exp']}' is in use: raynas search (pid {search['driver']} on host {HOST}, started " in error
    assert search["record"]["pid"] == search["driver"] and search["record"]["action"] == "raynas search"


def test_raynas_folders_are_writable_by_the_user_alone_even_under_a_loose_umask(search):
    loose = {path: f"{mode:04o}" for path, mode in search["modes"].items() if mode & 0o022}
    assert not loose, loose


def test_after_the_kill_the_stale_lock_is_reported_and_the_changed_config_refused(search):
    refused = search["refused"]
    error = one_line_error(refused)
    assert "its config.yaml changed since the run started (data.noise_std 0.5 -> 0.0, search.arch_lr 0.01 -> 0.3)" \
        in error and "--accept-config-change" in error
    stale = [line for line in refused.stdout.splitlines() if "taking the lock over" in line]
    assert len(stale) == 1 and f"raynas search (pid {search['driver']} on host {HOST}" in stale[0], refused.stdout
    assert f"pid {search['driver']} is gone" in stale[0]
    assert not EPOCH_LINE.findall(refused.stdout)  # nothing ran
    assert search["parts_after_refusal"] == search["parts"]  # nothing written


def test_an_accepted_change_finishes_the_run_and_is_recorded_between_the_epochs(search):
    assert search["code"] == 0, search["accepted_err"][-3000:]
    out = search["accepted"]
    assert "raynas: going on with the changed config.yaml (--accept-config-change): data.noise_std 0.5 -> 0.0, " \
           "search.arch_lr 0.01 -> 0.3; recorded in config_fingerprint.json and tables/events.parquet" in out
    assert "taking the lock over" not in out  # the refused resume released the lock cleanly
    exp = search["exp"]
    trials = pq.read_table(exp / "tables" / "trials.parquet").to_pylist()
    assert {(t["status"], t["epochs_done"]) for t in trials} == {("TERMINATED", 3)}
    (event,) = pq.read_table(exp / "tables" / "events.parquet").to_pylist()
    assert (event["experiment"], event["kind"], event["host"]) == ("smoke-nb201", "config_change", HOST)
    assert json.loads(event["detail_json"])["changed"] == {"data.noise_std": [0.5, 0.0], "search.arch_lr": [0.01, 0.3]}
    epochs = pq.read_table(exp / "tables" / "epochs.parquet").to_pylist()
    before = {(row["trial_id"], row["epoch"]) for row in epochs if row["reported_at"] < event["at"]}
    after = {(row["trial_id"], row["epoch"]) for row in epochs if row["reported_at"] > event["at"]}
    ids = {t["trial_id"] for t in trials}
    assert before == {(t, 1) for t in ids} and after == {(t, e) for t in ids for e in (2, 3)}
    stored = json.loads((exp / FINGERPRINT_FILE).read_text())
    assert stored["values"]["search"]["arch_lr"] == 0.3 and len(stored["accepted_changes"]) == 1
    shown = raynas("results", str(exp), "--table", "events", "--format", "json")
    assert shown.returncode == 0 and json.loads(shown.stdout)[0]["kind"] == "config_change"


def test_the_accepted_config_is_what_later_resumes_compare_with(search):
    again = search["again"]
    assert again.returncode == 0, again.stderr[-3000:]
    assert "had already finished; nothing to resume" in again.stdout


# ------------------------------------------------------------------------------------------ train
def test_train_resume_refuses_a_changed_plan_and_a_second_resume(tmp_path):
    run_dir = tmp_path / "run"
    args = ("train", CONV, "--epochs", "3", "--set", "lr=0.1", "--set", "channels=8", "--set", "layers=1",
            "--set", "batch_size=32", "--out", str(tmp_path), "--name", "run", "--num-cpus", "2")
    first_hold = Hold(tmp_path / "hold1", 1)
    with BackgroundRun(*args, hold=first_hold, env=SAVE_STATE_EVERY_SECOND) as first:
        first.wait_until(lambda run: list(first_hold.held().values()) == [1] and all_saved_at(run_dir / "tune", 1, 1))
        first.kill_driver()
    replace_in(run_dir / "evaluation.yaml", "  lr: 0.1\n", "  lr: 0.05\n")
    error = one_line_error(raynas("resume", str(run_dir)))
    assert "its evaluation.yaml changed since the run started (train.lr 0.1 -> 0.05)" in error

    second_hold = Hold(tmp_path / "hold2", 2)
    with BackgroundRun("resume", str(run_dir), "--accept-config-change", hold=second_hold) as second:
        second.wait_until(lambda run: list(second_hold.held().values()) == [2])
        third = raynas("resume", str(run_dir))  # while the first resume lives
        second_hold.release()
        code = second.wait(timeout=300)
        out, err = second.stdout, second.stderr
    assert f"is in use: raynas resume (pid {second.proc.pid} on host {HOST}" in one_line_error(third)
    assert code == 0, err[-3000:]
    assert "going on with the changed evaluation.yaml (--accept-config-change): train.lr 0.1 -> 0.05" in out
    (row,) = pq.read_table(run_dir / "tables" / "evaluations.parquet").to_pylist()
    assert (row["status"], row["epochs_done"]) == ("TERMINATED", 3)
    (event,) = pq.read_table(run_dir / "tables" / "events.parquet").to_pylist()
    assert json.loads(event["detail_json"])["changed"] == {"train.lr": [0.1, 0.05]}


# ------------------------------------------------------------------------------------------ build
def test_build_resume_refuses_while_it_runs_and_a_changed_protocol(tmp_path):
    from ray import tune

    protocol = tmp_path / "tiny.yaml"
    protocol.write_text(TINY_PROTOCOL)
    build = tmp_path / "b"
    hold = Hold(tmp_path / "hold", 1)

    def saved_cells() -> int:
        try:
            trials = tune.ExperimentAnalysis(str(build / "tune")).trials
        except Exception:  # not written yet, or being written
            return 0
        results = [t.run_metadata.checkpoint_manager.latest_checkpoint_result for t in trials]
        return max((r.metrics.get("cells_done", 0) for r in results if r is not None), default=0)

    args = ("bench", "build", "--protocol", str(protocol), "--cells", "3", "--out", str(tmp_path), "--name", "b",
            "--num-cpus", "1")
    with BackgroundRun(*args, hold=hold, env=SAVE_STATE_EVERY_SECOND) as first:
        first.wait_until(lambda run: list(hold.held().values()) == [1] and saved_cells() == 1)
        while_running = raynas("resume", str(build))
        first.kill_driver()
        driver = first.proc.pid
    assert f"is in use: raynas bench build (pid {driver} on host {HOST}" in one_line_error(while_running)

    replace_in(build / "benchmark.yaml", "  lr: 0.05\n", "  lr: 0.5\n")
    refused = raynas("resume", str(build))
    assert "its benchmark.yaml changed since the run started (protocol.lr 0.05 -> 0.5)" in one_line_error(refused)
    assert f"pid {driver} is gone" in refused.stdout
    replace_in(build / "benchmark.yaml", "  lr: 0.5\n", "  lr: 0.05\n")  # the protocol back as it was
    replace_in(build / "benchmark.yaml", "max_failures: 2\n", "max_failures: 3\n")
    with BackgroundRun("resume", str(build), "--accept-config-change") as second:
        assert second.wait(timeout=300) == 0, second.stderr[-3000:]
        out = second.stdout
    assert "going on with the changed benchmark.yaml (--accept-config-change): max_failures 2 -> 3; recorded in " \
           "config_fingerprint.json\n" in out  # a build has no events table
    history = json.loads((build / FINGERPRINT_FILE).read_text())["accepted_changes"]
    assert [entry["changed"] for entry in history] == [{"max_failures": [2, 3]}]
    assert pq.read_table(build / "benchmark.parquet").num_rows == 3
