"""The sections of a search experiment's report: summary, trials, best genotypes, curves, architecture
weights, population, selection decisions and, last and folded, the resolved config (the evaluations come
from :mod:`raynas.report.evaluations`, the summary from :mod:`raynas.report.summary`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional

import pyarrow as pa
import pyarrow.compute as pc

from raynas.errors import RaynasError
from raynas.plots import draw_cell, has_ground_truth, plot_alphas, plot_curves, plot_ground_truth, varying_keys
from raynas.plots.experiment import chance_level, experiment_data, space_of
from raynas.plots.population import population_figures
from raynas.report.document import Code, Folded, Report, Section, Table, Text, cell, picture, seconds
from raynas.report.evaluations import evaluation_sections
from raynas.report.folder import SEARCH_PLAN, plan_text, plan_values, results_date
from raynas.report.summary import Ranking, genotype_shortfall, summary_section
from raynas.results import leaderboard, load_table, ranking_of
from raynas.spaces import parse_genotype

_LABEL_CHARS = 40
_UNSET = "(unset)"


def search_report(directory: Path, top: int) -> Report:
    """The report of the search experiment in ``directory``, showing the ``top`` best distinct genotypes."""
    config_text = plan_text(directory / SEARCH_PLAN)
    plan = plan_values(config_text)
    ranking, trials = ranked_trials(directory)
    epochs = load_table(directory, "epochs")
    evaluations = load_table(directory, "evaluations").to_pylist()

    name = plan.get("name") or next((row["experiment"] for row in trials), None) or directory.name
    spaces = _distinct([plan.get("space"), *(row.get("space") for row in trials)])
    methods = _distinct([plan.get("method"), *(row.get("method") for row in trials)])
    date = (f"results of {results_date(directory, epochs['reported_at'].to_pylist())}" if trials or epochs.num_rows
            else "no results yet")
    title = f"{name}: {'/'.join(spaces) or 'unknown space'}, {'/'.join(methods) or 'unknown method'}"
    report = Report(title, f"raynas search experiment {directory.name}; {date}")

    config = Section("Resolved config", "config")
    if config_text is None:
        config.blocks.append(Text(f"No {SEARCH_PLAN} in this folder."))
    else:
        lines = len(config_text.splitlines())
        config.blocks.append(Folded(f"{SEARCH_PLAN}: the config every trial started from ({lines} lines; click to "
                                    "show)", config_text))
    report.sections += [summary_section(trials, ranking, evaluations, top), _trials_section(trials, ranking),
                        _genotypes_section(trials, ranking, top),
                        _curves_section(trials, epochs, name, chance_level(experiment_data(directory, trials))),
                        _alphas_section(directory, trials), _population_section(trials),
                        _decisions_section(directory)]
    report.sections += evaluation_sections(evaluations, standalone=False)
    report.sections.append(config)
    return report


def ranked_trials(directory: Path) -> tuple[Ranking, list[dict[str, Any]]]:
    """The search's ranking and its trials-table rows, best first, each with the leaderboard's view of it:
    ``metric``/``mode``/``metric_value`` (the final value) and ``genotype`` as ranked, ``best_value`` and
    ``best_value_epoch`` (the metric's best value over its epochs); trials the leaderboard lacks come last."""
    last = leaderboard(directory)
    ranking = Ranking(**{key: value for key, value in ranking_of(last).items() if key != "scope"})
    best_column = f"best_{ranking.metric}"
    best = {row["trial_id"]: row for row in
            leaderboard(directory, ranking.metric, ranking.mode, scope="best").to_pylist()}
    by_id = {row["trial_id"]: row for row in load_table(directory, "trials").to_pylist()}
    trials = []
    for row in last.to_pylist():
        merged = {**by_id.get(row["trial_id"], {}), **row, "metric": ranking.metric, "mode": ranking.mode,
                  "metric_value": row[ranking.column]}
        at_best = best.get(row["trial_id"], {})
        merged.update(best_value=at_best.get(best_column), best_value_epoch=at_best.get("best_epoch"))
        trials.append(merged)
    shown = {row["trial_id"] for row in trials}
    return ranking, trials + [row for trial_id, row in by_id.items() if trial_id not in shown]


def _distinct(values: list[Any]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values if v))


def _overrides(row: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's overrides (its ``overrides_json``); ``{}`` when absent or unreadable."""
    try:
        value = json.loads(row.get("overrides_json") or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _varied(trials: list[dict[str, Any]]) -> list[str]:
    """The override keys whose value differs between any two trials, sorted."""
    overrides = [_overrides(row) for row in trials]
    keys = sorted({key for values in overrides for key in values})
    return [key for key in keys
            if len({json.dumps(values.get(key, _UNSET), sort_keys=True) for values in overrides}) > 1]


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _trials_section(trials: list[dict[str, Any]], ranking: Ranking) -> Section:
    section = Section("Trials", "trials")
    if not trials:
        section.blocks.append(Text("No trial has reported yet: the trials table is empty."))
        return section
    metric = ranking.metric
    keys = _varied(trials)
    statuses = {status: sum(1 for row in trials if row["status"] == status) for status in
                dict.fromkeys(row["status"] for row in trials)}
    section.blocks.append(Text(f"{len(trials)} trial{'s' if len(trials) != 1 else ''} ("
                               + ", ".join(f"{n} {status}" for status, n in statuses.items())
                               + f"), ranked by {ranking.describe()}; \"best {metric} (epoch)\" is its best value over "
                               "the trial's epochs, whose genotype the trial did not necessarily return."
                               + (f" Varied overrides: {', '.join(keys)}." if keys else "")))
    truth = _ground_truth_columns(trials)
    extra_acc = metric != "derived_val_acc"  # else the best column already shows it
    # columns that would repeat what every row or another column says are left out: the page stays narrow
    show_seed = "search.seed" not in keys
    show_method = len({row.get("method") for row in trials}) > 1
    show_error = any(row.get("error") for row in trials)
    columns = ("rank", "trial id", "status", *(("seed",) if show_seed else ()), *(("method",) if show_method else ()),
               f"final {metric} ({ranking.mode})", f"best {metric} (epoch)", *truth.values(),
               *(("best derived val acc",) if extra_acc else ()), "num skip", "epochs done", "wall time", *keys,
               "genotype", *(("error",) if show_error else ()))
    rows = []
    for rank, row in enumerate(trials, 1):
        overrides = _overrides(row)
        best = (f"{cell(row.get('best_value'))} ({row['best_value_epoch']})"
                if row.get("best_value") is not None else "")
        rows.append((str(rank), row["trial_id"], row["status"], *((cell(row.get("seed")),) if show_seed else ()),
                     *((cell(row.get("method")),) if show_method else ()), cell(row.get("metric_value")), best,
                     *(cell(row.get(key), 1 if "percentile" in key else 4) for key in truth),
                     *((cell(row.get("best_derived_val_acc")),) if extra_acc else ()), cell(row.get("num_skip")),
                     cell(row.get("epochs_done")), seconds(row.get("wall_time_s")),
                     *(_value_text(overrides[key]) if key in overrides else "" for key in keys),
                     cell(row.get("genotype")), *((cell(row.get("error")),) if show_error else ())))
    section.blocks.append(Table(columns, tuple(rows), code=frozenset({"genotype"})))
    return section


#: trials-table column -> report column of the final genotype's ground truth (its regret, the best cell's
#: accuracy minus it, is left out: the ground-truth plot shows the best cell)
GROUND_TRUTH_HEADINGS = {"final_gt_test_acc": "gt test acc", "final_gt_percentile": "gt percentile"}


def _ground_truth_columns(trials: list[dict[str, Any]]) -> dict[str, str]:
    """:data:`GROUND_TRUTH_HEADINGS` when a trial was scored against the benchmark, else none."""
    scored = any(row.get("final_gt_test_acc") is not None for row in trials)
    return dict(GROUND_TRUTH_HEADINGS) if scored else {}


def _genotypes_section(trials: list[dict[str, Any]], ranking: Ranking, top: int) -> Section:
    section = Section(f"Best genotypes (top {top})", "genotypes")
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in trials:  # best first
        if row.get("genotype"):
            groups.setdefault(row["genotype"], []).append(row)
    shortfall = genotype_shortfall(trials, len(groups), top)
    if not groups:
        section.blocks.append(Text(f"No genotype to show: {shortfall}" if shortfall else
                                   "No trial has derived a genotype yet."))
        return section
    metric = ranking.metric
    shown = min(top, len(groups))
    section.blocks.append(Text(f"{len(groups)} distinct genotype{'s' if len(groups) != 1 else ''} among the trials; "
                               f"the best {shown} by the final {metric} of their best trial."
                               + (f" {shown} shown, not {top}: {shortfall}." if shortfall else "")))
    for rank, (text, rows) in enumerate(list(groups.items())[:top], 1):
        best = rows[0]
        others = [row["trial_id"] for row in rows[1:]]
        facts = [f"{label} {cell(best.get(key))}" for label, key in
                 ((f"final {metric}", "metric_value"),
                  *((("ground-truth test acc", "final_gt_test_acc"),) if metric != "gt_test_acc" else ()),
                  ("num skip", "num_skip"), ("epoch", "epochs_done"))
                 if best.get(key) is not None]
        if best.get("final_gt_percentile") is not None:
            facts.append(f"percentile {cell(best['final_gt_percentile'], 1)} among the benchmark's cells")
        section.blocks.append(Text(f"#{rank}: trial {best['trial_id']}"
                                   + (f" (also {', '.join(others)})" if others else "")
                                   + "".join(f", {fact}" for fact in facts) + "."))
        section.blocks.append(Code(text))
        try:
            genotype = parse_genotype(text)
            space = space_of(best, genotype)
            for cell_name in type(genotype).CELLS:
                name = f"{space.name} cell" if cell_name == "cell" else f"{space.name} {cell_name} cell"
                fig = draw_cell(genotype, space, cell_name, title=f"#{rank} trial {best['trial_id']}: {name}")
                section.blocks.append(picture(fig, f"cell_{rank}_{best['trial_id']}_{cell_name}",
                                              f"#{rank} (trial {best['trial_id']}): {name}"))
        except RaynasError as err:
            section.blocks.append(Text(f"Its cells cannot be drawn: {err}"))
    return section


def _labels(trials: list[dict[str, Any]]) -> dict[str, str]:
    """Trial id -> legend text: the id and its values of the keys the population varied."""
    keys = varying_keys(trials)
    labels = {}
    for row in trials:
        overrides = _overrides(row)
        values = ", ".join(f"{key.rsplit('.', 1)[-1]}={_value_text(overrides[key])}" for key in keys
                           if key in overrides)
        label = f"{row['trial_id']} ({values})" if values else row["trial_id"]
        labels[row["trial_id"]] = label if len(label) <= _LABEL_CHARS else label[:_LABEL_CHARS - 3] + "..."
    return labels


def _curves_section(trials: list[dict[str, Any]], epochs: pa.Table, name: str, chance: Optional[float]) -> Section:
    section = Section("Curves", "curves")
    if not epochs.num_rows:
        section.blocks.append(Text("No epoch has been reported yet: no curves."))
        return section
    rows = epochs.to_pylist()
    fig = plot_curves(rows, labels=_labels(trials), title=f"{name}: losses and accuracies", chance=chance)
    section.blocks.append(picture(fig, "curves", "Losses and accuracies over epochs, a colour per trial "
                                                 "(solid: train, dashed: supernet validation, dotted: derived)"
                                  + (f"; the grey line is chance level, {chance:.3g} (1 / classes)." if chance
                                     else ".")))
    if has_ground_truth(rows):
        fig = plot_ground_truth(rows, labels=_labels(trials), title=f"{name}: ground truth of the derived cell")
        section.blocks.append(picture(fig, "ground_truth", "Ground truth of each epoch's derived cell: its test "
                                                           "accuracy under the benchmark protocol (dashed: the best "
                                                           "cell) and its percentile among the benchmark's cells."))
    return section


def _alphas_section(directory: Path, trials: list[dict[str, Any]]) -> Section:
    section = Section("Architecture weights of the best trial", "alphas")
    alphas = load_table(directory, "alphas")
    reported = set(alphas["trial_id"].unique().to_pylist())
    best = next((row for row in trials if row["trial_id"] in reported), None)
    if best is None:
        section.blocks.append(Text("No architecture weights have been reported yet."))
        return section
    trial_id = best["trial_id"]
    rows = alphas.filter(pc.equal(alphas["trial_id"], trial_id)).to_pylist()
    try:
        genotype = parse_genotype(best["genotype"]) if best.get("genotype") else None
    except RaynasError:
        genotype = None
    space = space_of(best, genotype)
    kept_cells = type(genotype).CELLS if genotype is not None else ()
    cells = list(dict.fromkeys(row["cell"] for row in rows if row["weight"] is not None))
    if trial_id != trials[0]["trial_id"]:
        section.blocks.append(Text(f"Trial {trials[0]['trial_id']} reported no weights; showing trial {trial_id}."))
    for cell_name in sorted(cells, key=lambda c: (c not in space.cell_types, c)):
        where = "" if len(space.cell_types) == 1 else f", {cell_name} cell"
        fig = plot_alphas(rows, cell_name, genotype=genotype if cell_name in kept_cells else None, space=space,
                          title=f"trial {trial_id}: architecture weights{where}")
        section.blocks.append(picture(fig, f"alphas_{trial_id}_{cell_name}",
                                      f"Trial {trial_id}: softmax architecture weight of each op per edge over "
                                      f"epochs{where}."))
    if not cells:
        section.blocks.append(Text(f"Trial {trial_id} reported no architecture weights."))
    return section


def _population_section(trials: list[dict[str, Any]]) -> Section:
    section = Section("Population", "population")
    figures = population_figures(trials)
    if not figures:
        section.blocks.append(Text("The population varied no override (or fewer than 2 trials have a metric "
                                   "value): nothing to compare."))
        return section
    for figure in figures:
        section.blocks.append(picture(figure.figure, f"population_{figure.key}", figure.caption))
    return section


def _decisions_section(directory: Path) -> Section:
    section = Section("Selection decisions", "decisions")
    rows = load_table(directory, "decisions").to_pylist()
    if not rows:
        section.blocks.append(Text("No selection decisions: the selection had no stage (e.g. magnitude)."))
        return section
    per_trial: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        per_trial.setdefault(row["trial_id"], []).append(row)
    section.blocks.append(Text(f"{len(rows)} candidate evaluations in {len(per_trial)} "
                               f"trial{'s' if len(per_trial) != 1 else ''}."))
    table_rows = []
    for trial_id, trial_rows in per_trial.items():
        decided = [row for row in trial_rows if row.get("decision")]
        table_rows.append((trial_id, str(len(trial_rows)), str(len({row["round"] for row in trial_rows})),
                           str(sum(1 for row in decided if row["decision"] == "keep")),
                           str(sum(1 for row in decided if row["decision"] == "drop")),
                           cell(max(row["epoch"] for row in trial_rows))))
    section.blocks.append(Table(("trial id", "candidates evaluated", "rounds", "ops kept", "edges dropped",
                                 "last decision epoch"), tuple(table_rows)))
    return section

