"""The Python API running for real: the example script, and several searches in one process (each a fresh
interpreter, real local Ray on loopback, real training on digits, real Parquet)."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from cli_helpers import cli_env  # noqa: E402

RESTART = "raynas: restarting the Ray this process started, with this run's settings: "


def run_script(args: list[str], timeout: float = 500) -> subprocess.CompletedProcess:
    """``python ARGS`` from the repository root with its own short Ray temp folder (as the CLI tests run)."""
    ray_temp = tempfile.mkdtemp(prefix="rn")  # short: Ray's unix socket paths must stay under 108 bytes
    try:
        return subprocess.run([sys.executable, *args], cwd=ROOT, env=cli_env(ray_temp), capture_output=True,
                              text=True, timeout=timeout)
    finally:
        shutil.rmtree(ray_temp, ignore_errors=True)


def test_the_example_runs(tmp_path):
    run = run_script(["examples/python_api.py", "--out", str(tmp_path)])
    assert run.returncode == 0, run.stderr[-3000:]
    exp = tmp_path / "python-api"
    trials = pq.read_table(exp / "tables" / "trials.parquet").to_pylist()
    assert sorted(row["seed"] for row in trials) == [0, 1] and {row["status"] for row in trials} == {"TERMINATED"}
    top = max(row["metric_value"] for row in trials)  # derived_params, the default metric: trials may tie
    [best] = [row for row in trials if row["metric_value"] == top
              and f"best: trial {row['trial_id']}, derived_params {top:.4f}, genotype {row['genotype']}" in run.stdout]
    (evaluation,) = pq.read_table(exp / "evaluations" / "from-scratch" / "tables" / "evaluations.parquet").to_pylist()
    assert evaluation["status"] == "TERMINATED" and evaluation["genotype"] == best["genotype"]
    assert evaluation["epochs_done"] == 1 and evaluation["source_trial"] == best["trial_id"]
    assert "loaded python-api: 2 trials, 1 evaluation(s)" in run.stdout
    assert RESTART not in run.stdout  # the training reused the search's Ray (its ray.num_cpus unset)


# Searches in one process (tests/api/test_ray_session.py checks the decisions without searches, in the default
# tier): from a path with overrides on 1 CPU, from a dict with ray.num_cpus 2 (raynas
# restarts its Ray), with ray.num_cpus unset (reuses it); then on a Ray the user started: a contradicting
# ray.num_cpus is refused, an unset one runs on it. Prints what it saw as JSON.
SEARCHES = textwrap.dedent("""
    import json, os, sys
    import ray
    import raynas
    from raynas.errors import ConfigError

    out, smoke = sys.argv[1], sys.argv[2]
    os.umask(0o002)  # a loose umask: what the API writes must still not be group-writable (resumable)
    seen = {}

    def note(key, experiment=None):
        context = ray.get_runtime_context()
        statuses = sorted(experiment.leaderboard()["status"]) if experiment is not None else []
        seen[key] = {"cpus": ray.cluster_resources().get("CPU"), "node": context.get_node_id(),
                     "statuses": statuses}

    tiny = {"search.epochs": 1, "data.limit": 128, "tune.grid": {"search.seed": [0]}}
    first = raynas.search(smoke, {**tiny, "name": "first", "ray.num_cpus": 1}, out=out)
    note("first", first)
    seen["mode"] = os.stat(first.directory).st_mode & 0o777
    config = {"name": "second", "space": "nb201", "data": {"name": "digits", "limit": 128},
              "supernet": {"channels": 4, "layers": 1}, "search": {"epochs": 1, "batch_size": 32},
              "tune": {"grid": {"search.seed": [0, 1]}}, "ray": {"num_cpus": 2}}
    note("second", raynas.search(config, out=out))
    note("third", raynas.search(config, {"name": "third", "ray.num_cpus": None}, out=out))
    ray.shutdown()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, _temp_dir=os.environ["RAYNAS_RAY_TEMP_DIR"])
    note("user")
    try:
        raynas.search(config, {"name": "refused"}, out=out)
    except ConfigError as err:
        seen["refused"] = str(err)
    note("fourth", raynas.search(config, {"name": "fourth", "ray.num_cpus": None, **tiny}, out=out))
    print(json.dumps(seen))
""")


@pytest.mark.slow  # five searches and three Ray starts: about 2 minutes on a busy 2-core machine
def test_each_search_runs_on_its_own_ray_settings(tmp_path):
    run = run_script(["-c", SEARCHES, str(tmp_path), "search_configs/smoke/nb201.yaml"])
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    first, second, third, user, fourth = (seen[key] for key in ("first", "second", "third", "user", "fourth"))
    assert first["cpus"] == 1 and first["statuses"] == ["TERMINATED"]
    # ray.num_cpus 2 against raynas' 1-CPU Ray: restarted (a new node), said once, both trials ran
    assert second["cpus"] == 2 and second["node"] != first["node"] and second["statuses"] == ["TERMINATED"] * 2
    assert run.stdout.count(RESTART) == 1 and f"{RESTART}ray.num_cpus 2 (running: 1)\n" in run.stdout
    assert third["node"] == second["node"] and third["statuses"] == ["TERMINATED"] * 2  # unset: reused
    # the user's own Ray: a contradicting ray.num_cpus is refused before anything is written ...
    assert seen["refused"] == ("ray.num_cpus = 2: this process already runs a Ray it did not start through raynas "
                               "(ray.init), with 1 CPUs; raynas runs on it as it is: leave the setting unset "
                               "(null), or call ray.shutdown() first")
    assert not (tmp_path / "refused").exists()
    # ... and an unset one runs on it as it is
    assert fourth["node"] == user["node"] and fourth["cpus"] == 1 and fourth["statuses"] == ["TERMINATED"]
    assert not seen["mode"] & (stat.S_IWGRP | stat.S_IWOTH)
