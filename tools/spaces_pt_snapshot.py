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
written. Imports neither torch nor Ray.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raynas.errors import RaynasError, ResultsError  # noqa: E402
from raynas.results import EVALUATION_PLAN, EVALUATIONS_DIR  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spaces_pt_study import RUN_TABLES, SEARCH_TABLES, load_part, parts_of  # noqa: E402  (a sibling tool)


def snapshot_files(run_name: str) -> list[str]:
    """The files of a part's snapshot, relative to its folder."""
    run = f"{EVALUATIONS_DIR}/{run_name}"
    return ["config.yaml", *(f"tables/{name}.parquet" for name in SEARCH_TABLES), f"{run}/{EVALUATION_PLAN}",
            *(f"{run}/tables/{name}.parquet" for name in RUN_TABLES)]


def is_snapshot(folder: Path) -> bool:
    """Whether ``folder`` holds nothing but a part's snapshot (one this tool wrote: it may be replaced)."""
    runs = [run.name for run in (folder / EVALUATIONS_DIR).iterdir()] if (folder / EVALUATIONS_DIR).is_dir() else []
    if len(runs) != 1:
        return False
    files = {str(path.relative_to(folder)) for path in folder.rglob("*") if not path.is_dir()}
    return files == set(snapshot_files(runs[0]))


def stored_table(folder: Path, name: str):
    """Table ``name`` of ``folder`` as it holds it now, with the columns of its schema only (the epochs table
    as read also shows each method metric as a column; the stored table keeps them in its ``extra`` maps)."""
    from raynas.results import load_table, schema_for

    schema = schema_for(name)
    return load_table(folder, name).select(schema.names).replace_schema_metadata(schema.metadata)


def _write(experiment: Path, run: Path, folder: Path) -> None:
    import pyarrow.parquet as pq

    (folder / "tables").mkdir(parents=True)
    shutil.copyfile(experiment / "config.yaml", folder / "config.yaml")
    for name in SEARCH_TABLES:
        pq.write_table(stored_table(experiment, name), folder / "tables" / f"{name}.parquet", compression="zstd")
    copy = folder / EVALUATIONS_DIR / run.name
    (copy / "tables").mkdir(parents=True)
    shutil.copyfile(run / EVALUATION_PLAN, copy / EVALUATION_PLAN)
    for name in RUN_TABLES:
        pq.write_table(stored_table(run, name), copy / "tables" / f"{name}.parquet", compression="zstd")


def snapshot(experiment: Path, dest: Path, run: Optional[Path] = None) -> dict:
    """Write the snapshot of the part ``experiment`` (with its training run ``run``; default: its only one)
    into ``dest``, replacing a snapshot there. Returns the snapshot as the study reads it (:func:`load_part`).
    A :class:`ResultsError` (nothing written) for a part the study cannot read or a ``dest`` that exists and
    is not a snapshot."""
    if run is None:
        [(experiment, run)] = parts_of([experiment])
    load_part(experiment, run)  # refuses what the study refuses: not a search, not its run, other data
    if not dest.parent.is_dir():
        raise ResultsError(f"{dest}: no folder {str(dest.parent)!r} to write the snapshot into")
    if dest.resolve() == experiment.resolve() or experiment.resolve().is_relative_to(dest.resolve()):
        raise ResultsError(f"{dest}: the snapshot would replace the search folder {experiment}; name a folder of "
                           "its own, e.g. benchmarks/spaces_pt/s0")
    if dest.exists() and not (dest.is_dir() and (is_snapshot(dest) or not any(dest.iterdir()))):
        raise ResultsError(f"{dest} exists and is not a snapshot of a part (it holds other files than "
                           f"{', '.join(snapshot_files('<run>'))}); name a new folder")
    temp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    old = dest.parent / f".{dest.name}.old-{os.getpid()}"
    try:
        _write(experiment, run, temp)
        part = load_part(temp, temp / EVALUATIONS_DIR / run.name)  # it reads as a part
        if dest.exists():
            os.replace(dest, old)  # swapped whole: a reader sees the old snapshot or the new one
        os.replace(temp, dest)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
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
    size = sum(path.stat().st_size for path in args.dest.rglob("*") if path.is_file())
    print(f"{args.dest}: {sum(r['finished'] for r in records)} finished searches of {len(records)} started "
          f"(seeds {', '.join(map(str, sorted({r['seed'] for r in records})))}), {part['trainings_done']} of "
          f"{len(plan.architectures) * len(plan.seeds)} trainings finished in {part['run']}; "
          f"{len(snapshot_files(part['run'].name))} files, {size / 1024:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
