"""ResultsCallback in a real (tiny) Ray Tune experiment, and the dotted-override helper it uses."""

from __future__ import annotations

import json

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import results_trainable_helper
from results_trainable_helper import ALPHA_ROWS, make_report

from raynas.errors import ResultsError
from raynas.results import ResultsWriter, leaderboard
from raynas.config import with_overrides
from raynas.results.callback import ResultsCallback, trial_overrides

BASE = {"name": "exp", "space": "nb201", "method": "darts", "search": {"seed": 0, "epochs": 3},
        "supernet": {"channels": 16}}


def test_with_overrides_sets_dotted_keys_on_a_copy():
    config = with_overrides(BASE, {"search.seed": 3, "supernet.channels": 8, "data.noise_std": 0.5})
    assert config["search"] == {"seed": 3, "epochs": 3}
    assert config["supernet"]["channels"] == 8 and config["data"] == {"noise_std": 0.5}
    assert BASE["search"]["seed"] == 0 and "data" not in BASE


def test_trial_overrides_reads_both_config_shapes():
    assert trial_overrides({"overrides": {"search.seed": 2}}) == {"search.seed": 2}
    assert trial_overrides({"search.seed": 2, "supernet.channels": 8}) == {"search.seed": 2, "supernet.channels": 8}
    assert trial_overrides(None) == {}


def test_callback_refuses_a_bad_mode(tmp_path):
    with pytest.raises(ResultsError, match="mode"):
        ResultsCallback(tmp_path, "exp", "derived_val_acc", "highest")


def test_tune_experiment_leaves_four_tables(ray_local, tmp_path):
    from ray import cloudpickle, tune

    # Ray workers cannot import modules from the tests folder: ship the helper with the function
    cloudpickle.register_pickle_by_value(results_trainable_helper)
    exp_dir = tmp_path / "exp"
    callback = ResultsCallback(exp_dir, "exp", "derived_val_acc", "max", base_config=BASE)
    tuner = tune.Tuner(
        results_trainable_helper.tiny_trainable,
        param_space={"overrides": tune.grid_search([{"search.seed": s, "supernet.channels": 8} for s in (0, 1, 99)])},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path / "ray_results"), callbacks=[callback],
                                  verbose=0),
    )
    grid = tuner.fit()
    assert grid.num_errors == 1

    tables = {name: pq.read_table(exp_dir / "tables" / f"{name}.parquet") for name in
              ("trials", "epochs", "alphas", "genotypes")}
    assert {name: t.num_rows for name, t in tables.items()} == \
        {"trials": 3, "epochs": 7, "alphas": 7 * ALPHA_ROWS, "genotypes": 7}

    trials = {row["seed"]: row for row in tables["trials"].to_pylist()}
    assert {seed: row["status"] for seed, row in trials.items()} == {0: "TERMINATED", 1: "TERMINATED", 99: "ERROR"}
    assert "ValueError: simulated divergence" in trials[99]["error"]
    good = trials[1]
    assert (good["epochs_done"], good["best_epoch"], good["space"], good["method"]) == (3, 3, "nb201", "darts")
    assert (good["epochs_planned"], good["stopped_by"]) == (3, None)  # search.epochs of BASE, run to the end
    assert good["metric"] == "derived_val_acc" and good["metric_value"] == pytest.approx(0.42)
    assert good["genotype"] == make_report(3, 1)["genotype"]
    assert json.loads(good["overrides_json"]) == {"search.seed": 1, "supernet.channels": 8}
    config = json.loads(good["config_json"])
    assert config["search"]["seed"] == 1 and config["supernet"]["channels"] == 8
    assert good["wall_time_s"] > 0

    epochs = tables["epochs"].to_pylist()
    assert all(row["wall_time_s"] is not None and dict(row["extra"]) == {} for row in epochs)
    alphas = tables["alphas"].filter(pc.field("trial_id") == good["trial_id"])
    expected = make_report(2, 1)["alphas"]
    second = alphas.slice(ALPHA_ROWS, ALPHA_ROWS)
    assert second["op"].to_pylist() == expected["op"]
    assert second["weight"].to_pylist() == pytest.approx(expected["weight"], rel=1e-6)

    board = leaderboard(exp_dir)  # ranked by value whatever the status; seed 99 scored highest at epoch 1
    assert list(zip(board["seed"].to_pylist(), board["status"].to_pylist())) == \
        [(99, "ERROR"), (1, "TERMINATED"), (0, "TERMINATED")]
    # a restarted driver's callback picks the trial's earlier epochs up from the parts
    again = ResultsCallback(exp_dir, "exp", "derived_val_acc", "max", base_config=BASE)
    assert [row["epoch"] for row in again._history_of(good["trial_id"]).values()] == [1, 2, 3]
    assert ResultsWriter(exp_dir, "exp").trial_history(good["trial_id"])[0]["genotype"] == \
        make_report(1, 1)["genotype"]
