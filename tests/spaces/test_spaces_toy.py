"""A new search space is its own code plus one registration: the toy space of toy_space.py (a three-edge cell
whose genotypes print as ``<op;op;op>``), registered for the test only, goes through the search, training
from scratch, pictures, reports, E2NAS' encoding and the API without an edit anywhere in raynas.

Before issue 26 the same toy needed edits in 9 files of raynas besides its own: spaces/__init__.py (the space
guessed from the text) and spaces/genotype.py (parsing any genotype text), train.py (the protocol chosen by
``"normal" in cell_types``), plots/cells.py (an NB201 or else a DARTS cell graph), plots/experiment.py and
report/evaluations.py (nb201 or else darts), e2nas/encoding.py and config/checks.py (isinstance of NB201Space
or DartsLikeSpace) and api/run.py (isinstance of the two genotype classes); a space with a "normal" cell or a
supernet option of its own also supernet/build.py. Now it needs none: its module and one registration.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from matplotlib.image import imread
from toy_space import TOY, ToyGenotype

from raynas.config import DataConfig, TrainConfig, config_from_dict, dump_config
from raynas.plots import DPI, NB201_CELL_SIZE, cell_edges, draw_cell, plot_experiment
from raynas.report import write_report
from raynas.results import ResultsWriter, rows_from_report, summarise_trial
from raynas.spaces import SPACES, get_space, guess_space, is_genotype, parse_genotype

EPOCHS = 2


@pytest.fixture
def toy():
    """The toy space, registered for one test."""
    with SPACES.temporarily(TOY.name, TOY) as space:
        yield space


def test_texts_and_objects_of_the_toy_are_found_by_asking_the_spaces(toy) -> None:
    genotype = toy.sample(random.Random(1))
    text = str(genotype)
    assert guess_space(text) == "toy" and guess_space(genotype) == "toy"
    assert parse_genotype(text) == genotype and is_genotype(genotype)
    assert cell_edges(genotype, "cell") == [(src, dst, op) for (src, dst), op in zip(toy.edges("cell"), genotype.ops)]
    from raynas.api.run import _source_text
    from raynas.e2nas.encoding import encode, enumerate_choices, layouts, to_choices

    layout = layouts("toy")["cell"]
    assert layout.num_edges == 3 and layout.num_ops == 6 and not layout.selects_inputs()
    choices = [toy.choices_from_genotype(genotype)]
    assert to_choices("toy", encode("toy", choices)) == choices
    assert len(enumerate_choices("toy")) == 6 ** 3
    assert _source_text(genotype) == text  # the API takes a toy genotype object as a training source


def test_search_train_plot_and_report_take_the_toy(toy, tmp_path: Path) -> None:
    from raynas.search import Search
    from raynas.train import ScratchTraining

    # search: the supernet, its options and the derived genotype come from the space
    cfg = config_from_dict({"name": "toy-search", "space": "toy",
                            "data": {"name": "digits", "noise_std": 0.5, "limit": 96},
                            "supernet": {"channels": 4, "layers": 1},
                            "search": {"epochs": EPOCHS, "batch_size": 32, "seed": 0, "threads": 1}})
    folder = tmp_path / "toy-search"
    writer = ResultsWriter(folder, folder.name)
    search = Search(cfg)
    history = []
    for _ in range(EPOCHS):
        report = search.run_epoch()
        writer.write_rows("t0", rows_from_report("t0", report))
        history.append({k: v for k, v in report.items() if k != "alphas"})
    search.close()
    text = history[-1]["genotype"]
    assert isinstance(parse_genotype(text), ToyGenotype) and toy.parse_genotype(text)
    writer.write_trial(summarise_trial("t0", history, "derived_val_acc", "max", experiment=folder.name,
                                       status="TERMINATED", space="toy", method="darts", seed=0))
    writer.consolidate()
    dump_config(cfg, folder / "config.yaml")

    # pictures and the search report: the cell drawn from the space's cell graph
    paths = plot_experiment(folder, tmp_path / "pictures")
    cell_png = tmp_path / "pictures" / "cell_t0_cell.png"
    assert cell_png in paths and (tmp_path / "pictures" / "alphas_t0_cell.png") in paths
    assert imread(cell_png).shape[:2] == (round(NB201_CELL_SIZE[1] * DPI), round(NB201_CELL_SIZE[0] * DPI))
    page = write_report(folder, tmp_path / "search.html").read_text(encoding="utf-8")
    assert "toy cell" in page and "cannot be drawn" not in page
    assert draw_cell(text, "toy", "cell").axes

    # training from scratch: the space's protocol (batch size 32, no cutout) fills what is unset
    training = ScratchTraining(TrainConfig(space="toy", genotype=text, epochs=1, seed=0, device="cpu", threads=1,
                                           data=DataConfig(name="digits", limit=96)))
    assert training.cfg.batch_size == 32 and training.cfg.channels == 4 and training.cfg.nesterov
    assert getattr(training.train_loader.dataset, "augmentation", None) is None or \
        training.train_loader.dataset.augmentation.cutout == 0
    result = training.run_epoch()
    assert result["genotype"] == text and result["params"] > 0

    # the evaluation report draws the trained genotype with the toy's own graph
    run_dir = tmp_path / "evaluations" / "toy-run"
    run_dir.mkdir(parents=True)
    (run_dir / "evaluation.yaml").write_text("name: toy-run\nspace: toy\nseeds: [0]\nepochs: 1\n")
    eval_writer = ResultsWriter(run_dir, "toy-run")
    eval_writer.write_evaluation({key: result.get(key) for key in (
        "genotype", "space", "dataset", "seed", "params", "flops", "macs", "epochs", "train_loss", "train_acc",
        "test_loss", "test_acc", "epoch_train_loss", "epoch_train_acc", "epoch_test_loss", "epoch_test_acc")}
        | {"trial_id": "ev_s0", "status": "TERMINATED", "epochs_done": 1, "best_test_acc": result["test_acc"],
           "best_epoch": 1})
    eval_writer.consolidate(["evaluations"])
    page = write_report(run_dir, tmp_path / "run.html").read_text(encoding="utf-8")
    assert "G1: toy cell" in page and "cannot be drawn" not in page
    assert get_space("toy") is toy
