"""Every picture of an experiment folder, from its result tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import pyarrow as pa
import pyarrow.compute as pc

from raynas.errors import GenotypeError, RaynasError, ResultsError
from raynas.plots.alphas import plot_alphas
from raynas.plots.cells import draw_cell
from raynas.plots.curves import plot_curves
from raynas.plots.ground_truth import has_ground_truth, plot_ground_truth
from raynas.plots.population import population_figures, trial_overrides, varying_keys
from raynas.plots.style import FORMATS, check_formats, safe_file_part, save_figure
from raynas.results import load_table
from raynas.spaces import Genotype, SearchSpace, get_space, guess_space, parse_genotype

_LABEL_CHARS = 40


def space_of(row: Mapping[str, Any], genotype: Optional[Genotype]) -> SearchSpace:
    """The trial's search space: its ``space`` column, its config's, else the space its genotype belongs to
    (:func:`raynas.spaces.guess_space`)."""
    names = [row.get("space")]
    if row.get("config_json"):
        try:
            config = json.loads(row["config_json"])
            names.append(config.get("space") if isinstance(config, dict) else None)
        except json.JSONDecodeError:
            pass
    for name in names:
        if name:
            try:
                return get_space(name)
            except RaynasError:  # a space this raynas does not know: draw by the genotype's kind
                break
    return get_space(guess_space(genotype))


def experiment_data(experiment_dir: Path, rows: Iterable[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """The ``data`` section of an experiment's config: from its ``config.yaml``, else a trial's ``config_json``."""
    import yaml

    try:
        config = yaml.safe_load((Path(experiment_dir) / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        config = None
    if isinstance(config, dict) and isinstance(config.get("data"), dict):
        return config["data"]
    for row in rows:
        try:
            config = json.loads(row.get("config_json") or "{}")
        except json.JSONDecodeError:
            continue
        if isinstance(config, dict) and isinstance(config.get("data"), dict):
            return config["data"]
    return None


def chance_level(data: Optional[Mapping[str, Any]]) -> Optional[float]:
    """The accuracy of guessing, 1 / the classes of ``data`` (a config's ``data`` section); None if unknown."""
    from raynas.data.classes import class_count

    classes = class_count(data)
    return 1.0 / classes if classes else None


def _genotype_of(row: Mapping[str, Any]) -> Optional[Genotype]:
    if not row.get("genotype"):
        return None
    try:
        return parse_genotype(row["genotype"])
    except GenotypeError as err:
        raise ResultsError(f"trial {row['trial_id']}: its genotype cannot be drawn: {err}") from None


def _select(rows: list[dict[str, Any]], trials: Optional[Iterable[str]], experiment_dir: Path) -> list[dict[str, Any]]:
    if trials is None:
        return rows
    wanted = list(dict.fromkeys(trials))
    known = [row["trial_id"] for row in rows]
    unknown = [t for t in wanted if t not in known]
    if unknown:
        shown = ", ".join(known[:10]) + (f", ... ({len(known)} in all)" if len(known) > 10 else "")
        raise ResultsError(f"unknown trial id {unknown[0]!r} in {experiment_dir}; its trials: {shown or 'none'}")
    return [row for row in rows if row["trial_id"] in wanted]


def _labels(rows: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, str]:
    """Trial id -> legend text: the id and the trial's values of the keys the population varied."""
    labels = {}
    for row in rows:
        overrides = trial_overrides(row)
        values = ", ".join(f"{key.rsplit('.', 1)[-1]}={overrides[key]}" for key in keys if key in overrides)
        label = f"{row['trial_id']} ({values})" if values else row["trial_id"]
        labels[row["trial_id"]] = label if len(label) <= _LABEL_CHARS else label[:_LABEL_CHARS - 3] + "..."
    return labels


def plot_experiment(experiment_dir: Union[str, Path], out_dir: Union[str, Path, None] = None,
                    formats: Iterable[str] = FORMATS, trials: Optional[Iterable[str]] = None) -> list[Path]:
    """Write every picture of an experiment into ``out_dir`` (default ``<experiment_dir>/plots``).

    Pictures, each in every format of ``formats`` (png, svg):

    - ``curves``: losses and accuracies over epochs, a line per trial, and the data's chance level;
    - ``ground_truth``: each epoch's derived cell's ground-truth test accuracy and percentile, a line per
      trial (only for searches scored against the benchmark, ``benchmark.score``);
    - ``population_<key>``: the ranking metric against each override key the trials varied (2+ trials), seeds
      aside; ``population_seeds`` instead when only seeds varied: the metric's spread over them;
    - ``cell_<trial>_<cell>``: a diagram of each cell of each trial's final genotype;
    - ``alphas_<trial>_<cell>``: each trial's architecture weights per edge over epochs.

    ``trials`` limits all of them to these trial ids (an unknown id is a :class:`ResultsError`, as is a
    folder that is not an experiment). Returns the written paths; none when no trial has reported yet.
    """
    experiment_dir = Path(experiment_dir)
    formats = check_formats(formats)
    rows = _select(load_table(experiment_dir, "trials").to_pylist(), trials, experiment_dir)
    if not rows:
        return []
    out = Path(out_dir) if out_dir is not None else experiment_dir / "plots"
    ids = [row["trial_id"] for row in rows]
    paths: list[Path] = []

    keys = varying_keys(rows)
    epochs = load_table(experiment_dir, "epochs")
    epochs = epochs.filter(pc.is_in(epochs["trial_id"], value_set=pa.array(ids, pa.string())))
    epoch_rows = epochs.to_pylist()
    if epoch_rows:
        paths += save_figure(plot_curves(epoch_rows, labels=_labels(rows, keys),
                                         title=f"{experiment_dir.name}: losses and accuracies",
                                         chance=chance_level(experiment_data(experiment_dir, rows))),
                             out / "curves", formats)
    if has_ground_truth(epoch_rows):
        paths += save_figure(plot_ground_truth(epoch_rows, labels=_labels(rows, keys),
                                               title=f"{experiment_dir.name}: ground truth of the derived cell"),
                             out / "ground_truth", formats)
    for population in population_figures(rows):
        paths += save_figure(population.figure, out / f"population_{safe_file_part(population.key)}", formats)

    alphas = load_table(experiment_dir, "alphas")
    for row in rows:
        trial_id = row["trial_id"]
        genotype = _genotype_of(row)
        space = space_of(row, genotype)
        if genotype is not None:
            for cell in type(genotype).CELLS:
                name = f"{space.name} cell" if len(space.cell_types) == 1 else f"{space.name} {cell} cell"
                title = f"trial {trial_id}: {name}, final genotype (epoch {row.get('epochs_done')})"
                paths += save_figure(draw_cell(genotype, space, cell, title=title),
                                     out / f"cell_{trial_id}_{safe_file_part(cell)}", formats)
        trial_alphas = alphas.filter(pc.equal(alphas["trial_id"], trial_id)).to_pylist()
        cells = list(dict.fromkeys(r["cell"] for r in trial_alphas if r["weight"] is not None))
        for cell in sorted(cells, key=lambda c: (c not in space.cell_types, c)):
            kept = genotype if cell in _cells(genotype) else None
            figure = plot_alphas(trial_alphas, cell, genotype=kept, space=space,
                                 title=f"trial {trial_id}: architecture weights"
                                       + ("" if len(space.cell_types) == 1 else f", {cell} cell"))
            paths += save_figure(figure, out / f"alphas_{trial_id}_{safe_file_part(cell)}", formats)
    return paths


def _cells(genotype: Optional[Genotype]) -> tuple[str, ...]:
    return () if genotype is None else type(genotype).CELLS
