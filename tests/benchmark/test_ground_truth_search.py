"""Searches scored against the ground truth, for real: the scored population runs in this process on the session's
local Ray (in_process.py), the checks of bad settings and the results through the CLI as a subprocess, torch
training on the digits and Parquet tables. A tiny protocol (1 epoch, C=4, N=1) and a three-cell table built here
keep it fast; the search's data are the protocol's data setting (digits, noise 1.0, data seed 0), so it is scored,
and every other cell it derives is trained on demand into the experiment's cache."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import raynas  # noqa: E402
from in_process import search_here  # noqa: E402

from raynas.benchmark.cells import unique_cells
from raynas.benchmark.lookup import GROUND_TRUTH_COLUMNS, GroundTruth
from raynas.benchmark.protocol import protocol_hash
from raynas.benchmark.scoring import CACHE_FOLDER, resolve_scoring
from raynas.benchmark.table import read_rows, write_part
from raynas.config import config_from_dict, read_config_file
from raynas.errors import ConfigError
from raynas.results import GROUND_TRUTH_METRICS, ResultsWriter, leaderboard, leaderboard_columns, load_table

TABLE_CELLS = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, tiny: Path) -> dict[str, Path]:
    """The tiny protocol (conftest.py) and a table of three cells trained under it (seed 0)."""
    from raynas.benchmark.training import train_cell

    root = tmp_path_factory.mktemp("bench")
    protocol = tiny
    rows = [train_cell(arch, 0, read_config_file(protocol)) for arch in TABLE_CELLS]
    write_part(rows, root / "table", "three")
    return {"protocol": protocol, "table": root / "table"}


def search_config(bench: dict[str, Path], **sections: dict) -> dict:
    """A two-trial NB201 search on the benchmark's data (2 epochs of a C=4, N=1 supernet on 128 images)."""
    config = {"name": "gt", "space": "nb201",
              "data": {"name": "digits", "noise_std": 1.0, "limit": 128},
              "supernet": {"channels": 4, "layers": 1},
              "search": {"epochs": 2, "batch_size": 64, "arch_lr": 0.01},
              "benchmark": {"score": "on", "table": [str(bench["table"])], "protocol": str(bench["protocol"])},
              "tune": {"grid": {"search.arch_lr": [0.01, 0.03]}, "metric": "gt_test_acc"},
              "ray": {"num_cpus": 2}}
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def scored(bench: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, ray_local) -> dict:
    """The scored population, run once in this process (in_process.py: search_here)."""
    out = tmp_path_factory.mktemp("out")
    config = write_config(out / "gt.yaml", search_config(bench))
    run = search_here(config, out)
    return {"run": run, "dir": out / "gt"}


def truth_of(bench: dict[str, Path], experiment: Path) -> GroundTruth:
    """The lookup the search's trials used, without training: its rows are all in the table or the cache."""
    return GroundTruth([bench["table"]], cache_dir=experiment / CACHE_FOLDER,
                       protocol=read_config_file(bench["protocol"]), train_missing=False)


def test_every_epoch_records_its_derived_cells_ground_truth(scored, bench):
    experiment = scored["dir"]
    epochs = load_table(experiment, "epochs").to_pylist()
    genotypes = {(r["trial_id"], r["epoch"]): r["genotype"] for r in load_table(experiment, "genotypes").to_pylist()}
    assert len(epochs) == 4 and set(genotypes) == {(r["trial_id"], r["epoch"]) for r in epochs}
    truth = truth_of(bench, experiment)
    for row in epochs:
        expected = truth.score(genotypes[(row["trial_id"], row["epoch"])]).columns()
        assert {name: row[name] for name in GROUND_TRUTH_COLUMNS} == expected
        assert row["extra"] == [] or not {k for k, _ in row["extra"]} & set(GROUND_TRUTH_COLUMNS)  # real columns
    assert "gt_acc " in scored["run"].stdout and " (p" in scored["run"].stdout  # the progress line shows it


def test_cells_the_table_lacks_are_trained_into_the_experiments_cache(scored, bench):
    experiment = scored["dir"]
    cells = unique_cells()
    derived = {cells.cell_id(g) for g in load_table(experiment, "genotypes")["genotype"].to_pylist()}
    in_table = {cells.cell_id(arch) for arch in TABLE_CELLS}
    cached = read_rows([experiment / CACHE_FOLDER], protocol_hash(read_config_file(bench["protocol"])))
    assert derived - in_table, "the search derived only table cells: nothing was trained on demand"
    assert set(cached["cell_id"].to_pylist()) == derived - in_table
    assert cached["seed"].to_pylist() == [0] * cached.num_rows  # one row per cell: each trained once
    resolved = yaml.safe_load((experiment / "config.yaml").read_text())["benchmark"]
    assert resolved == {"score": "on", "table": [str(bench["table"])], "protocol": str(bench["protocol"]),
                        "official": None, "cache_dir": str((experiment / CACHE_FOLDER).resolve())}


def test_the_population_is_ranked_by_the_ground_truth(scored):
    experiment = scored["dir"]
    run = raynas("results", str(experiment), "--format", "json")
    assert run.returncode == 0, run.stderr
    board = json.loads(run.stdout)
    trials = {row["trial_id"]: row for row in load_table(experiment, "trials").to_pylist()}
    assert len(board) == 2 and {row["metric"] for row in trials.values()} == {"gt_test_acc"}
    ranked = [row["final_gt_test_acc"] for row in board]  # the ranking column: gt_test_acc at the last epoch
    assert ranked == sorted(ranked, reverse=True) and list(board[0]).count("final_gt_test_acc") == 1
    epochs = load_table(experiment, "epochs").to_pylist()
    for row in board:
        last = max((r for r in epochs if r["trial_id"] == row["trial_id"]), key=lambda r: r["epoch"])
        assert row["final_gt_test_acc"] == last["gt_test_acc"]
        assert row["final_gt_percentile"] == last["gt_percentile"] and row["final_gt_regret"] == last["gt_regret"]
        assert trials[row["trial_id"]]["best_gt_test_acc"] == max(r["gt_test_acc"] for r in epochs
                                                                  if r["trial_id"] == row["trial_id"])
    table = raynas("results", str(experiment))
    assert "final_gt_test_acc" in table.stdout.splitlines()[0]


def test_plot_and_report_show_the_ground_truth(scored, tmp_path):
    from raynas.plots import plot_experiment
    from raynas.report import write_report

    paths = plot_experiment(scored["dir"], tmp_path / "plots", formats=["png"])
    assert tmp_path / "plots" / "ground_truth.png" in paths
    text = write_report(scored["dir"], tmp_path / "report.md", fmt="md").read_text()
    assert "| gt test acc | gt percentile |" in text  # the summary's and the trials' (regret: the plot's best line)
    assert text.index("## Summary") < text.index("gt test acc") < text.index("## Trials")
    assert (tmp_path / "report_files" / "ground_truth.png").is_file()


@pytest.mark.parametrize("change, message", [
    ({"space": "darts", "tune": {"grid": {}, "metric": "derived_val_acc"}},
     "benchmark.score = 'on': space is 'darts' (the ground truth covers NB201 cells only); set it to auto or off"),
    ({"data": {"noise_std": 0.5}},
     "benchmark.score = 'on': data.noise_std is 0.5, not the benchmark's 1.0"),
    ({"benchmark": {"score": "off"}},
     "tune.metric = 'gt_test_acc': needs the ground truth, but benchmark.score is 'off'"),
    ({"tune": {"grid": {}, "metric": "gt_regret"}},
     "tune.mode = 'max': must be 'min' with tune.metric = 'gt_regret'"),
    ({"benchmark": {"protocol": None}},  # the shipped protocol: the tiny table holds none of its rows
     "benchmark.score = 'on': no rows of the benchmark protocol"),
], ids=["darts", "other-data", "score-off", "regret-max", "no-rows"])
def test_scoring_that_cannot_be_is_one_line_and_exit_code_2(bench, tmp_path, change, message):
    config = search_config(bench)
    for name, values in change.items():
        config[name] = {**config[name], **values} if isinstance(values, dict) else values
    out = tmp_path / "out"
    run = raynas("search", str(write_config(tmp_path / "bad.yaml", config)), "--out", str(out))
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and message in lines[0], run.stderr
    assert not out.exists()  # refused before anything was written


def test_auto_scores_only_nb201_searches_on_the_benchmark_data_with_rows(bench, tmp_path):
    def resolved(**sections: dict) -> str:
        sections = {"tune": {"metric": "derived_val_acc"}, **sections}
        sections["benchmark"] = {"score": "auto", **sections.get("benchmark", {})}
        return resolve_scoring(config_from_dict(search_config(bench, **sections)), tmp_path).benchmark.score

    assert resolved() == "on"
    assert resolved(data={"noise_std": 0.0}) == "off"
    assert resolved(benchmark={"protocol": None}) == "off"  # no rows of the shipped protocol
    darts = search_config(bench, benchmark={"score": "auto"}, tune={"metric": "derived_val_acc", "grid": {}})
    assert resolve_scoring(config_from_dict({**darts, "space": "darts"}), tmp_path).benchmark.score == "off"
    with pytest.raises(ConfigError, match="tune.metric = 'gt_test_acc': no rows"):
        resolve_scoring(config_from_dict(search_config(bench, benchmark={"score": "auto", "protocol": None})),
                        tmp_path)
    on = resolve_scoring(config_from_dict(search_config(bench)), tmp_path / "exp")
    assert on.benchmark.cache_dir == str((tmp_path / "exp" / CACHE_FOLDER).resolve())


def test_yaml_on_and_off_are_the_words(bench, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(search_config(bench)).replace("score: 'on'", "score: on"))
    assert "score: on\n" in path.read_text()
    from raynas.config import load_config

    assert load_config(path).benchmark.score == "on"
    assert load_config(path, ["benchmark.score=off", "tune.metric=derived_val_acc"]).benchmark.score == "off"


def test_the_shipped_tuning_config_validates():
    run = raynas("validate", "search_configs/nb201_gt_tuning.yaml")
    assert run.returncode == 0, run.stderr
    assert "8 trial(s), space nb201" in run.stdout and "ground truth: " in run.stdout


def test_tables_written_before_the_ground_truth_columns_still_read(tmp_path):
    """Parts and consolidated files without the gt columns read with nulls; the leaderboard stays narrow."""
    from raynas.results.schema import EPOCHS, TRIALS

    writer = ResultsWriter(tmp_path, "old")
    epoch = {"trial_id": "t0", "epoch": 1, "train_loss": 1.0, "derived_val_acc": 0.5, "extra": []}
    trial = {"experiment": "old", "trial_id": "t0", "status": "TERMINATED", "metric": "derived_val_acc",
             "mode": "max", "metric_value": 0.5}
    for name, schema, row in (("epochs", EPOCHS, epoch), ("trials", TRIALS, trial)):
        old = pa.schema([f for f in schema if "gt_" not in f.name], metadata=schema.metadata)
        path = writer.part_path(name, "t0", 1 if name == "epochs" else None)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist([row], schema=old), path)
    epochs = load_table(tmp_path, "epochs").to_pylist()
    assert [epochs[0][name] for name in GROUND_TRUTH_METRICS] == [None, None, None]
    assert epochs[0]["derived_val_acc"] == 0.5
    assert leaderboard(tmp_path).column_names == leaderboard_columns("derived_val_acc")


@pytest.mark.slow  # two more searches (sharded, and the shipped population shrunk): about 2 minutes
def test_sharded_search_and_shipped_tuning_config_are_scored(bench, tmp_path):
    sharded = search_config(bench, resources={"shards": 2, "cpus_per_shard": 0.5, "cpus_per_trial": 0.5},
                            tune={"grid": {}}, search={"epochs": 1})
    run = raynas("search", str(write_config(tmp_path / "sharded.yaml", sharded)), "--out", str(tmp_path / "s"))
    assert run.returncode == 0, run.stderr[-3000:]
    epochs = load_table(tmp_path / "s" / "gt", "epochs").to_pylist()
    genotype = load_table(tmp_path / "s" / "gt", "genotypes")["genotype"][0].as_py()
    assert {n: epochs[0][n] for n in GROUND_TRUTH_COLUMNS} == truth_of(bench, tmp_path / "s" / "gt").score(
        genotype).columns()
    run = raynas("search", "search_configs/nb201_gt_tuning.yaml", "--out", str(tmp_path / "t"),
                 "--set", f"benchmark.table=[{bench['table']}]", "--set", f"benchmark.protocol={bench['protocol']}",
                 "--set", "tune.num_samples=2", "--set", "search.epochs=1", "--set", "supernet.channels=4",
                 "--set", "data.limit=128", "--set", "ray.num_cpus=2")
    assert run.returncode == 0, run.stderr[-3000:]
    board = leaderboard(tmp_path / "t" / "nb201-gt-tuning").to_pylist()
    assert len(board) == 2 and all(row["final_gt_test_acc"] is not None for row in board)  # ranked by it
