"""A league population's snapshot (``tools/league_snapshot.py``, writing through ``tools/snapshot_common.py``).

A population of the shipped league config (2 variants x 4 seeds planned, seed 3 not started, one trial still
running, its last report not consolidated yet), written by the real results writer. The snapshot tool, run as
a subprocess, writes its config.yaml and the trials, epochs and genotypes tables; ``tools/league.py`` prints
the same figures for the snapshot as for the live folder, alone and beside another population; written
again, the snapshot is replaced whole. Bad input is one line on stderr, exit code 2, and writes nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
from study_checks import figures  # noqa: E402
from cli_helpers import ROOT, cli_env  # noqa: E402

from raynas.config import config_to_dict, dump_config, expand_trials, load_config, with_overrides  # noqa: E402
from raynas.results import ResultsWriter, load_table, rows_from_report, schema_for, summarise_trial  # noqa: E402

LEAGUE = ROOT / "tools" / "league.py"
SNAPSHOT = ROOT / "tools" / "league_snapshot.py"
FILES = ["config.yaml", "tables/epochs.parquet", "tables/genotypes.parquet", "tables/trials.parquet"]
#: (variant, seed) -> the final ground truth of its cell; random's seed 2 is running, seed 3 is not started
FINAL = {("darts", 0): 0.70, ("darts", 1): 0.74, ("darts", 2): 0.71, ("random", 0): 0.66, ("random", 1): 0.69}
RUNNING = ("random", 2)
CELLS = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
         "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|")


def run_tool(script: Path, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=300)


def write_league(folder: Path, final: dict[tuple[str, int], Optional[float]], running: Optional[tuple[str, int]],
                 scored: bool = True, seeds: tuple[int, ...] = (0, 1, 2, 3)) -> Path:
    """A league population of darts and random over ``seeds`` (2 epochs each): the trials of ``final``
    finished (their cell's ground truth at epoch 1 is 0.05 below the final one), ``running`` at epoch 1 and
    left out of the consolidated tables (a report the driver wrote since); ``scored=False``: no ground truth."""
    cfg = load_config(ROOT / "search_configs" / "league.yaml",
                      ["search.epochs=2", f"tune.grid.search.seed=[{', '.join(map(str, seeds))}]",
                       "tune.grid.variant=[darts, random]"])
    folder.mkdir()
    dump_config(cfg, folder / "config.yaml")
    writer = ResultsWriter(folder, folder.name)
    trials = {(t.overrides["variant"], t.config.search.seed): (index, t) for index, t in enumerate(expand_trials(cfg))}
    late = []
    for key in [*final, *([running] if running else [])]:
        index, trial = trials[key]
        variant, seed = key
        gt = final.get(key, 0.5)
        rows = []
        for epoch in (1,) if key == running else (1, 2):
            value = gt - 0.05 * (2 - epoch)
            report = {"epoch": epoch, "epoch_time_s": 30.0 * epoch, "derived_val_acc": 0.5,
                      "discretization_gap": 0.1 * seed, "genotype": CELLS[epoch % 2 if variant == "darts" else 1],
                      "num_skip": seed}
            if scored:
                report.update(gt_test_acc=value, gt_percentile=100 * value, gt_regret=0.8 - value)
            if variant == "darts":
                report["arch_sharpness"] = float(epoch)
            rows.append(report)
        status = "RUNNING" if key == running else "TERMINATED"
        trial_row = summarise_trial(f"t_{index:05d}", rows, "gt_test_acc" if scored else "derived_val_acc", "max",
                                    experiment=folder.name, status=status, epochs_planned=2,
                                    method=trial.config.method, seed=seed,
                                    config=with_overrides(config_to_dict(cfg), trial.overrides),
                                    overrides=trial.overrides)
        if key == running:
            late.append((trial_row, rows))
            continue
        for report in rows:
            writer.write_rows(trial_row["trial_id"], rows_from_report(trial_row["trial_id"], report))
        writer.write_trial(trial_row)
    writer.consolidate()
    for trial_row, rows in late:  # newer than the consolidated files: the snapshot must hold it all the same
        writer.write_rows(trial_row["trial_id"], rows_from_report(trial_row["trial_id"], rows[0]))
        writer.write_trial(trial_row)
    return folder


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_league(tmp_path_factory.mktemp("league") / "league-b", FINAL, RUNNING)


def files_of(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def league_of(*folders: Path) -> tuple[list[str], dict]:
    """The league's table (its lines after the first, which names the folders) and figures (less the
    folders' names)."""
    table, result = figures(run_tool(LEAGUE, *folders, "--json"))
    del result["experiment"]
    return table.splitlines()[1:], result


def test_the_league_of_a_snapshot_prints_the_live_folders_figures(population, tmp_path):
    dest = tmp_path / "league-b"
    written = run_tool(SNAPSHOT, population, dest)
    assert written.returncode == 0 and written.stderr == "", written.stderr
    assert re.fullmatch(rf"{re.escape(str(dest))}: 5 finished trials of 6 started \(1 running; 8 planned\), 2 "
                        r"methods, finished seeds 0, 1, 2; 4 files, \d+ kB\n", written.stdout), written.stdout
    assert files_of(dest) == FILES
    assert (dest / "config.yaml").read_text() == (population / "config.yaml").read_text()
    for name in ("trials", "epochs", "genotypes"):  # every row as the live folder holds it now, every column
        stored = load_table(dest, name)
        assert stored.schema.names == load_table(population, name).schema.names
        assert set(schema_for(name).names) <= set(stored.schema.names)
        assert sorted(map(str, stored.to_pylist())) == sorted(map(str, load_table(population, name).to_pylist()))
    consolidated = pq.read_table(population / "tables" / "trials.parquet")
    assert (len(consolidated), len(load_table(dest, "trials"))) == (5, 6)  # the running trial: from its part
    table, result = league_of(dest)
    assert (table, result) == league_of(population)
    rows = {row["method"]: row for row in result["rows"]}
    assert (rows["random"]["seeds"], rows["random"]["running"], rows["random"]["not_started"]) == ([0, 1], 1, 1)
    assert rows["darts"]["sharpness"] == pytest.approx(2.0) and rows["darts"]["cells"] == 2.0

    other = write_league(tmp_path / "league-c", {("darts", 3): 0.72, ("random", 3): 0.68}, None)
    assert league_of(dest, other) == league_of(population, other)  # beside another population, the same too
    again = run_tool(SNAPSHOT, population, dest)  # a snapshot the tool wrote is replaced whole
    assert again.returncode == 0 and again.stdout == written.stdout and files_of(dest) == FILES
    assert league_of(dest) == (table, result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["league-b", "league-c"]  # no temporary folder left


def test_bad_input_is_one_line_exit_2_and_writes_nothing(population, tmp_path):
    before = {path: path.stat().st_mtime_ns for path in population.rglob("*")}
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine")
    unscored = write_league(tmp_path / "unscored", {("darts", 0): 0.7}, None, scored=False)
    waiting = write_league(tmp_path / "waiting", {}, ("darts", 0))
    snapshot = tmp_path / "snapshot"
    cases = [((tmp_path / "missing", snapshot), f"{tmp_path / 'missing'}: no such folder"),
             ((plain, snapshot), f"{plain} is not a search folder (no config.yaml in it)"),
             ((unscored, snapshot), f"{unscored} has no ground truth"),
             ((waiting, snapshot), f"{waiting}: no finished scored trial yet (1 started, 1 running)"),
             ((population, population), "the snapshot would replace the search folder"),
             ((population, population.parent), "the snapshot would replace the search folder"),
             ((population, plain), f"{plain} exists and is not a snapshot of a league population (it holds other "
                                   "files than config.yaml, tables/trials.parquet, "),
             ((population, tmp_path / "missing" / "x"), f"no folder {str(tmp_path / 'missing')!r} to write")]
    for args, message in cases:
        result = run_tool(SNAPSHOT, *args)
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "unscored", "waiting"]
    assert files_of(plain) == ["notes.txt"] and (plain / "notes.txt").read_text() == "mine"
    assert {path: path.stat().st_mtime_ns for path in population.rglob("*")} == before


def test_the_snapshot_tool_imports_neither_torch_nor_ray(population, tmp_path):
    code = ("import importlib.util, pathlib, sys\n"
            "spec = importlib.util.spec_from_file_location('league_snapshot', sys.argv[1])\n"
            "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
            "module.snapshot(pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3]))\n"
            "print(sorted(x for x in ('torch', 'ray') if x in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code, str(SNAPSHOT), str(population), str(tmp_path / "snapshot")],
                         cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stderr
    assert files_of(tmp_path / "snapshot") == FILES


def test_a_seed_one_population_planned_and_another_ran_is_not_counted_as_not_started(tmp_path):
    # seed 3 was planned by the first population (the whole league's config) and run by the next one
    first = write_league(tmp_path / "first", FINAL, RUNNING)
    second = write_league(tmp_path / "next", {("darts", 3): 0.72, ("random", 3): 0.68}, None, seeds=(3,))
    alone = {row["method"]: row for row in figures(run_tool(LEAGUE, first, "--json"))[1]["rows"]}
    assert alone["darts"]["not_started"] == 1 and alone["random"]["not_started"] == 1
    table, result = figures(run_tool(LEAGUE, first, second, "--json"))
    rows = {row["method"]: row for row in result["rows"]}
    assert rows["darts"]["seeds"] == [0, 1, 2, 3] and rows["darts"]["not_started"] == 0
    assert rows["random"]["seeds"] == [0, 1, 3] and rows["random"]["not_started"] == 0
    assert rows["random"]["running"] == 1 and result["planned"] == 8  # seeds 0-3 of each, once
    assert "| random | 3 (1 running) |" in table and "| darts | 4 |" in table
