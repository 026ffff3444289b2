"""tune.callbacks: [mlflow] on a real search, read back with MLflow's own client from a real local file store;
and the one-line refusals: a store MLflow refuses, an integration whose package is not installed.

The search (2 trials x 2 epochs, digits, TensorBoard off) runs through raynas' driver on the session's loopback
Ray. MLflow 3 keeps its file store behind ``MLFLOW_ALLOW_FILE_STORE``: the search sets it, the refusal test
leaves it unset and gets MLflow's refusal as raynas' one line.
"""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from cli_helpers import ROOT, cli_env  # noqa: E402

from raynas.experiment import prepare_experiment, run_experiment  # noqa: E402

SMOKE = ROOT / "raynas" / "configs" / "smoke" / "nb201.yaml"
METRICS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "derived_val_acc", "derived_params")


@pytest.fixture(scope="module")
def searched(ray_local, tmp_path_factory):
    """The search, run once for the tests marked slow that use it (about 17 s besides Ray's start on a busy
    machine: MLflow's import and store are the difference to test_monitoring_tensorboard.py's)."""
    out = tmp_path_factory.mktemp("out")
    uri = (tmp_path_factory.mktemp("mlflow") / "mlruns").as_uri()  # file:///...
    before = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            prepared = prepare_experiment(SMOKE, ["tune.callbacks=[mlflow]", f"tune.mlflow.tracking_uri={uri}",
                                                  "tune.mlflow.experiment_name=monitoring-test",
                                                  "tune.tensorboard=false"], out=out)
            outcome = run_experiment(prepared, echo=print)
    finally:
        if before is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = before
    assert outcome.num_errors == 0 and outcome.num_trials == 2, printed.getvalue()
    tables = outcome.directory / "tables"
    return (outcome.directory, uri, pq.read_table(tables / "epochs.parquet").to_pylist(),
            pq.read_table(tables / "trials.parquet").to_pylist())


@pytest.mark.slow
def test_mlflow_holds_a_run_per_trial_with_every_epochs_values(searched):
    from mlflow import MlflowClient

    directory, uri, epochs, trials = searched
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("monitoring-test")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2
    by_trial = {}
    for run in runs:  # Ray names each run after its trial (trial_name tag: <trainable>_<trial id>)
        trial_id = next(row["trial_id"] for row in trials if row["trial_id"] in run.data.tags["trial_name"])
        by_trial[trial_id] = run
        assert run.info.status == "FINISHED"
        assert run.data.tags["raynas.experiment_folder"] == str(directory)
    assert set(by_trial) == {row["trial_id"] for row in trials}
    for trial in trials:
        run = by_trial[trial["trial_id"]]
        assert run.data.params["overrides/search.seed"] == str(trial["seed"])  # the trial's Tune config
        rows = {row["epoch"]: row for row in epochs if row["trial_id"] == trial["trial_id"]}
        assert sorted(rows) == [1, 2]
        for column in METRICS:
            history = client.get_metric_history(run.info.run_id, column)
            assert {metric.step: metric.value for metric in history} == \
                {epoch: float(row[column]) for epoch, row in rows.items()}, (trial["trial_id"], column)


@pytest.mark.slow
def test_no_tensorboard_files_when_turned_off(searched):
    directory = searched[0]
    assert not list((directory / "tune").rglob("events.out.tfevents.*"))


def raynas_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raynas.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_store_mlflow_refuses_is_one_line_and_nothing_is_written(tmp_path):
    env = cli_env()
    env.pop("MLFLOW_ALLOW_FILE_STORE", None)  # MLflow 3 refuses its file store without it
    uri = (tmp_path / "mlruns").as_uri()
    run = raynas_cli("search", str(SMOKE), "--out", str(tmp_path / "out"), "--set", "tune.callbacks=[mlflow]",
                     "--set", f"tune.mlflow.tracking_uri={uri}", env=env)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: tune.mlflow.tracking_uri = '{uri}': MLflow cannot open this tracking store (MlflowException: "), lines
    assert lines[0].endswith("MLflow 3 opens its file store only with MLFLOW_ALLOW_FILE_STORE=true in the environment; "
                             "set it, or use a database (sqlite:///path/mlflow.db) or a tracking server "
                             "(http://host:5000))")
    assert not (tmp_path / "out" / "smoke-nb201").exists()  # the folder it had started is gone


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_an_integration_that_is_not_installed_names_its_pip_package(tmp_path):
    run = raynas_cli("search", str(SMOKE), "--out", str(tmp_path), "--set", "tune.callbacks=[wandb]",
                     "--set", "tune.wandb.mode=offline", env=cli_env())
    assert run.returncode == 2
    assert run.stderr.strip() == ("error: tune.callbacks names 'wandb', but the Python package wandb is not "
                                  "installed; install it (pip install wandb) or remove wandb from tune.callbacks")
    assert list(tmp_path.iterdir()) == []
