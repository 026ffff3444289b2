"""The README and docs/ hang together: every relative link reaches a file, every #anchor a heading of it, and
the README stays a guide that starts with the two commands a newcomer runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "cluster" / "README.md"]
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line with inline code removed) of the lines outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, re.sub(r"`[^`]*`", "", line)))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (but - and _), spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor GitHub makes for ``path``'s headings (repeats get -1, -2, ...), and explicit ids."""
    seen: dict[str, int] = {}
    found = set()
    text = path.read_text(encoding="utf-8")
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading and not fenced:
            base = slug(heading.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    found |= set(re.findall(r"""<a\s+(?:id|name)=["']([^"']+)["']""", text))
    return found


def _place(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def links(path: Path) -> list[tuple[str, str]]:
    """(``file:line``, target) of every relative link in ``path``'s prose (web and mail links left out)."""
    found = []
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        for target in _LINK.findall(line):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                found.append((f"{_place(path)}:{number}", target))
    return found


def broken_links(page: Path) -> list[str]:
    """One line per relative link of ``page`` whose file is missing or whose #anchor no heading makes."""
    broken = []
    for place, target in links(page):
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        if not destination.exists():
            broken.append(f"{place}: {target} (no such file)")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{place}: {target} (no heading #{anchor} in {_place(destination)})")
    return broken


def test_the_anchor_rule_matches_githubs() -> None:
    assert slug("Ray: local and on a cluster") == "ray-local-and-on-a-cluster"
    assert slug("Search config (`raynas search`)") == "search-config-raynas-search"
    assert slug("The official files (`benchmark.official`)") == "the-official-files-benchmarkofficial"
    assert slug("`objectives.sd`: self-distillation (SD-DARTS)") == "objectivessd-self-distillation-sd-darts"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = broken_links(page)
    assert not broken, "\n".join(broken)


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    """The check itself can fail: a missing file and a missing heading are reported; links in code are not
    links."""
    (tmp_path / "other.md").write_text("# Other\n\n## Part two\n")
    page = tmp_path / "page.md"
    page.write_text("# Title\n\nSee [a](#title), [b](#nowhere), [c](missing.md), [d](other.md#part-two),\n"
                    "[e](other.md#part-three) and `[f](in-code.md)`.\n```\n[g](fenced.md)\n```\n")
    assert broken_links(page) == ["page.md:3: #nowhere (no heading #nowhere in page.md)",
                                  "page.md:3: missing.md (no such file)",
                                  "page.md:4: other.md#part-three (no heading #part-three in other.md)"]


def test_the_readme_starts_with_the_two_commands_and_stays_a_guide() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block and text.index("```bash") < text.index("\n## "), "the commands come before any section"
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"], commands
    assert "## Contents" in text
    # long reference material belongs in docs/ (the config reference: docs/config.md)
    assert len(text.splitlines()) <= 300, "README.md has grown past a guide: move reference sections to docs/"
