"""The table checks of ``tools/fault_injection.py``: a resumed run's tables against a reference run's.

A row is named by its key with the trial id replaced by the trial's index in the population (the ``_00001``
end of a Tune trial id: the grid order, the same in every run of one config), so a run and its reference,
whose trial ids differ, can be compared row by row. For a search the rows are those of the ``epochs``,
``genotypes``, ``alphas`` and ``trials`` tables; for a ``raynas train`` run they are the (trial, epoch)
entries of the ``evaluations`` table's per-epoch lists and its one row per trial.

* lost: keys of the reference that the run does not hold;
* duplicated: rows beyond one per key of the reference (a key twice, or a key the reference does not have:
  a trial run again under a new id, an epoch past the end);
* differing: keys of both whose values differ (the metrics, the genotype, the architecture weights; a
  resumed trial is meant to equal an uninterrupted one number for number on the CPU).

Nothing here starts a process or imports Ray.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pyarrow.parquet as pq

SEARCH_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # table -> (key columns after the trial, value columns compared with the reference)
    "epochs": (("epoch",), ("train_loss", "train_acc", "val_loss", "val_acc", "derived_val_loss",
                            "derived_val_acc")),
    "genotypes": (("epoch",), ("genotype", "num_skip", "connected")),
    "alphas": (("epoch", "cell", "edge", "op"), ("alpha", "weight")),
    "trials": ((), ("status", "epochs_done", "genotype", "final_train_loss")),
}
TRAIN_CURVES = ("epoch_train_loss", "epoch_train_acc", "epoch_test_loss", "epoch_test_acc")
"""The per-epoch lists of an evaluations row compared with the reference (one entry per epoch)."""


@dataclass
class TableCheck:
    """What one run's tables hold against its reference's."""

    expected: int = 0
    lost: int = 0
    duplicated: int = 0
    differing: int = 0
    problems: list[str] = field(default_factory=list)  # the first few lost/duplicated/differing keys, named

    def add(self, other: "TableCheck") -> None:
        """Fold ``other`` (another table's check) into this one."""
        self.expected += other.expected
        self.lost += other.lost
        self.duplicated += other.duplicated
        self.differing += other.differing
        self.problems.extend(other.problems)

    def as_dict(self) -> dict[str, Any]:
        """The check as plain data (at most 10 problems)."""
        return {**asdict(self), "problems": self.problems[:10]}


def trial_index(trial_id: str) -> str:
    """A trial's index in its population: the part of its Tune id after the last ``_`` (``00001``)."""
    return str(trial_id).rsplit("_", 1)[-1]


def _read(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist() if path.is_file() else []


def _keyed(rows: Iterable[dict[str, Any]], key: tuple[str, ...]) -> list[tuple[tuple, dict[str, Any]]]:
    return [((trial_index(row["trial_id"]), *(row[name] for name in key)), row) for row in rows]


def compare_rows(name: str, run: list[tuple[tuple, dict[str, Any]]], reference: list[tuple[tuple, dict[str, Any]]],
                 values: tuple[str, ...]) -> TableCheck:
    """Lost, duplicated and differing keys of ``run`` against ``reference`` (both: (key, row) pairs)."""
    expected = dict(reference)
    counts = Counter(key for key, _ in run)
    check = TableCheck(expected=len(expected))
    for key in sorted(set(expected) - set(counts), key=str):
        check.lost += 1
        check.problems.append(f"{name} {key} lost")
    for key, count in sorted(counts.items(), key=lambda item: str(item[0])):
        extra = count - 1 if key in expected else count
        if extra:
            check.duplicated += extra
            check.problems.append(f"{name} {key} " + (f"{count} times" if key in expected else "not in the reference"))
    seen = set()
    for key, row in run:
        if key in expected and key not in seen:
            seen.add(key)
            changed = [v for v in values if row.get(v) != expected[key].get(v)]
            if changed:
                check.differing += 1
                check.problems.append(f"{name} {key} differs in {', '.join(changed)}")
    return check


def check_search(run_dir: Path, reference_dir: Path) -> TableCheck:
    """The consolidated search tables of ``run_dir`` against those of ``reference_dir``."""
    total = TableCheck()
    for name, (key, values) in SEARCH_TABLES.items():
        run = _keyed(_read(run_dir / "tables" / f"{name}.parquet"), key)
        reference = _keyed(_read(reference_dir / "tables" / f"{name}.parquet"), key)
        total.add(compare_rows(name, run, reference, values))
    return total


def _epoch_entries(rows: Iterable[dict[str, Any]]) -> list[tuple[tuple, dict[str, Any]]]:
    """(trial index, epoch) -> that epoch's values of every curve, for each evaluations row."""
    entries = []
    for row in rows:
        curves = {name: list(row.get(name) or []) for name in TRAIN_CURVES}
        for i in range(max(map(len, curves.values()), default=0)):
            values = {name: (curve[i] if i < len(curve) else None) for name, curve in curves.items()}
            entries.append(((trial_index(row["trial_id"]), i + 1), values))
    return entries


def check_train(run_dir: Path, reference_dir: Path) -> TableCheck:
    """The evaluations table of ``run_dir`` (its rows and their per-epoch entries) against the reference's."""
    run_rows = _read(run_dir / "tables" / "evaluations.parquet")
    reference_rows = _read(reference_dir / "tables" / "evaluations.parquet")
    total = compare_rows("evaluations", _keyed(run_rows, ()), _keyed(reference_rows, ()),
                         ("status", "epochs_done", "genotype", "seed", "test_acc"))
    total.add(compare_rows("evaluations epoch", _epoch_entries(run_rows), _epoch_entries(reference_rows),
                           TRAIN_CURVES))
    return total


def check_tables(kind: str, run_dir: Path, reference_dir: Path) -> TableCheck:
    """:func:`check_search` or :func:`check_train`, by the run's ``kind`` (``search`` or ``train``)."""
    return check_train(run_dir, reference_dir) if kind == "train" else check_search(run_dir, reference_dir)
