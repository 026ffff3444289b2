"""raynas.evaluation.plan: sources -> architectures x seeds, checked before anything is written (no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from raynas.config import dump_config, load_config
from raynas.errors import ConfigError, GenotypeError, SpaceError
from raynas.evaluation import EvaluationPlan, plan_evaluation, read_plan, write_plan
from raynas.results import ResultsWriter, summarise_trial

ROOT = Path(__file__).resolve().parents[2]
CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
POOL = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
DEAD = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")


def make_experiment(folder: Path, genotypes: dict[str, tuple[str, float]]) -> Path:
    """A search experiment folder: the smoke NB201 config (data.limit 128) and one trials row per trial id
    -> (genotype, metric value)."""
    # ranked by derived_val_acc, the metric its trials rows were summarised by (the leaderboard recomputes a
    # trial ranked by another metric from its epochs, which this folder has none of)
    cfg = load_config(ROOT / "search_configs/smoke/nb201.yaml", ["data.limit=128", "tune.metric=derived_val_acc"])
    folder.mkdir(parents=True)
    dump_config(cfg, folder / "config.yaml")
    writer = ResultsWriter(folder, folder.name)
    for trial_id, (genotype, value) in genotypes.items():
        row = {"epoch": 2, "derived_val_acc": value, "genotype": genotype, "num_skip": 0, "connected": True}
        writer.write_trial(summarise_trial(trial_id, [row], "derived_val_acc", "max", experiment=folder.name,
                                           status="TERMINATED", space="nb201", method="darts", seed=0))
    writer.consolidate()
    return folder


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    return make_experiment(tmp_path / "smoke-nb201", {"t_a": (CONV, 0.5), "t_b": (POOL, 0.7), "t_c": (CONV, 0.6)})


def test_genotype_text_and_file_with_seeds(tmp_path: Path):
    listing = tmp_path / "genotypes.txt"
    listing.write_text(f"# two cells\n{POOL}\n\n{DARTS_V2}\n")
    prepared = plan_evaluation([CONV, str(listing)], seeds=[0, 2], out=tmp_path / "out", name="run")
    plan = prepared.plan
    assert prepared.directory == tmp_path / "out" / "run" and not prepared.directory.exists()
    assert [(a.genotype, a.space, a.source) for a in plan.architectures] == [
        (CONV, "nb201", "argument"), (POOL, "nb201", str(listing)), (DARTS_V2, "darts", str(listing))]
    specs = plan.trial_specs()
    assert [(s["overrides"]["genotype"], s["overrides"]["seed"]) for s in specs] == [
        (g, seed) for g in (CONV, POOL, DARTS_V2) for seed in (0, 2)]
    darts_cfg = plan.trial_config(specs[-1]["overrides"])
    assert (darts_cfg.space, darts_cfg.seed, darts_cfg.data.name) == ("darts", 2, "digits")


def test_search_folder_gives_its_best_distinct_genotypes_its_data_and_its_evaluations_folder(experiment: Path):
    prepared = plan_evaluation([str(experiment)], top=2, name="run")
    assert [(a.genotype, a.source_trial) for a in prepared.plan.architectures] == [(POOL, "t_b"), (CONV, "t_c")]
    assert prepared.directory == experiment / "evaluations" / "run"
    assert prepared.plan.train.data.limit == 128  # the search's own data settings
    chosen = plan_evaluation([str(experiment)], trials=["t_a"], name="run", dataset="synthetic")
    assert [a.source_trial for a in chosen.plan.architectures] == ["t_a"]
    assert chosen.plan.train.data.name == "synthetic" and chosen.plan.train.data.limit is None


def darts_genotype(normal_op: str, reduce_op: str) -> str:
    """A DARTS-cell genotype text: every node reads inputs 0 and 1, ``normal_op`` / ``reduce_op`` on each edge."""
    def cell(op: str) -> str:
        return ", ".join(f"('{op}', {src})" for _ in range(4) for src in (0, 1))
    return (f"Genotype(normal=[{cell(normal_op)}], normal_concat=[2, 3, 4, 5], "
            f"reduce=[{cell(reduce_op)}], reduce_concat=[2, 3, 4, 5])")


def test_a_population_over_spaces_gives_each_genotype_its_trials_space(tmp_path: Path):
    """Variants may set the space (search_configs/spaces_pt.yaml): an S4 cell (its ``noise`` op exists in no
    other space) is planned in s4, not in the config's space; a cell two trials derived, in s2 and s3, is
    trained once, as the better-ranked trial's."""
    noise, sep = darts_genotype("noise", "sep_conv_3x3"), darts_genotype("sep_conv_3x3", "skip_connect")
    folder = tmp_path / "spaces"
    folder.mkdir()
    dump_config(load_config(ROOT / "search_configs/smoke/darts.yaml", ["space=s2"]), folder / "config.yaml")
    writer = ResultsWriter(folder, folder.name)
    for trial_id, space, genotype, value in (("t_a", "s4", noise, 0.9), ("t_b", "s3", sep, 0.8),
                                              ("t_c", "s2", sep, 0.7)):
        row = {"epoch": 2, "derived_params": value, "genotype": genotype, "num_skip": 0, "connected": True}
        writer.write_trial(summarise_trial(trial_id, [row], "derived_params", "max", experiment=folder.name,
                                           status="TERMINATED", space=space, method="darts", seed=0))
    writer.consolidate()
    plan = plan_evaluation([str(folder)], top=100, seeds=[0, 1], name="run").plan
    assert [(a.genotype, a.space, a.source_trial) for a in plan.architectures] == [(noise, "s4", "t_a"),
                                                                                   (sep, "s3", "t_b")]
    assert [plan.trial_config(spec["overrides"]).space for spec in plan.trial_specs()] == ["s4", "s4", "s3", "s3"]


def test_settings_from_config_file_epochs_and_overrides(tmp_path: Path):
    settings = tmp_path / "train.yaml"
    settings.write_text("epochs: 7\nbatch_size: 32\ndata:\n  name: digits\n  cutout: 2\n")
    plan = plan_evaluation([CONV], config_path=str(settings), epochs=3, overrides=["channels=4"],
                           out=tmp_path, name="x").plan
    assert (plan.train.epochs, plan.train.batch_size, plan.train.channels, plan.train.data.cutout) == (3, 32, 4, 2)


def test_plan_round_trips_through_its_file(tmp_path: Path):
    plan = plan_evaluation([CONV, POOL], seeds=[1], out=tmp_path, name="x", gpus_per_trial=0.5, max_failures=2).plan
    write_plan(plan, tmp_path)
    assert read_plan(tmp_path) == plan
    assert isinstance(read_plan(tmp_path), EvaluationPlan)


@pytest.mark.parametrize("sources, options, error, words", [
    ([DEAD], {}, GenotypeError, "no path from its input to its output"),
    (["|bogus~0|"], {}, GenotypeError, "bogus"),
    ([CONV], {"space": "nope"}, SpaceError, "nope"),
    ([CONV], {"seeds": []}, ConfigError, "--seeds"),
    ([CONV], {"seeds": [-1]}, ConfigError, "--seeds = -1"),
    ([CONV], {"top": 0}, ConfigError, "--top = 0"),
    ([CONV], {"cpus_per_trial": 0}, ConfigError, "--cpus-per-trial = 0"),
    ([CONV], {"trials": ["t_a"]}, ConfigError, "--trial: only for a search experiment folder"),
    ([CONV], {"overrides": ["epochs=0"]}, ConfigError, "epochs"),
    ([CONV], {"overrides": ["nonsense=1"]}, ConfigError, "nonsense"),
    ([], {}, ConfigError, "SOURCE"),
])
def test_bad_input_is_a_one_line_error(tmp_path: Path, sources, options, error, words):
    with pytest.raises(error) as info:
        plan_evaluation(sources, out=tmp_path, name="x", **options)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "x").exists()


def test_unknown_trial_and_taken_folder_are_refused(experiment: Path):
    with pytest.raises(ConfigError, match="--trial 'nope': no such trial .* t_a"):
        plan_evaluation([str(experiment)], trials=["nope"], name="run")
    (experiment / "evaluations" / "run").mkdir(parents=True)
    with pytest.raises(ConfigError, match="already exists"):
        plan_evaluation([str(experiment)], name="run")


def test_folder_that_is_not_a_search_experiment_is_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match="not a search experiment"):
        plan_evaluation([str(tmp_path)], out=tmp_path, name="x")


def test_config_file_may_not_set_the_genotype(tmp_path: Path):
    settings = tmp_path / "train.yaml"
    settings.write_text(f"genotype: '{CONV}'\n")
    with pytest.raises(ConfigError, match="come from SOURCE"):
        plan_evaluation([CONV], config_path=str(settings), out=tmp_path, name="x")


@pytest.mark.parametrize("text", ["name: a\nname: b\n", "seeds: [" * 100 + "]" * 100 + "\n", "a: [\n"])
def test_a_damaged_plan_file_is_a_one_line_error(tmp_path: Path, text: str):
    from raynas.benchmark.build import BUILD_PLAN
    from raynas.benchmark.build import read_plan as read_build_plan
    from raynas.results import EVALUATION_PLAN

    readers = ((EVALUATION_PLAN, read_plan, "evaluation"), (BUILD_PLAN, read_build_plan, "benchmark build"))
    for name, read, what in readers:
        (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError, match=f"not a raynas {what} plan") as err:
            read(tmp_path)
        assert "\n" not in str(err.value)
