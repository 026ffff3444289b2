"""``write_report``: check the options, build the report of a results folder and write it atomically."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Union

from raynas.errors import ConfigError, ResultsError
from raynas.report.document import Picture, Report
from raynas.report.evaluations import evaluation_report
from raynas.report.folder import EVALUATION, folder_kind
from raynas.report.html import render_html
from raynas.report.markdown import render_markdown
from raynas.report.search import search_report

REPORT_FORMATS = ("html", "md")
"""The report formats: one self-contained HTML page, or Markdown with a folder of PNG pictures."""


def _check_format(fmt: str) -> str:
    value = str(fmt).strip().lower()
    if value not in REPORT_FORMATS:
        raise ConfigError(f"unknown report format {fmt!r} (--format); valid formats: {', '.join(REPORT_FORMATS)}")
    return value


def _check_top(top: int) -> int:
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"--top must be an integer >= 1 (how many distinct genotypes to draw), got {top!r}")
    return top


def _check_out(out: Path, fmt: str) -> Path:
    if out.is_dir():
        raise ResultsError(f"--out {str(out)!r} is a folder; give the report's file path, e.g. "
                           f"{str(out / f'report.{fmt}')!r}")
    return out


def write_report(directory: Union[str, Path], out: Union[str, Path, None] = None, *, fmt: str = "html",
                 top: int = 3) -> Path:
    """Write the report of a results folder and return its path.

    ``directory`` is a search experiment folder (``<out>/<name>`` of ``raynas search``: ``config.yaml`` and
    ``tables/``) or an evaluation run folder (``evaluation.yaml``, from ``raynas train``). The report holds,
    in order: a title (experiment, space, method, date of the results), a summary (how the trials are
    ranked: the metric at each trial's final epoch; the ``top`` best trials with their final and best
    values, ground truth and test accuracy from scratch where present, and genotypes), every trial (ranked,
    with the overrides the population varied), the ``top`` best distinct genotypes with their cell diagrams
    (or why fewer), the learning curves (with chance level), the architecture weights of the best trial, the
    ranking metric against each varied override (its spread when only seeds varied), the selection
    decisions, the evaluations (every training from scratch, a per-genotype mean ± std of the final test
    accuracy, test accuracy over epochs) and, last and folded, the resolved config. A section without data
    says so. An evaluation run folder gets its evaluations, its genotypes and, folded, its plan.

    ``fmt`` ``"html"`` (default) writes one self-contained page (``<directory>/report.html`` unless ``out``
    is given): pictures embedded as base64 PNG, inline CSS, no scripts or external resources. ``"md"`` writes
    ``report.md`` and its PNG pictures into ``<stem>_files/`` beside it, linked relatively. Files are written
    to a temporary file and moved into place (pictures first), so a reader never sees half a report.

    An unknown format or a ``top`` below 1 is a :class:`ConfigError`; a folder that is neither kind, or an
    ``out`` that is a folder or cannot be written, a :class:`ResultsError`.
    """
    fmt = _check_format(fmt)
    top = _check_top(top)
    directory = Path(directory)
    kind = folder_kind(directory)
    target = _check_out(Path(out) if out is not None else directory / f"report.{fmt}", fmt)
    report = evaluation_report(directory) if kind == EVALUATION else search_report(directory, top)
    _unique_picture_names(report)
    _make_folder(target.parent)
    if fmt == "html":
        _atomic_write(target, render_html(report).encode("utf-8"))
        return target
    pictures = target.parent / f"{target.stem}_files"
    if pictures.exists() and not pictures.is_dir():
        raise ResultsError(f"cannot write the report's pictures into {pictures}: it is a file")
    _make_folder(pictures)
    written = set()
    for picture in report.pictures():
        _atomic_write(pictures / f"{picture.name}.png", picture.png)
        written.add(f"{picture.name}.png")
    for stale in pictures.glob("*.png"):  # pictures of an earlier report that this one no longer has
        if stale.name not in written:
            stale.unlink(missing_ok=True)
    _atomic_write(target, render_markdown(report, pictures.name).encode("utf-8"))
    return target


def _unique_picture_names(report: Report) -> None:
    """Rename pictures whose names repeat (``name``, ``name_2``, ...), so each gets its own file."""
    seen: set[str] = set()
    for section in report.sections:
        for i, block in enumerate(section.blocks):
            if not isinstance(block, Picture):
                continue
            name, n = block.name, 1
            while name in seen:
                n += 1
                name = f"{block.name}_{n}"
            seen.add(name)
            if name != block.name:
                section.blocks[i] = dataclasses.replace(block, name=name)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsError(f"cannot create the report folder {folder}: {exc.strerror or exc}") from None


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`raynas.files.write_bytes_atomically`); a one-line error."""
    from raynas.files import write_bytes_atomically

    try:
        write_bytes_atomically(path, data)
    except OSError as exc:
        raise ResultsError(f"cannot write {path}: {exc.strerror or exc}") from None
