"""Ground truth over epochs: the test accuracy (under the benchmark protocol) of each epoch's derived cell, a
line per trial, as NB201 papers plot a search, and its percentile among the benchmark's cells."""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Optional

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from raynas.errors import ResultsError
from raynas.plots.curves import trial_colors
from raynas.plots.style import new_figure

GROUND_TRUTH_SIZE = (12.0, 4.5)
"""Size in inches of the ground-truth figure."""

_MARKERS_UP_TO = 15
_LEGEND_ROWS = 16


def _finite(value: Any) -> Optional[float]:
    return float(value) if value is not None and math.isfinite(value) else None


def has_ground_truth(rows: Iterable[Mapping[str, Any]]) -> bool:
    """Whether any epochs-table row has a ground truth (the search was scored)."""
    return any(_finite(row.get("gt_test_acc")) is not None for row in rows)


def plot_ground_truth(rows: Iterable[Mapping[str, Any]], *, labels: Optional[Mapping[str, str]] = None,
                      title: Optional[str] = None) -> Figure:
    """The derived cell's ground-truth test accuracy (left) and percentile (right) over epochs, a line per
    trial; the dashed line is the benchmark's best cell (``gt_test_acc + gt_regret``).

    ``rows`` are epochs-table rows; those without a ground truth leave gaps. ``labels`` maps a trial id to
    its legend text. Raises :class:`ResultsError` when no row has a ground truth.
    """
    by_trial: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_trial.setdefault(row["trial_id"], []).append(row)
    scored = {t: sorted(r, key=lambda row: row["epoch"]) for t, r in by_trial.items() if has_ground_truth(r)}
    if not scored:
        raise ResultsError("no epoch has a ground truth to plot (the search was not scored: benchmark.score)")
    colors = trial_colors(sorted(scored))
    marker = "o" if max(len(r) for r in scored.values()) <= _MARKERS_UP_TO else None
    fig = new_figure(*GROUND_TRUTH_SIZE, constrained=True)
    acc_ax, pct_ax = fig.subplots(1, 2)
    best = None
    for trial_id, trial_rows in sorted(scored.items()):
        epochs = [r["epoch"] for r in trial_rows]
        for ax, column in ((acc_ax, "gt_test_acc"), (pct_ax, "gt_percentile")):
            values = [_finite(r.get(column)) for r in trial_rows]
            ax.plot(epochs, [math.nan if v is None else v for v in values], color=colors[trial_id], marker=marker,
                    markersize=3, lw=1.5)
        for row in trial_rows:  # every scored row knows the best cell: its accuracy plus its regret
            accuracy, regret = _finite(row.get("gt_test_acc")), _finite(row.get("gt_regret"))
            if accuracy is not None and regret is not None:
                best = accuracy + regret
    if best is not None:
        acc_ax.axhline(best, color="#444444", ls="--", lw=1)
    for ax, name in ((acc_ax, "ground-truth test accuracy"), (pct_ax, "percentile among the benchmark's cells")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name, fontsize=11)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3, lw=0.5)
    pct_ax.set_ylim(0, 100)
    handles = [Line2D([], [], color=colors[t], lw=2, label=(labels or {}).get(t, t)) for t in sorted(scored)]
    if best is not None:
        handles.append(Line2D([], [], color="#444444", lw=1, ls="--", label=f"best cell ({best:.4f})"))
    fig.legend(handles=handles, title="trial", loc="outside right upper", fontsize=8, title_fontsize=9,
               ncol=math.ceil(len(handles) / _LEGEND_ROWS), frameon=False)
    fig.suptitle(title or "ground truth of the derived cell per trial", fontsize=12)
    return fig
