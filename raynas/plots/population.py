"""Populations: a trial's ranking metric against each meta-hyperparameter the population varied, or, for a
population that varied only seeds, the spread of the metric over the seeds."""

from __future__ import annotations

import json
import math
import numbers
import statistics
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from raynas.errors import ResultsError
from raynas.plots.style import new_figure

POPULATION_SIZE = (7.0, 4.5)
"""Size in inches of a population figure."""

UNSET = "(unset)"
"""The category of a trial whose overrides do not name the key."""

_LOG_RATIO = 20.0  # a positive numeric key spanning this factor or more gets a log axis


def trial_overrides(row: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides of a trials-table row (its ``overrides_json``), ``{}`` when there are none."""
    text = row.get("overrides_json")
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ResultsError(f"trial {row.get('trial_id')}: overrides_json is not JSON: {text[:60]!r}") from None
    if not isinstance(value, dict):
        raise ResultsError(f"trial {row.get('trial_id')}: overrides_json is not a JSON object: {text[:60]!r}")
    return value


def _ranked(trials: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The trials that have a finite metric value."""
    return [row for row in trials if row.get("metric_value") is not None and math.isfinite(row["metric_value"])]


def varying_keys(trials: Iterable[Mapping[str, Any]]) -> list[str]:
    """The override keys whose value differs between the trials that have a metric value, sorted."""
    ranked = _ranked(trials)
    if len(ranked) < 2:
        return []
    overrides = [trial_overrides(row) for row in ranked]
    keys = sorted({key for values in overrides for key in values})
    return [key for key in keys
            if len({json.dumps(values.get(key, UNSET), sort_keys=True) for values in overrides}) > 1]


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _category(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def plot_population(trials: Iterable[Mapping[str, Any]], key: str, *, title: Optional[str] = None) -> Figure:
    """The ranking metric at each trial's last epoch (``metric_value``) against its value of override ``key``.

    ``trials`` are trials-table rows; those without a metric value are left out. A key whose values are
    all numbers gets a numeric axis (logarithmic when positive and spanning a factor of 20 or more); any
    other key one position per category (trials without the key: :data:`UNSET`), points of one category
    spread sideways. The best trial (by the rows' ``mode``) is a star. The figure measures
    :data:`POPULATION_SIZE` inches.
    """
    ranked = _ranked(trials)
    if not ranked:
        raise ResultsError("no trial has a metric value to plot")
    values = [trial_overrides(row).get(key, UNSET) for row in ranked]
    scores = [float(row["metric_value"]) for row in ranked]
    metric = next((row["metric"] for row in ranked if row.get("metric")), "metric")
    mode = next((row["mode"] for row in ranked if row.get("mode")), "max")
    fig = new_figure(*POPULATION_SIZE, constrained=True)
    ax = fig.add_subplot()
    if all(_is_number(v) for v in values):
        xs = [float(v) for v in values]
        if min(xs) > 0 and max(xs) / min(xs) >= _LOG_RATIO:
            ax.set_xscale("log")
        elif all(isinstance(v, numbers.Integral) for v in values):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        categories = sorted({_category(v) for v in values}, key=lambda c: (c == UNSET, c))
        index = {c: i for i, c in enumerate(categories)}
        seen: dict[str, int] = {}
        counts = {c: sum(1 for v in values if _category(v) == c) for c in categories}
        xs = []
        for v in values:
            c = _category(v)
            k, n = seen.get(c, 0), counts[c]
            seen[c] = k + 1
            xs.append(index[c] + (0.3 * (k / (n - 1) - 0.5) if n > 1 else 0.0))
        ax.set_xticks(range(len(categories)), categories, rotation=30 if len(categories) > 4 else 0,
                      ha="right" if len(categories) > 4 else "center")
        ax.set_xlim(-0.6, len(categories) - 0.4)
    best = max(range(len(scores)), key=lambda i: scores[i] if mode == "max" else -scores[i])
    ax.scatter(xs, scores, s=36, color="#1f77b4", edgecolor="white", linewidth=0.6, zorder=3)
    ax.scatter([xs[best]], [scores[best]], s=180, marker="*", color="#d62728", edgecolor="white", linewidth=0.6,
               zorder=4)
    ax.legend(handles=[Line2D([], [], ls="", marker="o", color="#1f77b4", label="trial"),
                       Line2D([], [], ls="", marker="*", markersize=12, color="#d62728",
                              label=f"best: {ranked[best]['trial_id']}")], fontsize=8, loc="best")
    ax.set_xlabel(key)
    ax.set_ylabel(f"final {metric} ({'higher' if mode == 'max' else 'lower'} is better)")
    ax.grid(alpha=0.3, lw=0.5)
    ax.set_title(title or f"final {metric} vs {key} ({len(ranked)} trials)", fontsize=11)
    return fig


SPREAD_KEY = "seeds"
"""The key (file ``population_seeds``) of the spread plot of a population that varied only seeds."""

_STRIP_LABELS_UP_TO = 12  # points: with few, each is labelled with its seed
_BOX_FROM = 5  # points: a box (quartiles) needs a few to mean anything


def is_seed_key(key: str) -> bool:
    """Whether override ``key`` is a seed (``search.seed``, ``data.seed``): a repetition, not a setting."""
    return key == "seed" or key.endswith(".seed")


@dataclass(frozen=True)
class PopulationFigure:
    """One population picture: ``key`` names it (``population_<key>``), ``caption`` says what it shows."""

    key: str
    figure: Figure
    caption: str


def population_figures(trials: Iterable[Mapping[str, Any]]) -> list[PopulationFigure]:
    """The population pictures of ``trials`` (trials-table rows): the ranking metric against each varied
    override that is not a seed (:func:`plot_population`); when only seeds varied, one spread plot over them
    (:func:`plot_spread`, key :data:`SPREAD_KEY`): a scatter against the seed would read as one seed being
    better. Seeds varied beside other keys show as the spread of points at each of their values. None when
    nothing varied or fewer than 2 trials have a value."""
    trials = list(trials)
    keys = varying_keys(trials)
    settings = [key for key in keys if not is_seed_key(key)]
    if settings:
        return [PopulationFigure(key, plot_population(trials, key),
                                 f"The ranking metric of each trial against {key} (star: the best trial)"
                                 + ("; points at one value differ by seed." if len(settings) < len(keys) else "."))
                for key in settings]
    if not keys:
        return []
    return [PopulationFigure(SPREAD_KEY, plot_spread(trials, keys),
                             f"The ranking metric over the population's seeds ({', '.join(keys)}): one point per "
                             "trial, its mean and range; the trials differ only by seed, so the spread is the "
                             "search's variance, not a better seed.")]


def plot_spread(trials: Iterable[Mapping[str, Any]], seed_keys: Iterable[str], *,
                title: Optional[str] = None) -> Figure:
    """The spread of the ranking metric over trials that differ only by seed: a strip of one point per trial
    (labelled with its seeds when few), the mean with a line from the lowest to the highest value, and a box
    of the quartiles from :data:`_BOX_FROM` trials on. The figure measures :data:`POPULATION_SIZE` inches."""
    ranked = _ranked(trials)
    if not ranked:
        raise ResultsError("no trial has a metric value to plot")
    seed_keys = list(seed_keys)
    scores = [float(row["metric_value"]) for row in ranked]
    metric = next((row["metric"] for row in ranked if row.get("metric")), "metric")
    mode = next((row["mode"] for row in ranked if row.get("mode")), "max")
    order = sorted(range(len(ranked)), key=lambda i: scores[i])
    n = len(scores)
    # deterministic jitter: points spread evenly sideways in value order, so equal values stay apart
    xs = [0.0] * n
    for position, i in enumerate(order):
        xs[i] = 0.24 * (position / (n - 1) - 0.5) if n > 1 else 0.0
    fig = new_figure(*POPULATION_SIZE, constrained=True)
    ax = fig.add_subplot()
    if n >= _BOX_FROM:
        ax.boxplot(scores, positions=[0.0], widths=0.5, showfliers=False, medianprops={"color": "#ff7f0e"},
                   boxprops={"color": "#999999"}, whiskerprops={"color": "#999999"}, capprops={"color": "#999999"})
    mean = statistics.fmean(scores)
    ax.plot([0.42, 0.42], [min(scores), max(scores)], color="#444444", lw=1.5)
    ax.scatter([0.42], [mean], s=60, marker="D", color="#444444", zorder=4)
    spread = f"mean {mean:.4g}, range {min(scores):.4g} to {max(scores):.4g}" + (
        f", sd {statistics.stdev(scores):.3g}" if n > 1 else "")
    ax.annotate(spread.replace(", range", "\nrange").replace(", sd", "\nsd"), (0.42, mean), xytext=(10, 0),
                textcoords="offset points", va="center", fontsize=8, color="#444444")
    ax.scatter(xs, scores, s=40, color="#1f77b4", edgecolor="white", linewidth=0.6, zorder=3)
    if n <= _STRIP_LABELS_UP_TO:
        for x, row, score in zip(xs, ranked, scores):
            overrides = trial_overrides(row)
            label = ", ".join(f"{key.rsplit('.', 1)[-1]} {overrides[key]}" for key in seed_keys if key in overrides)
            ax.annotate(label or row["trial_id"], (x, score), xytext=(-8, 0), textcoords="offset points",
                        ha="right", va="center", fontsize=7, color="#555555", zorder=5,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    ax.set_xticks([0.0], [f"{n} trial{'s' if n != 1 else ''}"])
    ax.set_xlim(-0.6, 1.1)
    ax.set_ylabel(f"final {metric} ({'higher' if mode == 'max' else 'lower'} is better)")
    ax.grid(alpha=0.3, lw=0.5, axis="y")
    ax.set_title(title or f"final {metric} over {n} seed{'s' if n != 1 else ''}: the spread of one setting",
                 fontsize=11)
    return fig
