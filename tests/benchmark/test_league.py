"""The league (``tools/league.py``).

Slow tier, end to end for real: one scored NB201 population of 2 methods (variants) x 2 seeds through the CLI
(a subprocess, a local Ray, torch on the digits, Parquet tables), the tool on it while some of its trials are
held running (raynas.tune.hold) and again when it has finished (about a minute on 2 busy cores). A tiny
protocol (conftest.py) and a three-cell table keep it short.

Default tier: the tool on a population whose tables the real results writer wrote with known figures (every
number checked), its one-line errors, and its statistics against scipy."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
from study_checks import figures, t_interval  # noqa: E402
from cli_helpers import ROOT, cli_env  # noqa: E402

from raynas.results import ResultsWriter, load_table, summarise_trial, rows_from_report
from raynas.tune.hold import HOLD_DIR_ENV, HOLD_EPOCH_ENV, RELEASE_FILE, held_trials

TOOL = ROOT / "tools" / "league.py"
CELLS = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
         "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
         "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|")


def tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], cwd=ROOT, env=cli_env(), capture_output=True,
                          text=True, timeout=300)


def load_tool():
    spec = importlib.util.spec_from_file_location("league_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wait_for(condition, what: str, run: subprocess.Popen, timeout: float = 240.0) -> None:
    """Wait until ``condition()`` holds (a state that stays once reached), failing if the run ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert run.poll() is None, f"the search ended before {what}: {run.stderr.read()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def league_run(tmp_path_factory: pytest.TempPathFactory, tiny: Path) -> dict:
    """The population, its league while the random-search trials are held at epoch 2 (the DARTS ones, 2
    epochs long, have finished), and its league when everything has finished."""
    from raynas.benchmark.table import write_part
    from raynas.benchmark.training import train_cell
    from raynas.config import read_config_file

    root = tmp_path_factory.mktemp("league")
    write_part([train_cell(arch, 0, read_config_file(tiny)) for arch in CELLS], root / "table", "three")
    config = {"name": "league", "space": "nb201",
              "data": {"name": "digits", "noise_std": 1.0, "limit": 128},
              "supernet": {"channels": 4, "layers": 1},
              "search": {"epochs": 2, "batch_size": 64, "arch_lr": 0.01, "sharpness_every": 1,
                         "sharpness_iters": 2},
              "selection": {"samples": 4},
              "benchmark": {"score": "on", "table": [str(root / "table")], "protocol": str(tiny)},
              "tune": {"grid": {"search.seed": [0, 1], "variant": ["darts", "random"]},
                       "variants": {"darts": {},
                                    "random": {"method": "rs", "selection.name": "sampling",
                                               "search.sharpness_every": 0}},
                       "metric": "gt_test_acc"},
              "ray": {"num_cpus": 2}}
    path = root / "league.yaml"
    path.write_text(yaml.safe_dump(config))
    hold = root / "hold"
    env = {**cli_env(), HOLD_DIR_ENV: str(hold), HOLD_EPOCH_ENV: "2"}  # random search has a stage epoch left
    run = subprocess.Popen([sys.executable, "-m", "raynas.cli", "search", str(path), "--out", str(root)], cwd=ROOT,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    experiment = root / "league"
    try:
        def partial_state() -> bool:
            if len(held_trials(hold)) < 2:
                return False
            trials = load_table(experiment, "trials").to_pylist()
            return sum(1 for t in trials if t["status"] == "TERMINATED") == 2

        wait_for(partial_state, "two held random-search trials and two finished DARTS trials", run)
        partial = tool(str(experiment), "--json")
        (hold / RELEASE_FILE).touch()
        stdout, stderr = run.communicate(timeout=300)
    finally:
        (hold / RELEASE_FILE).parent.mkdir(parents=True, exist_ok=True)
        (hold / RELEASE_FILE).touch()
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stderr[-3000:]
    out, plot = root / "league.md", root / "league.png"
    final = tool(str(experiment), "--out", str(out), "--plot", str(plot), "--json")
    return {"experiment": experiment, "partial": partial, "final": final, "out": out, "plot": plot}


@pytest.mark.slow  # a real population through the CLI, about a minute
def test_a_running_population_says_how_many_seeds_each_method_has(league_run):
    table, result = figures(league_run["partial"])
    rows = {row["method"]: row for row in result["rows"]}
    assert list(rows) == ["darts", "random"] and result["finished"] == 2 and result["planned"] == 4
    assert (rows["darts"]["seeds"], rows["darts"]["running"]) == ([0, 1], 0)
    assert (rows["random"]["seeds"], rows["random"]["running"]) == ([], 2)
    assert "| darts | 2 |" in table and "| random | 0 (2 running) |" in table
    assert [(c["method"], c["baseline"], c["n"]) for c in result["paired"]] == [("random", "darts", 0),
                                                                               ("darts", "random", 0)]
    assert result["paired"][0]["conclusion"] == "0 paired seeds: too few to compare random with darts"


@pytest.mark.slow  # a real population through the CLI, about a minute
def test_the_finished_league_has_a_row_per_method_with_t_intervals_over_seeds(league_run):
    table, result = figures(league_run["final"])
    trials = load_table(league_run["experiment"], "trials").to_pylist()
    epochs = load_table(league_run["experiment"], "epochs").to_pylist()
    genotypes = load_table(league_run["experiment"], "genotypes").to_pylist()
    variant = {t["trial_id"]: json.loads(t["config_json"])["variant"] for t in trials}
    rows = {row["method"]: row for row in result["rows"]}
    assert list(rows) == ["darts", "random"] and result["finished"] == result["planned"] == 4
    for name, row in rows.items():
        mine = sorted((t for t in trials if variant[t["trial_id"]] == name), key=lambda t: t["seed"])
        assert row["seeds"] == [0, 1] and row["running"] == 0 and row["not_started"] == 0
        mean, low, high = t_interval([t["final_gt_test_acc"] for t in mine])
        assert row["gt"]["mean"] == pytest.approx(mean) and row["gt"]["n"] == 2
        assert row["gt"]["low"] == pytest.approx(low, abs=1e-4) and row["gt"]["high"] == pytest.approx(high, abs=1e-4)
        assert row["regret"] == pytest.approx(sum(t["final_gt_regret"] for t in mine) / 2)
        assert row["skips"] == pytest.approx(sum(t["num_skip"] for t in mine) / 2)
        cells = [len({g["genotype"] for g in genotypes if g["trial_id"] == t["trial_id"]}) for t in mine]
        assert row["cells"] == pytest.approx(sum(cells) / 2) and min(cells) >= 1
        seconds = sum(e["epoch_time_s"] for e in epochs if variant[e["trial_id"]] == name)
        assert row["core_minutes"] == pytest.approx(seconds / 60 / 2)  # one CPU per trial, mean over 2 seeds
        assert row["gap"] is not None and not math.isnan(row["gap"])
    assert rows["darts"]["sharpness"] is not None and math.isfinite(rows["darts"]["sharpness"])
    assert rows["random"]["sharpness"] is None  # not measured: n/a, not 0
    assert "| darts | 2 | " in table and " | n/a | " in table.split("| random |")[1]


@pytest.mark.slow  # a real population through the CLI, about a minute
def test_the_paired_comparison_with_darts_and_its_conclusion(league_run):
    _, result = figures(league_run["final"])
    trials = load_table(league_run["experiment"], "trials").to_pylist()
    gt = {(json.loads(t["config_json"])["variant"], t["seed"]): t["final_gt_test_acc"] for t in trials}
    comparison, mirror = result["paired"]  # random against darts, and darts against random
    assert (comparison["method"], comparison["baseline"], comparison["seeds"]) == ("random", "darts", [0, 1])
    assert (mirror["method"], mirror["baseline"]) == ("darts", "random")
    assert (mirror["mean"], mirror["low"], mirror["high"]) == pytest.approx(
        (-comparison["mean"], -comparison["high"], -comparison["low"]))
    diffs = [gt[("random", s)] - gt[("darts", s)] for s in (0, 1)]
    if diffs[0] == diffs[1]:  # no spread: the interval is a point
        assert comparison["low"] == comparison["high"] == pytest.approx(diffs[0])
    else:
        mean, low, high = t_interval(diffs)
        assert (comparison["mean"], comparison["low"], comparison["high"]) == pytest.approx((mean, low, high),
                                                                                            abs=1e-4)
    sentence = comparison["conclusion"]
    if comparison["low"] > 0:
        assert sentence.startswith("random beats darts, by ")
    elif comparison["high"] < 0:
        assert sentence.startswith("random is worse than darts, by ")
    else:
        assert sentence == ("random does not beat darts, nor is it shown worse: the interval covers 0, so 2 seeds "
                            "show no difference")


@pytest.mark.slow  # a real population through the CLI, about a minute
def test_the_markdown_file_and_the_plot(league_run):
    table, result = figures(league_run["final"])
    assert league_run["out"].read_text() == table + "\n"
    assert "![ground truth over epochs, mean and 95 % interval per method](league.png)" in table
    assert "Paired with darts" in table and "| random | 2 | " in table
    data = league_run["plot"].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    curves = result["curves"]
    assert [p["epoch"] for p in curves["darts"]] == [1, 2] and [p["epoch"] for p in curves["random"]] == [1, 2, 3]
    assert all(p["n"] == 2 for points in curves.values() for p in points)


#: the written population: method -> per-seed final ground truth (seed 3 of random is still running)
WRITTEN = {"darts": [0.70, 0.74, 0.71], "random": [0.66, 0.69, 0.65]}
BEST = 0.80


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A league population written by the real results writer: 2 variants x 3 finished seeds of 2 epochs
    (the cell's ground truth at epoch 1 is 0.05 below the final one), and one random-search trial running."""
    folder = tmp_path_factory.mktemp("written") / "league"
    writer = ResultsWriter(folder, "league")
    trials = [(method, seed, gt) for method, values in WRITTEN.items() for seed, gt in enumerate(values)]
    for index, (method, seed, gt) in enumerate([*trials, ("random", 3, 0.5)]):
        trial_id = f"w_{index:05d}"
        running = seed == 3
        config = {"variant": method, "method": "darts" if method == "darts" else "rs",
                  "search": {"epochs": 2, "seed": seed}, "resources": {"cpus_per_trial": 2.0}}
        rows = []
        for epoch in (1,) if running else (1, 2):
            value = gt - 0.05 * (2 - epoch)
            report = {"epoch": epoch, "gt_test_acc": value, "gt_percentile": 100 * value, "gt_regret": BEST - value,
                      "epoch_time_s": 30.0 * epoch, "derived_val_acc": 0.5, "discretization_gap": 0.1 * seed,
                      "genotype": CELLS[epoch if method == "darts" else 1], "num_skip": seed}
            if method == "darts":
                report["arch_sharpness"] = float(epoch)
            writer.write_rows(trial_id, rows_from_report(trial_id, report))
            rows.append(report)
        writer.write_trial(summarise_trial(trial_id, rows, "gt_test_acc", "max", experiment="league",
                                           status="RUNNING" if running else "TERMINATED", epochs_planned=2,
                                           method=config["method"], seed=seed, config=config,
                                           overrides={"search.seed": seed, "variant": method}))
    writer.consolidate()
    return folder


def test_the_league_of_a_written_population_has_every_figure(written, tmp_path):
    out, plot = tmp_path / "league.md", tmp_path / "plots" / "league.png"
    table, result = figures(tool(str(written), "--out", str(out), "--plot", str(plot), "--json"))
    rows = {row["method"]: row for row in result["rows"]}
    assert list(rows) == ["darts", "random"] and (result["finished"], result["trials"]) == (6, 7)
    assert result["planned"] is None and result["best_cell"] == pytest.approx(BEST)
    for name, values in WRITTEN.items():
        row = rows[name]
        mean, low, high = t_interval(values)
        assert row["seeds"] == [0, 1, 2] and row["gt"]["n"] == 3
        assert (row["gt"]["mean"], row["gt"]["low"], row["gt"]["high"]) == pytest.approx((mean, low, high), abs=1e-4)
        assert row["percentile"]["mean"] == pytest.approx(100 * mean)
        assert row["regret"] == pytest.approx(BEST - mean)
        assert row["skips"] == pytest.approx(1.0) and row["gap"] == pytest.approx(0.1)  # seeds 0, 1, 2
        assert row["cells"] == (2.0 if name == "darts" else 1.0)  # darts derived another cell at epoch 2
        assert row["core_minutes"] == pytest.approx(2 * (30 + 60) / 60)  # 2 CPUs x 90 s
    assert rows["darts"]["sharpness"] == pytest.approx(2.0) and rows["random"]["sharpness"] is None
    assert rows["random"]["running"] == 1 and rows["darts"]["running"] == 0
    assert "| random | 3 (1 running) | 0.6667 [" in table and "| darts | 3 | 0.7167 [" in table
    worse, better = result["paired"]
    diffs = [r - d for r, d in zip(WRITTEN["random"], WRITTEN["darts"])]
    mean, low, high = t_interval(diffs)
    assert (worse["method"], worse["baseline"], worse["seeds"]) == ("random", "darts", [0, 1, 2])
    assert (worse["mean"], worse["low"], worse["high"]) == pytest.approx((mean, low, high), abs=1e-4)
    assert high < 0 and worse["conclusion"] == (
        "random is worse than darts, by -0.0500 test accuracy on average over 3 seeds")
    assert better["conclusion"] == "darts beats random, by +0.0500 test accuracy on average over 3 seeds"
    assert [(p["epoch"], p["n"]) for p in result["curves"]["darts"]] == [(1, 3), (2, 3)]
    assert result["curves"]["darts"][0]["mean"] == pytest.approx(sum(WRITTEN["darts"]) / 3 - 0.05)
    assert out.read_text() == table + "\n" and "(plots/league.png)" in table
    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # the IHDR chunk
    assert 1.5 < width / height < 3.0  # one row of two panels (darts, random), not one tall or square axes
    only = figures(tool(str(written), "--baseline", "random", "--json"))[1]
    assert [(c["method"], c["baseline"]) for c in only["paired"]] == [("darts", "random")]


def test_the_plot_has_one_panel_per_method_in_rows_of_four():
    grid = load_tool().panel_grid
    assert [grid(n) for n in (1, 2, 4, 5, 11, 18)] == [(1, 1), (1, 2), (1, 4), (2, 4), (3, 4), (5, 4)]


def test_bad_baseline_and_plot_are_one_line_errors(written, tmp_path):
    for args, message in ((["--baseline", "nope"], "--baseline 'nope': not a method of"),
                          (["--plot", str(tmp_path / "x.svg")], "--plot ")):
        run = tool(str(written), *args)
        assert run.returncode == 2 and run.stdout == "", run.stderr
        assert run.stderr.startswith("error: ") and message in run.stderr and run.stderr.count("\n") == 1
    assert not (tmp_path / "x.svg").exists()


def test_an_unscored_folder_is_a_one_line_error(tmp_path):
    writer = ResultsWriter(tmp_path, "plain")
    writer.write_rows("t0", rows_from_report("t0", {"epoch": 1, "derived_val_acc": 0.5, "val_acc": 0.6,
                                                    "epoch_time_s": 1.0}))
    writer.write_trial(summarise_trial("t0", [{"epoch": 1, "derived_val_acc": 0.5}], "derived_val_acc", "max",
                                       experiment="plain", status="TERMINATED", epochs_planned=1, method="darts",
                                       seed=0, config={"search": {"epochs": 1}}))
    writer.consolidate()
    for folder, message in ((tmp_path, "has no ground truth"), (tmp_path / "missing", "missing")):
        run = tool(str(folder))
        assert run.returncode == 2 and run.stdout == "", run.stderr
        assert run.stderr.startswith("error: ") and message in run.stderr and run.stderr.count("\n") == 1


def test_t_quantiles_and_intervals_match_scipy():
    from scipy.stats import t

    module = load_tool()
    for df in (1, 2, 9, 30, 31, 45, 200):
        assert module.t_quantile(df) == pytest.approx(float(t.ppf(0.975, df)), abs=1e-4)
    figure = module.mean_interval([0.70, 0.74, 0.71, 0.69])
    assert figure["mean"] == pytest.approx(0.71) and figure["n"] == 4
    assert (figure["low"], figure["high"]) == pytest.approx(t_interval([0.70, 0.74, 0.71, 0.69])[1:])
    assert math.isnan(module.mean_interval([0.7])["low"]) and math.isnan(module.mean_interval([])["mean"])
    covers = {"mean": 0.01, "low": -0.02, "high": 0.04, "n": 10}
    assert module.conclusion("sd-darts", "darts", covers).startswith("sd-darts does not beat darts, nor is it ")
    assert module.conclusion("x", "darts", {**covers, "low": 0.001}) == (
        "x beats darts, by +0.0100 test accuracy on average over 10 seeds")
    assert module.conclusion("x", "random", {**covers, "mean": -0.03, "high": -0.01}).startswith(
        "x is worse than random, by -0.0300")
    clipped = module.mean_interval([0.99, 0.2], (0.0, 1.0))
    assert clipped["low"] == 0.0 and clipped["high"] == 1.0


def write_population(folder: Path, results: dict[str, dict[int, float]], prefix: str) -> Path:
    """A finished league population written by the real results writer: method -> seed -> final ground truth
    (one epoch each)."""
    writer = ResultsWriter(folder, folder.name)
    index = 0
    for method, seeds in results.items():
        for seed, gt in seeds.items():
            trial_id = f"{prefix}_{index:05d}"
            index += 1
            config = {"variant": method, "method": "darts", "search": {"epochs": 1, "seed": seed}}
            report = {"epoch": 1, "gt_test_acc": gt, "gt_percentile": 100 * gt, "gt_regret": BEST - gt,
                      "epoch_time_s": 6.0, "genotype": CELLS[0], "num_skip": 0}
            writer.write_rows(trial_id, rows_from_report(trial_id, report))
            writer.write_trial(summarise_trial(trial_id, [report], "gt_test_acc", "max", experiment=folder.name,
                                               status="TERMINATED", epochs_planned=1, method="darts", seed=seed,
                                               config=config, overrides={"search.seed": seed, "variant": method}))
    writer.consolidate()
    return folder


def test_a_league_run_as_two_populations_reads_as_one_and_pairs_are_compared(tmp_path):
    # seeds 0-1 in one session, 2-3 in the next; sd-1ep is a setting's variant compared with its default
    first = write_population(tmp_path / "part1", {"sd": {0: 0.70, 1: 0.72}, "sd-1ep": {0: 0.75, 1: 0.78}}, "a")
    second = write_population(tmp_path / "part2", {"sd": {2: 0.71, 3: 0.69}, "sd-1ep": {2: 0.77, 3: 0.74}}, "b")
    table, result = figures(tool(str(first), str(second), "--baseline", "sd", "--pair", "sd-1ep:sd", "--json"))
    rows = {row["method"]: row for row in result["rows"]}
    assert rows["sd"]["seeds"] == [0, 1, 2, 3] and rows["sd-1ep"]["seeds"] == [0, 1, 2, 3]
    assert (result["finished"], result["trials"]) == (8, 8)
    [pair] = result["pairs"]
    diffs = [0.75 - 0.70, 0.78 - 0.72, 0.77 - 0.71, 0.74 - 0.69]
    mean, low, high = t_interval(diffs)
    assert (pair["method"], pair["baseline"], pair["seeds"]) == ("sd-1ep", "sd", [0, 1, 2, 3])
    assert (pair["mean"], pair["low"], pair["high"]) == pytest.approx((mean, low, high), abs=1e-4)
    assert pair["conclusion"].startswith("sd-1ep beats sd, by +0.0550")
    assert "| sd-1ep | sd | 4 | 0.0550 [" in table
    # the same seed finished in two folders is the league run twice: refused
    again = write_population(tmp_path / "again", {"sd": {3: 0.5}}, "c")
    run = tool(str(first), str(second), str(again))
    assert run.returncode == 2 and "sd seed 3 finished in both" in run.stderr and run.stderr.count("\n") == 1
    for bad, message in (("sd-1ep", "--pair 'sd-1ep': write METHOD:BASELINE"), ("sd-1ep:nope", "--pair 'nope'")):
        run = tool(str(first), "--pair", bad)
        assert run.returncode == 2 and message in run.stderr and run.stderr.count("\n") == 1, run.stderr
