"""raynas.load and the Experiment/Evaluation handles on folders the real results writer wrote (no Ray)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import raynas
from raynas.config import dump_config, load_config
from raynas.errors import ConfigError, ResultsError
from raynas.results import ResultsWriter, summarise_trial, rows_from_report
from raynas.spaces.genotype import NB201Genotype

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "results"))
from results_trainable_helper import make_report  # noqa: E402


def write_experiment(directory: Path, seeds=(0, 1, 2), failed: bool = False) -> Path:
    """A finished search folder: its resolved config and three trials of three epochs, through ResultsWriter;
    trial t<seed> has the higher accuracies the larger its seed (make_report)."""
    directory.mkdir(parents=True)
    config = load_config(ROOT / "search_configs/smoke/nb201.yaml")  # ranked by what make_report reports:
    dump_config(replace(config, tune=replace(config.tune, metric="derived_val_acc")), directory / "config.yaml")
    writer = ResultsWriter(directory, directory.name)
    for seed in seeds:
        rows = []
        for epoch in (1, 2, 3):
            report = make_report(epoch, seed)
            writer.write_rows(f"t{seed}", rows_from_report(f"t{seed}", report))
            rows.append({"epoch": epoch, **report})
        writer.write_trial(summarise_trial(f"t{seed}", rows, "derived_val_acc", "max", experiment=directory.name,
                                           status="TERMINATED", seed=seed, method="darts", space="nb201"))
    if failed:
        writer.write_trial({"trial_id": "t9", "status": "ERROR", "metric": "derived_val_acc", "mode": "max",
                            "error": "ValueError: boom", "epochs_done": 0})
    writer.consolidate()
    return directory


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*"))}


def test_load_ranks_trials_and_reads_tables(tmp_path):
    experiment = raynas.load(write_experiment(tmp_path / "exp"))
    assert isinstance(experiment, raynas.Experiment) and experiment.name == "exp"
    assert experiment.config.space == "nb201" and experiment.outcome is None
    board = experiment.leaderboard()
    assert isinstance(board, pd.DataFrame) and list(board["trial_id"]) == ["t2", "t1", "t0"]
    assert board["final_derived_val_acc"].tolist() == pytest.approx([0.44, 0.42, 0.40])  # 0.1 + 0.1 * 3 + 0.02 * seed
    assert isinstance(experiment.leaderboard(as_pandas=False), pa.Table)
    assert list(experiment.leaderboard(where="seed < 2", sort=["seed"])["trial_id"]) == ["t0", "t1"]
    epochs = experiment.table("epochs", where="trial_id == 't1'", sort=["-epoch"])
    assert list(epochs["epoch"]) == [3, 2, 1] and epochs["val_acc"].tolist() == pytest.approx([0.51, 0.41, 0.31])
    assert len(experiment.table("alphas")) == 3 * 3 * 30  # trials x epochs x (edges x ops)
    with pytest.raises(ResultsError, match="nope"):
        experiment.table("nope")


def test_best_trial_and_genotypes(tmp_path):
    experiment = raynas.load(write_experiment(tmp_path / "exp"))
    best = experiment.best()
    assert (best.trial_id, best.metric, best.seed, best.status) == ("t2", "derived_val_acc", 2, "TERMINATED")
    assert best.metric_value == pytest.approx(0.44)
    # the genotype of its last epoch (3): seed + epoch odd -> nor_conv_3x3 (make_report), parsed
    assert isinstance(best.genotype, NB201Genotype)
    assert str(best.genotype) == make_report(3, 2)["genotype"]
    assert best.row["epochs_done"] == 3
    by_loss = experiment.best("val_loss")  # a loss ranks min first by default: the smallest seed
    assert (by_loss.trial_id, by_loss.metric) == ("t0", "val_loss")
    assert [trial.trial_id for trial in experiment.trials()] == ["t2", "t1", "t0"]
    assert best.scope == "last"
    by_best = experiment.best("val_loss", scope="best")  # the lowest val_loss of any epoch: the last (3) here
    assert (by_best.trial_id, by_best.scope, by_best.row["best_epoch"]) == ("t0", "best", 3)
    assert by_best.metric_value == pytest.approx(2.2 / 3) and str(by_best.genotype) == make_report(3, 0)["genotype"]
    # distinct final genotypes, best trial first: t2 and t0 end on nor_conv_3x3 cells, t1 on skip_connect
    assert [str(g) for g in experiment.genotypes()] == [make_report(3, 2)["genotype"], make_report(3, 1)["genotype"]]
    assert len(experiment.genotypes(top=1)) == 1
    assert experiment.failures == {}


def test_failures_and_an_experiment_without_results(tmp_path):
    failed = raynas.load(write_experiment(tmp_path / "exp", failed=True))
    assert failed.failures == {"t9": "ValueError: boom"}
    assert failed.best().trial_id == "t2"  # a failed trial without a value ranks last
    empty = tmp_path / "empty"
    empty.mkdir()
    dump_config(load_config(ROOT / "search_configs/smoke/nb201.yaml"), empty / "config.yaml")
    started = raynas.load(empty)
    assert started.leaderboard().empty
    with pytest.raises(ResultsError, match="no trial has a value of derived_params yet"):  # the default metric
        started.best()
    with pytest.raises(ConfigError, match="no trial derived a trainable genotype"):
        started.genotypes()


def test_reading_writes_nothing(tmp_path):
    directory = write_experiment(tmp_path / "exp")
    before = snapshot(directory)
    experiment = raynas.load(directory)
    experiment.leaderboard()
    experiment.leaderboard("val_loss")
    for name in ("trials", "epochs", "alphas", "genotypes", "decisions", "events", "evaluations"):
        experiment.table(name)
    experiment.best()
    experiment.genotypes()
    assert snapshot(directory) == before


def test_load_refuses_what_is_not_an_experiment(tmp_path):
    with pytest.raises(ResultsError, match=f"experiment folder {tmp_path / 'missing'} does not exist"):
        raynas.load(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ResultsError) as info:
        raynas.load(tmp_path / "plain")
    message = str(info.value)
    assert "\n" not in message and "is not a raynas experiment folder" in message and "config.yaml" in message
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.yaml").write_text("search: {epochs: 0}\n")
    with pytest.raises(ConfigError, match="search.epochs = 0"):  # a damaged settings file: one line, now
        raynas.load(tmp_path / "bad")


def test_load_an_evaluation_run_folder(tmp_path):
    from raynas.evaluation import plan_evaluation, write_plan

    prepared = plan_evaluation([make_report(3, 2)["genotype"]], seeds=[0, 1], epochs=1, name="run", out=tmp_path)
    prepared.directory.mkdir()
    write_plan(prepared.plan, prepared.directory)
    evaluation = raynas.load(prepared.directory)
    assert isinstance(evaluation, raynas.Evaluation)
    assert evaluation.plan.seeds == (0, 1) and evaluation.plan.train.epochs == 1
    table = evaluation.table()
    assert table.empty and {"genotype", "seed", "test_acc"} <= set(table.columns)  # nothing trained yet
