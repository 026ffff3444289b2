"""A report as Markdown (GitHub flavour) whose pictures are PNG files in a folder next to it, linked by
relative paths."""

from __future__ import annotations

from html import escape

from raynas.report.document import Block, Code, Folded, Picture, Report, Table, Text

_SPECIAL = str.maketrans({"|": "\\|", "\n": " ", "\r": " "})


def render_markdown(report: Report, pictures_folder: str) -> str:
    """The Markdown text of ``report``; picture ``p`` is linked as ``<pictures_folder>/<p.name>.png``."""
    lines = [f"# {_inline(report.title)}", "", f"*{_inline(report.subtitle)}*", ""]
    for section in report.sections:
        lines += [f"## {_inline(section.title)}", ""]
        for block in section.blocks:
            lines += [_block(block, pictures_folder), ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    """``text`` on one line, with the characters Markdown would read as markup escaped (``_`` is left alone:
    GitHub Markdown does not emphasise inside words such as trial ids)."""
    out = []
    for ch in text.replace("\r", " ").replace("\n", " "):
        out.append("\\" + ch if ch in "\\`*[]<>|" else ch)
    return "".join(out)


def _longest_backticks(text: str) -> int:
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return longest


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text``."""
    return "`" * max(3, _longest_backticks(text) + 1)


def _code_span(text: str) -> str:
    """``text`` as an inline code span inside a table cell (pipes escaped, as GFM tables need)."""
    text = text.translate(_SPECIAL)
    fence = "`" * (_longest_backticks(text) + 1)
    return f"{fence} {text} {fence}" if "`" in text else f"{fence}{text}{fence}"


def _block(block: Block, pictures_folder: str) -> str:
    if isinstance(block, Text):
        return _inline(block.text)
    if isinstance(block, Code):
        fence = _fence(block.text)
        return f"{fence}\n{block.text.rstrip()}\n{fence}"
    if isinstance(block, Folded):  # GitHub renders HTML details; the fenced block inside stays Markdown
        fence = _fence(block.text)
        summary = escape(" ".join(block.summary.split()))
        return f"<details><summary>{summary}</summary>\n\n{fence}\n{block.text.rstrip()}\n{fence}\n\n</details>"
    if isinstance(block, Table):
        code = [column in block.code for column in block.columns]
        lines = ["| " + " | ".join(_inline(column) for column in block.columns) + " |",
                 "|" + "|".join("---" for _ in block.columns) + "|"]
        for row in block.rows:
            lines.append("| " + " | ".join(_code_span(value) if is_code and value else _inline(value)
                                           for value, is_code in zip(row, code)) + " |")
        return "\n".join(lines)
    if isinstance(block, Picture):
        return f"![{_inline(block.caption)}]({pictures_folder}/{block.name}.png)"
    raise TypeError(f"unknown report block {type(block).__name__}")
