"""End to end: experiments on object storage (``--out s3://...``) through the real CLI, a real local Ray and a
real S3-compatible server on loopback (moto's server mode, tests/storage/conftest.py).

A search writes its folder to the bucket (Tune its state and checkpoints, raynas its config, tables, logs);
``raynas results|plot|report`` read it from the URI on "another machine" (a fresh working-copy folder) and
put their output back; a search whose driver is SIGKILLed mid-run (the long trial held after epoch ``HELD``
by :mod:`raynas.tune.hold`, so the kill comes at a known state) is finished by ``raynas resume URI`` from
another working copy, with no row lost or doubled.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
from cli_helpers import (LOOPBACK, ROOT, SAVE_STATE_EVERY_SECOND, BackgroundRun, Hold, raynas,  # noqa: E402
                         run_watching_sockets)

TINY = ("--set", "search.epochs=2", "--set", "data.limit=128", "--set", "supernet.channels=4",
        "--set", "supernet.layers=1", "--set", "ray.num_cpus=2")
TABLES = ("trials", "epochs", "alphas", "genotypes")


@contextlib.contextmanager
def working_copies_in(folder: Path) -> Iterator[None]:
    """Commands started in the block keep their working copies in ``folder``: another machine's cache."""
    saved = os.environ["RAYNAS_REMOTE_CACHE"]
    os.environ["RAYNAS_REMOTE_CACHE"] = str(folder)
    try:
        yield
    finally:
        os.environ["RAYNAS_REMOTE_CACHE"] = saved


def remote_table(s3, key: str):
    """A Parquet table read straight from the bucket through pyarrow."""
    from pyarrow import fs as pafs

    filesystem, path = pafs.FileSystem.from_uri(s3.uri(key))
    return pq.read_table(path, filesystem=filesystem)


# ------------------------------------------------------------------ refusals (no Ray: the default tier)
@pytest.mark.parametrize("args, message", [
    (["search", "quickstart", "--out", "ftp://host/runs"], "--out = 'ftp://host/runs': storage scheme 'ftp://' is "
                                                           "not supported"),
    (["search", "quickstart", "--out", "s3://no-such-bucket/runs"], "--out = 's3://no-such-bucket/runs': bucket "
                                                                    "'no-such-bucket' does not exist"),
    (["results", "s3://raynas-test/nothing/here"], "DIRECTORY = 's3://raynas-test/nothing/here': nothing is stored"),
    (["train", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
      "--out", "s3://raynas-test/train"], "--out = 's3://raynas-test/train': takes a local folder here"),
    (["plot", "s3://raynas-test/x", "--out", "s3://raynas-test/pictures"], "--out = 's3://raynas-test/pictures': "
                                                                            "takes a local path"),
])
def test_storage_refusals_are_one_line_and_write_nothing(s3, tmp_path, args, message):
    result = raynas(*args, cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {message}"), result.stderr
    assert not list(tmp_path.iterdir()) and not any(s3.cache.rglob("*.yaml"))  # nothing written, here or cached
    assert not s3.files("train") and not s3.files("runs")


# ------------------------------------------------------------------ a search on S3 (slow: Ray and training)
@pytest.fixture(scope="module")
def searched(s3):
    run = run_watching_sockets("search", "quickstart", "--out", s3.uri("exp"), *TINY, timeout=600)
    return run, s3.uri("exp", "quickstart")


@pytest.mark.slow
def test_search_writes_tables_checkpoints_config_and_logs_to_the_bucket(s3, searched):
    run, uri = searched
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"raynas: 2 trial(s) of 'quickstart' (nb201, darts) -> {uri}" in run.stdout
    assert f"tables: {uri}/tables (alphas, decisions, epochs, genotypes, trials)" in run.stdout
    assert run.listening and run.listening <= LOOPBACK, run.listening
    keys = set(s3.files("exp/quickstart"))
    folder = "exp/quickstart"
    assert {f"{folder}/config.yaml", f"{folder}/config_fingerprint.json", f"{folder}/logs/tune.log",
            f"{folder}/tune/tuner.pkl", *(f"{folder}/tables/{name}.parquet" for name in TABLES)} <= keys
    assert any(re.fullmatch(rf"{folder}/tune/experiment_state-.*\.json", key) for key in keys)
    checkpoints = {key.split("/")[3] for key in keys if re.search(r"/checkpoint_\d+/search_state\.pt$", key)}
    assert len(checkpoints) == 2  # each trial's checkpoints, uploaded by its own process
    assert not [key for key in keys if key.endswith(".tmp") or key.endswith("raynas.lock")
                or key.endswith(".raynas-remote.json")]  # no temporary key, nothing of the working copy's own
    copy = s3.cache / "s3" / s3.bucket / "exp" / "quickstart"
    assert (copy / "config.yaml").is_file() and not (copy / "tune").exists()  # Tune wrote straight to the bucket
    trials = remote_table(s3, f"{folder}/tables/trials.parquet").to_pylist()
    assert [(row["status"], row["epochs_done"]) for row in trials] == [("TERMINATED", 2)] * 2
    assert remote_table(s3, f"{folder}/tables/epochs.parquet").num_rows == 4


@pytest.mark.slow
def test_results_of_the_uri_on_another_machine_equal_the_tables_in_the_bucket(s3, searched, tmp_path):
    _, uri = searched
    with working_copies_in(tmp_path / "other-machine"):
        board = raynas("results", uri, "--format", "json")
        epochs = raynas("results", uri, "--table", "epochs", "--format", "json")
    assert board.returncode == 0 and epochs.returncode == 0, board.stderr + epochs.stderr
    trials = remote_table(s3, "exp/quickstart/tables/trials.parquet").to_pylist()
    printed = json.loads(board.stdout)
    assert sorted((row["trial_id"], row["genotype"], row["epochs_done"]) for row in printed) == \
        sorted((row["trial_id"], row["genotype"], row["epochs_done"]) for row in trials)
    remote_epochs = remote_table(s3, "exp/quickstart/tables/epochs.parquet").to_pylist()
    assert sorted((row["trial_id"], row["epoch"], row["val_acc"]) for row in json.loads(epochs.stdout)) == \
        sorted((row["trial_id"], row["epoch"], row["val_acc"]) for row in remote_epochs)
    copy = tmp_path / "other-machine" / "s3" / s3.bucket / "exp" / "quickstart"
    assert (copy / "tables" / "trials.parquet").is_file()
    assert not (copy / "tune").exists() and not (copy / "logs").exists()  # no checkpoints, no logs fetched


@pytest.mark.slow
def test_the_python_api_loads_the_uri(s3, searched, tmp_path):
    import raynas

    _, uri = searched
    with working_copies_in(tmp_path / "notebook"):
        experiment = raynas.load(uri)
    assert experiment.directory == tmp_path / "notebook" / "s3" / s3.bucket / "exp" / "quickstart"
    trials = remote_table(s3, "exp/quickstart/tables/trials.parquet").to_pylist()
    assert sorted(experiment.leaderboard(as_pandas=False).column("trial_id").to_pylist()) == \
        sorted(row["trial_id"] for row in trials)


@pytest.mark.slow
def test_plot_and_report_of_the_uri_put_their_output_into_the_bucket(s3, searched, tmp_path):
    _, uri = searched
    with working_copies_in(tmp_path / "other-machine"):
        plot = raynas("plot", uri, "--format", "png")
        html = raynas("report", uri)
        md = raynas("report", uri, "--format", "md")
    assert plot.returncode == 0 and html.returncode == 0 and md.returncode == 0, plot.stderr + html.stderr + md.stderr
    pictures = [line for line in plot.stdout.splitlines() if line.startswith(f"{uri}/plots/")]
    assert pictures and plot.stdout.splitlines()[-1] == f"wrote {len(pictures)} files to {uri}/plots"
    keys = set(s3.files("exp/quickstart"))
    assert {line.removeprefix(f"s3://{s3.bucket}/") for line in pictures} <= keys
    assert html.stdout.strip() == f"{uri}/report.html" and md.stdout.strip() == f"{uri}/report.md"
    from pyarrow import fs as pafs

    filesystem, path = pafs.FileSystem.from_uri(f"{uri}/report.html")
    with filesystem.open_input_stream(path) as stream:
        page = stream.read().decode()
    assert page.lstrip().lower().startswith("<!doctype html") and "quickstart" in page
    assert any(key.startswith("exp/quickstart/report_files/") and key.endswith(".png") for key in keys)


# ------------------------------------------------------------------ killed mid-run, resumed elsewhere
CONFIG = ROOT / "search_configs" / "smoke" / "resume.yaml"
EPOCH_LINE = re.compile(r"^\[(\S+) search\.epochs=(\d+)\] epoch +(\d+)/", re.M)
SHORT, LONG = 2, 12  # the grid of resume.yaml
HELD = 4


def epoch_lines(text: str) -> list[tuple[str, int, int]]:
    return [(trial, int(total), int(epoch)) for trial, total, epoch in EPOCH_LINE.findall(text)]


def saved_state(tune_uri: str) -> dict[str, tuple[str, int]]:
    """Trial id -> (status, epoch of the latest checkpoint) in Tune's saved state at the URI ({}: none yet)."""
    import logging

    from ray import tune

    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    try:
        trials = tune.ExperimentAnalysis(tune_uri).trials
    except Exception:  # not saved yet
        return {}
    found = {}
    for trial in trials:
        latest = trial.run_metadata.checkpoint_manager.latest_checkpoint_result
        found[trial.trial_id] = (trial.status, int(latest.metrics.get("epoch", 0)) if latest else 0)
    return found


@pytest.fixture(scope="module")
def resumed(s3, tmp_path_factory):
    uri = s3.uri("killed", "smoke-resume")
    hold = Hold(tmp_path_factory.mktemp("hold"), HELD)

    def ready(run: BackgroundRun) -> bool:
        out = run.stdout
        ids = {total: trial for trial, total, _ in epoch_lines(out)}
        if f"search.epochs={SHORT}] finished:" not in out or hold.held() != {ids.get(LONG): HELD}:
            return False
        state = saved_state(f"{uri}/tune")  # what a resume restores from: in the bucket
        return state.get(ids[SHORT], ("",))[0] == "TERMINATED" and state.get(ids[LONG], ("", 0))[1] == HELD

    with BackgroundRun("search", str(CONFIG), "--out", s3.uri("killed"), "--set", "ray.num_cpus=2",
                       hold=hold, env=SAVE_STATE_EVERY_SECOND) as first:
        first.wait_until(ready, timeout=400)
        first.kill_driver()
        before = first.stdout
    ids = {total: trial for trial, total, _ in epoch_lines(before)}
    with working_copies_in(tmp_path_factory.mktemp("another-machine")):
        with BackgroundRun("resume", uri) as second:
            code = second.wait(timeout=400)
            after, errors = second.stdout, second.stderr
    return {"uri": uri, "before": before, "after": after, "stderr": errors, "code": code, "ids": ids}


@pytest.mark.slow
def test_resume_of_the_uri_finishes_the_killed_search_from_another_machine(s3, resumed):
    assert resumed["code"] == 0, resumed["stderr"][-3000:]
    assert f"raynas: resuming 'smoke-resume' (1 of 2 trial(s) unfinished, 0 not started) -> {resumed['uri']}" \
        in resumed["after"]
    assert f"tables: {resumed['uri']}/tables" in resumed["after"]
    short = resumed["ids"][SHORT]
    assert f"[{short} " not in resumed["after"]  # the finished trial did not run again
    assert [e for _, total, e in epoch_lines(resumed["after"]) if total == LONG][0] == HELD + 1  # its checkpoint


@pytest.mark.slow
def test_the_bucket_holds_every_row_once_and_each_trials_last_checkpoints(s3, resumed):
    expected = {(resumed["ids"][total], epoch) for total in (SHORT, LONG) for epoch in range(1, total + 1)}
    for name in ("epochs", "genotypes"):
        table = remote_table(s3, f"killed/smoke-resume/tables/{name}.parquet")
        keys = list(zip(table.column("trial_id").to_pylist(), table.column("epoch").to_pylist()))
        assert len(keys) == len(set(keys)) and set(keys) == expected, name
    assert remote_table(s3, "killed/smoke-resume/tables/alphas.parquet").num_rows == len(expected) * 6 * 5
    trials = remote_table(s3, "killed/smoke-resume/tables/trials.parquet").to_pylist()
    assert {row["trial_id"]: (row["status"], row["epochs_done"]) for row in trials} == {
        resumed["ids"][SHORT]: ("TERMINATED", SHORT), resumed["ids"][LONG]: ("TERMINATED", LONG)}
    folders: dict[str, set[str]] = {}
    for key in s3.files("killed/smoke-resume/tune"):
        match = re.search(r"tune/search_trainable_([0-9a-f]+_\d+)_\d+_[^/]*/(checkpoint_\d+)/", key)
        if match:
            folders.setdefault(match.group(1), set()).add(match.group(2))
    # raynas' retention deletes checkpoints in the bucket as in a folder: 2 per trial once the run ended
    assert {trial: len(found) for trial, found in folders.items()} == {resumed["ids"][SHORT]: 2,
                                                                       resumed["ids"][LONG]: 2}


@pytest.mark.slow
def test_the_killed_runs_own_working_copy_reads_the_finished_results(s3, resumed):
    # The first machine's working copy was left by a killed driver: a read fetches what changed since.
    board = raynas("results", resumed["uri"], "--format", "json")
    assert board.returncode == 0, board.stderr
    assert sorted(row["epochs_done"] for row in json.loads(board.stdout)) == [SHORT, LONG]
