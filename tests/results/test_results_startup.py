"""``raynas results`` stays light: reading an experiment folder imports neither torch nor ray.

The CLI's ``--help`` is checked in tests/e2e/test_e2e_cli.py; here the results command's own code path
(merging parts in memory, the leaderboard, tables, filters, sorting, every output format) runs in a fresh
interpreter on a real experiment folder written by :class:`raynas.results.ResultsWriter`. No timing is
asserted: tools/bench_startup.py measures the start-up against its targets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from results_trainable_helper import make_report

from raynas.results import ResultsWriter, summarise_trial, rows_from_report

HEAVY = ("torch", "torchvision", "ray")

# argv: experiment folder, then a JSON list of argument lists for `raynas results DIR ...`; prints one JSON
# object: the exit code and output of each run, and which heavy modules the interpreter imported.
RUN_RESULTS = """
import contextlib, io, json, sys
from raynas.cli import main
runs = []
for extra in json.loads(sys.argv[2]):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["results", sys.argv[1], *extra], standalone_mode=False)
        except SystemExit as exc:
            code = exc.code
    runs.append({"args": extra, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
heavy = [name for name in %r if name in sys.modules]
print(json.dumps({"runs": runs, "heavy": heavy}))
""" % (HEAVY,)

VARIANTS = [
    [],
    ["--format", "json"],
    ["--format", "csv", "--sort", "-best_val_acc"],
    ["--where", "seed > 0 and num_skip <= 3", "--sort", "trial_id"],
    ["--table", "epochs", "--where", "epoch == 3"],
    ["--table", "alphas", "--format", "csv"],
    ["--table", "genotypes", "--format", "json"],
    ["--table", "evaluations"],
]


def _write_experiment(directory: Path, *, consolidate: bool) -> None:
    """Two trials of three epochs each, as the Tune callback writes them (parts, trial rows)."""
    writer = ResultsWriter(directory, "exp")
    for seed in (0, 1):
        trial_id = f"t{seed}"
        rows = []
        for epoch in (1, 2, 3):
            report = make_report(epoch, seed, time_total_s=float(epoch), discretization_gap=0.01)
            writer.write_rows(trial_id, rows_from_report(trial_id, report))
            rows.append({"epoch": epoch, **report})
        writer.write_trial(summarise_trial(trial_id, rows, "derived_val_acc", "max", experiment="exp",
                                           status="TERMINATED", seed=seed, method="darts", space="nb201"))
    if consolidate:
        writer.consolidate()


def _run_results(directory: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", RUN_RESULTS, str(directory), json.dumps(VARIANTS)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_results_of_a_finished_experiment_imports_neither_torch_nor_ray(tmp_path):
    _write_experiment(tmp_path, consolidate=True)
    outcome = _run_results(tmp_path)
    for run in outcome["runs"]:
        assert run["code"] in (0, None), run
        assert run["stdout"].strip(), run
    assert "t1" in outcome["runs"][0]["stdout"] and "t0" in outcome["runs"][0]["stdout"]
    assert outcome["heavy"] == [], f"raynas results imported {outcome['heavy']}"


def test_results_of_a_running_experiment_imports_neither_torch_nor_ray(tmp_path):
    _write_experiment(tmp_path, consolidate=False)  # parts only: the command merges them in memory
    outcome = _run_results(tmp_path)
    assert all(run["code"] in (0, None) for run in outcome["runs"]), outcome["runs"]
    assert "t1" in outcome["runs"][0]["stdout"] and "t0" in outcome["runs"][0]["stdout"]
    assert not (tmp_path / "tables" / "trials.parquet").exists()  # reading writes nothing
    assert outcome["heavy"] == [], f"raynas results imported {outcome['heavy']}"
