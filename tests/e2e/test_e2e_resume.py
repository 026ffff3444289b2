"""End to end: ``raynas resume`` after the driver was SIGKILLed mid-run (real CLI, real local Ray, 2 CPUs).

One search of ``search_configs/smoke/resume.yaml`` (a 2-epoch and a 12-epoch trial) is started from its own
working folder with a relative ``--out``, killed with SIGKILL (and every Ray process it started, as a reboot
would) once the short trial has finished and the long one is held after epoch ``HELD`` (the run control
of :mod:`raynas.tune.hold`), then resumed from another working folder without the hold.

The kill comes at a state the run reaches by construction, whatever the machine's speed: the long trial
cannot finish while it is held, and the short one ends on its own. "Finished" is what Tune's saved
experiment state says: Tune snapshots it every second here (``SAVE_STATE_EVERY_SECOND``), and while the long
trial is held nothing else changes, so the snapshot with the short trial TERMINATED and the long one's
checkpoint of epoch ``HELD`` comes and stays.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import (LOOPBACK, ROOT, SAVE_STATE_EVERY_SECOND, BackgroundRun, Hold, raynas,  # noqa: E402
                         saved_checkpoint_epoch, saved_latest_checkpoints)

CONFIG = ROOT / "search_configs" / "smoke" / "resume.yaml"
EPOCH_LINE = re.compile(r"^\[(\S+) search\.epochs=(\d+)\] epoch +(\d+)/", re.M)
SHORT, LONG = 2, 12  # the grid of resume.yaml
HELD = 4  # the long trial is held after this epoch until the kill


def epoch_lines(text: str) -> list[tuple[str, int, int]]:
    """(trial id, its configured epochs, reported epoch) of every progress line, in order."""
    return [(trial, int(total), int(epoch)) for trial, total, epoch in EPOCH_LINE.findall(text)]


def last_epoch(text: str, total: int) -> int:
    return max([epoch for _, t, epoch in epoch_lines(text) if t == total], default=0)


def saved_as_finished(tune_dir: Path, trial_id: str) -> bool:
    """Whether Tune's saved experiment state has ``trial_id`` TERMINATED (public API: ExperimentAnalysis)."""
    from ray import tune

    try:
        return any(t.trial_id == trial_id and t.status == "TERMINATED"
                   for t in tune.ExperimentAnalysis(str(tune_dir)).trials)
    except Exception:  # the state file is being written, or not yet there
        return False


def killed_mid_run(exp: Path, hold: Hold):
    def ready(run: BackgroundRun) -> bool:
        out = run.stdout
        if f"search.epochs={SHORT}] finished:" not in out or last_epoch(out, LONG) != HELD:
            return False
        ids = {total: trial for trial, total, _ in epoch_lines(out)}
        return (hold.held() == {ids[LONG]: HELD} and saved_as_finished(exp / "tune", ids[SHORT])
                and saved_checkpoint_epoch(exp / "tune") == HELD)
    return ready


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    exp = work / "out" / "smoke-resume"
    hold = Hold(work / "hold", HELD)
    with BackgroundRun("search", str(CONFIG), "--out", "out", "--set", "ray.num_cpus=2", cwd=work,
                       hold=hold, env=SAVE_STATE_EVERY_SECOND) as first:
        first.wait_until(killed_mid_run(exp, hold))
        first.kill_driver()
        before = first.stdout
    killed = work / "killed"  # the folder as the kill left it, for the damaged-folder tests below
    shutil.copytree(exp, killed, symlinks=True)
    ids = {total: trial for trial, total, _ in epoch_lines(before)}
    short_parts = {p: p.stat().st_mtime_ns for p in (exp / "tables" / "parts").rglob(f"{ids[SHORT]}*")}
    with BackgroundRun("resume", str(exp)) as second:  # from the repository root, not the search's folder
        code = second.wait(timeout=300)
        after, errors = second.stdout, second.stderr
    return {"exp": exp, "before": before, "after": after, "stderr": errors, "code": code, "ids": ids,
            "short_parts": short_parts, "listening": (first.listening, second.listening), "killed": killed}


def test_search_and_resume_listen_on_loopback_only(resumed):
    for run in resumed["listening"]:
        assert run, "no listening socket was observed: the watcher is broken"
        assert run <= LOOPBACK, run


def test_resume_finishes_every_trial_and_prints_the_summary(resumed):
    assert resumed["code"] == 0, resumed["stderr"][-3000:]
    assert "raynas: resuming 'smoke-resume' (1 of 2 trial(s) unfinished, 0 not started)" in resumed["after"]
    trials = pq.read_table(resumed["exp"] / "tables" / "trials.parquet").to_pylist()
    assert {row["trial_id"]: (row["status"], row["epochs_done"]) for row in trials} == {
        resumed["ids"][SHORT]: ("TERMINATED", SHORT), resumed["ids"][LONG]: ("TERMINATED", LONG)}
    assert f"tables: {resumed['exp'] / 'tables'}" in resumed["after"]
    assert resumed["after"].count("|+|") >= 2  # both trials' genotypes in the summary


def test_tables_hold_exactly_one_row_per_trial_and_epoch(resumed):
    expected = {(resumed["ids"][total], epoch) for total in (SHORT, LONG) for epoch in range(1, total + 1)}
    for name in ("epochs", "genotypes"):
        table = pq.read_table(resumed["exp"] / "tables" / f"{name}.parquet")
        keys = list(zip(table.column("trial_id").to_pylist(), table.column("epoch").to_pylist()))
        assert len(keys) == len(set(keys)) and set(keys) == expected, name
    alphas = pq.read_table(resumed["exp"] / "tables" / "alphas.parquet")
    rows = list(zip(*(alphas.column(c).to_pylist() for c in ("trial_id", "epoch", "cell", "edge", "op"))))
    assert len(rows) == len(set(rows)) == len(expected) * 6 * 5  # NB201: 6 edges x 5 ops per epoch


def test_finished_trial_stays_finished(resumed):
    short = resumed["ids"][SHORT]
    assert f"[{short} " not in resumed["after"]  # no progress line of it: it did not run again
    assert resumed["short_parts"], "the short trial wrote no parts before the kill"
    assert {p: p.stat().st_mtime_ns for p in resumed["short_parts"]} == resumed["short_parts"]


def test_running_trial_continues_from_its_checkpoint(resumed):
    killed_at = last_epoch(resumed["before"], LONG)
    first_new = [epoch for _, total, epoch in epoch_lines(resumed["after"]) if total == LONG][0]
    assert killed_at == HELD and first_new == HELD + 1, (first_new, killed_at)  # the checkpoint Tune had saved


def test_callbacks_follow_the_folder_not_the_first_working_directory(resumed):
    # The search ran with --out out from another folder; Tune's pickled callbacks hold that relative path.
    assert not (ROOT / "out" / "smoke-resume").exists()
    assert epoch_lines(resumed["after"])  # progress lines reach this process's stdout


def test_resume_of_a_finished_experiment_says_so(resumed):
    with BackgroundRun("resume", str(resumed["exp"])) as again:
        code = again.wait(timeout=300)
        out, err = again.stdout, again.stderr
    assert code == 0, err[-3000:]
    assert "had already finished; nothing to resume" in out and f"tables: {resumed['exp'] / 'tables'}" in out
    assert not epoch_lines(out) and "Started a local Ray instance" not in err  # Ray is not needed


def test_resume_refuses_a_folder_that_is_not_an_experiment(tmp_path):
    result = raynas("resume", str(tmp_path))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "is not a raynas experiment folder" in lines[0]


@pytest.mark.slow  # a whole search of its own (about 20 s): an edge case of the resume the fixture above runs
def test_resume_of_a_search_killed_before_tune_saved_state_starts_it_over(tmp_path):
    # What a driver killed while Ray or Tune started leaves: its config and Tune's settings, no saved state, no
    # results. It used to be refused, and `raynas search` refuses an existing folder: a person had to delete it.
    import yaml

    config = yaml.safe_load(CONFIG.read_text())
    config["search"]["epochs"] = 2
    config["tune"]["grid"] = {"search.epochs": [2]}  # one trial, labelled as EPOCH_LINE reads them
    exp = tmp_path / "smoke-resume"
    (exp / "tune").mkdir(parents=True)
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    (exp / "tune" / "tuner.pkl").write_bytes(b"")  # Tune writes it before it saves any state
    with BackgroundRun("resume", str(exp)) as run:
        code = run.wait(timeout=300)
        out, err = run.stdout, run.stderr
    assert code == 0, err[-3000:]
    assert f"raynas: experiment '{exp}' stopped before Ray Tune saved any state (no trial had reported): " \
           "starting it from the beginning" in out
    assert "raynas: 1 trial(s) of 'smoke-resume'" in out and [e for _, _, e in epoch_lines(out)] == [1, 2]
    epochs = pq.read_table(exp / "tables" / "epochs.parquet")
    assert epochs.column("epoch").to_pylist() == [1, 2]


def test_resume_refuses_an_experiment_whose_results_outlived_tune_state(tmp_path):
    shutil.copy(CONFIG, tmp_path / "config.yaml")  # no Tune state, but results: nothing is started over
    (tmp_path / "tables" / "parts" / "epochs" / "t_00000").mkdir(parents=True)
    (tmp_path / "tables" / "parts" / "epochs" / "t_00000" / "00001.parquet").write_bytes(b"PAR1")
    result = raynas("resume", str(tmp_path))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "cannot be resumed" in lines[0], result.stderr


# ------------------------------------------------------------------ damaged folders (copies of the run)
def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


def _tables(exp: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (exp / "tables").glob("*.parquet")}


@pytest.mark.parametrize("state", ["finished", "killed"])
def test_resume_refuses_a_folder_whose_parts_were_deleted(resumed, tmp_path, state):
    exp = _copy(resumed["exp"] if state == "finished" else resumed["killed"], tmp_path / "exp")
    if state == "killed":  # the kill left no consolidated tables: give it those of the finished run
        for table in (resumed["exp"] / "tables").glob("*.parquet"):
            shutil.copy2(table, exp / "tables" / table.name)
    tables = _tables(exp)
    held = {name: pq.read_metadata(exp / "tables" / name).num_rows for name in tables}
    assert held["trials.parquet"] == 2 and held["epochs.parquet"] >= SHORT + HELD
    shutil.rmtree(exp / "tables" / "parts")
    result = raynas("resume", str(exp))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert f"trials 2 -> 0, epochs {held['epochs.parquet']} -> 0" in lines[0] and "nothing was changed" in lines[0]
    assert _tables(exp) == tables  # not rewritten empty
    assert not epoch_lines(result.stdout) and "had already finished" not in result.stdout  # nothing ran


@pytest.mark.slow  # a resume of its own (about 20 s); the fallback is tested in the default tier in process
# (tests/tune/test_tune_checkpoint_fallback.py)
def test_resume_goes_on_from_an_older_checkpoint_when_the_latest_is_torn(resumed, tmp_path):
    exp = _copy(resumed["killed"], tmp_path / "exp")
    long = resumed["ids"][LONG]
    epoch, latest = saved_latest_checkpoints(exp / "tune")[long]
    assert epoch == HELD and (latest.parent / f"checkpoint_{HELD - 2:06d}").is_dir()  # Tune keeps 2 per trial
    state = next(latest.glob("*.pt"))
    state.write_bytes(state.read_bytes()[:1000])  # torn after Tune had registered it
    with BackgroundRun("resume", str(exp)) as run:
        code = run.wait(timeout=300)
        out, err = run.stdout, run.stderr
    assert code == 0, err[-3000:]
    said = [line for line in out.splitlines() if "cannot be loaded" in line]
    assert len(said) == 1 and said[0].startswith(f"[{long} ") and \
        f"continuing from checkpoint_{HELD - 2:06d}, the newest older checkpoint that loads" in said[0], out
    first_new = [e for _, total, e in epoch_lines(out) if total == LONG][0]
    assert first_new == HELD  # epoch HELD runs again from the checkpoint of epoch HELD - 1
    epochs = pq.read_table(exp / "tables" / "epochs.parquet")
    keys = list(zip(epochs.column("trial_id").to_pylist(), epochs.column("epoch").to_pylist()))
    assert len(keys) == len(set(keys)) and sorted(e for t, e in keys if t == long) == list(range(1, LONG + 1))


def test_resume_of_a_truncated_experiment_state_is_one_line(resumed, tmp_path):
    exp = _copy(resumed["killed"], tmp_path / "exp")
    (state,) = (exp / "tune").glob("experiment_state-*.json")
    state.write_bytes(state.read_bytes()[:200])
    result = raynas("resume", str(exp))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(f"error: experiment '{exp}' cannot be resumed: Ray Tune's saved state {state}")
    assert "no older state" in lines[0] and "Traceback" not in result.stderr


def _tear_part(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # what a crash leaves of a file it caught on its way to the disk


def test_torn_parts_come_back_from_what_tune_saved_or_the_resumed_trial(resumed, tmp_path):
    # The parts a crash can tear are those written last: no consolidated table holds them yet.
    exp = _copy(resumed["killed"], tmp_path / "exp")
    long, short = resumed["ids"][LONG], resumed["ids"][SHORT]
    parts = exp / "tables" / "parts"
    assert not (exp / "tables" / "epochs.parquet").exists()
    saved = {  # Tune's saved state holds the reports of these: the short trial's last, the long one's checkpoint
        parts / "epochs" / long / f"{HELD:05d}.parquet": None,
        parts / "alphas" / short / f"{SHORT:05d}.parquet": None,
        parts / "trials" / f"{long}.parquet": None,
    }
    for path in saved:
        saved[path] = pq.read_table(path)
        _tear_part(path)
    after_checkpoint = parts / "genotypes" / long / f"{HELD + 1:05d}.parquet"  # the resumed trial runs it again
    after_checkpoint.write_bytes(b"PAR1 torn")
    with BackgroundRun("resume", str(exp)) as run:
        code = run.wait(timeout=300)
        out, err = run.stdout, run.stderr
    assert code == 0, err[-3000:]
    assert [e for _, total, e in epoch_lines(out) if total == LONG][0] == HELD + 1  # from the checkpoint of HELD
    warnings = [line for line in err.splitlines() if "could not be read" in line]
    assert len(warnings) == 4, err[-3000:]
    assert sum(f"in the report of epoch {HELD} in Ray Tune's saved state" in line for line in warnings) == 1
    assert sum(f"in the report of epoch {SHORT} in Ray Tune's saved state" in line for line in warnings) == 1
    assert sum(f"(trial {long}) in Ray Tune's saved state of the trial" in line for line in warnings) == 1
    assert sum(f"set aside as {after_checkpoint.name}.torn: trial {long} runs epoch {HELD + 1} again" in line
               for line in warnings) == 1
    expected = {(resumed["ids"][total], epoch) for total in (SHORT, LONG) for epoch in range(1, total + 1)}
    for name in ("epochs", "genotypes"):
        table = pq.read_table(exp / "tables" / f"{name}.parquet")
        keys = list(zip(table.column("trial_id").to_pylist(), table.column("epoch").to_pylist()))
        assert len(keys) == len(set(keys)) and set(keys) == expected, name
    epochs = pq.read_table(exp / "tables" / "epochs.parquet").to_pylist()
    (row,) = [r for r in epochs if (r["trial_id"], r["epoch"]) == (long, HELD)]
    assert row == saved[parts / "epochs" / long / f"{HELD:05d}.parquet"].to_pylist()[0]  # the same row
    alphas = pq.read_table(exp / "tables" / "alphas.parquet")
    mine = alphas.filter(pc.and_(pc.equal(alphas["trial_id"], short), pc.equal(alphas["epoch"], SHORT)))
    assert mine.to_pylist() == saved[parts / "alphas" / short / f"{SHORT:05d}.parquet"].to_pylist()


def test_tunes_saved_state_holds_every_checkpointed_report(resumed, tmp_path):
    # Tune keeps every checkpoint's report in its saved state (raynas.tune.retention: num_to_keep=None), so
    # even an old epoch's torn part has a copy; an epoch after the checkpoint is run again; nothing else.
    from raynas.results.recovery import SavedState

    long = resumed["ids"][LONG]
    recover = SavedState(resumed["killed"] / "tune", lambda name, trial: None)
    for epoch in range(1, HELD + 1):
        rows, where = recover("alphas", long, epoch)
        assert rows.num_rows == 6 * 5 and set(rows.column("epoch").to_pylist()) == {epoch}, where
    rows, why = recover("epochs", long, HELD + 1)
    assert rows is None and f"runs epoch {HELD + 1} again" in why
    assert recover("epochs", resumed["ids"][SHORT], SHORT + 1) is None  # a finished trial: no such epoch
    assert recover("epochs", "unknown_00009", 1) is None
