"""Learning curves of an experiment: losses and accuracies over epochs, one colour per trial."""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Optional, Sequence, cast

from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from raynas.errors import ResultsError
from raynas.plots.style import new_figure

CURVES_SIZE = (12.0, 5.0)
"""Size in inches of the curves figure."""

LOSSES = ("train_loss", "val_loss")
ACCURACIES = ("train_acc", "val_acc", "derived_val_acc")
_LINESTYLES = {"train": "-", "val": "--", "derived_val": ":"}
_MARKERS_UP_TO = 15
_LEGEND_ROWS = 16  # trials per legend column
CHANCE_COLOR = "#888888"


def chance_handle(chance: float) -> Line2D:
    """The legend entry of a chance-level line: ``chance (1/10 = 0.1)``."""
    classes = round(1 / chance) if chance > 0 else 0
    label = f"chance (1/{classes} = {chance:.3g})" if classes and abs(1 / classes - chance) < 1e-9 else \
        f"chance ({chance:.3g})"
    return Line2D([], [], color=CHANCE_COLOR, lw=1.2, ls="-.", label=label)


def _listed_colors(name: str) -> Sequence[Any]:
    """The colours of the listed colormap ``name`` (tab10, tab20: a tuple of RGB tuples)."""
    cmap = colormaps[name]
    assert isinstance(cmap, ListedColormap)  # the registry types its maps as Colormap
    return cast(Sequence[Any], cmap.colors)  # typed as any array-like; these maps hold a tuple


def trial_colors(trial_ids: Iterable[str]) -> dict[str, Any]:
    """A distinct colour per trial, in the given order (tab10, tab20, then a continuous map)."""
    ids = list(dict.fromkeys(trial_ids))
    palette: Sequence[Any]
    if len(ids) <= 10:
        palette = _listed_colors("tab10")
    elif len(ids) <= 20:
        palette = _listed_colors("tab20")
    else:
        cmap = colormaps["viridis"]
        palette = [cmap(i / (len(ids) - 1)) for i in range(len(ids))]
    return {trial_id: palette[i] for i, trial_id in enumerate(ids)}


def _finite(value: Any) -> Optional[float]:
    return float(value) if value is not None and math.isfinite(value) else None


def plot_curves(rows: Iterable[Mapping[str, Any]], *, labels: Optional[Mapping[str, str]] = None,
                title: Optional[str] = None, chance: Optional[float] = None) -> Figure:
    """Losses (:data:`LOSSES`) and accuracies (:data:`ACCURACIES`) over epochs, a line per trial and metric.

    ``rows`` are epochs-table rows; ``labels`` maps a trial id to its legend text (default: the id).
    Colours tell trials apart, line styles metrics (solid: train, dashed: supernet validation, dotted:
    derived architecture). Metrics a trial did not measure (None or NaN) leave gaps. ``chance`` (1 / the
    data's classes) draws the accuracy a guess reaches as a grey line, so a curve near it reads as learning
    nothing. The figure measures :data:`CURVES_SIZE` inches.
    """
    by_trial: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_trial.setdefault(row["trial_id"], []).append(row)
    if not by_trial:
        raise ResultsError("no epochs to plot")
    colors = trial_colors(sorted(by_trial))
    longest = max(len(trial_rows) for trial_rows in by_trial.values())
    marker = "o" if longest <= _MARKERS_UP_TO else None
    fig = new_figure(*CURVES_SIZE, constrained=True)
    loss_ax, acc_ax = fig.subplots(1, 2)
    drawn: list[str] = []
    for ax, metrics, name in ((loss_ax, LOSSES, "loss"), (acc_ax, ACCURACIES, "accuracy")):
        for trial_id, trial_rows in sorted(by_trial.items()):
            trial_rows = sorted(trial_rows, key=lambda r: r["epoch"])
            epochs = [r["epoch"] for r in trial_rows]
            for metric in metrics:
                values = [_finite(r.get(metric)) for r in trial_rows]
                if all(v is None for v in values):
                    continue
                ax.plot(epochs, [math.nan if v is None else v for v in values], color=colors[trial_id],
                        ls=_LINESTYLES[metric.rsplit("_", 1)[0]], marker=marker, markersize=3, lw=1.5)
                if metric not in drawn:
                    drawn.append(metric)
        if name == "accuracy" and chance is not None:
            ax.axhline(chance, color=CHANCE_COLOR, ls="-.", lw=1.2, zorder=1)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name, fontsize=11)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3, lw=0.5)
    trial_handles = [Line2D([], [], color=colors[t], lw=2, label=(labels or {}).get(t, t)) for t in sorted(by_trial)]
    metric_handles = []
    for prefix, style in _LINESTYLES.items():  # one entry per line style: "train_loss, train_acc"
        names = [m for m in (*LOSSES, *ACCURACIES) if m in drawn and m.rsplit("_", 1)[0] == prefix]
        if names:
            metric_handles.append(Line2D([], [], color="#444444", lw=1.5, ls=style, label=", ".join(names)))
    fig.legend(handles=trial_handles, title="trial", loc="outside right upper", fontsize=8, title_fontsize=9,
               ncol=math.ceil(len(trial_handles) / _LEGEND_ROWS), frameon=False)
    if chance is not None:
        metric_handles.append(chance_handle(chance))
    if metric_handles:
        fig.legend(handles=metric_handles, title="metric", loc="outside right lower", fontsize=8,
                   title_fontsize=9, frameon=False, handlelength=2.8)
    fig.suptitle(title or "losses and accuracies per trial", fontsize=12)
    return fig
