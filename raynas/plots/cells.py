"""Cell diagrams of a genotype: nodes in layers from left to right, one labelled arrow per kept edge.

A node's layer is one more than the deepest node feeding it (inputs in layer 0, the cell output last);
nodes of a layer are stacked in the order of their inputs' heights. Each edge is a straight line or, when
the line would pass a node or run along an edge already drawn, an arc (matplotlib's ``arc3``) bent to the
side that keeps it clear. Op names sit on their edges in white boxes; each box slides along its edge to the
place where it overlaps no other box, node or arrowhead and covers the fewest other lines. Edge colours are
those of :func:`raynas.plots.style.op_color`, explained by a legend. No graphviz is needed.

What the picture shows of a cell (its nodes, kept edges and node names) the space says
(:meth:`raynas.spaces.base.SearchSpace.cell_graph`); a cell with one input (NB201) is drawn with room for a
label on each short edge and "input"/"output" captions, a cell with several (DARTS) more compactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch
from matplotlib.transforms import Bbox

from raynas.errors import GenotypeError
from raynas.plots.style import CONCAT_COLOR, NODE_COLORS, new_figure, op_color
from raynas.spaces import CellGraph, Genotype, SearchSpace, get_space, guess_space, parse_genotype

NB201_CELL_SIZE = (10.0, 4.2)
"""Size in inches of an NB201 cell diagram."""
DARTS_CELL_SIZE = (11.0, 6.2)
"""Size in inches of a DARTS-like (normal or reduce) cell diagram."""

_DX, _DY = 2.4, 1.35  # data units between layers and between the nodes of a layer
_NB201_DX = 3.0  # a one-input cell (NB201) has one node per layer: room for a label on each short edge
_RADIUS = 0.3  # node radius in data units
_CLEARANCE = _RADIUS + 0.15  # how far an edge must stay from other nodes' centres
_RADS = (0.0, 0.25, -0.25, 0.4, -0.4, 0.55, -0.55, 0.7, -0.7)
_LABEL_TS = (0.5, 0.42, 0.58, 0.35, 0.65, 0.28, 0.72)
_SAMPLES = 48
_FONT = 9.5


@dataclass
class _Edge:
    src: int
    dst: int
    op: Optional[str]  # None: an unlabelled edge into the DARTS cell output (concat)
    rad: float = 0.0

    @property
    def kind(self) -> str:
        if self.op is None:
            return "concat"
        return "none" if self.op == "none" else "op"


def _cell_graph(genotype: Genotype, cell: str, space: Optional[SearchSpace] = None) -> CellGraph:
    """Cell ``cell`` of ``genotype`` as its space draws it: ``space`` if the genotype is of its kind, else the
    registered space the genotype belongs to."""
    if cell not in type(genotype).CELLS:
        raise GenotypeError(f"a {type(genotype).__name__} has no cell {cell!r}; valid: "
                            f"{', '.join(type(genotype).CELLS)}")
    if space is None or not isinstance(genotype, space.genotype_type):
        space = get_space(guess_space(genotype))
    return space.cell_graph(genotype, cell)


def cell_edges(genotype: Genotype, cell: str) -> list[tuple[int, int, str]]:
    """The ``(src, dst, op)`` of every edge of ``cell`` in ``genotype``; DARTS intermediate nodes are
    numbered from 2 (0 and 1 are the inputs), as in :meth:`SearchSpace.edges`."""
    return _cell_graph(genotype, cell).op_edges()


def _layout(nodes: dict[int, str], edges: list[_Edge], dx: float) -> dict[int, tuple[float, float]]:
    """Node -> (x, y): a layer per longest path from the inputs, the output in the last layer."""
    layer: dict[int, int] = {}
    for node in sorted(nodes):  # sources are numbered below their targets
        sources = [e.src for e in edges if e.dst == node and e.src in layer]
        layer[node] = 0 if nodes[node] == "input" or not sources else 1 + max(layer[s] for s in sources)
    outputs = [n for n, kind in nodes.items() if kind == "output"]
    last = max((layer[n] for n in nodes if n not in outputs), default=0) + 1
    for node in outputs:
        layer[node] = max(layer[node], last)
    pos: dict[int, tuple[float, float]] = {}
    for depth in sorted(set(layer.values())):
        members = [n for n in sorted(nodes) if layer[n] == depth]

        def height(node: int) -> float:
            sources = [pos[e.src][1] for e in edges if e.dst == node and e.src in pos]
            return sum(sources) / len(sources) if sources else 0.0

        centre = 0.0
        if depth > 0:  # tallest inputs first, ties by node number: fewer crossings than plain node order
            members.sort(key=lambda n: (-height(n), n))
            centre = sum(height(n) for n in members) / len(members)
        for i, node in enumerate(members):
            pos[node] = (depth * dx, centre + ((len(members) - 1) / 2 - i) * _DY)
    return pos


def _curve(p0: tuple[float, float], p2: tuple[float, float], rad: float, ts: list[float]) -> list[tuple[float, float]]:
    """Points of the quadratic Bezier that ``arc3,rad=rad`` draws from p0 to p2 (equal x and y scales)."""
    (x0, y0), (x2, y2) = p0, p2
    cx, cy = (x0 + x2) / 2 + rad * (y2 - y0), (y0 + y2) / 2 - rad * (x2 - x0)
    return [((1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t ** 2 * x2,
             (1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t ** 2 * y2) for t in ts]


_TS = [0.04 + 0.92 * i / (_SAMPLES - 1) for i in range(_SAMPLES)]


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise distances between the points (rows) of ``a`` and of ``b``."""
    return np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])


def _route(pos: dict[int, tuple[float, float]], edges: list[_Edge]) -> None:
    """Give every edge the bend (``rad``) that keeps it off other nodes and off edges routed before it."""
    routed = np.empty((0, 2))
    order = sorted(edges, key=lambda e: (e.kind == "concat", abs(pos[e.dst][0] - pos[e.src][0]), e.dst, e.src))
    for edge in order:
        p0, p2 = pos[edge.src], pos[edge.dst]
        others = np.array([xy for node, xy in pos.items() if node not in (edge.src, edge.dst)]).reshape(-1, 2)
        costs = []
        for rad in _RADS:
            points = np.array(_curve(p0, p2, rad, _TS))
            # ignore the ends: every edge of a node starts or ends next to the others
            ends = _distances(points, np.array([p0, p2])).min(axis=1)
            inner = points[ends > 1.5 * _RADIUS]
            if not len(inner):
                costs.append((0.8 * abs(rad), abs(rad), rad))
                continue
            gap = _distances(inner, others).min() if len(others) else math.inf
            near = int((_distances(inner, routed).min(axis=1) < 0.22).sum()) if len(routed) else 0
            cost = (100 + 10 * (_CLEARANCE - gap) if gap < _CLEARANCE else 0.0) + 6 * near / len(inner)
            costs.append((cost + 0.8 * abs(rad), abs(rad), rad))
        edge.rad = min(costs)[2]
        routed = np.vstack([routed, _curve(p0, p2, edge.rad, _TS)])


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _circle_box_overlap(box: Bbox, centre: tuple[float, float], radius: float) -> float:
    """How deep a circle reaches into a box (0 when apart), in the circle's units."""
    nx = min(max(centre[0], box.x0), box.x1)
    ny = min(max(centre[1], box.y0), box.y1)
    return max(0.0, radius - math.dist((nx, ny), centre))


def _resolve(genotype: Union[Genotype, str], space: Union[SearchSpace, str], cell: str) -> tuple[Genotype, SearchSpace]:
    space = get_space(space) if isinstance(space, str) else space
    space.check_cell(cell)
    if isinstance(genotype, str):
        # format only: a selection may derive a genotype its space rejects (a DARTS cell with 'none'),
        # and that picture is exactly the one worth looking at
        genotype = parse_genotype(genotype)
    if cell not in type(genotype).CELLS:
        raise GenotypeError(f"genotype {genotype} has no cell {cell!r} of space {space.name!r}; "
                            f"its cells: {', '.join(type(genotype).CELLS)}")
    return genotype, space


def _legend_ops(space: SearchSpace, cell: str, used: set[str]) -> list[str]:
    """The ops in ``used``, in the space's candidate order (unknown ones last, by name)."""
    order: list[str] = []
    for edge in range(len(space.edges(cell))):
        order += [op for op in space.edge_ops(cell, edge) if op not in order]
    return [op for op in order if op in used] + sorted(used - set(order))


def draw_cell(genotype: Union[Genotype, str], space: Union[SearchSpace, str], cell: str, *,
              title: Optional[str] = None) -> Figure:
    """A diagram of cell ``cell`` of ``genotype`` (a genotype or its text) in ``space`` (an instance or a
    registered name).

    NB201: nodes 0 (input) to 3 (output), every edge labelled with its op; ``none`` edges are dashed grey.
    DARTS-like: inputs ``c_{k-2}``, ``c_{k-1}``, intermediate nodes 0..3 with their kept edges labelled,
    and thin grey edges into the output ``c_{k}`` from the concatenated nodes. The nodes, edges and names
    are the space's :meth:`~raynas.spaces.base.SearchSpace.cell_graph`. The figure measures
    :data:`NB201_CELL_SIZE` (a cell with one input) or :data:`DARTS_CELL_SIZE` inches.
    """
    genotype, space = _resolve(genotype, space, cell)
    graph = _cell_graph(genotype, cell, space)
    nodes = dict(graph.nodes)
    edges = [_Edge(src, dst, op) for src, dst, op in graph.edges]
    one_input = sum(kind == "input" for kind in nodes.values()) == 1
    pos = _layout(nodes, edges, _NB201_DX if one_input else _DX)
    _route(pos, edges)

    width, height = NB201_CELL_SIZE if one_input else DARTS_CELL_SIZE
    fig = new_figure(width, height)
    used = {e.op for e in edges if e.op is not None and e.op != "none"}
    handles = [Line2D([], [], color=op_color(op), lw=2.5, label=op) for op in _legend_ops(space, cell, used)]
    if any(e.kind == "none" for e in edges):
        handles.append(Line2D([], [], color=op_color("none"), lw=1.5, ls="--", label="none (no connection)"))
    if any(e.kind == "concat" for e in edges):
        output = next(node for node, kind in nodes.items() if kind == "output")
        handles.append(Line2D([], [], color=CONCAT_COLOR, lw=1.2, label=f"concat into {graph.names[output]}"))
    ncol = min(len(handles), 5)
    rows = math.ceil(len(handles) / ncol) if handles else 0
    bottom = (0.12 + 0.27 * rows) / height
    top = 1 - 0.45 / height
    ax = fig.add_axes((0.01, bottom, 0.98, top - bottom))
    ax.set_axis_off()
    fig.suptitle(title or (f"{space.name} cell" if cell == "cell" else f"{space.name} {cell} cell"), fontsize=12,
                 y=1 - 0.1 / height, va="top")
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=ncol, frameon=False, fontsize=_FONT,
                   bbox_to_anchor=(0.5, 0.06 / height), handlelength=2.2, columnspacing=1.6)

    _set_limits(ax, fig, pos, edges, captions=one_input)
    circles = {}
    for node, kind in nodes.items():
        circle = Circle(pos[node], _RADIUS, facecolor=NODE_COLORS[kind], edgecolor="#333333", lw=1.2, zorder=3)
        ax.add_patch(circle)
        circles[node] = circle
        ax.text(*pos[node], graph.names[node], ha="center", va="center", fontsize=11, zorder=4)
    if one_input:
        first, last = min(nodes), max(nodes)
        ax.text(pos[first][0] - _RADIUS - 0.12, pos[first][1], "input", ha="right", va="center", fontsize=_FONT,
                color="#444444")
        ax.text(pos[last][0] + _RADIUS + 0.12, pos[last][1], "output", ha="left", va="center", fontsize=_FONT,
                color="#444444")
    for edge in edges:
        style: dict[str, Any] = {
            "op": dict(color=op_color(edge.op or ""), lw=1.9, ls="-", mutation_scale=15),
            "none": dict(color=op_color("none"), lw=1.3, ls="--", mutation_scale=12),
            "concat": dict(color=CONCAT_COLOR, lw=1.0, ls="-", mutation_scale=10)}[edge.kind]
        ax.add_patch(FancyArrowPatch(pos[edge.src], pos[edge.dst], connectionstyle=f"arc3,rad={edge.rad}",
                                     arrowstyle="-|>", patchA=circles[edge.src], patchB=circles[edge.dst],
                                     shrinkA=0, shrinkB=1, zorder=2 if edge.kind == "op" else 1, **style))
    _place_labels(ax, fig, pos, [e for e in edges if e.kind == "op"], edges)
    return fig


def _set_limits(ax: Axes, fig: Figure, pos: dict[int, tuple[float, float]], edges: list[_Edge], *,
                captions: bool) -> None:
    """Data limits around nodes and curves, widened so one unit has the same length along x and y."""
    points = list(pos.values())
    for edge in edges:
        points += _curve(pos[edge.src], pos[edge.dst], edge.rad, _TS)
    margin_x = _RADIUS + (1.1 if captions else 0.35)
    x0, x1 = min(p[0] for p in points) - margin_x, max(p[0] for p in points) + margin_x
    y0, y1 = min(p[1] for p in points) - _RADIUS - 0.25, max(p[1] for p in points) + _RADIUS + 0.25
    box = ax.get_position()
    box_w, box_h = box.width * fig.get_figwidth(), box.height * fig.get_figheight()
    scale = min(box_w / (x1 - x0), box_h / (y1 - y0))  # inches per data unit
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ax.set_xlim(cx - box_w / scale / 2, cx + box_w / scale / 2)
    ax.set_ylim(cy - box_h / scale / 2, cy + box_h / scale / 2)


def _place_labels(ax: Axes, fig: Figure, pos: dict[int, tuple[float, float]], labelled: list[_Edge],
                  edges: list[_Edge]) -> None:
    """Put each op name on its edge where its box hits no other box, node or arrowhead and covers few lines."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # the Agg canvas has one; the base class not
    to_px = ax.transData.transform
    px_per_unit = to_px((1.0, 0.0))[0] - to_px((0.0, 0.0))[0]
    node_px = [tuple(to_px(xy)) for xy in pos.values()]
    node_r = (_RADIUS + 0.14) * px_per_unit  # the node and the arrowheads just outside it
    lines = {id(e): [tuple(p) for p in to_px(_curve(pos[e.src], pos[e.dst], e.rad, _TS))] for e in edges}
    pad = 0.3 * _FONT * fig.dpi / 72
    placed: list[Bbox] = []
    order = sorted(labelled, key=lambda e: math.dist(pos[e.src], pos[e.dst]))  # short edges have least room
    for edge in order:
        text = ax.text(0, 0, edge.op or "", ha="center", va="center", fontsize=_FONT, zorder=5,
                       bbox=dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor=op_color(edge.op or ""),
                                 lw=1.2))
        extent = text.get_window_extent(renderer)
        w, h = extent.width + 2 * pad + 4, extent.height + 2 * pad + 4
        costs = []
        for t in _LABEL_TS:
            xy = _curve(pos[edge.src], pos[edge.dst], edge.rad, [t])[0]
            cx, cy = to_px(xy)
            box = Bbox.from_bounds(cx - w / 2, cy - h / 2, w, h)
            cost = sum(_overlap(box, other) for other in placed) / (w * h) * 1000
            cost += sum(_circle_box_overlap(box, c, node_r) for c in node_px) * 50
            cost += sum(1 for key, pts in lines.items() if key != id(edge) for p in pts if box.contains(*p)) * 2
            costs.append((cost + abs(t - 0.5) * 10, t, xy))
        xy = min(costs)[2]
        text.set_position(xy)
        cx, cy = to_px(xy)
        placed.append(Bbox.from_bounds(cx - w / 2, cy - h / 2, w, h))
