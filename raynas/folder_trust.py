"""Whether a folder is safe to resume: a resume runs code from it, so the folder is trusted like code.

``raynas resume`` hands ``<folder>/tune/`` to Ray Tune, which unpickles what it saved there
(``tuner.pkl``, the cloudpickled payloads of ``experiment_state-*.json``, a searcher's state, a trial's
pickled error): whoever can write those files can make the resume run any code as the user who resumes.
So, before anything in the folder is read, :func:`check_trusted` refuses a folder when any of these is
owned by another user (root excepted: it can run anything as you anyway) or writable by group or others:

- the folder itself and each entry directly in it (``config.yaml``, ``tune/``, ``tables/``, ...);
- everything under ``tune/``, at any depth (symbolic links are judged by what they point to).

raynas creates its folders without group or other write permission (the CLI takes those bits out of the
umask, and the Python API does while it runs: :func:`restricted_umask`), so only a folder changed by someone
else is refused. Nothing here imports torch or Ray.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
from pathlib import Path
from typing import Iterator, Optional

from raynas.errors import FolderError

TUNE_DIR = "tune"
"""The sub-folder of Ray Tune's saved state, the one that holds pickles (every folder kind names it so)."""

GROUP_OR_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


@contextlib.contextmanager
def restricted_umask() -> Iterator[None]:
    """While the block runs, nothing this process creates is writable by group or others (022 added to the
    umask, as the CLI does for a whole command); the caller's umask is back afterwards. The Python API runs
    searches and trainings in it, so their folders can be resumed (and Ray's processes started meanwhile
    keep it)."""
    previous = os.umask(0o022)
    os.umask(previous | GROUP_OR_OTHERS_WRITE)
    try:
        yield
    finally:
        os.umask(previous)


def trusted_owners() -> set[int]:
    """User ids whose files a resume may load: this process's effective user, and root."""
    return {os.geteuid(), 0}


def user_name(uid: int) -> str:
    """``name (uid N)`` of a user id, or ``uid N`` when the system does not know it."""
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def problem_of(path: Path, info: os.stat_result) -> Optional[str]:
    """Why ``path`` (whose ``os.stat`` is ``info``) may not be trusted, or None."""
    if info.st_uid not in trusted_owners():
        return f"{path} belongs to {user_name(info.st_uid)}, not to you ({user_name(os.geteuid())})"
    writable = info.st_mode & GROUP_OR_OTHERS_WRITE
    if writable:
        who = {stat.S_IWGRP: "its group", stat.S_IWOTH: "others"}.get(writable, "its group and others")
        return f"{path} is writable by {who} (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def _entries(folder: Path, recursive: bool, seen: set[tuple[int, int]]) -> Iterator[Path]:
    """The entries of ``folder`` (all levels with ``recursive``, following links to folders once each)."""
    try:
        children = sorted(folder.iterdir())
    except OSError:  # gone, not a folder, or unreadable (then Tune cannot load from it either)
        return
    for child in children:
        yield child
        if recursive and child.is_dir():
            info = child.stat()
            if (info.st_dev, info.st_ino) not in seen:  # a link loop is walked once
                seen.add((info.st_dev, info.st_ino))
                yield from _entries(child, True, seen)


def untrusted_path(directory: Path) -> Optional[str]:
    """The first reason (in a stable order) why ``directory`` may not be resumed, or None when it may."""
    directory = Path(directory)
    if not directory.exists():
        return None  # nothing to load: the caller says the folder is not one of raynas'
    seen: set[tuple[int, int]] = set()
    for path in [directory, *_entries(directory, False, seen), *_entries(directory / TUNE_DIR, True, seen)]:
        try:
            info = path.stat()
        except FileNotFoundError:  # a dangling link loads nothing (or went away meanwhile)
            continue
        problem = problem_of(path, info)
        if problem:
            return problem
    return None


def check_trusted(directory: Path, what: str) -> None:
    """Refuse (:class:`FolderError`, one line) to resume ``directory`` when it is not safe to load; ``what``
    names the folder in the message (``experiment 'DIR'``)."""
    problem = untrusted_path(directory)
    if problem is None:
        return
    fix = (f"if the folder is yours and nobody else changed it, remove those permissions (chmod -R go-w "
           f"{shlex.quote(str(directory))}) and resume again" if "writable by" in problem else
           "resume only folders you created yourself")
    raise FolderError(f"{what} is not safe to resume: {problem}; raynas resume loads pickled Python objects from "
                      f"the folder (Ray Tune's saved state), so the folder is trusted like code: {fix}")
