"""Write one population of the methods' league as a snapshot to commit: what ``tools/league.py`` reads of it.

The league (docs/search_quality.md) runs over sessions as several populations of ``search_configs/league.yaml``
(some seeds or variants each); Tune's folders and checkpoints stay on the machine that ran one. This tool
copies what ``tools/league.py`` reads of a population into a folder of the repository, in a live folder's
layout, so that the league of the snapshot prints the live folder's figures on any machine:

    python tools/league_snapshot.py raynas_results/league-b benchmarks/league/league-b
    python tools/league.py benchmarks/league/*/ --pair ...

The snapshot holds the population's ``config.yaml`` (the trials it planned: the league's "not started"
counts) and its ``trials`` (status, epochs done and planned, seed, variant, final ground truth, skips),
``epochs`` (ground truth, regret, epoch times, discretization gap and sharpness over epochs) and
``genotypes`` (the cells derived) tables, each with every column of its schema, so ``raynas results`` reads
it too. The tables are read as the folder holds them now (the consolidated file with newer parts merged
in), so a population still running can be snapshot when its session ends: only its finished trials count
in the league, and a trial left running cannot be finished elsewhere (run its seeds again as a new
population). A snapshot the tool wrote is replaced as a whole (``tools/snapshot_common.py``: a temporary
folder, read back as the league reads it, then swapped in).

Bad input (a folder that is not a population or one the league refuses: no trials, no ground truth, no
finished trial yet; a destination whose parent is missing, that is the population's folder, or that holds
anything but such a snapshot) is one line on stderr and exit code 2, and nothing is written. Imports
neither torch nor Ray.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raynas.errors import RaynasError  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from league import league  # noqa: E402  (sibling modules)
from snapshot_common import Layout, folder_size, write_snapshot  # noqa: E402

#: what tools/league.py reads of a population (load_population: trials, epochs, genotypes; and config.yaml)
LAYOUT = Layout("a league population", "benchmarks/league/league-b", ("trials", "epochs", "genotypes"))


def snapshot(experiment: Path, dest: Path) -> dict[str, Any]:
    """Write the snapshot of the league population ``experiment`` into ``dest``, replacing a snapshot there.
    Returns the league of the snapshot (:func:`league.league`). A :class:`ResultsError` (nothing written)
    for a population the league refuses or a ``dest`` that exists and is not a snapshot."""
    result = write_snapshot(experiment, dest, LAYOUT, lambda folder, _run: league(folder))
    result["experiment"] = str(dest)
    return result


def summary(dest: Path, result: dict[str, Any]) -> str:
    """The line the tool prints: the trials the snapshot holds, its files and size."""
    running = sum(row["running"] for row in result["rows"])
    planned = f"; {result['planned']} planned" if result["planned"] is not None else ""
    seeds = sorted({seed for row in result["rows"] for seed in row["seeds"]})
    return (f"{dest}: {result['finished']} finished trials of {result['trials']} started ({running} running"
            f"{planned}), {len(result['methods'])} methods, finished seeds {', '.join(map(str, seeds))}; "
            f"{len(LAYOUT.files())} files, {folder_size(dest) / 1024:.0f} kB")


def main(argv: Optional[list[str]] = None) -> int:
    """Write a league population's snapshot and print what it holds; one-line error and exit 2 for bad input."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path, help="the league population's folder (running or finished)")
    parser.add_argument("dest", type=Path, help="the snapshot's folder, e.g. benchmarks/league/league-b "
                                                "(replaced when it holds a snapshot)")
    args = parser.parse_args(argv)
    try:
        result = snapshot(args.experiment, args.dest)
    except RaynasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary(args.dest, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
