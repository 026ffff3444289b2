"""Which rows of a result table, in which order: a filter expression and column sorting.

Used by ``raynas results --where/--sort`` and the Python API (:func:`raynas.results.load_table`,
:func:`raynas.results.leaderboard`). Filters are written in the small language of
:mod:`raynas.results.filter_expression` (pandas spellings: ``method == 'darts' and seed > 0``, ``num_skip <= 2``,
``genotype.str.contains('nor_conv_3x3')``), compiled to Arrow masks, never evaluated as Python; the rows are
kept from the Arrow table itself, so column types are unchanged. Nothing here imports torch or ray.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import pyarrow as pa

from raynas.errors import ResultsError
from raynas.results.filter_expression import filter_table


def where(table: pa.Table, expression: str, unknown_hint: Optional[str] = None) -> pa.Table:
    """The rows of ``table`` for which ``expression`` is true (a one-line :class:`ResultsError` otherwise,
    ending with ``unknown_hint`` for an unknown column); the language is
    :mod:`raynas.results.filter_expression`, never Python or pandas evaluation."""
    return filter_table(table, expression, unknown_hint=unknown_hint)


def sort(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    """``table`` sorted by ``keys`` (column names, ``-name`` for descending; nulls last), stable."""
    order = []
    for key in keys:
        name, direction = (key[1:], "descending") if key.startswith("-") else (key, "ascending")
        if name not in table.column_names:
            raise ResultsError(f"--sort {key!r}: no column {name!r}; columns: {', '.join(table.column_names)}")
        if pa.types.is_map(table.schema.field(name).type):
            raise ResultsError(f"--sort {key!r}: column {name!r} holds maps and cannot be sorted")
        order.append((name, direction))
    return table.sort_by(order) if order else table


def select_rows(table: pa.Table, *, where_expression: Optional[str] = None, sort_keys: Sequence[str] = (),
                as_pandas: bool = False, unknown_hint: Optional[str] = None) -> Any:
    """``table`` filtered by ``where_expression`` then sorted by ``sort_keys``; a pandas DataFrame with
    ``as_pandas``, else a pyarrow Table. ``unknown_hint`` ends the error for a filter's unknown column."""
    if where_expression:
        table = where(table, where_expression, unknown_hint)
    table = sort(table, sort_keys)
    return table.to_pandas() if as_pandas else table
