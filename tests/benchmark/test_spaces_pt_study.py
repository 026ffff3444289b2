"""DARTS vs DARTS-PT on S1-S4 and the DARTS space (``tools/spaces_pt_study.py``, ``tools/spaces_pt_snapshot.py``).

A search population written by the real results writer with the shipped config's trials (``spaces_pt``: two
of its spaces, 4 seeds; some trials running or not started), and its training run as ``raynas train
--top 100 --config benchmarks/spaces_pt/protocol.yaml`` plans it (the real planner; its evaluations table
written by the real writer with known accuracies, some trainings still running). Every figure of the tool
is checked against scipy; a cell two searches derived is trained once and counts for both; the one-line
errors write nothing. The same population run seed by seed as two parts (seeds 0-1, 2-3), each with its own
training run, reads as the union; a part's trainings count for its own trials only; a seed finished in two
parts is refused; a part's snapshot (the snapshot tool, through its CLI) reads as its live folder. Slow tier:
a tiny real population of the shipped config and its training run through the CLI (subprocesses, a local
Ray, torch on the digits), and the tool on them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
from study_checks import figures, t_interval  # noqa: E402
from cli_helpers import ROOT, cli_env  # noqa: E402

from raynas.config import config_to_dict, dump_config, expand_trials, load_config, with_overrides  # noqa: E402
from raynas.evaluation import plan_evaluation, write_plan  # noqa: E402
from raynas.results import ResultsWriter, rows_from_report, summarise_trial  # noqa: E402
from raynas.spaces.genotype import parse_genotype  # noqa: E402

TOOL = ROOT / "tools" / "spaces_pt_study.py"
SNAPSHOT = ROOT / "tools" / "spaces_pt_snapshot.py"
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


def tool(*args: str, script: Path = TOOL) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=300)


def part_config(seeds: tuple[int, ...], variants: tuple[str, ...] = ()) -> Any:
    """The shipped config as a part of the study runs it: some search seeds (and some variants)."""
    overrides = [*OVERRIDES, f"tune.grid.search.seed={list(seeds)}"]
    return load_config(ROOT / "search_configs" / "spaces_pt.yaml",
                       overrides + ([f"tune.grid.variant=[{', '.join(variants)}]"] if variants else []))


def write_trial(writer: ResultsWriter, index: int, cfg: Any, trial: Any, genotype: str, running: bool) -> None:
    """One trial's epoch rows and its trials row, as the results callback writes them."""
    # as the results callback stores it: the population's settings with the trial's grid values (the
    # variant's name; its settings are applied when a config is built from it)
    config = with_overrides(config_to_dict(cfg), trial.overrides)
    assert config["space"] == "s1" and config["variant"] == trial.overrides["variant"]
    space, seed = trial.config.space, trial.config.search.seed
    method = "darts-pt" if trial.config.selection.name == "perturbation" else "darts"
    planned = 2 + (81 if method == "darts-pt" else 0)
    rows = []
    for epoch in (1,) if running else (1, planned):
        report = {"epoch": epoch, "epoch_time_s": 30.0 * (2 if method == "darts-pt" else 1),
                  "derived_params": 1000.0, "genotype": genotype, "num_skip": seed}
        writer.write_rows(f"t_{index:05d}", rows_from_report(f"t_{index:05d}", report))
        rows.append(report)
    writer.write_trial(summarise_trial(f"t_{index:05d}", rows, "derived_params", "max",
                                       experiment=writer.experiment_name, status="RUNNING" if running else "TERMINATED",
                                       space=space, method="darts", seed=seed, config=config,
                                       overrides=trial.overrides, epochs_planned=planned))


def write_search(folder: Path, late: bool, seeds: tuple[int, ...] = (0, 1, 2, 3)) -> None:
    """The population's trials of ``seeds`` (``late``: also the one that finished after the training run was
    planned)."""
    cfg = part_config(seeds)
    if not late:
        folder.mkdir()
        dump_config(cfg, folder / "config.yaml")
    writer = ResultsWriter(folder, folder.name)
    for index, trial in enumerate(expand_trials(cfg)):
        space, seed = trial.config.space, trial.config.search.seed
        method = "darts-pt" if trial.config.selection.name == "perturbation" else "darts"
        if seed == 3 and (space, method) != ("s2", "darts"):
            continue  # not started
        if ((space, method, seed) == ("s4", "darts-pt", 2)) != late:
            continue
        write_trial(writer, index, cfg, trial, genotype_of(space, method, seed), running=seed == 3)
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


def make_part(root: Path, name: str, seeds: tuple[int, ...]) -> dict:
    """The population of ``seeds`` and its training run under ``root/name`` (module docstring)."""
    search = root / name
    write_search(search, late=False, seeds=seeds)
    prepared = plan_evaluation([str(search)], top=100, seeds=[0, 1, 2], config_path=str(PROTOCOL), name="protocol")
    prepared.directory.mkdir(parents=True)
    write_plan(prepared.plan, prepared.directory)
    write_search(search, late=True, seeds=seeds)  # a search that finished after its population's cells were planned
    trained = {genotype_of(space, method, seed): (acc, params_of(space, method, seed))
               for (space, method), accs in ACC.items() for seed, acc in accs.items()
               if seed in seeds and seed != 3 and acc}
    running = set()
    if 1 in seeds:
        waiting = genotype_of("s4", "darts-pt", 1)
        trained[waiting] = (0.5, 1)  # every training of it still running
        running = {(genotype_of("s4", "darts", 1), 2), *((waiting, seed) for seed in (0, 1, 2))}
    write_trainings(prepared.directory, trained, running)
    return {"search": search, "run": prepared.directory, "plan": prepared.plan, "root": root}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_part(tmp_path_factory.mktemp("spaces_pt"), "spaces_pt", (0, 1, 2, 3))


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


def test_the_tools_import_neither_torch_nor_ray(study, tmp_path):
    code = ("import importlib.util, pathlib, sys\n"
            "def load(path):\n"
            "    spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)\n"
            "    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); return module\n"
            "search, run, dest = map(pathlib.Path, sys.argv[3:])\n"
            "load(sys.argv[1]).study(search, run); load(sys.argv[2]).snapshot(search, dest)\n"
            "print(sorted(x for x in ('torch', 'ray') if x in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code, str(TOOL), str(SNAPSHOT), str(study["search"]), str(study["run"]),
                          str(tmp_path / "snapshot")], cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stderr
    assert (tmp_path / "snapshot" / "tables" / "trials.parquet").is_file()


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
    lone = tmp_path / "lone"
    write_search(lone, late=False, seeds=(0,))  # a search without a training run
    cases = [
        ((empty, study["run"]), f"error: {empty} is not a search folder (no config.yaml in it)"),
        ((study["search"], study["search"]), f"{study['search']} is named twice: give each part of the study once"),
        ((study["run"],), "is a training run but follows no search folder"),
        ((study["search"], tmp_path / "missing"), "missing: no such folder"),
        ((lone,), f"{lone}: name its training run after it (training runs under {lone / 'evaluations'}: none)"),
        ((study["search"], bad_run(study, "noisy", [first], {first: (0.8, 1)}, ("data.noise_std=0.5",))),
         "trained on other data than"),
        ((study["search"], bad_run(study, "other", [cell("s2", 200)], {cell("s2", 200): (0.8, 1)})),
         "none of its 1 cells is the final cell of a finished search"),
        ((study["search"], bad_run(study, "early", [first], {first: (0.8, 1)}, running=True)),
         "no cell of a finished search has a finished training yet (0 trainings finished)"),
    ]
    for folders, message in cases:
        result = tool(*folders, "--out", tmp_path / "out.md")
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
    result = tool(study["search"], study["run"], "--out", tmp_path / "missing" / "out.md")
    assert result.returncode == 2 and "--out" in result.stderr and result.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "lone"]
    noisy = tool(study["search"], study["root"] / "noisy").stderr
    assert "data.noise_std 0.5 (the search: 1.0)" in noisy


def make_extra(root: Path) -> dict:
    """A third part: seed 3 of s2 only. Its DARTS search finishes the seed that part b has running; its
    DARTS-PT search derives the cell part a's DARTS seed 0 derived and trained, and finished after this part's
    training run was planned, so this part never trains it."""
    cfg = part_config((3,), ("s2-darts", "s2-darts-pt"))
    search = root / "spaces_pt-x"
    search.mkdir()
    dump_config(cfg, search / "config.yaml")
    writer = ResultsWriter(search, search.name)
    darts, darts_pt = expand_trials(cfg)
    assert (darts.overrides["variant"], darts_pt.overrides["variant"]) == ("s2-darts", "s2-darts-pt")
    write_trial(writer, 0, cfg, darts, cell("s2", 41), running=False)
    writer.consolidate()
    prepared = plan_evaluation([str(search)], top=100, seeds=[0, 1, 2], config_path=str(PROTOCOL), name="protocol")
    prepared.directory.mkdir(parents=True)
    write_plan(prepared.plan, prepared.directory)
    write_trial(writer, 1, cfg, darts_pt, genotype_of("s2", "darts", 0), running=False)
    writer.consolidate()
    write_trainings(prepared.directory, {cell("s2", 41): (0.90, 60_000)}, set())
    return {"search": search, "run": prepared.directory}


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The population of ``study`` run seed by seed: part a (seeds 0-1) and part b (2-3), each with its own
    training run, and the third part of :func:`make_extra`."""
    root = tmp_path_factory.mktemp("parts")
    return {"a": make_part(root, "spaces_pt-a", (0, 1)), "b": make_part(root, "spaces_pt-b", (2, 3)),
            "x": make_extra(root), "root": root}


def without_folders(result: dict) -> dict:
    """The figures of a study, less the folders it read."""
    return {key: value for key, value in result.items() if key not in ("experiment", "run", "parts")}


def test_parts_run_seed_by_seed_read_as_the_whole_population(study, parts):
    """Seeds 0-1 and 2-3 as two parts, each trained in its own run (the first named with its run, the
    second with its only run by default): every figure is the one population's."""
    a, b = parts["a"], parts["b"]
    table, result = figures(tool(a["search"], a["run"], b["search"], "--json"))
    whole_table, whole = figures(tool(study["search"], "--json"))  # its only run, by default
    assert without_folders(result) == without_folders(whole)
    assert table.splitlines()[1:] == whole_table.splitlines()[1:]
    assert table.startswith(f"12 finished searches of 16 planned in 2 parts ({a['search']}, {b['search']}) "
                            "(13 started; ") and "their cells trained in each part's training run (C=8" in table
    assert result["parts"] == [
        {"experiment": str(a["search"]), "run": str(a["run"]), "trials": 8, "finished": 8,
         "trainings_planned": 24, "trainings_done": 20},  # 8 cells; s4's seed 1 cells: 1 and 3 trainings running
        {"experiment": str(b["search"]), "run": str(b["run"]), "trials": 5, "finished": 4,
         "trainings_planned": 9, "trainings_done": 6}]  # seed 2's shared cell and s4-darts', the running search's


def test_a_parts_trainings_count_for_its_own_searches_only(parts):
    """Part x finishes s2 DARTS seed 3 (part b's is still running: it counts once, finished) and derives with
    DARTS-PT the cell part a trained for its DARTS seed 0, which x's run does not train: that search waits for
    its training, however part a trained the cell."""
    a, b, x = parts["a"], parts["b"], parts["x"]
    _, result = figures(tool(a["search"], b["search"], x["search"], "--json"))
    rows = {(row["space"], row["method"]): row for row in result["rows"]}
    darts, darts_pt = rows[("s2", "darts")], rows[("s2", "darts-pt")]
    assert darts["seeds"] == [0, 1, 2, 3] and darts["running"] == 0
    assert darts["acc"]["mean"] == pytest.approx((0.80 + 0.82 + 0.78 + 0.90) / 4)
    assert darts_pt["seeds"] == [0, 1, 2] and (darts_pt["untrained"], darts_pt["not_started"]) == (1, 0)
    assert darts_pt["acc"]["mean"] == pytest.approx((0.83 + 0.84 + 0.78) / 3)
    assert result["paired"][0]["seeds"] == [0, 1, 2]
    assert (result["trials"], result["finished"], result["planned"]) == (14, 14, 16)


def test_a_search_finished_in_two_parts_is_refused(study, parts):
    """The whole population and its part a both finished seeds 0-1: one line naming both folders, exit 2;
    so do parts trained under different protocols."""
    a, b = parts["a"], parts["b"]
    result = tool(study["search"], a["search"], "--out", parts["root"] / "out.md")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (f"error: s2 darts seed 0 finished in both {study['search']} and {a['search']}: give "
                             "each part once, and search each seed of a variant in one part only\n")
    second = genotype_of("s2", "darts", 2)
    short = bad_run(parts, "short", [second], {second: (0.8, 1)}, ("epochs=10",))
    result = tool(a["search"], b["search"], short, "--out", parts["root"] / "out.md")
    assert result.returncode == 2 and result.stdout == "" and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {short} trained under another protocol than {a['run']}: epochs 10 "
                                    f"({a['run']}: 15); "), result.stderr
    assert not (parts["root"] / "out.md").exists()


def snapshot_files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_a_snapshot_of_a_part_reads_as_its_live_folder(study, tmp_path):
    """tools/spaces_pt_snapshot.py of the population (searches and trainings still running): config.yaml and
    the tables the study reads, in a live folder's layout; the study of the snapshot prints every figure of
    the live folder's; written again, it is replaced; bad input is one line, exit 2, and writes nothing."""
    dest = tmp_path / "s0"
    written = tool(study["search"], dest, script=SNAPSHOT)
    assert written.returncode == 0 and written.stderr == "", written.stderr
    assert written.stdout.startswith(f"{dest}: 12 finished searches of 13 started (seeds 0, 1, 2, 3), 26 of 33 "
                                     f"trainings finished in {dest / 'evaluations' / 'protocol'}; 5 files, ")
    assert written.stdout.count("\n") == 1
    files = ["config.yaml", "evaluations/protocol/evaluation.yaml", "evaluations/protocol/tables/evaluations.parquet",
             "tables/epochs.parquet", "tables/trials.parquet"]
    assert snapshot_files(dest) == files
    table, result = figures(tool(dest, "--json"))
    live_table, live = figures(tool(study["search"], study["run"], "--json"))
    assert without_folders(result) == without_folders(live)
    assert table.splitlines()[1:] == live_table.splitlines()[1:]
    assert (result["experiment"], result["run"]) == (str(dest), str(dest / "evaluations" / "protocol"))
    again = tool(study["search"], dest, "--run", study["run"], script=SNAPSHOT)
    assert again.returncode == 0 and snapshot_files(dest) == files
    assert figures(tool(dest, "--json"))[1] == result
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s0"]  # no temporary folder left behind

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    cases = [((tmp_path / "empty-search", tmp_path / "x"), "no such folder"),
             ((study["search"], study["search"]), "would replace the search folder"),
             ((study["search"], other), f"{other} exists and is not a snapshot of a part"),
             ((study["search"], tmp_path / "x", "--run", study["search"]), "is not a raynas evaluation folder"),
             ((study["search"], tmp_path / "missing" / "x"), "no folder")]
    for args, message in cases:
        result = tool(*args, script=SNAPSHOT)
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "s0"] and snapshot_files(other) == ["notes.txt"]


@pytest.mark.slow  # a real population and its training run through the CLI, about two minutes on 2 busy cores
def test_the_study_of_a_real_population_and_its_training_run(tmp_path):
    """raynas search of the shipped config (S4 only, 2 seeds, 1 tiny epoch), raynas train --top 100 of it under
    the protocol (1 epoch, 2 cells), and the tool: the trials search their variant's space, the cells train
    in it, and every row is what the evaluations table says; the part's snapshot reads the same."""
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
    snapshot = tmp_path / "s0-1"  # the part as a session commits it: the study reads the same figures
    assert tool(folder, snapshot, script=SNAPSHOT).returncode == 0
    snapshot_table, snapshot_result = figures(tool(snapshot, "--json"))
    assert without_folders(snapshot_result) == without_folders(result)
    assert snapshot_table.splitlines()[1:] == table.splitlines()[1:]
