"""The shared look of raynas pictures: one colour per op, node names, figure creation and saving.

Figures are plain :class:`matplotlib.figure.Figure` objects on an Agg canvas: nothing here touches pyplot's
global state, so plotting works in any process (no display, no GUI backend) and leaks no open figures.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Iterable

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from raynas.errors import ConfigError, ResultsError
from raynas.files import atomic_path

DPI = 150
"""Resolution of every PNG; a figure of ``w x h`` inches becomes ``round(w * DPI) x round(h * DPI)`` pixels."""

FORMATS = ("png", "svg")

#: one fixed colour per op name of the built-in spaces, the same in every picture
OP_COLORS = {
    "none": "#9e9e9e",
    "skip_connect": "#1f77b4",
    "sep_conv_3x3": "#d62728",
    "sep_conv_5x5": "#ff7f0e",
    "dil_conv_3x3": "#2ca02c",
    "dil_conv_5x5": "#17becf",
    "max_pool_3x3": "#9467bd",
    "avg_pool_3x3": "#8c564b",
    "nor_conv_3x3": "#e377c2",
    "nor_conv_1x1": "#bcbd22",
    "noise": "#393b79",
}
_SPARE_COLORS = ("#637939", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363")

CONCAT_COLOR = "#b5b5b5"
NODE_COLORS = {"input": "#c7e9c0", "inner": "#c6dbef", "output": "#fdd49e"}
DARTS_OUTPUT_NAME = "$c_{k}$"

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def op_color(op: str) -> str:
    """The colour of op ``op``: fixed for known ops, a stable pick from a spare palette for others."""
    if op in OP_COLORS:
        return OP_COLORS[op]
    return _SPARE_COLORS[zlib.crc32(op.encode()) % len(_SPARE_COLORS)]


def safe_file_part(text: str) -> str:
    """``text`` with every run of characters other than letters, digits, ``_ . -`` replaced by ``_``."""
    return _SAFE_NAME.sub("_", text).strip("_") or "_"


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The image formats ``formats`` (case and a leading dot ignored), without repeats; a
    :class:`ConfigError` names any other format and the valid ones."""
    out: list[str] = []
    for raw in formats:
        fmt = str(raw).strip().lower().lstrip(".")
        if fmt not in FORMATS:
            raise ConfigError(f"unknown image format {raw!r}; valid formats: {', '.join(FORMATS)}")
        if fmt not in out:
            out.append(fmt)
    if not out:
        raise ConfigError(f"no image format given; valid formats: {', '.join(FORMATS)}")
    return tuple(out)


def new_figure(width: float, height: float, *, constrained: bool = False) -> Figure:
    """A ``width x height`` inch figure on its own Agg canvas (a text renderer is available at once)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained" if constrained else None)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, stem: Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write ``fig`` as ``<stem>.<format>`` for each format; return the paths.

    SVG text stays text (``svg.fonttype`` none), so op names can be searched in the file. Each file is
    written to a temporary file next to it and moved into place, so a reader never sees half an image.
    A folder or file that cannot be written is a :class:`ResultsError`.
    """
    stem = Path(stem)
    formats = check_formats(formats)
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsError(f"cannot create the picture folder {stem.parent}: {exc.strerror or exc}") from None
    paths = []
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "raynas"}):
        for fmt in formats:
            path = stem.parent / f"{stem.name}.{fmt}"
            # no date or software version in the files: the same data gives the same bytes
            metadata = {"Date": None} if fmt == "svg" else {"Software": None}
            try:
                with atomic_path(path) as tmp:  # readable as the umask allows, never half an image
                    fig.savefig(tmp, format=fmt, dpi=DPI, metadata=metadata)
            except OSError as exc:
                raise ResultsError(f"cannot write {path}: {exc.strerror or exc}") from None
            paths.append(path)
    return paths
