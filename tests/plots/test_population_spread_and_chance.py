"""A population that varied only its seed is drawn as a spread, not against the seed; accuracy curves carry the
data's chance level. Real Parquet experiments written through the results writer, and `raynas plot` as a
subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from raynas.data.classes import class_count
from raynas.errors import ResultsError
from raynas.plots import SPREAD_KEY, plot_curves, plot_spread, population_figures
from raynas.plots.experiment import chance_level
from raynas.results import ResultsWriter, load_table, summarise_trial, rows_from_report

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "results"))
from results_trainable_helper import make_report  # noqa: E402


def _population(folder: Path, overrides: list[dict], data: str = "name: digits") -> Path:
    """Trials of make_report's three epochs, trial i with ``overrides[i]`` (its search.seed, default i), and a
    config.yaml with the given data section; ranked by derived_val_acc (rises with the seed)."""
    writer = ResultsWriter(folder, folder.name)
    for i, extra in enumerate(overrides):
        seed = extra.get("search.seed", i)
        rows = []
        for epoch in (1, 2, 3):
            report = make_report(epoch, seed)
            writer.write_rows(f"t{i}", rows_from_report(f"t{i}", report))
            rows.append({"epoch": epoch, **report})
        writer.write_trial(summarise_trial(f"t{i}", rows, "derived_val_acc", "max", experiment=folder.name,
                                           status="TERMINATED", seed=seed, method="darts", space="nb201",
                                           overrides=extra))
    writer.consolidate()
    (folder / "config.yaml").write_text(f"name: {folder.name}\ndata:\n  {data}\ntune:\n  metric: derived_val_acc\n"
                                        "  mode: max\n")
    return folder


def test_a_seed_only_population_is_a_spread_not_a_scatter_against_the_seed(tmp_path):
    folder = _population(tmp_path / "seeds", [{"search.seed": s} for s in range(6)])
    [figure] = population_figures(load_table(folder, "trials").to_pylist())
    assert figure.key == SPREAD_KEY and "not a better seed" in figure.caption
    ax = figure.figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["6 trials"]  # one column, not an axis of seeds
    assert ax.get_legend() is None  # no "best" star: no seed is singled out
    labels = sorted(t.get_text() for t in ax.texts if t.get_text().startswith("seed"))
    assert labels == [f"seed {s}" for s in range(6)]
    summary = next(t.get_text() for t in ax.texts if t.get_text().startswith("mean"))
    values = [0.1 + 0.1 * 3 + 0.02 * s for s in range(6)]  # make_report's final derived_val_acc
    assert f"mean {sum(values) / 6:.4g}" in summary and f"range {min(values):.4g} to {max(values):.4g}" in summary
    assert len(ax.patches) + len(ax.lines) > 2  # 6 trials: a box of the quartiles besides the mean's range line
    assert ax.get_ylabel() == "final derived_val_acc (higher is better)"


def test_seeds_beside_another_setting_draw_only_that_setting(tmp_path):
    grid = [{"search.seed": s, "search.arch_lr": lr} for lr in (0.01, 0.003) for s in (0, 1)]
    folder = _population(tmp_path / "grid", grid)
    figures = population_figures(load_table(folder, "trials").to_pylist())
    assert [f.key for f in figures] == ["search.arch_lr"]
    assert "points at one value differ by seed" in figures[0].caption
    assert population_figures(load_table(folder, "trials").to_pylist()[:1]) == []  # one trial: nothing to compare


def test_plot_spread_refuses_trials_without_values():
    with pytest.raises(ResultsError, match="no trial has a metric value"):
        plot_spread([{"trial_id": "t0", "metric_value": None}], ["search.seed"])


def test_cli_plot_writes_the_spread_and_chance_level(tmp_path):
    folder = _population(tmp_path / "seeds", [{"search.seed": 0}, {"search.seed": 1}],
                         data="name: synthetic\n  num_classes: 4")
    out = tmp_path / "pictures"
    proc = subprocess.run([sys.executable, "-m", "raynas.cli", "plot", str(folder), "--out", str(out),
                           "--format", "svg"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    names = sorted(Path(line).name for line in proc.stdout.splitlines()[:-1])
    assert "population_seeds.svg" in names and not [n for n in names if n.startswith("population_search")]
    spread = (out / "population_seeds.svg").read_text()
    assert "seed 0" in spread and "seed 1" in spread and "best:" not in spread
    curves = (out / "curves.svg").read_text()
    assert "chance (1/4 = 0.25)" in curves  # synthetic data of 4 classes, from config.yaml


def test_plot_curves_draws_chance_on_the_accuracy_axis_only():
    rows = [{"trial_id": "t0", **{k: v for k, v in make_report(epoch).items() if k != "alphas"}} for epoch in (1, 2)]
    fig = plot_curves(rows, chance=0.1)
    loss_ax, acc_ax = fig.axes
    flat = [line for line in acc_ax.lines if list(line.get_ydata()) == [0.1, 0.1]]
    assert len(flat) == 1 and not [line for line in loss_ax.lines if list(line.get_ydata()) == [0.1, 0.1]]
    assert "chance (1/10 = 0.1)" in [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    bare = plot_curves(rows)
    assert not [line for line in bare.axes[1].lines if list(line.get_ydata()) == [0.1, 0.1]]


def test_class_counts_come_from_the_config(tmp_path):
    assert class_count({"name": "digits"}) == 10 and class_count({}) == 10  # digits is the default
    assert class_count({"name": "cifar100"}) == 100 and class_count({"name": "imagenet16"}) == 120
    assert class_count({"name": "synthetic", "num_classes": 7}) == 7
    root = tmp_path / "images"
    for name in ("cat", "dog", "fox"):
        (root / "train" / name).mkdir(parents=True)
    (root / "test").mkdir()
    assert class_count({"name": "imagefolder", "root": str(root)}) == 3
    assert class_count({"name": "imagefolder", "root": str(tmp_path / "missing")}) is None
    assert class_count({"name": "unknown"}) is None and class_count(None) is None
    assert chance_level({"name": "cifar10"}) == pytest.approx(0.1) and chance_level(None) is None
    assert json.dumps(class_count({"name": "synthetic", "num_classes": "x"})) == "null"
