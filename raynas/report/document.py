"""The format-free content of a report: sections of text, preformatted text, tables and pictures.

The section builders (:mod:`raynas.report.search`, :mod:`raynas.report.evaluations`) produce these blocks
with every value already turned into text, and the renderers (:mod:`raynas.report.html`,
:mod:`raynas.report.markdown`) only lay them out, so both formats say the same thing.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from matplotlib.figure import Figure

REPORT_DPI = 100
"""Resolution of the report's pictures: about a screen's, so a picture shows at its designed size in inches
(the figures' own :data:`raynas.plots.DPI` of 150 is for print), and the page stays small and quick to write."""

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Text:
    """A paragraph of plain text."""

    text: str


@dataclass(frozen=True)
class Code:
    """Preformatted text (a config file), shown as is in a monospace block."""

    text: str


@dataclass(frozen=True)
class Folded:
    """Preformatted text shown collapsed under a one-line ``summary`` (a long config at the end of a report)."""

    summary: str
    text: str


@dataclass(frozen=True)
class Table:
    """A table of text cells; ``code`` names the columns shown in monospace (genotypes)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    code: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Picture:
    """A PNG picture: ``name`` is a file-name-safe stem unique within the report, ``caption`` its text."""

    name: str
    caption: str
    png: bytes


Block = Union[Text, Code, Folded, Table, Picture]


@dataclass
class Section:
    """A titled part of the report (``anchor`` is its id in HTML)."""

    title: str
    anchor: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Report:
    """A whole report: a title, a one-line subtitle and the sections in order."""

    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)

    def pictures(self) -> list[Picture]:
        """Every picture of the report, in order."""
        return [block for section in self.sections for block in section.blocks if isinstance(block, Picture)]


def picture(fig: Figure, name: str, caption: str) -> Picture:
    """Render ``fig`` as a PNG (at :data:`REPORT_DPI`, no software tag) and release the figure."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=REPORT_DPI, metadata={"Software": None})
    finally:
        fig.clear()  # figures are Agg canvases outside pyplot: clearing drops their artists at once
    return Picture(safe_name(name), caption, buffer.getvalue())


def safe_name(text: str) -> str:
    """``text`` with every run of characters other than letters, digits, ``_ . -`` replaced by ``_``."""
    return _SAFE_NAME.sub("_", text).strip("_.") or "_"


def cell(value: Any, digits: int = 4) -> str:
    """A table cell: empty for a missing or NaN value, floats to ``digits`` decimals (whole ones from 1,000 on,
    such as parameter counts, as ``8,182``), booleans as yes/no."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) >= 1000:
            return f"{value:,.0f}"
        return "" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def seconds(value: Optional[float]) -> str:
    """A duration in seconds as ``12.3 s`` (a no-break space: a narrow column keeps it on one line), empty
    when unknown."""
    return "" if value is None or math.isnan(value) else f"{value:.1f}\u00a0s"


def count(value: Optional[int]) -> str:
    """A large integer with thousands separators (parameters, MACs), empty when unknown."""
    return "" if value is None else f"{value:,}"
