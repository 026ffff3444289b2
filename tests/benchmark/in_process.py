"""Searches and builds run in the test process, as the CLI runs them, on the session's Ray."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def printing(run: Callable[[], T]) -> tuple[T, str]:
    """What ``run()`` returns and what it printed on stdout (the progress lines, as the CLI prints them)."""
    printed = io.StringIO()
    with redirect_stdout(printed):
        result = run()
    return result, printed.getvalue()


@dataclass
class SearchHere:
    """A search run in this process: what it printed and its experiment folder."""

    stdout: str
    directory: Path


def search_here(config: Path, out: Path) -> SearchHere:
    """Run the search of the YAML file ``config`` into ``out`` in this process, as ``raynas search`` runs it
    (the same preparation, Tune run and tables), on the session's Ray: the ``ray_local`` fixture must be up.

    The benchmark features' tests share that Ray instead of starting one per run through the CLI (about 15 s
    each on 2 cores); the CLI itself runs as a subprocess in tests/e2e."""
    from raynas.experiment import prepare_experiment, run_experiment

    outcome, stdout = printing(lambda: run_experiment(prepare_experiment(config, out=out), echo=print))
    assert outcome.num_errors == 0, stdout[-3000:]
    return SearchHere(stdout, outcome.directory)
