"""raynas.plots and `raynas plot` on a real (tiny) NB201 experiment and on the DARTS_V2 genotype."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from raynas.errors import ConfigError, GenotypeError, ResultsError, SpaceError
from raynas.plots import (CURVES_SIZE, DARTS_CELL_SIZE, DPI, NB201_CELL_SIZE, POPULATION_SIZE, alphas_size,
                          cell_edges, draw_cell, plot_alphas, plot_experiment, plot_population, save_figure,
                          varying_keys)
from raynas.results import ResultsWriter, summarise_trial, rows_from_report
from raynas.spaces import get_space, parse_genotype

ROOT = Path(__file__).resolve().parents[2]
DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
TRIALS = {"t0": {"search.seed": 0, "search.arch_lr": 0.01}, "t1": {"search.seed": 1, "search.arch_lr": 0.003}}
EPOCHS = 3


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real NB201 searches of 3 short epochs (no Ray), written as an experiment's result tables, with the
    config.yaml a search writes."""
    from raynas.config import dump_config, load_config
    from raynas.search import Search

    folder = tmp_path_factory.mktemp("plots") / "smoke-nb201"
    writer = ResultsWriter(folder, folder.name)
    for trial_id, overrides in TRIALS.items():
        cfg = load_config(ROOT / "search_configs/smoke/nb201.yaml",
                          [f"{key}={value}" for key, value in overrides.items()]
                          + [f"search.epochs={EPOCHS}", "search.steps_per_epoch=2", "data.limit=64",
                             "search.threads=1"])
        search = Search(cfg)
        history = []
        for _ in range(EPOCHS):
            report = search.run_epoch()
            writer.write_rows(trial_id, rows_from_report(trial_id, report))
            history.append({k: v for k, v in report.items() if k != "alphas"})
        search.close()
        writer.write_trial(summarise_trial(trial_id, history, "derived_val_acc", "max", experiment=folder.name,
                                           status="TERMINATED", space="nb201", method="darts",
                                           seed=overrides["search.seed"], overrides=overrides))
    writer.consolidate()
    dump_config(cfg, folder / "config.yaml")
    return folder


def _png(path: Path, size: tuple[float, float]) -> None:
    """``path`` is a PNG of ``size`` inches at DPI pixels per inch with more than one colour."""
    image = imread(path)
    assert image.shape[:2] == (round(size[1] * DPI), round(size[0] * DPI)), path.name
    assert float(np.std(image[..., :3])) > 0, f"{path.name} is blank"


def _svg_texts(path: Path) -> str:
    text = path.read_text()
    assert "<svg" in text
    return text


def _label_count(svg: str, op: str) -> int:
    return svg.count(f">{op}</text>")


def test_plot_experiment_writes_every_picture(experiment, tmp_path):
    out = tmp_path / "pictures"
    paths = plot_experiment(experiment, out)
    # search.seed varies beside search.arch_lr: no picture against the seed (its spread shows at each arch_lr)
    stems = ["curves", "population_search.arch_lr", "cell_t0_cell", "alphas_t0_cell", "cell_t1_cell",
             "alphas_t1_cell"]
    assert sorted(p.name for p in paths) == sorted(f"{s}.{fmt}" for s in stems for fmt in ("png", "svg"))
    assert all(p.parent == out and p.stat().st_size > 0 for p in paths)
    assert not list(out.glob(".*"))  # no temporary files left behind
    _png(out / "curves.png", CURVES_SIZE)
    _png(out / "population_search.arch_lr.png", POPULATION_SIZE)
    trials = {row["trial_id"]: row for row in _trials(experiment)}
    for trial_id in TRIALS:
        _png(out / f"cell_{trial_id}_cell.png", NB201_CELL_SIZE)
        _png(out / f"alphas_{trial_id}_cell.png", alphas_size(3, 3))
        svg = _svg_texts(out / f"cell_{trial_id}_cell.svg")
        genotype = parse_genotype(trials[trial_id]["genotype"])
        for op in {op for _, _, op in cell_edges(genotype, "cell")}:
            assert op in svg, op
            if op != "none":  # one label per edge, plus the legend entry
                assert _label_count(svg, op) == genotype.count(op) + 1, op
        alphas_svg = _svg_texts(out / f"alphas_{trial_id}_cell.svg")
        for op in get_space("nb201").edge_ops("cell", 0):
            assert f">{op}</text>" in alphas_svg, op
    curves = _svg_texts(out / "curves.svg")
    assert "t0 (arch_lr=0.01, seed=0)" in curves and "t1 (arch_lr=0.003, seed=1)" in curves
    assert "chance (1/10 = 0.1)" in curves  # digits: 10 classes


def _trials(experiment: Path) -> list[dict]:
    from raynas.results import load_table

    return load_table(experiment, "trials").to_pylist()


def test_plot_experiment_one_trial_one_format_default_folder(experiment):
    paths = plot_experiment(experiment, formats=["PNG"], trials=["t1"])
    assert sorted(p.name for p in paths) == ["alphas_t1_cell.png", "cell_t1_cell.png", "curves.png"]
    assert all(p.parent == experiment / "plots" for p in paths)


def test_plot_experiment_refuses_bad_input(experiment, tmp_path):
    with pytest.raises(ResultsError, match=r"unknown trial id 't9'.*its trials: t0, t1"):
        plot_experiment(experiment, tmp_path, trials=["t0", "t9"])
    with pytest.raises(ResultsError, match="not a raynas experiment folder"):
        plot_experiment(tmp_path, tmp_path / "out")
    with pytest.raises(ConfigError, match="unknown image format 'jpg'; valid formats: png, svg"):
        plot_experiment(experiment, tmp_path, formats=["png", "jpg"])
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ResultsError, match="cannot create the picture folder"):
        plot_experiment(experiment, tmp_path / "a_file", trials=["t0"])
    assert not list(tmp_path.rglob("*.png"))


@pytest.mark.parametrize("cell", ["normal", "reduce"])
def test_darts_v2_cells_label_every_kept_edge(cell, tmp_path):
    genotype = get_space("darts").parse_genotype(DARTS_V2)
    fig = draw_cell(genotype, "darts", cell, title=f"DARTS_V2 {cell}")
    png, svg = save_figure(fig, tmp_path / f"v2_{cell}")
    _png(png, DARTS_CELL_SIZE)
    text = _svg_texts(svg)
    for op in {op for op, _ in genotype.cell(cell)}:
        assert _label_count(text, op) == genotype.count(op, cell) + 1, op
    assert _label_count(text, "none") == 0


def test_draw_cell_accepts_text_and_refuses_a_wrong_cell():
    nb201 = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
    fig = draw_cell(nb201, get_space("nb201"), "cell")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("nor_conv_3x3") == 1 and "none" not in texts  # none edges: dashed, named in the legend
    assert "none (no connection)" in [t.get_text() for t in fig.legends[0].get_texts()]
    with pytest.raises(GenotypeError, match="no cell 'normal'"):
        draw_cell(nb201, "darts", "normal")
    with pytest.raises(SpaceError, match="no cell 'reduce'"):
        draw_cell(nb201, "nb201", "reduce")


def test_darts_alphas_grid_has_a_panel_per_edge():
    space = get_space("darts")
    rows = []
    for epoch in (1, 2):
        for edge, (src, dst) in enumerate(space.edges("normal")):
            ops = space.edge_ops("normal", edge)
            for k, op in enumerate(ops):
                rows.append({"epoch": epoch, "cell": "normal", "edge": edge, "src": src, "dst": dst, "op": op,
                             "alpha": 0.0, "weight": (k + epoch + edge) / 100})
    fig = plot_alphas(rows, "normal", genotype=space.parse_genotype(DARTS_V2))
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == len(space.edges("normal"))
    assert sum(1 for ax in panels if ":" in ax.get_title()) == 8  # the kept edges name their op
    assert tuple(fig.get_size_inches()) == alphas_size(4, 5)  # the NB201 test checks a saved grid's pixels
    with pytest.raises(ResultsError, match="no architecture weights of cell 'reduce'"):
        plot_alphas(rows, "reduce")


def test_population_keys_and_categories(tmp_path):
    rows = [{"trial_id": f"t{i}", "metric": "val_loss", "mode": "min", "metric_value": value,
             "overrides_json": json.dumps(overrides)}
            for i, (value, overrides) in enumerate([
                (0.5, {"objectives.na.enabled": True, "search.seed": 0}),
                (0.4, {"objectives.na.enabled": False, "search.seed": 0}),
                (0.3, {"search.seed": 0}),
                (None, {"objectives.na.enabled": True, "search.seed": 1})])]  # no value: left out
    assert varying_keys(rows) == ["objectives.na.enabled"]
    fig = plot_population(rows, "objectives.na.enabled")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["false", "true", "(unset)"]
    assert "best: t2" in [t.get_text() for t in ax.get_legend().get_texts()]  # mode min
    (png,) = save_figure(fig, tmp_path / "population", ["png"])
    _png(png, POPULATION_SIZE)
    assert varying_keys(rows[:1]) == []


def test_importing_plots_imports_neither_torch_nor_ray():
    code = "import sys, raynas.plots; print(sorted({'torch', 'ray'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raynas.cli", "plot", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_cli_plot_prints_each_file_and_a_summary(experiment, tmp_path):
    out = tmp_path / "cli"
    proc = _cli(str(experiment), "--out", str(out), "--format", "png", "--trial", "t0")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == f"wrote 3 files to {out}"
    assert sorted(Path(line).name for line in lines[:-1]) == ["alphas_t0_cell.png", "cell_t0_cell.png", "curves.png"]
    assert all(Path(line).is_file() for line in lines[:-1])


@pytest.mark.parametrize("case", ["not an experiment",
                                  pytest.param("unknown trial", marks=pytest.mark.slow),  # default suite budget
                                  pytest.param("bad format", marks=pytest.mark.slow)])
def test_cli_plot_usage_errors_are_one_line_with_exit_2(case, experiment, tmp_path):
    args = {"not an experiment": [str(tmp_path)],
            "unknown trial": [str(experiment), "--trial", "nope", "--out", str(tmp_path)],
            "bad format": [str(experiment), "--format", "gif", "--out", str(tmp_path)]}[case]
    proc = _cli(*args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: ")
