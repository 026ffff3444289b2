"""End to end: the real CLI as a subprocess, a real local Ray (2 CPUs, loopback), real Parquet tables."""

from __future__ import annotations

import json
import sys

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from cli_helpers import LOOPBACK, raynas, run_watching_sockets  # noqa: E402


@pytest.fixture(scope="module")
def nb201_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    run = run_watching_sockets("search", "search_configs/smoke/nb201.yaml", "--out", str(out),
                               "--set", "ray.num_cpus=2")
    return run, out / "smoke-nb201"


def test_search_succeeds_and_prints_genotypes_and_tables(nb201_run):
    run, exp = nb201_run
    assert run.returncode == 0, run.stderr[-3000:]
    assert "epoch   2/2" in run.stdout
    assert run.stdout.count("|+|") >= 2  # each trial's NB201 genotype is printed
    assert f"tables: {exp / 'tables'}" in run.stdout


def test_tables_have_one_row_per_key(nb201_run):
    run, exp = nb201_run
    tables = {name: pq.read_table(exp / "tables" / f"{name}.parquet")
              for name in ("trials", "epochs", "alphas", "genotypes")}
    assert tables["trials"].num_rows == 2
    assert set(tables["trials"].column("status").to_pylist()) == {"TERMINATED"}
    assert sorted(tables["trials"].column("seed").to_pylist()) == [0, 1]
    assert tables["epochs"].num_rows == 4  # 2 trials x 2 epochs
    assert tables["genotypes"].num_rows == 4
    assert tables["alphas"].num_rows == 2 * 2 * 6 * 5  # trials x epochs x edges x ops
    keys = list(zip(tables["epochs"].column("trial_id").to_pylist(), tables["epochs"].column("epoch").to_pylist()))
    assert len(keys) == len(set(keys))
    assert (exp / "config.yaml").is_file()


def test_only_loopback_sockets(nb201_run):
    run, _ = nb201_run
    assert run.listening, "no listening socket was observed: the watcher is broken"
    assert run.listening <= LOOPBACK, run.listening


def test_results_command_formats(nb201_run):
    _, exp = nb201_run
    as_json = raynas("results", str(exp), "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert len(rows) == 2 and {"trial_id", "final_derived_params", "genotype"} <= set(rows[0])  # tune.metric, named
    as_csv = raynas("results", str(exp), "--format", "csv")
    assert as_csv.stdout.splitlines()[0].startswith("trial_id")
    epochs = raynas("results", str(exp), "--table", "epochs", "--format", "json")
    assert len(json.loads(epochs.stdout)) == 4


@pytest.mark.slow  # the DARTS space runs in-process in the default tier (test_search_loop)
def test_darts_space_smoke_search(tmp_path):
    run = run_watching_sockets("search", "search_configs/smoke/darts.yaml", "--out", str(tmp_path),
                               "--set", "ray.num_cpus=2")
    assert run.returncode == 0, run.stderr[-3000:]
    genotypes = pq.read_table(tmp_path / "smoke-darts" / "tables" / "genotypes.parquet")
    assert genotypes.num_rows == 2
    assert genotypes.column("genotype")[0].as_py().startswith("Genotype(normal=[")


@pytest.mark.parametrize("args, message", [
    (["--set", "search.epochs=0"], "search.epochs = 0"),
    (["--set", "space=nb210"], "nb201"),
    (["--set", "search.arch_lrr=1"], "arch_lrr"),
])
def test_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path, args, message):
    result = raynas("search", "search_configs/smoke/nb201.yaml", "--out", str(tmp_path), *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []


def test_missing_config_file(tmp_path):
    result = raynas("search", str(tmp_path / "nope.yaml"), "--out", str(tmp_path))
    assert result.returncode == 2 and "nope.yaml" in result.stderr


def test_validate_command():
    result = raynas("validate", "search_configs/quickstart.yaml")
    assert result.returncode == 0 and "2 trial(s)" in result.stdout


@pytest.mark.slow  # moved from the default tier to keep it under 10 minutes; make test-all runs it
def test_search_joins_a_running_cluster_with_address(ray_local, tmp_path):
    address = ray_local.get_runtime_context().gcs_address
    assert address.startswith("127.0.0.1:")
    result = raynas("search", "search_configs/smoke/nb201.yaml", "--out", str(tmp_path), "--address", address,
                    "--set", "search.epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "smoke-nb201" / "logs" / "tune.log").read_text()  # Ray's own lines go to the log
    assert "Connecting to existing Ray cluster" in log and "Connecting to existing" not in result.stderr
    assert "Started a local Ray instance" not in log + result.stderr
    trials = pq.read_table(tmp_path / "smoke-nb201" / "tables" / "trials.parquet")
    assert trials.num_rows == 2 and set(trials.column("status").to_pylist()) == {"TERMINATED"}
