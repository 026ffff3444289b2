"""DARTS vs DARTS-PT on S1-S4 and the DARTS space (``tools/spaces_pt_study.py``).

A search population written by the real results writer with the shipped config's trials (``spaces_pt``: two
of its spaces, 4 seeds; some trials running or not started), and its training run as ``raynas train
--top 100 --config benchmarks/spaces_pt/protocol.yaml`` plans it (the real planner; its evaluations table
written by the real writer with known accuracies, some trainings still running). Every figure of the tool
is checked against scipy; a cell two searches derived is trained once and counts for both; the one-line
errors write nothing. Slow tier: a tiny real population of the shipped config and its training run through
the CLI (subprocesses, a local Ray, torch on the digits), and the tool on them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
from study_checks import figures, t_interval  # noqa: E402
from cli_helpers import ROOT, cli_env  # noqa: E402

from raynas.config import config_to_dict, dump_config, expand_trials, load_config, with_overrides  # noqa: E402
from raynas.evaluation import plan_evaluation, write_plan  # noqa: E402
from raynas.results import ResultsWriter, summarise_trial  # noqa: E402
from raynas.spaces.genotype import parse_genotype  # noqa: E402

TOOL = ROOT / "tools" / "spaces_pt_study.py"
PROTOCOL = ROOT / "benchmarks" / "spaces_pt" / "protocol.yaml"
OVERRIDES = ["search.epochs=2", "tune.grid.search.seed=[0, 1, 2, 3]",
             "tune.grid.variant=[s2-darts, s2-darts-pt, s4-darts, s4-darts-pt]"]
OPS = {"s2": ("skip_connect", "sep_conv_3x3"), "s4": ("noise", "sep_conv_3x3")}
#: (space, method) -> search seed -> the test accuracy of its cell (mean over training seeds). s2's seed 2
#: derives one cell with both methods; s4-darts seed 1's cell has 2 of 3 trainings finished; s4-darts-pt seed 1's
#: cell is still training, seed 2's was derived after the training run was planned; s2-darts seed 3 is running.
ACC = {("s2", "darts"): {0: 0.80, 1: 0.82, 2: 0.78}, ("s2", "darts-pt"): {0: 0.83, 1: 0.84, 2: 0.78},
       ("s4", "darts"): {0: 0.60, 1: 0.65, 2: 0.62}, ("s4", "darts-pt"): {0: 0.70, 1: None, 2: None}}
#: a training seed's test accuracy is its cell's plus this: seeds 0 and 1 alone have the cell's mean too
OFFSET = {0: -0.01, 1: 0.01, 2: 0.0}


def cell(space: str, number: int) -> str:
    """A distinct cell of ``space`` per ``number``: the normal cell's edge i runs op ``bit i of number``."""
    ops = OPS[space]
    normal = ", ".join(f"('{ops[(number >> i) & 1]}', {i % 2})" for i in range(8))
    reduce = ", ".join(f"('sep_conv_3x3', {i % 2})" for i in range(8))
    return str(parse_genotype(f"Genotype(normal=[{normal}], normal_concat=[2, 3, 4, 5], reduce=[{reduce}], "
                              "reduce_concat=[2, 3, 4, 5])"))


def genotype_of(space: str, method: str, seed: int) -> str:
    shared = space == "s2" and seed == 2  # both methods derive this one
    return cell(space, 100 if shared else 10 * seed + (method == "darts-pt") + 1)


def tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], cwd=ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=300)


def write_search(folder: Path, late: bool) -> None:
    """The population's trials (``late``: also the one that finished after the training run was planned)."""
    cfg = load_config(ROOT / "search_configs" / "spaces_pt.yaml", OVERRIDES)
    if not late:
        folder.mkdir()
        dump_config(cfg, folder / "config.yaml")
    writer = ResultsWriter(folder, folder.name)
    for index, trial in enumerate(expand_trials(cfg)):
        # as the results callback stores it: the population's settings with the trial's grid values (the
        # variant's name; its settings are applied when a config is built from it)
        config = with_overrides(config_to_dict(cfg), trial.overrides)
        assert config["space"] == "s1" and config["variant"] == trial.overrides["variant"]
        space, seed = trial.config.space, trial.config.search.seed
        method = "darts-pt" if trial.config.selection.name == "perturbation" else "darts"
        if seed == 3 and (space, method) != ("s2", "darts"):
            continue  # not started
        if ((space, method, seed) == ("s4", "darts-pt", 2)) != late:
            continue
        planned = 2 + (81 if method == "darts-pt" else 0)
        running = seed == 3
        rows = []
        for epoch in (1,) if running else (1, planned):
            report = {"epoch": epoch, "epoch_time_s": 30.0 * (2 if method == "darts-pt" else 1),
                      "derived_params": 1000.0, "genotype": genotype_of(space, method, seed), "num_skip": seed}
            writer.write_report(f"t_{index:05d}", report)
            rows.append(report)
        writer.write_trial(summarise_trial(f"t_{index:05d}", rows, "derived_params", "max", experiment=folder.name,
                                           status="RUNNING" if running else "TERMINATED", space=space,
                                           method="darts", seed=seed, config=config, overrides=trial.overrides,
                                           epochs_planned=planned))
    writer.consolidate()


def write_trainings(run: Path, genotypes: dict[str, tuple[float, int]], running: set[tuple[str, int]]) -> None:
    """The evaluations table of a training run: genotype -> (accuracy, params), 3 seeds each, those in
    ``running`` still at epoch 7 of 15."""
    writer = ResultsWriter(run, run.name)
    for index, (genotype, (acc, params)) in enumerate(genotypes.items()):
        for seed in (0, 1, 2):
            done = 7 if (genotype, seed) in running else 15
            curve = [acc + OFFSET[seed] - 0.01 * (done - e) for e in range(1, done + 1)]
            writer.write_evaluation({
                "trial_id": f"e_{index:03d}_{seed}", "status": "RUNNING" if done < 15 else "TERMINATED",
                "space": "s2", "dataset": "digits", "genotype": genotype, "source": "search", "seed": seed,
                "params": params, "epochs": 15, "epochs_done": done, "test_acc": curve[-1],
                "epoch_test_acc": curve, "wall_time_s": 30.0})
    writer.consolidate(["evaluations"])


def params_of(space: str, method: str, seed: int) -> int:
    """The parameters of a search's cell under the protocol (one cell, one count: s2's shared cell)."""
    own = method == "darts-pt" and (space, seed) != ("s2", 2)
    return 50_000 + 1_000 * seed + (500 if own else 0) + (20_000 if space == "s4" else 0)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("spaces_pt")
    search = root / "spaces_pt"
    write_search(search, late=False)
    prepared = plan_evaluation([str(search)], top=100, seeds=[0, 1, 2], config_path=str(PROTOCOL), name="protocol")
    prepared.directory.mkdir(parents=True)
    write_plan(prepared.plan, prepared.directory)
    write_search(search, late=True)  # a search that finished after its population's cells were planned
    trained = {genotype_of(space, method, seed): (acc, params_of(space, method, seed))
               for (space, method), accs in ACC.items() for seed, acc in accs.items() if seed != 3 and acc}
    waiting = genotype_of("s4", "darts-pt", 1)
    trained[waiting] = (0.5, 1)  # every training of it still running
    write_trainings(prepared.directory, trained,
                    {(genotype_of("s4", "darts", 1), 2), *((waiting, seed) for seed in (0, 1, 2))})
    return {"search": search, "run": prepared.directory, "plan": prepared.plan, "root": root}


def test_the_training_run_plans_every_searched_cell_once_in_its_space(study):
    """raynas train --top 100 of the population: each distinct cell once (s2's shared one too), in its
    trial's space (an S4 cell runs 'noise', which no other space has), under the protocol's data and split."""
    plan = study["plan"]
    archs = {a.genotype: a.space for a in plan.architectures}
    expected = {genotype_of(s, m, seed): s for (s, m), accs in ACC.items() for seed in accs
                if (s, m, seed) != ("s4", "darts-pt", 2)}
    expected[genotype_of("s2", "darts", 3)] = "s2"  # the running search's cell of its last epoch
    assert archs == expected and len(plan.architectures) == 11
    data = plan.train.data
    assert (data.name, data.noise_std, data.test_fraction, data.seed, data.cutout) == ("digits", 1.0, 0.5, 0, 0)
    assert (plan.train.channels, plan.train.layers, plan.train.epochs, plan.train.auxiliary) == (8, 11, 15, False)


def test_each_space_and_method_has_its_row(study, tmp_path):
    out = tmp_path / "study.md"
    table, result = figures(tool(study["search"], study["run"], "--out", out, "--json"))
    assert out.read_text() == table + "\n"
    rows = {(row["space"], row["method"]): row for row in result["rows"]}
    assert list(rows) == [("s2", "darts"), ("s2", "darts-pt"), ("s4", "darts"), ("s4", "darts-pt")]
    assert (result["finished"], result["trials"], result["planned"]) == (12, 13, 16)
    assert (result["cells_planned"], result["trainings_planned"]) == (11, 33)
    assert result["trainings_done"] == 3 * 9 - 1 and result["shared_cells"] == 1
    assert result["protocol"] == {"channels": 8, "layers": 11, "epochs": 15, "seeds": [0, 1, 2]}
    for key, row in rows.items():
        seeds = [seed for seed, acc in ACC[key].items() if acc is not None]
        mean, low, high = t_interval([ACC[key][s] for s in seeds]) if len(seeds) > 1 else (ACC[key][0],) * 3
        assert row["seeds"] == seeds and row["acc"]["n"] == len(seeds)
        assert row["acc"]["mean"] == pytest.approx(mean)
        if len(seeds) > 1:
            assert (row["acc"]["low"], row["acc"]["high"]) == pytest.approx((low, high), abs=1e-4)
        assert row["skips"] == pytest.approx(sum(seeds) / len(seeds))  # num_skip is the seed
        assert row["params"] == pytest.approx(sum(params_of(*key, s) for s in seeds) / len(seeds))
        assert row["cells"] == len(seeds)
        assert row["core_minutes"] == pytest.approx(2.0 if key[1] == "darts-pt" else 1.0)
    assert rows[("s4", "darts")]["training_seeds"] == [2, 3]  # seed 1's cell: 2 of its 3 trainings finished
    assert rows[("s2", "darts")]["training_seeds"] == [3, 3]
    assert rows[("s2", "darts")]["seed_sd"] == pytest.approx(0.01)  # offsets -0.01, +0.01, 0
    assert rows[("s4", "darts")]["seed_sd"] == pytest.approx(0.01)  # median of 0.01, 0.0141, 0.01
    counts = {key: (row["running"], row["not_started"], row["awaiting"], row["untrained"]) for key, row in rows.items()}
    assert counts == {("s2", "darts"): (1, 0, 0, 0), ("s2", "darts-pt"): (0, 1, 0, 0),
                      ("s4", "darts"): (0, 1, 0, 0), ("s4", "darts-pt"): (0, 1, 1, 1)}
    assert "| s2 | darts | 3 (1 running) | 0.8000 [" in table
    assert "| s4 | darts-pt | 1 (1 not started, 1 awaiting training, 1 cell not in the run) | 0.7000 | " in table
    assert "| s4 | darts | 3 (1 not started) | 0.6233 [" in table and " | 2-3 | 0.0100 | " in table
    assert "1 cell derived by more than one search, trained once" in table


def test_darts_pt_minus_darts_is_paired_on_the_search_seeds(study):
    _, result = figures(tool(study["search"], study["run"], "--json"))
    s2, s4 = result["paired"]
    diffs = [ACC[("s2", "darts-pt")][s] - ACC[("s2", "darts")][s] for s in (0, 1, 2)]
    mean, low, high = t_interval(diffs)
    assert (s2["space"], s2["method"], s2["baseline"], s2["seeds"]) == ("s2", "darts-pt", "darts", [0, 1, 2])
    assert (s2["mean"], s2["low"], s2["high"]) == pytest.approx((mean, low, high), abs=1e-4)
    assert low < 0 < high and s2["conclusion"] == (
        "darts-pt does not beat darts, nor is it shown worse: the interval covers 0, so 3 seeds show no difference")
    assert (s4["space"], s4["seeds"], s4["n"]) == ("s4", [0], 1)
    assert s4["mean"] == pytest.approx(0.10) and s4["low"] is None  # NaN: no interval of one seed
    assert s4["conclusion"] == "1 paired seed: too few to compare darts-pt with darts"


def test_the_tool_imports_neither_torch_nor_ray(study):
    code = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('t', sys.argv[1]); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); m.study(*map(__import__('pathlib')"
            ".Path, sys.argv[2:])); print(sorted(x for x in ('torch', 'ray') if x in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code, str(TOOL), str(study["search"]), str(study["run"])], cwd=ROOT,
                         env=cli_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stderr


def bad_run(study: dict, name: str, sources: list[str], trained: dict[str, tuple[float, int]],
            overrides: tuple[str, ...] = (), running: bool = False) -> Path:
    prepared = plan_evaluation(sources, top=100, space="s2", config_path=str(PROTOCOL), overrides=overrides,
                               out=study["root"], name=name)
    prepared.directory.mkdir()
    write_plan(prepared.plan, prepared.directory)
    write_trainings(prepared.directory, trained, {(g, s) for g in trained for s in (0, 1, 2)} if running else set())
    return prepared.directory


def test_bad_input_is_one_line_and_writes_nothing(study, tmp_path):
    first = genotype_of("s2", "darts", 0)
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        ((empty, study["run"]), "error: "),
        ((study["search"], study["search"]), "is not a raynas evaluation folder"),
        ((study["search"], bad_run(study, "noisy", [first], {first: (0.8, 1)}, ("data.noise_std=0.5",))),
         "trained on other data than"),
        ((study["search"], bad_run(study, "other", [cell("s2", 200)], {cell("s2", 200): (0.8, 1)})),
         "none of its 1 cells is the final cell of a finished search"),
        ((study["search"], bad_run(study, "early", [first], {first: (0.8, 1)}, running=True)),
         "no cell of a finished search has a finished training yet (0 trainings finished)"),
    ]
    for (search, run), message in cases:
        result = tool(search, run, "--out", tmp_path / "out.md")
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
    result = tool(study["search"], study["run"], "--out", tmp_path / "missing" / "out.md")
    assert result.returncode == 2 and "--out" in result.stderr and result.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
    noisy = tool(study["search"], study["root"] / "noisy").stderr
    assert "data.noise_std 0.5 (the search: 1.0)" in noisy


@pytest.mark.slow  # a real population and its training run through the CLI, about two minutes on 2 busy cores
def test_the_study_of_a_real_population_and_its_training_run(tmp_path):
    """raynas search of the shipped config (S4 only, 2 seeds, 1 tiny epoch), raynas train --top 100 of it under
    the protocol (1 epoch, 2 cells), and the tool: the trials search their variant's space, the cells train
    in it, and every row is what the evaluations table says."""
    from raynas.results import load_table

    search = subprocess.run(
        [sys.executable, "-m", "raynas.cli", "search", "spaces_pt", "--out", str(tmp_path), "--set", "search.epochs=1",
         "--set", "tune.grid.search.seed=[0, 1]", "--set", "tune.grid.variant=[s4-darts, s4-darts-pt]",
         "--set", "data.limit=96", "--set", "supernet.layers=3", "--set", "supernet.channels=4",
         "--set", "selection.proj_intv=0", "--set", "ray.num_cpus=2"],
        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert search.returncode == 0, search.stderr[-3000:]
    folder = tmp_path / "spaces_pt"
    train = subprocess.run(
        [sys.executable, "-m", "raynas.cli", "train", str(folder), "--top", "100", "--seeds", "0-1", "--config",
         str(PROTOCOL), "--epochs", "1", "--set", "layers=2", "--name", "protocol", "--num-cpus", "2"],
        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    run = folder / "evaluations" / "protocol"
    table, result = figures(tool(folder, run, "--json"))
    trials = load_table(folder, "trials").to_pylist()
    evaluations = load_table(run, "evaluations").to_pylist()
    assert {t["space"] for t in trials} == {"s4"} and {e["space"] for e in evaluations} == {"s4"}
    rows = {(row["space"], row["method"]): row for row in result["rows"]}
    assert list(rows) == [("s4", "darts"), ("s4", "darts-pt")]
    accs = {}
    for trial in trials:
        mine = [e["test_acc"] for e in evaluations if e["genotype"] == trial["genotype"]]
        assert len(mine) == 2  # its cell, both seeds (a cell two trials derived is trained once)
        pt = json.loads(trial["config_json"])["variant"] == "s4-darts-pt"
        accs[("darts-pt" if pt else "darts", trial["seed"])] = sum(mine) / 2
    for method in ("darts", "darts-pt"):
        row = rows[("s4", method)]
        assert row["seeds"] == [0, 1] and row["training_seeds"] == [2, 2]
        assert row["acc"]["mean"] == pytest.approx((accs[(method, 0)] + accs[(method, 1)]) / 2)
    [pair] = result["paired"]
    assert pair["seeds"] == [0, 1] and pair["mean"] == pytest.approx(
        sum(accs[("darts-pt", s)] - accs[("darts", s)] for s in (0, 1)) / 2)
    assert "| s4 | darts | 2 | " in table and "| s4 | 2 | " in table
