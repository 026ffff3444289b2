"""Genotypes: the discrete architectures of the DARTS family, in their published text formats.

``DartsGenotype`` prints as the DARTS repository's ``Genotype(normal=[...], normal_concat=[...], ...)`` and
``NB201Genotype`` as the NAS-Bench-201 arch string ``|op~0|+|op~0|op~1|+|...|``. Both parse their own text
back (safely: the DARTS text is read from its syntax tree, never evaluated). Neither checks op names or
node ranges against a search space; ``SearchSpace.validate_genotype`` does that.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Union

from raynas.errors import GenotypeError

Edge = tuple[str, int]

DARTS_FORMAT = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5], "
                "reduce=[...], reduce_concat=[2, 3, 4, 5])")
NB201_FORMAT = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"

_DARTS_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")

#: the longest genotype text read (a DARTS genotype is about 400 characters)
MAX_GENOTYPE_CHARS = 20_000
#: the most nodes a concat may list (a DARTS cell concatenates 4); ``range(0, 10**12)`` must not be built
MAX_CONCAT_NODES = 100
#: the most digits of an NB201 source node number
_MAX_SOURCE_DIGITS = 6


def _check_length(text: str, what: str) -> None:
    """Refuse a text too long to be a genotype before parsing it."""
    if len(text) > MAX_GENOTYPE_CHARS:
        raise GenotypeError(f"{what}: {len(text)} characters; a genotype text may have at most "
                            f"{MAX_GENOTYPE_CHARS}")


def _format_edges(edges: tuple[Edge, ...]) -> str:
    return "[" + ", ".join(f"({op!r}, {src})" for op, src in edges) + "]"


def _format_ints(values: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


@dataclass(frozen=True)
class DartsGenotype:
    """A DARTS-space genotype: per cell type the ``(op, src)`` pairs (two per intermediate node, in node
    order) and the nodes concatenated into the cell output."""

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]

    #: the cell names accepted by :meth:`count` and :meth:`cell`
    CELLS = ("normal", "reduce")

    def __post_init__(self) -> None:
        # normalise lists to tuples so that equal genotypes compare and hash equal
        object.__setattr__(self, "normal", tuple((str(op), int(src)) for op, src in self.normal))
        object.__setattr__(self, "reduce", tuple((str(op), int(src)) for op, src in self.reduce))
        object.__setattr__(self, "normal_concat", tuple(int(i) for i in self.normal_concat))
        object.__setattr__(self, "reduce_concat", tuple(int(i) for i in self.reduce_concat))

    def __str__(self) -> str:
        return (f"Genotype(normal={_format_edges(self.normal)}, normal_concat={_format_ints(self.normal_concat)}, "
                f"reduce={_format_edges(self.reduce)}, reduce_concat={_format_ints(self.reduce_concat)})")

    def cell(self, name: str) -> tuple[Edge, ...]:
        """The ``(op, src)`` pairs of cell ``name`` ("normal" or "reduce")."""
        if name not in self.CELLS:
            raise GenotypeError(f"a DARTS genotype has no cell {name!r}; valid: {', '.join(self.CELLS)}")
        return self.normal if name == "normal" else self.reduce

    def concat(self, name: str) -> tuple[int, ...]:
        """The nodes concatenated into the output of cell ``name``."""
        self.cell(name)
        return self.normal_concat if name == "normal" else self.reduce_concat

    def count(self, op: str, cell: str | None = None) -> int:
        """How many times ``op`` appears in cell ``cell`` (None: in both cells)."""
        cells = self.CELLS if cell is None else (cell,)
        return sum(1 for name in cells for edge_op, _ in self.cell(name) if edge_op == op)

    @classmethod
    def parse(cls, text: str) -> "DartsGenotype":
        """Parse the DARTS repository's text (``Genotype(...)``; the name is optional, whitespace and
        newlines are ignored and a concat may be written ``range(2, 6)``)."""
        return _DartsParser(text).parse()


class _DartsParser:
    """Reads a DARTS genotype from the syntax tree of its text; only literal nodes are accepted."""

    def __init__(self, text: Any) -> None:
        self.text = text

    def fail(self, what: str) -> GenotypeError:
        return GenotypeError(f"malformed DARTS genotype: {what}; expected {DARTS_FORMAT}")

    def parse(self) -> DartsGenotype:
        if not isinstance(self.text, str):
            raise self.fail(f"expected a string, got {type(self.text).__name__}")
        _check_length(self.text, "malformed DARTS genotype")
        source = self.text.strip()
        if source.startswith("("):
            source = "Genotype" + source
        elif source.startswith("normal"):
            source = f"Genotype({source})"
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError as exc:
            raise self.fail(f"not valid syntax ({exc.msg} at column {exc.offset})") from None
        call = tree.body
        if not isinstance(call, ast.Call) or not self._is_genotype_name(call.func):
            raise self.fail("the text is not a Genotype(...) call")
        if len(call.args) > len(_DARTS_FIELDS):
            raise self.fail(f"{len(call.args)} positional values, at most {len(_DARTS_FIELDS)}")
        values: dict[str, ast.expr] = dict(zip(_DARTS_FIELDS, call.args))
        for keyword in call.keywords:
            if keyword.arg not in _DARTS_FIELDS:
                raise self.fail(f"unknown field {keyword.arg!r}; fields: {', '.join(_DARTS_FIELDS)}")
            if keyword.arg in values:
                raise self.fail(f"field {keyword.arg!r} given twice")
            values[keyword.arg] = keyword.value
        missing = [name for name in _DARTS_FIELDS if name not in values]
        if missing:
            raise self.fail(f"missing field(s) {', '.join(missing)}")
        return DartsGenotype(
            normal=self._edges("normal", values["normal"]),
            normal_concat=self._concat("normal_concat", values["normal_concat"]),
            reduce=self._edges("reduce", values["reduce"]),
            reduce_concat=self._concat("reduce_concat", values["reduce_concat"]),
        )

    @staticmethod
    def _is_genotype_name(func: ast.expr) -> bool:
        return (isinstance(func, ast.Name) and func.id == "Genotype") or (
            isinstance(func, ast.Attribute) and func.attr == "Genotype")

    def _literal(self, field: str, node: ast.expr) -> Any:
        try:
            return ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError):
            raise self.fail(f"{field} must be a literal list, got {ast.unparse(node)!r}") from None

    def _edges(self, field: str, node: ast.expr) -> tuple[Edge, ...]:
        value = self._literal(field, node)
        if not isinstance(value, (list, tuple)):
            raise self.fail(f"{field} must be a list of (op, src) pairs, got {value!r}")
        edges = []
        for position, item in enumerate(value):
            if (not isinstance(item, (list, tuple)) or len(item) != 2 or not isinstance(item[0], str)
                    or not isinstance(item[1], int) or isinstance(item[1], bool) or item[1] < 0):
                raise self.fail(f"{field}[{position}] = {item!r} is not an (op name, source node >= 0) pair")
            edges.append((item[0], item[1]))
        return tuple(edges)

    def _concat(self, field: str, node: ast.expr) -> tuple[int, ...]:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            bounds = [self._literal(field, arg) for arg in node.args]
            if node.keywords or not 1 <= len(bounds) <= 2 or not all(
                    isinstance(b, int) and not isinstance(b, bool) for b in bounds):
                raise self.fail(f"{field} = {ast.unparse(node)} is not range(start, stop) with integers")
            nodes = range(*bounds)
            if len(nodes) > MAX_CONCAT_NODES:
                raise self.fail(f"{field} = {ast.unparse(node)} has {len(nodes)} nodes; a concat may have at "
                                f"most {MAX_CONCAT_NODES}")
            return tuple(nodes)
        value = self._literal(field, node)
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise self.fail(f"{field} must be a list of node indices, got {value!r}")
        if len(value) > MAX_CONCAT_NODES:
            raise self.fail(f"{field} has {len(value)} nodes; a concat may have at most {MAX_CONCAT_NODES}")
        return tuple(value)


@dataclass(frozen=True)
class NB201Genotype:
    """A NAS-Bench-201 cell: ``nodes[j-1]`` holds the ``(op, src)`` pairs into node ``j``, src ascending."""

    nodes: tuple[tuple[Edge, ...], ...]

    #: the cell names accepted by :meth:`count`
    CELLS = ("cell",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(tuple((str(op), int(src)) for op, src in node)
                                                for node in self.nodes))

    def __str__(self) -> str:
        return "+".join("|" + "".join(f"{op}~{src}|" for op, src in node) for node in self.nodes)

    def edges(self) -> list[tuple[str, int, int]]:
        """Every edge as ``(op, src, dst)`` in node order."""
        return [(op, src, dst) for dst, node in enumerate(self.nodes, start=1) for op, src in node]

    def count(self, op: str, cell: str | None = None) -> int:
        """How many edges carry ``op`` (``cell`` may be None or "cell", the only cell)."""
        if cell is not None and cell not in self.CELLS:
            raise GenotypeError(f"an NB201 genotype has no cell {cell!r}; valid: cell")
        return sum(1 for edge_op, _, _ in self.edges() if edge_op == op)

    @classmethod
    def parse(cls, text: str) -> "NB201Genotype":
        """Parse an NB201 arch string such as ``|nor_conv_3x3~0|+|skip_connect~0|none~1|+|...|``."""
        def fail(what: str) -> GenotypeError:
            return GenotypeError(f"malformed NB201 arch string: {what}; expected {NB201_FORMAT}")

        if not isinstance(text, str):
            raise fail(f"expected a string, got {type(text).__name__}")
        _check_length(text, "malformed NB201 arch string")
        source = "".join(text.split())
        if not source:
            raise fail("the text is empty")
        nodes = []
        for number, part in enumerate(source.split("+"), start=1):
            if len(part) < 2 or not part.startswith("|") or not part.endswith("|"):
                raise fail(f"node {number} {part!r} must be written |op~src|...|")
            node = []
            for token in part[1:-1].split("|"):
                op, sep, src = token.partition("~")
                # isascii: str.isdigit() also accepts digits int() refuses, such as '²'
                if not sep or not op or not (src.isascii() and src.isdigit()) or len(src) > _MAX_SOURCE_DIGITS:
                    shown = token if len(token) <= 40 else token[:37] + "..."
                    raise fail(f"node {number} entry {shown!r} is not op~src with a source node number "
                               f"(at most {_MAX_SOURCE_DIGITS} digits)")
                node.append((op, int(src)))
            nodes.append(tuple(node))
        return cls(nodes=tuple(nodes))


#: any genotype raynas knows
Genotype = Union[DartsGenotype, NB201Genotype]


def parse_genotype(text: str) -> Genotype:
    """Parse either published format: an NB201 arch string (starts with ``|``) or a DARTS ``Genotype(...)``."""
    if not isinstance(text, str):
        raise GenotypeError(f"a genotype must be text, got {type(text).__name__}; expected {DARTS_FORMAT} "
                            f"or {NB201_FORMAT}")
    source = text.strip()
    if source.startswith("|"):
        return NB201Genotype.parse(text)
    if "Genotype" in source or source.startswith(("normal", "(")):
        return DartsGenotype.parse(text)
    shown = source if len(source) <= 60 else source[:57] + "..."
    raise GenotypeError(f"unrecognised genotype text {shown!r}; expected a DARTS genotype {DARTS_FORMAT} "
                        f"or an NB201 arch string {NB201_FORMAT}")
