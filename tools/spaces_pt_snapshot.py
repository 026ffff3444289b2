"""Write one part of the S1-S4 study (a search population and its training run) as a snapshot to commit.

A session runs the study (docs/search_quality.md, "DARTS and DARTS-PT on S1-S4 and the DARTS space") one or
two search seeds at a time, as a *part*: a population of those seeds and the ``raynas train`` run of its
cells. Tune's folders and checkpoints stay on the machine; this tool copies what ``tools/spaces_pt_study.py``
reads of a part into a folder of the repository, so that the next session, on another machine, goes on from
there:

    python tools/spaces_pt_snapshot.py raynas_results/spaces_pt-s0 benchmarks/spaces_pt/s0 [--run RUN]

The snapshot holds the search's ``config.yaml`` (the seeds it planned, its data), its ``trials`` and
``epochs`` tables, and under ``evaluations/<run>/`` the run's ``evaluation.yaml`` (its plan: protocol, cells,
seeds) and ``evaluations`` table: a live folder's layout, so the study reads it as it reads the live folder
(and ``raynas results`` shows its trials and trainings). The tables are read as the folders hold them now
(``raynas.results.load_table``: the consolidated file with newer parts merged in), so a part whose training
still runs can be snapshot too, and again when it has finished: a snapshot the tool wrote is replaced as a
whole.

``--run`` names the training run; without it, the only run under the search's ``evaluations/``. Bad input
(not a search folder or not its training run, as the study checks them; a destination that exists and is
not a snapshot, or that is the search's folder) is one line on stderr and exit code 2, and nothing is
written. The writing (a temporary folder, read back as the study reads it, then swapped in whole) is
``tools/snapshot_common.py``'s, shared with the league's ``tools/league_snapshot.py``. Imports neither torch
nor Ray.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raynas.errors import RaynasError  # noqa: E402
from raynas.results import EVALUATIONS_DIR  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from snapshot_common import Layout, folder_size, write_snapshot  # noqa: E402  (sibling modules)
from spaces_pt_study import RUN_TABLES, SEARCH_TABLES, load_part, parts_of  # noqa: E402

#: what the study reads of a part: its search's tables and its training run's
LAYOUT = Layout("a part", "benchmarks/spaces_pt/s0", SEARCH_TABLES, RUN_TABLES)


def snapshot(experiment: Path, dest: Path, run: Optional[Path] = None) -> dict:
    """Write the snapshot of the part ``experiment`` (with its training run ``run``; default: its only one)
    into ``dest``, replacing a snapshot there. Returns the snapshot as the study reads it (:func:`load_part`).
    A :class:`ResultsError` (nothing written) for a part the study cannot read or a ``dest`` that exists and
    is not a snapshot."""
    if run is None:
        [(experiment, run)] = parts_of([experiment])
    # load_part reads the part first: refuses what the study refuses (not a search, not its run, other data)
    part = write_snapshot(experiment, dest, LAYOUT, load_part, run)
    part.update(experiment=dest, run=dest / EVALUATIONS_DIR / run.name)
    return part


def main(argv: Optional[list[str]] = None) -> int:
    """Write a part's snapshot and print what it holds; one-line error and exit 2 for bad input."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path, help="the part's search population folder (running or finished)")
    parser.add_argument("dest", type=Path, help="the snapshot's folder, e.g. benchmarks/spaces_pt/s0 (replaced "
                                                "when it holds a snapshot)")
    parser.add_argument("--run", type=Path, default=None,
                        help="the raynas train run of its cells (default: the only run under its evaluations/)")
    args = parser.parse_args(argv)
    try:
        part = snapshot(args.experiment, args.dest, args.run)
    except RaynasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    records, plan = part["records"], part["plan"]
    size = folder_size(args.dest)
    print(f"{args.dest}: {sum(r['finished'] for r in records)} finished searches of {len(records)} started "
          f"(seeds {', '.join(map(str, sorted({r['seed'] for r in records})))}), {part['trainings_done']} of "
          f"{len(plan.architectures) * len(plan.seeds)} trainings finished in {part['run']}; "
          f"{len(LAYOUT.files())} files, {size / 1024:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
