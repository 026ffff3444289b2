#!/usr/bin/env python3
"""Copy, from the reference checkouts, just the files that ``tools/bench_reference.py`` imports, with their
licences, into a folder that git ignores (``.refs/`` by default), so that a machine which cannot clone them
(the GPU machine: no network there) can carry them.

Which files: a subprocess runs bench_reference's :func:`import_reference` on the checkout and lists every
module it loaded from inside the checkout (so the list follows the reference code's own imports, whatever
they are), plus the checkout's top-level ``LICENSE*`` files. Nothing else is copied and this script contains
none of the reference code. ``DEST/darts`` (from ``--darts``) and ``DEST/autodl`` (from ``--nb201``) are
replaced as a whole, so no stale file stays; then ``bench_reference.py --darts DEST/darts --nb201
DEST/autodl`` runs on the copies.

    python tools/copy_references.py --darts /tmp/darts --nb201 /tmp/autodl [--dest .refs] [--json]

Prints each copy's files and bytes (``--json``: one JSON object). Bad input (a path that is not a folder, a
checkout whose imports fail) is a one-line ``error: ...`` with exit code 2, and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: reference space -> the folder name of its copy under DEST
COPY_NAMES = {"darts": "darts", "nb201": "autodl"}


def imported_files(space: str, root: Path) -> list[str]:
    """Paths, relative to ``root``, of the modules that importing ``space``'s reference from ``root`` loads
    from inside ``root`` (a fresh subprocess, so nothing imported before counts)."""
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--list", space, str(root)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ValueError(f"importing the {space} reference from {str(root)!r} failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def list_imports(space: str, root: str) -> list[str]:
    """(In the subprocess) import the reference and return the loaded modules' files under ``root``."""
    sys.path.insert(0, str(HERE))
    from bench_reference import import_reference

    import_reference(space, root)
    top = Path(root).resolve()
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and Path(path).resolve().is_relative_to(top):
            files.add(Path(path).resolve().relative_to(top).as_posix())
    return sorted(files)


def licence_files(root: Path) -> list[str]:
    """The checkout's top-level licence files (``LICENSE``, ``LICENSE.md``, ...)."""
    return sorted(p.name for p in root.iterdir() if p.is_file() and p.name.upper().startswith("LICENSE"))


def copy_reference(space: str, root: Path, dest: Path, modules: list[str]) -> dict:
    """Replace ``dest/<copy name>`` with ``modules`` (from :func:`imported_files`) and the licences of ``root``;
    what was copied, with its bytes."""
    files = [*licence_files(root), *modules]
    target = dest / COPY_NAMES[space]
    staging = dest / f".{COPY_NAMES[space]}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    for name in files:
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, staging / name)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)  # the copy appears whole or not at all
    return {"space": space, "source": str(root), "copy": str(target), "files": files,
            "bytes": sum((target / name).stat().st_size for name in files)}


def main() -> None:
    """Parse the arguments, copy each reference given and print what was copied."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--darts", help="quark0/darts checkout root")
    parser.add_argument("--nb201", help="D-X-Y/AutoDL-Projects checkout root")
    parser.add_argument("--dest", default=".refs", help="folder of the copies (default: .refs)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--list", nargs=2, metavar=("SPACE", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.list:
        print(json.dumps(list_imports(*args.list)))
        return
    sys.path.insert(0, str(HERE))
    from bench_reference import checkout_roots

    roots = checkout_roots(parser, args.darts, args.nb201)
    dest = Path(args.dest)
    if dest.exists() and not dest.is_dir():
        parser.exit(2, f"error: --dest {args.dest!r}: not a folder\n")
    try:  # every import first, so that a failing checkout writes nothing
        planned = {space: imported_files(space, Path(root).resolve()) for space, root in roots.items()}
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")
    dest.mkdir(parents=True, exist_ok=True)
    copies = [copy_reference(space, Path(root).resolve(), dest, planned[space]) for space, root in roots.items()]
    if args.json:
        print(json.dumps({"copies": copies, "bytes": sum(c["bytes"] for c in copies)}))
        return
    for c in copies:
        print(f"{c['space']}: {len(c['files'])} files, {c['bytes']:,} bytes: {c['source']} -> {c['copy']}")
    print(f"in all {sum(c['bytes'] for c in copies):,} bytes under {dest}")


if __name__ == "__main__":
    main()
