"""The ranking study end to end, for real: a scored NB201 population (run in this process on the session's local Ray
as ``raynas search`` runs it, in_process.py; torch on the digits, Parquet tables) measuring every ranking metric
and ranked by one of them, then ``tools/ranking_study.py`` on its folder. A tiny protocol (conftest.py) and a
three-cell table keep it fast."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import ROOT, cli_env  # noqa: E402
from in_process import search_here  # noqa: E402

from raynas.ranking import RANK_METRIC_COLUMNS, RANK_METRICS, TIME_COLUMNS
from raynas.results import ResultsWriter, leaderboard, load_table, summarise_trial, rows_from_report

TOOL = ROOT / "tools" / "ranking_study.py"
CELLS = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
         "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
         "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|")
METRIC = "derived_finetune_val_acc"


def tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], cwd=ROOT, env=cli_env(), capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def study_run(tmp_path_factory: pytest.TempPathFactory, tiny: Path, ray_local) -> Path:
    """Two scored searches of 3 epochs with every ranking metric on every epoch, ranked by a fine-tuned copy."""
    from raynas.benchmark.table import write_part
    from raynas.benchmark.training import train_cell
    from raynas.config import read_config_file

    root = tmp_path_factory.mktemp("ranking")
    write_part([train_cell(arch, 0, read_config_file(tiny)) for arch in CELLS], root / "table", "three")
    config = {"name": "rank", "space": "nb201",
              "data": {"name": "digits", "noise_std": 1.0, "limit": 128},
              "supernet": {"channels": 4, "layers": 1},
              "search": {"epochs": 3, "batch_size": 64, "arch_lr": 0.01, "rank_metrics": list(RANK_METRICS),
                         "rank_finetune_steps": 4, "rank_bn_batches": 1, "rank_neighbors": 2},
              "benchmark": {"score": "on", "table": [str(root / "table")], "protocol": str(tiny)},
              "tune": {"grid": {"search.seed": [0, 1]}, "metric": METRIC},
              "ray": {"num_cpus": 2}}
    path = root / "rank.yaml"
    path.write_text(yaml.safe_dump(config))
    run = search_here(path, root)  # in this process (in_process.py)
    (root / "stdout.txt").write_text(run.stdout)
    return root / "rank"


def test_every_epoch_holds_every_ranking_metric_and_its_seconds(study_run):
    epochs = load_table(study_run, "epochs").to_pylist()
    assert len(epochs) == 6
    for row in epochs:
        for column in (*RANK_METRIC_COLUMNS, *TIME_COLUMNS, "gt_test_acc"):
            assert row[column] is not None and math.isfinite(row[column]), (row["epoch"], column)
        assert 0.0 <= row[METRIC] <= 1.0 and row["derived_params"] > 0
        assert min(row[column] for column in TIME_COLUMNS) >= 0.0
        assert not {key for key, _ in row["extra"]} & set(RANK_METRIC_COLUMNS)  # real columns, not extra


def test_each_progress_line_shows_the_ranking_metrics_of_its_epoch(study_run):
    lines = (study_run.parent / "stdout.txt").read_text().splitlines()
    for row in load_table(study_run, "epochs").to_pylist():
        trial, epoch = row["trial_id"], row["epoch"]
        line = next(text for text in lines if text.startswith(f"[{trial} ") and f" epoch {epoch:>3}/" in text)
        shown = "".join(f"  {kind}_acc {row[columns[0]]:.3f}" for kind, columns in RANK_METRICS.items()
                        if columns[0].endswith("_val_acc")) + f"  params {int(row['derived_params']):,}"
        assert shown in line, (line, shown)


def test_the_population_is_ranked_by_the_metric(study_run):
    trials = load_table(study_run, "trials").to_pylist()
    epochs = load_table(study_run, "epochs").to_pylist()
    assert {row["metric"] for row in trials} == {METRIC}
    for trial in trials:
        last = max((r for r in epochs if r["trial_id"] == trial["trial_id"]), key=lambda r: r["epoch"])
        assert trial["metric_value"] == last[METRIC]
    board = [row[f"final_{METRIC}"] for row in leaderboard(study_run).to_pylist()]
    assert board == sorted(board, reverse=True)


def test_the_study_tool_prints_a_row_per_candidate(study_run, tmp_path):
    out = tmp_path / "table.md"
    run = tool(str(study_run), "--bootstrap", "50", "--out", str(out), "--json")
    assert run.returncode == 0, run.stderr
    table, _, figures = run.stdout.partition("\n{")
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    candidates = ["val_acc", "val_loss", "derived_val_acc", "derived_val_loss", *RANK_METRIC_COLUMNS]
    assert [row.split("`")[1] for row in rows] == candidates
    header = next(line for line in table.splitlines() if line.startswith("| metric"))
    assert header.count("|") - 1 == 8  # metric, what, final, 2 per fraction (25 %, 50 %), seconds
    assert "25 %: tau vs gt then" in header and "50 %: tau vs final gt" in header
    assert out.read_text().strip() == table.strip()
    result = json.loads("{" + figures)
    assert result["trials"] == 2 and [row["metric"] for row in result["rows"]] == candidates
    for row in result["rows"]:
        assert row["final"]["n"] == 2 and row["seconds"] is not None and row["seconds"] >= 0
        assert [at["epochs"] for at in row["at"]] == [[1], [2]]  # round(0.25 * 3) -> 1, round(0.5 * 3) -> 2
        for figure in (row["final"], *(at["vs_gt_then"] for at in row["at"])):
            assert figure["tau"] is None or figure["tau"] in (-1.0, 1.0)  # two trials: agree, disagree or a tie


def test_the_study_tool_refuses_an_unscored_experiment_in_one_line(tmp_path):
    writer = ResultsWriter(tmp_path, "plain")
    rows = [{"epoch": 1, "derived_val_acc": 0.5, "val_acc": 0.6}]
    writer.write_rows("t0", rows_from_report("t0", {"epoch": 1, "derived_val_acc": 0.5, "val_acc": 0.6}))
    writer.write_trial(summarise_trial("t0", rows, "derived_val_acc", "max", experiment="plain",
                                       status="TERMINATED", epochs_planned=1, config={"search": {"epochs": 1}}))
    writer.consolidate()
    run = tool(str(tmp_path))
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("error: ") and "has no ground truth" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_kendall_tau_b_matches_scipy_with_ties():
    from scipy.stats import kendalltau

    spec = importlib.util.spec_from_file_location("ranking_study_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.integers(0, 5, 15).astype(float), rng.integers(0, 5, 15).astype(float)
        assert module.kendall_tau(x, y) == pytest.approx(kendalltau(x, y).statistic, abs=1e-12)
    assert math.isnan(module.kendall_tau([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    figure = module.tau_with_interval(list(range(30)), list(range(30)), draws=100, seed=0)
    assert figure["tau"] == 1.0 and figure["low"] == figure["high"] == 1.0


ASHA_TOOL = ROOT / "tools" / "asha_ranking.py"


def test_the_asha_tool_reports_the_ground_truth_of_the_kept_trials(study_run):
    run = subprocess.run([sys.executable, str(ASHA_TOOL), str(study_run), "--bootstrap", "50", "--json"],
                         cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    [row] = json.loads(run.stdout)
    trials = load_table(study_run, "trials").to_pylist()
    gt = {t["trial_id"]: t["final_gt_test_acc"] for t in trials}
    assert (row["metric"], row["trials"], row["epochs"], row["kept"]) == (METRIC, 2, 3, 2)  # FIFO keeps all
    assert row["kept_gt"]["mean"] == pytest.approx(sum(gt.values()) / 2)
    assert row["kept_gt"]["low"] <= row["kept_gt"]["mean"] <= row["kept_gt"]["high"]
    assert row["winner_trial"] == leaderboard(study_run).to_pylist()[0]["trial_id"]
    assert row["winner_gt"] == gt[row["winner_trial"]] and row["best_any_gt"] == max(gt.values())
    table = subprocess.run([sys.executable, str(ASHA_TOOL), str(study_run), "--bootstrap", "50"], cwd=ROOT,
                           env=cli_env(), capture_output=True, text=True, timeout=300).stdout
    assert f"| `{METRIC}` | 2 | 2 | " in table


def test_the_asha_tool_refuses_an_unscored_experiment_in_one_line(tmp_path):
    writer = ResultsWriter(tmp_path, "plain")
    writer.write_rows("t0", rows_from_report("t0", {"epoch": 1, "derived_val_acc": 0.5, "val_acc": 0.6}))
    writer.write_trial(summarise_trial("t0", [{"epoch": 1, "derived_val_acc": 0.5}], "derived_val_acc", "max",
                                       experiment="plain", status="TERMINATED", epochs_planned=1,
                                       config={"search": {"epochs": 1}}))
    writer.consolidate()
    run = subprocess.run([sys.executable, str(ASHA_TOOL), str(tmp_path)], cwd=ROOT, env=cli_env(),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and run.stdout == ""
    assert "without final_gt_test_acc" in run.stderr and len(run.stderr.strip().splitlines()) == 1
