"""Populations: a trial's ranking metric against each meta-hyperparameter the population varied."""

from __future__ import annotations

import json
import math
import numbers
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
    """The ranking metric (``metric_value``) of each trial against its value of override ``key``.

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
    ax.set_ylabel(f"{metric} ({'higher' if mode == 'max' else 'lower'} is better)")
    ax.grid(alpha=0.3, lw=0.5)
    ax.set_title(title or f"{metric} vs {key} ({len(ranked)} trials)", fontsize=11)
    return fig
