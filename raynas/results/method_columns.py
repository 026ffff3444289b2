"""The epochs table's method metrics as columns of their own.

A trial's report keys without a named column (``discretization_gap``, ``e2nas_eta``, ``state_fingerprint``,
...) are stored in the epochs table's ``extra`` map, so that a method can add metrics without a schema
change. Readers see each of them as a float column named after its key, so a filter or a sort can name it
(``--where "discretization_gap > 0.5"``); the ``extra`` column stays for code that reads it. A key that is
also a named column (a metric stored in ``extra`` by a raynas that did not have the column yet) fills that
column's missing values instead. Nothing here imports torch or ray.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

EXTRA = "extra"


def method_metric_names(epochs: pa.Table) -> list[str]:
    """The keys of the ``extra`` maps of ``epochs``, in the order they first appear."""
    if EXTRA not in epochs.column_names:
        return []
    return list(dict.fromkeys(key for pairs in epochs[EXTRA].to_pylist() for key, _ in pairs or ()))


def with_method_columns(epochs: pa.Table) -> pa.Table:
    """``epochs`` with a float64 column per key of its ``extra`` maps (null where a row lacks the key), after
    its other columns; keys that name an existing column fill its nulls. A table without ``extra`` or with
    empty maps comes back unchanged."""
    names = method_metric_names(epochs)
    if not names:
        return epochs
    maps = [dict(pairs or ()) for pairs in epochs[EXTRA].to_pylist()]
    for name in names:
        values = pa.array([row.get(name) for row in maps], pa.float64())
        if name in epochs.column_names:
            column = epochs[name]
            if not pa.types.is_floating(column.type) or not column.null_count:
                continue
            index = epochs.column_names.index(name)
            epochs = epochs.set_column(index, epochs.schema.field(name), pc.coalesce(column, values))
        else:
            epochs = epochs.append_column(pa.field(name, pa.float64()), values)
    return epochs
