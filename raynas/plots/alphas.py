"""Architecture weights over epochs: one small panel per edge, one line per op.

Panels are arranged by the edge's target node (a row per node, its incoming edges left to right), so the
grid has the triangular shape of the cell. Op colours are those of the cell diagrams.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Optional

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from raynas.errors import ResultsError
from raynas.plots.cells import cell_edges
from raynas.plots.style import new_figure, op_color
from raynas.spaces import Genotype, SearchSpace, get_space, guess_space

PANEL_SIZE = (2.6, 1.8)
"""Size in inches of one edge's panel."""
_EXTRA_HEIGHT = 1.2  # title and legend, inches
_MARKERS_UP_TO = 15  # epochs: with few points, a marker on each shows where the values are


def alphas_size(rows: int, cols: int) -> tuple[float, float]:
    """Size in inches of an alphas grid of ``rows x cols`` panels."""
    return round(cols * PANEL_SIZE[0] + 0.4, 3), round(rows * PANEL_SIZE[1] + _EXTRA_HEIGHT, 3)


def grid_shape(edges: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """``(rows, cols)`` of the grid for edges ``(src, dst)``: a row per target node, a column per source."""
    by_dst: dict[int, int] = {}
    for _, dst in set(edges):
        by_dst[dst] = by_dst.get(dst, 0) + 1
    return len(by_dst), max(by_dst.values(), default=0)


def plot_alphas(rows: Iterable[Mapping[str, Any]], cell: str, *, genotype: Optional[Genotype] = None,
                title: Optional[str] = None, space: Optional[SearchSpace] = None) -> Figure:
    """The softmax architecture weight of every op of every edge of ``cell`` over epochs.

    ``rows`` are alphas-table rows of one trial (``epoch``, ``cell``, ``edge``, ``src``, ``dst``, ``op``,
    ``weight``); rows of other cells are ignored. With ``genotype`` each panel's title names the op that edge
    keeps in it. Panels name their edges by the nodes' names in ``space`` (:meth:`SearchSpace.node_name`;
    default: the space of ``genotype``, else plain node numbers). The figure measures :func:`alphas_size` of
    :func:`grid_shape` inches.
    """
    if space is None and genotype is not None:
        space = get_space(guess_space(genotype))
    series: dict[tuple[int, int], dict[str, list[tuple[int, float]]]] = {}
    ops: list[str] = []
    for row in rows:
        if row["cell"] != cell or row["weight"] is None:
            continue
        edge = (int(row["src"]), int(row["dst"]))
        series.setdefault(edge, {}).setdefault(row["op"], []).append((int(row["epoch"]), float(row["weight"])))
        if row["op"] not in ops:
            ops.append(row["op"])
    if not series:
        raise ResultsError(f"no architecture weights of cell {cell!r} to plot")
    kept = {(src, dst): op for src, dst, op in cell_edges(genotype, cell)} if genotype is not None else {}
    nrows, ncols = grid_shape(series)
    fig = new_figure(*alphas_size(nrows, ncols), constrained=True)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    values = [w for lines in series.values() for points in lines.values() for _, w in points]
    low, high = min(values), max(values)
    pad = max(high - low, 0.02) * 0.08
    epochs = {e for lines in series.values() for points in lines.values() for e, _ in points}
    marker = "o" if len(epochs) <= _MARKERS_UP_TO else None
    targets = sorted({dst for _, dst in series})
    for r, dst in enumerate(targets):
        sources = sorted(src for src, d in series if d == dst)
        for c in range(ncols):
            ax = axes[r][c]
            if c >= len(sources):
                ax.set_axis_off()
                continue
            edge = (sources[c], dst)
            for op in ops:
                points = sorted(series[edge].get(op, []))
                if points:
                    ax.plot([e for e, _ in points], [w for _, w in points], color=op_color(op), lw=1.5,
                            ls="--" if op == "none" else "-", marker=marker, markersize=3)
            name = (f"{space.node_name(cell, edge[0])} → {space.node_name(cell, edge[1])}" if space is not None
                    else f"{edge[0]} → {edge[1]}")
            if edge in kept:
                ax.set_title(f"{name}: {kept[edge]}", fontsize=9, color=op_color(kept[edge]),
                             fontweight="bold")
            else:
                ax.set_title(name, fontsize=9, color="#555555")
            ax.set_ylim(low - pad, high + pad)
            ax.tick_params(labelsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
            ax.grid(alpha=0.3, lw=0.5)
            if r == nrows - 1:
                ax.set_xlabel("epoch", fontsize=9)
    fig.supylabel("op weight (softmax of α)", fontsize=9)
    handles = [Line2D([], [], color=op_color(op), lw=2, ls="--" if op == "none" else "-", label=op) for op in ops]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), math.ceil(ncols * 1.5)),
               frameon=False, fontsize=9)
    fig.suptitle(title or ("architecture weights" if cell == "cell" else f"architecture weights: {cell} cell"),
                 fontsize=12)
    return fig
