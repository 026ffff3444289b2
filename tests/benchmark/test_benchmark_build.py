"""``raynas bench build`` and ground-truth lookups, for real: the CLI as a subprocess (the first build runs in this
process on the session's local Ray, as the CLI runs it), torch training on the digits and Parquet files. A tiny
protocol (1 epoch, C=4, N=1) keeps each cell under a second; the shipped protocol is only used where the shipped
table is the subject. The ``tiny`` protocol fixture is in conftest.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import SAVE_STATE_EVERY_SECOND, BackgroundRun, Hold, raynas  # noqa: E402
from in_process import printing  # noqa: E402

from raynas.benchmark.build import build_order
from raynas.benchmark.cells import unique_cells
from raynas.benchmark.protocol import protocol_hash
from raynas.benchmark.table import SCHEMA, read_rows, shipped_table_path
from raynas.config.loader import read_config_file

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny: Path, ray_local) -> dict:
    """4 cells x 2 seeds in trials of 3 cells, built in this process on the session's Ray as ``raynas bench build``
    builds them (the CLI's own build runs below: with a base table, and killed and resumed)."""
    from raynas.benchmark.build import build_summary, prepare_build, run_build
    from raynas.benchmark.protocol import check_protocol
    from raynas.config.schema import RayConfig

    out = tmp_path_factory.mktemp("bench")
    plan, directory = prepare_build(name="b", out=out, protocol=check_protocol(read_config_file(str(tiny))),
                                    seeds=[0, 1], cells=4, cells_per_trial=3, ray=RayConfig(num_cpus=2))
    outcome, stdout = printing(lambda: run_build(plan, directory, echo=print))
    stdout += "\n".join(build_summary(outcome))  # what the CLI prints when the build ends
    return {"outcome": outcome, "stdout": stdout, "dir": out / "b", "out": out}


def test_build_trains_every_cell_and_seed_once(built, tiny):
    assert built["outcome"].num_errors == 0, built["stdout"][-3000:]
    table = pq.read_table(built["dir"] / "benchmark.parquet")
    assert table.schema.names == SCHEMA.names
    rows = table.to_pylist()
    wanted = {(cell, seed) for seed in (0, 1) for cell in build_order()[:4]}
    assert {(r["cell_id"], r["seed"]) for r in rows} == wanted and len(rows) == 8
    digest = protocol_hash(read_config_file(str(tiny)))
    cells = unique_cells()
    for row in rows:
        assert row["protocol_hash"] == digest
        assert row["arch"] == cells.representatives[row["cell_id"]]
        assert len(row["epoch_test_acc"]) == row["epochs"] == 1 and row["test_acc"] == row["epoch_test_acc"][-1]
        assert row["params"] > 0 and row["flops"] > 0 and row["train_time_s"] > 0
    assert len(list((built["dir"] / "parts").glob("*.parquet"))) == 8
    assert "[bench 8/8]" in built["stdout"] and "ETA" in built["stdout"]
    assert "8 to train in 4 trial(s)" in built["stdout"]  # 4 cells in chunks of 3, per seed
    cell_map = pq.read_table(built["dir"] / "cells.parquet").to_pylist()  # every arch string -> its cell
    assert len(cell_map) == 15625 and all(r["cell_id"] == cells.cell_id(r["arch"]) for r in cell_map[::97])


def test_the_shipped_cells_map_is_the_isomorphism_reduction():
    from raynas.benchmark.table import SHIPPED_CELLS, cells_table

    shipped = pq.read_table(shipped_table_path().parent / SHIPPED_CELLS)
    assert shipped.equals(cells_table()) and len(set(shipped["cell_id"].to_pylist())) == 6466


def test_build_skips_the_pairs_its_base_holds(built, tiny):
    base = built["dir"] / "benchmark.parquet"
    run = raynas("bench", "build", "--protocol", str(tiny), "--cells", "5", "--base", str(base), "--out",
                 str(built["out"]), "--name", "more", "--num-cpus", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "4 already in the base table(s), 1 to train" in run.stdout
    rows = pq.read_table(built["out"] / "more" / "benchmark.parquet").to_pylist()
    assert len(rows) == 9 and len(list((built["out"] / "more" / "parts").glob("*.parquet"))) == 1
    assert (build_order()[4], 0) in {(r["cell_id"], r["seed"]) for r in rows}
    merged = built["out"] / "merged.parquet"  # the parts of both folders, one row per (cell, seed)
    run = raynas("bench", "merge", str(built["dir"] / "parts"), str(built["out"] / "more" / "parts"), "--protocol",
                 str(tiny), "--out", str(merged))
    assert run.returncode == 0 and "9 row(s) over 5 unique cell(s)" in run.stdout, run.stderr
    assert pq.read_table(merged).num_rows == 9


def test_an_interrupted_build_resumes_after_its_last_finished_cell(tmp_path, tiny):
    """The trial is held after its first cell until the driver is SIGKILLed; the resume trains the other
    two cells only, and the table ends with exactly the wanted rows."""
    from ray import tune

    build_dir = tmp_path / "r"
    hold = Hold(tmp_path / "hold", 1)

    def saved_cells(run: BackgroundRun) -> int:
        try:
            trials = tune.ExperimentAnalysis(str(build_dir / "tune")).trials
        except Exception:  # not written yet, or being written
            return 0
        results = [t.run_metadata.checkpoint_manager.latest_checkpoint_result for t in trials]
        return max((r.metrics.get("cells_done", 0) for r in results if r is not None), default=0)

    args = ("bench", "build", "--protocol", str(tiny), "--cells", "3", "--out", str(tmp_path), "--name", "r",
            "--num-cpus", "1")
    with BackgroundRun(*args, hold=hold, env=SAVE_STATE_EVERY_SECOND) as first:
        first.wait_until(lambda run: list(hold.held().values()) == [1] and saved_cells(run) == 1)
        first.kill_driver()
        before = first.stdout
    with BackgroundRun("resume", str(build_dir)) as second:
        assert second.wait(timeout=300) == 0, second.stderr[-3000:]
        after = second.stdout
    order = build_order()[:3]
    assert f"[bench 1/3] cell {order[0]} seed 0" in before
    assert "1 of 1 trial(s) unfinished, 0 not started, 1 of 3 pair(s) done" in after
    assert f"cell {order[0]} seed 0" not in after  # not trained again
    assert f"[bench 3/3] cell {order[2]} seed 0" in after
    rows = pq.read_table(build_dir / "benchmark.parquet").to_pylist()
    assert sorted((r["cell_id"], r["seed"]) for r in rows) == sorted((c, 0) for c in order)


def test_on_demand_training_equals_a_direct_training_bit_for_bit(built, tiny, tmp_path, ray_local):
    """A cell the table lacks is trained as a Ray task and cached; the row equals a training in this
    process number for number, and a second lookup reads the cache instead of training again."""
    from raynas.benchmark.lookup import GroundTruth
    from raynas.benchmark.training import train_cell

    protocol = read_config_file(str(tiny))
    table = built["dir"] / "benchmark.parquet"
    truth = GroundTruth([table], cache_dir=tmp_path / "cache", protocol=protocol)
    assert not truth.has(BEST)
    score = truth.score(BEST)
    assert score.trained_now and score.cell_id == unique_cells().cell_id(BEST) and score.seeds == (0,)
    cached = read_rows([tmp_path / "cache"]).to_pylist()
    direct = train_cell(BEST, 0, protocol)
    assert len(cached) == 1
    for name in ("epoch_train_loss", "epoch_train_acc", "epoch_test_loss", "epoch_test_acc", "test_acc",
                 "params", "flops", "arch", "cell_id", "protocol_hash"):
        assert cached[0][name] == direct[name], name
    again = GroundTruth([table], cache_dir=tmp_path / "cache", protocol=protocol).score(BEST)
    assert not again.trained_now and again.test_acc == score.test_acc


def test_scores_follow_the_table(built, tiny, tmp_path):
    """Mean over seeds, percentile among the table's cells, regret to the best; members of a cell share it."""
    from raynas.benchmark.lookup import GroundTruth

    protocol = read_config_file(str(tiny))
    truth = GroundTruth([built["dir"] / "benchmark.parquet"], cache_dir=tmp_path, protocol=protocol,
                        train_missing=False)
    rows = pq.read_table(built["dir"] / "benchmark.parquet").to_pylist()
    means = {}
    for row in rows:
        means.setdefault(row["cell_id"], []).append(row["test_acc"])
    means = {cell: sum(v) / len(v) for cell, v in means.items()}
    best = max(means.values())
    cells = unique_cells()
    for cell, mean in means.items():
        members = [a for a, c in zip(cells.arch_strings, cells.cell_of) if c == cell]
        for arch in members[:3]:
            score = truth.score(arch)
            assert score.cell_id == cell and score.seeds == (0, 1)
            assert score.test_acc == pytest.approx(mean)
            assert score.regret == pytest.approx(best - mean)
            assert score.percentile == pytest.approx(100 * sum(m <= mean for m in means.values()) / len(means))


def test_every_arch_string_resolves_in_the_shipped_table_or_trains_on_demand(tmp_path):
    from raynas.benchmark.lookup import GroundTruth

    if not shipped_table_path().is_file():
        pytest.fail(f"the shipped table {shipped_table_path()} is missing")
    truth = GroundTruth(cache_dir=tmp_path)
    cells = unique_cells()
    in_table = [arch for arch in cells.arch_strings if truth.has(arch)]
    table_cells = set(read_rows([shipped_table_path()], truth.protocol_hash)["cell_id"].to_pylist())
    assert len(in_table) == sum(cells.members[c] for c in table_cells)  # every member of a shipped cell resolves
    missing = [arch for arch in cells.arch_strings if not truth.has(arch)]
    if missing:  # the rest train on demand under the shipped protocol: one of them, for real
        score = truth.score(missing[0])
        assert score.trained_now and 0.0 <= score.test_acc <= 1.0 and truth.has(missing[0])


def test_the_shipped_table_is_a_build_order_prefix_and_a_build_resumes_from_it(tmp_path):
    """The shipped table holds at least 2,000 unique cells with seed 0 and 200 with 3 seeds, each a prefix of
    the build order; ``raynas bench info`` says so, and a build with the default base trains none of them
    again (the next cell of the order is the only pair left of a build one cell longer)."""
    import json

    from raynas.benchmark.build import prepare_build
    from raynas.benchmark.protocol import shipped_protocol

    rows = read_rows([shipped_table_path()], protocol_hash(shipped_protocol())).to_pylist()
    seeds_of: dict[int, set[int]] = {}
    for row in rows:
        seeds_of.setdefault(row["cell_id"], set()).add(row["seed"])
    order = build_order()
    seeded = [cell for cell, seeds in seeds_of.items() if 0 in seeds]
    three = [cell for cell, seeds in seeds_of.items() if {0, 1, 2} <= seeds]
    assert len(seeded) >= 2000 and set(seeded) == set(order[:len(seeded)])
    assert len(three) >= 200 and set(three) == set(order[:len(three)])

    info = raynas("bench", "info", "--json")
    assert info.returncode == 0, info.stderr
    shown = json.loads(info.stdout)
    assert (shown["rows"], shown["unique_cells"], shown["cells_with_3_seeds"]) == (
        len(rows), f"{len(seeds_of)} of 6466", len(three))

    pairs = 3 * len(three)  # nothing to train: Ray is not even started
    run = raynas("bench", "build", "--cells", str(len(three)), "--seeds", "0-2", "--out", str(tmp_path), "--name", "b")
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"{pairs} (cell, seed) pair(s) wanted, {pairs} already in the base table(s), 0 to train" in run.stdout
    assert pq.read_table(tmp_path / "b" / "benchmark.parquet").num_rows == len(rows)
    if len(seeded) < len(order):
        plan, _ = prepare_build(name="next", out=tmp_path, protocol=shipped_protocol(), seeds=[0],
                                cells=len(seeded) + 1)
        assert [spec["cells"] for spec in plan.trials] == [[[order[len(seeded)], unique_cells().representatives[
            order[len(seeded)]]]]]


def test_bad_build_and_lookup_input_is_one_line_and_exit_code_2(tmp_path):
    run = raynas("bench", "build", "--cells", "0", "--out", str(tmp_path))
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0
    assert "--cells: 0 is out of range; allowed: 1 to 6466" in run.stderr
    assert not any(tmp_path.iterdir())  # nothing written
    run = raynas("bench", "build", "--cells", "2", "--gpus-per-trial", "-0.25", "--out", str(tmp_path))
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0
    assert "--gpus-per-trial: -0.25 is out of range; allowed: 0 to 1024" in run.stderr
    assert not any(tmp_path.iterdir())
    run = raynas("bench", "lookup", "|bogus~0|", "--no-train", "--cache", str(tmp_path / "c"))
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0 and "|bogus~0|" in run.stderr


def test_a_builds_gpu_fraction_is_what_its_trials_ask_for_and_a_resume_keeps_it(tmp_path):
    """``--gpus-per-trial`` reaches each trial's resource request and benchmark.yaml (which a resume reads);
    a plan written before the option existed reads as CPU-only. A trial with a GPU trains there because the
    protocol's device is ``auto`` (no GPU here: the CPU path is the tests' above)."""
    from raynas.benchmark.build import BuildPlan, prepare_build, read_plan, trial_resources, write_plan
    from raynas.benchmark.protocol import shipped_protocol

    plan, directory = prepare_build(name="g", out=tmp_path, protocol=shipped_protocol(), seeds=[0], cells=2,
                                    cpus_per_trial=2, gpus_per_trial=0.25, base=[])
    assert trial_resources(plan) == {"cpu": 2.0, "gpu": 0.25}
    directory.mkdir()
    write_plan(plan, directory)
    assert trial_resources(read_plan(directory)) == {"cpu": 2.0, "gpu": 0.25}
    older = {key: value for key, value in plan.to_dict().items() if key != "gpus_per_trial"}
    assert trial_resources(BuildPlan.from_dict(older)) == {"cpu": 2.0, "gpu": 0.0}
    assert "device" not in shipped_protocol()  # auto: the trial's GPU when it has one
