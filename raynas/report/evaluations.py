"""The evaluation sections of a report: every training from scratch (``raynas train``), a per-genotype
summary over seeds and test accuracy over epochs."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any, Optional, cast

from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from raynas.plots.curves import CHANCE_COLOR, chance_handle
from raynas.plots.style import new_figure
from raynas.report.document import Code, Folded, Report, Section, Table, Text, cell, count, picture, seconds
from raynas.report.folder import plan_text, plan_values, results_date
from raynas.results import EVALUATION_PLAN, load_table

EVALUATION_CURVE_SIZE = (11.0, 4.8)
"""Size in inches of the test-accuracy-over-epochs figure."""

_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS_UP_TO = 15  # epochs: with few points, a marker on each shows where the values are
_LEGEND_ROWS = 16


def evaluation_report(directory: Path) -> Report:
    """The report of the evaluation run in ``directory``: its plan and its evaluations."""
    rows = load_table(directory, "evaluations").to_pylist()
    text = plan_text(directory / EVALUATION_PLAN)
    name = next((row["experiment"] for row in rows), None) or plan_values(text).get("name") or directory.name
    spaces = list(dict.fromkeys(row["space"] for row in rows if row.get("space")))
    datasets = list(dict.fromkeys(row["dataset"] for row in rows if row.get("dataset")))
    title = f"{name}: {'/'.join(spaces) or 'unknown space'}, evaluation on {'/'.join(datasets) or 'unknown data'}"
    date = f"results of {results_date(directory)}" if rows else "no results yet"
    report = Report(title, f"raynas evaluation run {directory.name}; {date}")
    config = Section("Evaluation plan", "config")
    config.blocks.append(Folded(f"{EVALUATION_PLAN}: what this run trains ({len(text.splitlines())} lines; click to "
                                "show)", text) if text is not None else Text(f"No {EVALUATION_PLAN} in this folder."))
    report.sections = [*evaluation_sections(rows, standalone=True), _cells_section(rows), config]
    return report


CELL_DIAGRAMS = 6
"""At most this many genotypes of an evaluation run get cell diagrams (in the order they first appear)."""


def _cells_section(rows: list[dict[str, Any]]) -> Section:
    """Cell diagrams of the run's genotypes (G1, G2, ... as in the tables)."""
    from raynas.errors import RaynasError
    from raynas.plots import draw_cell
    from raynas.spaces import get_space, guess_space, parse_genotype

    section = Section("Genotypes", "evaluation-genotypes")
    groups = [genotype for genotype in _groups(rows) if genotype]
    if not groups:
        section.blocks.append(Text("No genotype in this run yet."))
        return section
    if len(groups) > CELL_DIAGRAMS:
        section.blocks.append(Text(f"The first {CELL_DIAGRAMS} of {len(groups)} genotypes."))
    space_of = {row.get("genotype"): row.get("space") for row in rows}
    for rank, text in enumerate(groups[:CELL_DIAGRAMS], 1):
        section.blocks.append(Text(f"G{rank}:"))
        section.blocks.append(Code(text))
        try:
            genotype = parse_genotype(text)
            space = get_space(space_of.get(text) or guess_space(text))
            for cell_name in type(genotype).CELLS:
                name = f"{space.name} cell" if cell_name == "cell" else f"{space.name} {cell_name} cell"
                fig = draw_cell(genotype, space, cell_name, title=f"G{rank}: {name}")
                section.blocks.append(picture(fig, f"cell_G{rank}_{cell_name}", f"G{rank}: {name}"))
        except RaynasError as err:
            section.blocks.append(Text(f"Its cells cannot be drawn: {err}"))
    return section


def _groups(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Genotype text -> its evaluations, in the order the genotypes first appear."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get("genotype") or "", []).append(row)
    return groups


def _final(row: dict[str, Any]) -> Optional[float]:
    """The final test accuracy of a finished evaluation; None for a running or failed one."""
    value = row.get("test_acc")
    if row["status"] != "TERMINATED" or value is None or not math.isfinite(value):
        return None
    return float(value)


def _mean_std(values: list[float]) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def evaluation_sections(rows: list[dict[str, Any]], *, standalone: bool) -> list[Section]:
    """Sections for the evaluations-table ``rows``: a table of every evaluation, a per-genotype summary and
    the test accuracy over epochs. ``standalone``: the report of an evaluation run itself (else the
    evaluations of a search experiment's genotypes)."""
    table = Section("Evaluations" if standalone else "Evaluation results", "evaluations")
    if not rows:
        table.blocks.append(Text("No evaluation has finished or reported yet in this run." if standalone else
                                 "No evaluation yet: train the genotypes from scratch with raynas train "
                                 "(its runs go under this experiment's evaluations/ folder)."))
        return [table]
    groups = _groups(rows)
    keys = {genotype: f"G{i}" for i, genotype in enumerate(groups, 1)}
    runs = sorted({row["experiment"] for row in rows})
    table.blocks.append(Text(f"{len(rows)} training{'s' if len(rows) != 1 else ''} from scratch of {len(groups)} "
                             f"genotype{'s' if len(groups) != 1 else ''} in {len(runs)} run"
                             f"{'s' if len(runs) != 1 else ''} ({', '.join(runs)}); the genotype column names each "
                             "genotype as the per-genotype summary below does."))
    table.blocks.append(Table(
        ("run", "trial id", "source trial", "genotype", "seed", "params", "MACs", "final test acc",
         "best test acc (epoch)", "epochs done", "wall time", "status", "error"),
        tuple((row["experiment"], row["trial_id"], cell(row.get("source_trial")), keys[row.get("genotype") or ""],
               cell(row.get("seed")), count(row.get("params")), count(row.get("macs")), cell(row.get("test_acc")),
               f"{cell(row.get('best_test_acc'))} ({cell(row.get('best_epoch'))})"
               if row.get("best_test_acc") is not None else "",
               f"{cell(row.get('epochs_done'))}/{cell(row.get('epochs'))}", seconds(row.get("wall_time_s")),
               row["status"], cell(row.get("error"))) for row in rows)))

    summary = Section("Per-genotype summary", "evaluation-summary")
    summary.blocks.append(Text("Final test accuracy of the finished evaluations of each genotype over its seeds "
                               "(mean ± sample standard deviation; n: finished evaluations)."))
    ranked = sorted(groups.items(), key=lambda item: -_mean([_final(r) for r in item[1]], default=-math.inf))
    summary.blocks.append(Table(
        ("genotype", "space", "n", "final test acc", "best test acc", "params", "source trials", "genotype text"),
        tuple((keys[genotype], cell(group[0].get("space")), f"{sum(_final(r) is not None for r in group)}/{len(group)}",
               _mean_std([v for v in map(_final, group) if v is not None]),
               _mean_std([r["best_test_acc"] for r in group if _final(r) is not None and r.get("best_test_acc")
                          is not None]),
               count(group[0].get("params")),
               ", ".join(dict.fromkeys(r["source_trial"] for r in group if r.get("source_trial"))),
               genotype) for genotype, group in ranked),
        code=frozenset({"genotype text"})))

    curves = Section("Test accuracy over epochs", "evaluation-curves")
    if any(row.get("epoch_test_acc") for row in rows):
        chance = _chance(rows)
        curves.blocks.append(picture(plot_evaluation_curves(rows, keys, chance=chance), "evaluations_test_acc",
                                     "Test accuracy after each epoch, a line per evaluation, a colour per genotype"
                                     + (f"; the grey line is chance level, {chance:.3g} (1 / classes)." if chance
                                        else ".")))
    else:
        curves.blocks.append(Text("No evaluation has finished an epoch yet: no curves."))
    return [table, summary, curves]


def _mean(values: list[Optional[float]], default: float) -> float:
    finite = [v for v in values if v is not None]
    return statistics.fmean(finite) if finite else default


def _chance(rows: list[dict[str, Any]]) -> Optional[float]:
    """Chance level of the evaluations' data (1 / classes; their config's data section, else the data set's
    name); None when unknown or when the rows trained on data of different class counts."""
    from raynas.plots.experiment import chance_level

    levels = set()
    for row in rows:
        try:
            config = json.loads(row.get("config_json") or "{}")
        except json.JSONDecodeError:
            config = {}
        data = config.get("data") if isinstance(config, dict) else None
        levels.add(chance_level(data if isinstance(data, dict) else {"name": row.get("dataset")}))
    return levels.pop() if len(levels) == 1 else None


def plot_evaluation_curves(rows: list[dict[str, Any]], keys: dict[str, str], *,
                           chance: Optional[float] = None) -> Figure:
    """Test accuracy over epochs, one line per evaluation row (its ``epoch_test_acc`` list), coloured by
    genotype (``keys``: genotype text -> short name), with ``chance`` (1 / classes) as a grey line; the
    figure measures :data:`EVALUATION_CURVE_SIZE`."""
    # the qualitative maps are ListedColormaps; their colors a list of RGB tuples
    palette = cast(list, cast(ListedColormap, colormaps["tab10" if len(keys) <= 10 else "tab20"]).colors)
    colors = {genotype: palette[i % len(palette)] for i, genotype in enumerate(keys)}
    seen: dict[str, int] = {}
    fig = new_figure(*EVALUATION_CURVE_SIZE, constrained=True)
    ax = fig.add_subplot()
    longest = max(len(row.get("epoch_test_acc") or []) for row in rows)
    for row in rows:
        values = [math.nan if v is None else v for v in row.get("epoch_test_acc") or []]
        if not values:
            continue
        genotype = row.get("genotype") or ""
        k = seen.get(genotype, 0)
        seen[genotype] = k + 1
        label = f"{row['trial_id']} ({keys[genotype]}, seed {cell(row.get('seed'))})"
        ax.plot(range(1, len(values) + 1), values, color=colors[genotype], ls=_LINESTYLES[k % len(_LINESTYLES)],
                marker="o" if longest <= _MARKERS_UP_TO else None, markersize=3, lw=1.5, label=label)
    if chance is not None:
        ax.axhline(chance, color=CHANCE_COLOR, ls="-.", lw=1.2, zorder=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3, lw=0.5)
    handles, labels = ax.get_legend_handles_labels()
    if chance is not None:
        handles.append(chance_handle(chance))
        labels.append(handles[-1].get_label())
    fig.legend(handles, labels, title="evaluation", loc="outside right upper", fontsize=8, title_fontsize=9,
               ncol=math.ceil(len(handles) / _LEGEND_ROWS), frameon=False)
    fig.suptitle("test accuracy over epochs (training from scratch)", fontsize=12)
    return fig
