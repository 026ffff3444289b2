"""The row filter language of ``raynas results --where`` and the ``where=`` argument of the Python API.

A filter is parsed with :func:`ast.parse` (``mode="eval"``) and compiled, node by node from a whitelist,
into :mod:`pyarrow.compute` masks over the Arrow table; it is never evaluated as Python, so a filter can
read the table's columns and nothing else. Anything outside the grammar below is a one-line
:class:`~raynas.errors.ResultsError` that names what is not allowed and lists what is.

Grammar (pandas ``DataFrame.eval`` spellings, the subset a filter needs)::

    condition  := condition and condition | condition or condition | not condition
                | condition & condition | condition | condition | ~condition      (& | as and/or, as pandas)
                | ( condition )
                | operand OP operand [OP operand ...]   OP: == != < <= > >= (chained: 0 < seed <= 2)
                | column in [literal, ...] | column not in [literal, ...]   (a list or a tuple)
                | column == [literal, ...] | column != [literal, ...]     (pandas: the same as in / not in)
                | column.isin([literal, ...])
                | column.between(low, high[, inclusive='both'|'neither'|'left'|'right'])
                | column.isnull() | column.isna() | column.notnull() | column.notna()
                | column.str.contains('text'[, case=True|False][, regex=True|False])
                | column.str.startswith('text') | column.str.endswith('text')
                | column                                      (a true/false column, e.g. connected)
    operand    := column | literal
    column     := name | `any name`                           (backticks, as pandas)
    literal    := integer | float | -number | 'string' | "string" | True | False | None

Semantics follow pandas: a comparison with a missing value (null, NaN) is false, except ``!=`` which is
true (``a != b`` is ``not (a == b)``); ``column == None`` and ``column != None`` test for missing values
(``isnull``/``notnull``, NaN counts as missing); ``str.contains`` takes a regular expression unless
``regex=False`` (RE2 syntax: no look-arounds or back-references); ``between`` includes both ends by
default. Numbers compare with number columns, strings with string columns, True/False with true/false
columns (only ``==`` and ``!=``); columns of lists or maps only take the missing-value tests.

Limits: :data:`MAX_LENGTH` characters and :data:`MAX_DEPTH` levels of nesting. Nothing here imports
pandas, torch or ray.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import pyarrow as pa
import pyarrow.compute as pc

from raynas.errors import ResultsError

MAX_LENGTH = 1000
"""Longest filter accepted, in characters."""

MAX_DEPTH = 32
"""Deepest nesting of conditions and operands accepted (``and``/``or`` chains count once)."""

ALLOWED = ("comparisons (== != < <= > >=, chained), and/or/not (also & | ~), column names (`odd name` in "
           "backticks), numbers, 'strings', True/False/None, column in [...] / not in [...], column.isin([...]), "
           "column.between(low, high), column.isnull()/notnull(), "
           "column.str.contains/startswith/endswith('text')")
"""The grammar in one line, for error messages (the module docstring has it in full)."""

Mask = Callable[[pa.Table], Union[pa.Array, pa.ChunkedArray]]
"""A compiled condition: the table -> one true/false value per row, no nulls."""

_BACKTICK = "_raynas_backtick_"  # placeholder names of backtick-quoted columns (Python has no such token)
_NULL_TESTS = {"isnull": True, "isna": True, "notnull": False, "notna": False}  # method -> true where missing
_STRING_METHODS = ("contains", "startswith", "endswith")
_METHODS = ("isin", "between", *_NULL_TESTS)
_COMPARE = {ast.Eq: "equal", ast.NotEq: "not_equal", ast.Lt: "less", ast.LtE: "less_equal", ast.Gt: "greater",
            ast.GtE: "greater_equal"}
_FLIPPED = {ast.Eq: ast.Eq, ast.NotEq: ast.NotEq, ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt,
            ast.GtE: ast.LtE}  # literal OP column -> column FLIPPED[OP] literal
_SYMBOL = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.In: "in",
           ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}
_INCLUSIVE = {"both": (ast.GtE, ast.LtE), "neither": (ast.Gt, ast.Lt), "left": (ast.GtE, ast.Lt),
              "right": (ast.Gt, ast.LtE)}  # between(low, high): column ABOVE low and column BELOW high
# names for the constructs people try most, in messages; others use their ast class name
_REFUSED = {ast.Subscript: "subscripts (x[...])", ast.Lambda: "lambda", ast.ListComp: "comprehensions",
            ast.SetComp: "comprehensions", ast.DictComp: "comprehensions", ast.GeneratorExp: "comprehensions",
            ast.JoinedStr: "f-strings", ast.FormattedValue: "f-strings", ast.BinOp: "arithmetic",
            ast.IfExp: "conditional expressions (x if c else y)", ast.NamedExpr: "assignments (:=)",
            ast.Starred: "starred expressions (*x)", ast.Dict: "dicts", ast.Set: "sets", ast.Await: "await",
            ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "slices", ast.List: "lists outside in/isin",
            ast.Tuple: "tuples outside in/isin", ast.Call: "a call as a compared value"}


@dataclass(frozen=True)
class _Column:
    name: str
    type: pa.DataType


@dataclass(frozen=True)
class _Literal:
    value: Any  # int, float, str, bool or None


_Operand = Union[_Column, _Literal]


def _kind(type_: pa.DataType) -> str:
    """What a column's values compare with: number, string, bool, or a kind that compares with nothing."""
    if pa.types.is_integer(type_) or pa.types.is_floating(type_):
        return "number"
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "string"
    if pa.types.is_boolean(type_):
        return "bool"
    if pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_):
        return "list"
    if pa.types.is_map(type_):
        return "map"
    return str(type_)


def _literal_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, (int, float)) else "string"


def _shown(expression: str) -> str:
    return repr(expression if len(expression) <= 80 else expression[:77] + "...")


def _prepare(expression: str) -> tuple[str, dict[str, str]]:
    """Python source for ``expression``: ``&``/``|`` as ``and``/``or`` (pandas gives them that precedence),
    backtick-quoted names as placeholder names; ``@`` (pandas' local variables) refused. String literals
    are copied untouched; a wrong split here can only make the parse fail or a name unknown, since what the
    source may do is decided by the whitelist after parsing."""
    out: list[str] = []
    names: dict[str, str] = {}
    i, n = 0, len(expression)
    while i < n:
        char = expression[i]
        if char in "'\"":
            quote = char * 3 if expression.startswith(char * 3, i) else char
            end = i + len(quote)
            while end < n and not expression.startswith(quote, end):
                end += 2 if expression[end] == "\\" else 1
            end = min(end + len(quote), n)
            out.append(expression[i:end])
            i = end
        elif char == "`":
            end = expression.find("`", i + 1)
            if end < 0:
                raise ResultsError(f"--where {_shown(expression)}: a backtick-quoted name has no closing `")
            placeholder = f"{_BACKTICK}{len(names)}"
            names[placeholder] = expression[i + 1:end]
            out.append(f" {placeholder} ")
            i = end + 1
        elif char == "@":
            raise ResultsError(f"--where {_shown(expression)}: @ (local variables) is not allowed; allowed: {ALLOWED}")
        else:
            out.append({"&": " and ", "|": " or "}.get(char, char))
            i += 1
    return "".join(out), names


class _Compiler:
    """One filter against one schema: every node checked against the grammar and the column types."""

    def __init__(self, expression: str, source: str, names: dict[str, str], schema: pa.Schema,
                 unknown_hint: Optional[str] = None):
        self.expression = expression
        self.source = source
        self.names = names
        self.schema = schema
        self.unknown_hint = unknown_hint

    # -- errors -----------------------------------------------------------------------------------------------
    def error(self, problem: str) -> ResultsError:
        return ResultsError(f"--where {_shown(self.expression)}: {problem}")

    def text(self, node: ast.AST) -> str:
        """The source of ``node`` as the user wrote it (backticks restored), shortened."""
        segment = ast.get_source_segment(self.source, node) or type(node).__name__
        for placeholder, name in self.names.items():
            segment = segment.replace(placeholder, f"`{name}`")
        segment = " ".join(segment.split())
        return segment if len(segment) <= 40 else segment[:37] + "..."

    def refused(self, node: ast.AST, what: Optional[str] = None) -> ResultsError:
        what = what or _REFUSED.get(type(node), f"{type(node).__name__} expressions")
        return self.error(f"{what} not allowed ({self.text(node)}); allowed: {ALLOWED}")

    def columns(self) -> str:
        return ", ".join(self.schema.names)

    # -- conditions -------------------------------------------------------------------------------------------
    def condition(self, node: ast.AST, depth: int) -> Mask:
        if depth > MAX_DEPTH:
            raise self.error(f"nested deeper than {MAX_DEPTH} levels; simplify the filter")
        if isinstance(node, ast.BoolOp):
            parts = [self.condition(value, depth + 1) for value in node.values]
            combine = pc.and_ if isinstance(node.op, ast.And) else pc.or_
            return lambda table: _reduce(combine, [part(table) for part in parts])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
            inner = self.condition(node.operand, depth + 1)
            return lambda table: pc.invert(inner(table))
        if isinstance(node, ast.Compare):
            return self.compare(node, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, ast.Name):
            column = self.column(node)
            if _kind(column.type) != "bool":
                raise self.error(f"column {column.name!r} ({column.type}) is not a true/false condition; compare "
                                 f"it, e.g. {column.name} > 0")
            return lambda table: pc.fill_null(table[column.name], False)
        if isinstance(node, ast.Constant):
            raise self.error(f"{self.text(node)} alone is not a condition on the rows; compare a column, "
                             "e.g. \"method == 'darts' and seed > 0\"")
        raise self.refused(node)

    def compare(self, node: ast.Compare, depth: int) -> Mask:
        left = node.left
        parts = []
        for op, right in zip(node.ops, node.comparators):
            parts.append(self.pair(left, op, right, node, depth + 1))
            left = right
        return parts[0] if len(parts) == 1 else (lambda table: _reduce(pc.and_, [part(table) for part in parts]))

    def pair(self, left: ast.AST, op: ast.cmpop, right: ast.AST, node: ast.AST, depth: int) -> Mask:
        symbol = _SYMBOL.get(type(op), type(op).__name__)
        if isinstance(op, (ast.Is, ast.IsNot)):
            raise self.refused(node, f"'{symbol}' (for missing values: column == None, column.isnull())")
        listed = isinstance(right, (ast.List, ast.Tuple))
        if isinstance(op, (ast.In, ast.NotIn)) or (listed and isinstance(op, (ast.Eq, ast.NotEq))):
            column = self.operand(left, depth)
            if not isinstance(column, _Column) or not listed:
                raise self.error(f"'{symbol}' needs a column on the left and a list of literals on the right, "
                                 f"e.g. method in ['darts', 'pcdarts'] ({self.text(node)})")
            member = self.members(column, right, depth)
            return (lambda table: pc.invert(member(table))) if isinstance(op, (ast.NotIn, ast.NotEq)) else member
        a, b = self.operand(left, depth), self.operand(right, depth)
        if isinstance(a, _Literal) and isinstance(b, _Literal):
            raise self.error(f"{self.text(node)} compares two literals; one side must be a column")
        if isinstance(a, _Literal):
            a, b, op = b, a, _FLIPPED[type(op)]()
        assert isinstance(a, _Column)
        return self.comparison(a, op, b, node)

    def comparison(self, column: _Column, op: ast.cmpop, other: _Operand, node: ast.AST) -> Mask:
        """``column OP other`` with pandas' missing-value rule (false, except != which is true)."""
        if isinstance(other, _Literal) and other.value is None:
            if not isinstance(op, (ast.Eq, ast.NotEq)):
                raise self.error(f"{self.text(node)}: None only compares with == or != (a missing-value test)")
            return self.null_test(column, missing=isinstance(op, ast.Eq))
        kind = _kind(column.type)
        other_kind = _kind(other.type) if isinstance(other, _Column) else _literal_kind(other.value)
        if kind not in ("number", "string", "bool"):
            raise self.error(f"column {column.name!r} holds {kind} values, which do not compare; only "
                             f"{column.name}.isnull() / notnull() apply to it")
        if other_kind != kind:
            shown = other.name if isinstance(other, _Column) else repr(other.value)
            raise self.error(f"{self.text(node)}: column {column.name!r} ({column.type}) does not compare with "
                             f"{shown} ({other_kind}); numbers compare with number columns, 'strings' with "
                             "string columns, True/False with true/false columns")
        if kind == "bool" and not isinstance(op, (ast.Eq, ast.NotEq)):
            raise self.error(f"{self.text(node)}: true/false columns only compare with == and !=")
        value = other if isinstance(other, _Column) else self.scalar(column, other.value, node)
        if isinstance(op, ast.NotEq):  # pandas: a missing value is unequal to everything
            return lambda table: pc.invert(pc.fill_null(pc.equal(table[column.name], _resolve(value, table)), False))
        function = getattr(pc, _COMPARE[type(op)])
        return lambda table: pc.fill_null(function(table[column.name], _resolve(value, table)), False)

    def scalar(self, column: _Column, value: Any, node: ast.AST) -> pa.Scalar:
        """A literal as an Arrow scalar; a float against a float32 column is rounded to float32 first, as
        numpy compares a Python float with a float32 array."""
        type_ = column.type if pa.types.is_floating(column.type) and isinstance(value, (int, float)) else None
        try:
            return pa.scalar(value, type=type_)
        except (OverflowError, pa.ArrowException) as exc:
            raise self.error(f"{self.text(node)}: {value!r} does not fit a {column.type} comparison ({exc})") from None

    def null_test(self, column: _Column, *, missing: bool) -> Mask:
        nan_is_null = pa.types.is_floating(column.type)
        if missing:
            return lambda table: pc.is_null(table[column.name], nan_is_null=nan_is_null)
        return lambda table: pc.invert(pc.is_null(table[column.name], nan_is_null=nan_is_null))

    def members(self, column: _Column, node: ast.AST, depth: int) -> Mask:
        """``column`` is one of the literals of list/tuple ``node`` (None: a missing value)."""
        if not isinstance(node, (ast.List, ast.Tuple)):
            raise self.error(f"{self.text(node)}: expected a list of literals, e.g. ['darts', 'pcdarts']")
        parts = []
        for item in node.elts:
            literal = self.operand(item, depth + 1)
            if not isinstance(literal, _Literal):
                raise self.error(f"{self.text(node)}: a list holds literals only, not column {literal.name!r}")
            parts.append(self.comparison(column, ast.Eq(), literal, item))
        if not parts:
            return lambda table: pc.fill_null(pa.nulls(table.num_rows, pa.bool_()), False)
        return lambda table: _reduce(pc.or_, [part(table) for part in parts])

    # -- method calls -----------------------------------------------------------------------------------------
    def call(self, node: ast.Call, depth: int) -> Mask:
        func = node.func
        if not isinstance(func, ast.Attribute):
            raise self.refused(node, "calls other than the listed methods")
        method = func.attr
        target = func.value
        if isinstance(target, ast.Attribute) and target.attr == "str" and method in _STRING_METHODS:
            column = self.method_column(target.value, node, depth)
            if _kind(column.type) != "string":
                raise self.error(f"{self.text(node)}: .str.{method} needs a string column; {column.name!r} is "
                                 f"{column.type}")
            return self.string_method(column, method, node)
        if method not in _METHODS:
            raise self.refused(node, f"method .{method}()")
        column = self.method_column(target, node, depth)
        if method in _NULL_TESTS:
            self.arguments(node, 0, ())
            return self.null_test(column, missing=_NULL_TESTS[method])
        if method == "isin":
            (values,), _ = self.arguments(node, 1, ())
            return self.members(column, values, depth)
        (low, high), keywords = self.arguments(node, 2, ("inclusive",))
        inclusive = keywords.get("inclusive", "both")
        if inclusive not in _INCLUSIVE:
            raise self.error(f"{self.text(node)}: inclusive must be one of {', '.join(map(repr, _INCLUSIVE))}")
        ops = [self.literal(low, depth), self.literal(high, depth)]
        above, below = (op() for op in _INCLUSIVE[inclusive])
        lower = self.comparison(column, above, ops[0], node)
        upper = self.comparison(column, below, ops[1], node)
        return lambda table: pc.and_(lower(table), upper(table))

    def string_method(self, column: _Column, method: str, node: ast.Call) -> Mask:
        if method == "contains":
            (pattern,), keywords = self.arguments(node, 1, ("case", "regex"))
        else:
            (pattern,), keywords = self.arguments(node, 1, ())
        text = self.literal(pattern, 0).value
        if not isinstance(text, str):
            raise self.error(f"{self.text(node)}: .str.{method} takes a 'string'")
        if method == "startswith":
            return lambda table: pc.fill_null(pc.starts_with(table[column.name], text), False)
        if method == "endswith":
            return lambda table: pc.fill_null(pc.ends_with(table[column.name], text), False)
        for name in ("case", "regex"):
            if not isinstance(keywords.get(name, True), bool):
                raise self.error(f"{self.text(node)}: {name}= takes True or False")
        ignore_case = not keywords.get("case", True)
        match = pc.match_substring_regex if keywords.get("regex", True) else pc.match_substring
        return lambda table: pc.fill_null(match(table[column.name], text, ignore_case=ignore_case), False)

    def method_column(self, node: ast.AST, call: ast.AST, depth: int) -> _Column:
        operand = self.operand(node, depth + 1)
        if not isinstance(operand, _Column):
            raise self.error(f"{self.text(call)}: methods apply to a column, e.g. method.isin(['darts'])")
        return operand

    def arguments(self, node: ast.Call, count: int, keyword_names: tuple[str, ...]) -> tuple[list, dict]:
        """The positional argument nodes and keyword literal values of a method call, checked."""
        name = self.text(node.func)
        if len(node.args) != count or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.error(f"{name}() takes {count} argument{'s' if count != 1 else ''} ({self.text(node)})")
        keywords = {}
        for keyword in node.keywords:
            if keyword.arg not in keyword_names:
                allowed = ", ".join(f"{k}=" for k in keyword_names) or "none"
                raise self.error(f"{name}(): keyword {keyword.arg or '**'}= not allowed; keywords: {allowed}")
            keywords[keyword.arg] = self.literal(keyword.value, 0).value
        return list(node.args), keywords

    # -- operands ---------------------------------------------------------------------------------------------
    def operand(self, node: ast.AST, depth: int) -> _Operand:
        if depth > MAX_DEPTH:
            raise self.error(f"nested deeper than {MAX_DEPTH} levels; simplify the filter")
        if isinstance(node, ast.Name):
            return self.column(node)
        return self.literal(node, depth)

    def literal(self, node: ast.AST, depth: int) -> _Literal:
        if depth > MAX_DEPTH:
            raise self.error(f"nested deeper than {MAX_DEPTH} levels; simplify the filter")
        if isinstance(node, ast.Constant):
            if node.value is None or isinstance(node.value, (bool, int, float, str)):
                return _Literal(node.value)
            raise self.refused(node, f"{type(node.value).__name__} literals")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = self.literal(node.operand, depth + 1).value
            if isinstance(inner, bool) or not isinstance(inner, (int, float)):
                raise self.refused(node, "a sign on anything but a number")
            return _Literal(-inner if isinstance(node.op, ast.USub) else inner)
        if isinstance(node, ast.Name):
            raise self.error(f"{self.text(node)}: expected a literal here, not a column")
        if isinstance(node, ast.Attribute):
            raise self.refused(node, f"attribute .{node.attr}")
        raise self.refused(node)

    def column(self, node: ast.Name) -> _Column:
        name = self.names.get(node.id, node.id)
        if name not in self.schema.names:
            hint = f" ({self.unknown_hint})" if self.unknown_hint else ""
            raise self.error(f"unknown column {name!r}; columns: {self.columns()}{hint}")
        return _Column(name, self.schema.field(name).type)


def _resolve(value: Union[_Column, pa.Scalar], table: pa.Table) -> Any:
    return table[value.name] if isinstance(value, _Column) else value


def _reduce(combine: Callable, masks: list) -> Any:
    result = masks[0]
    for mask in masks[1:]:
        result = combine(result, mask)
    return result


def compile_filter(expression: str, schema: pa.Schema, *, unknown_hint: Optional[str] = None) -> Mask:
    """Check ``expression`` against the grammar and ``schema`` (column names and types) and compile it to a
    function from a table of that schema to its row mask. Raises a one-line :class:`ResultsError`; one for an
    unknown column ends with ``unknown_hint`` (where else such a name may be found)."""
    if not isinstance(expression, str):
        raise ResultsError(f"--where {expression!r}: must be a string, e.g. \"method == 'darts' and seed > 0\"")
    if len(expression) > MAX_LENGTH:
        raise ResultsError(f"--where {_shown(expression)}: {len(expression)} characters; at most {MAX_LENGTH}")
    source, names = _prepare(expression)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        detail = " ".join(str(exc.msg).split())
        raise ResultsError(f"--where {_shown(expression)}: not a valid expression ({detail}); allowed: {ALLOWED}") \
            from None
    except (RecursionError, MemoryError, ValueError):
        raise ResultsError(f"--where {_shown(expression)}: nested deeper than {MAX_DEPTH} levels; "
                           "simplify the filter") from None
    compiler = _Compiler(expression, source.strip(), names, schema, unknown_hint)
    return compiler.condition(tree.body, 1)


def filter_table(table: pa.Table, expression: str, *, unknown_hint: Optional[str] = None) -> pa.Table:
    """The rows of ``table`` for which ``expression`` (the grammar of this module) holds; the column types
    are unchanged. A blank expression keeps every row. ``unknown_hint``: see :func:`compile_filter`."""
    if isinstance(expression, str) and not expression.strip():
        return table
    mask = compile_filter(expression, table.schema, unknown_hint=unknown_hint)
    try:
        return table.filter(mask(table))
    except pa.ArrowException as exc:  # e.g. a regular expression RE2 does not take
        detail = " ".join(str(exc).split())
        raise ResultsError(f"--where {_shown(expression)}: {detail}") from None


__all__ = ["ALLOWED", "MAX_DEPTH", "MAX_LENGTH", "Mask", "compile_filter", "filter_table"]
