"""raynas' modules import each other only downwards: no import circle inside ``raynas/``.

Every import counts: at module level, inside functions (deferred imports that hide a circle from Python but
not from a reader) and under ``if TYPE_CHECKING:``. ``from pkg import name`` counts as an import of
``pkg.name`` when that is a module, else of ``pkg``; a package's ``__init__`` is a module like any other
(an import of it is one of the names it re-exports).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "raynas"


def module_names(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package: dotted name -> file (``pkg/__init__.py`` is ``pkg``)."""
    names = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that module ``name`` (file ``path``) imports, anywhere in its text."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            # the module named, or its nearest package that is one ("raynas.x.name" for a name in raynas.x)
            parts = target.split(".")
            for i in range(len(parts), 0, -1):
                prefix = ".".join(parts[:i])
                if prefix in modules:
                    if prefix != name:
                        found.add(prefix)
                    break
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (parents of an imported module included)."""
    files = module_names(root)
    modules = set(files)
    # An import of raynas.a.b is an edge to raynas.a.b alone, although Python runs raynas.a's __init__ first:
    # a package's __init__ that imports its own submodules would otherwise close a circle with each of them
    return {name: imported_modules(name, path, modules) for name, path in files.items()}


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(circles)


def test_finds_a_circle_through_a_function_level_and_a_type_checking_import(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from raynas.sub import b\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..c import C\n")
    (pkg / "c.py").write_text("from raynas import a\n")
    (pkg / "d.py").write_text("import raynas.c\n")
    assert import_circles(import_graph(tmp_path)) == [["raynas.a", "raynas.c", "raynas.sub.b"]]


def test_no_import_circle_in_raynas():
    circles = import_circles(import_graph())
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


@pytest.mark.parametrize("module", ["raynas.search", "raynas.supernet.base", "raynas.spaces.base"])
def test_the_graph_sees_known_imports(module):
    # the graph is not empty by mistake: these modules import others of the package
    assert import_graph()[module]
