"""One raynas driver per folder: an exclusive lock on ``<folder>/raynas.lock`` while a command writes it.

``raynas search``, ``train`` and ``bench build`` (once their folder exists) and ``raynas resume`` hold
:func:`folder_lock` for as long as they run. Two drivers on one folder would both restore the same Tune
trials and write the same parts; the second one gets a one-line :class:`FolderError` naming the process
that holds the lock (pid, host, command, start time) and nothing is written.

The lock is ``fcntl.flock`` on the lock file, and the file holds a JSON record of its holder. The kernel
releases a flock when its process ends, however it ends (SIGKILL, a crash, a reboot), so the flock alone
says whether a driver is alive; the record only says who it is. A clean end empties the record. A record
found while the flock is free is therefore stale: its process ended without cleaning up (it was killed);
the new driver says so in one line and takes the lock over. The lock file itself is never removed (an
unlinked lock file lets two processes lock two different files). On NFS, Linux maps ``flock`` to a
whole-file POSIX lock that the server arbitrates, so drivers on different hosts exclude each other too.
Nothing here imports torch or Ray.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shlex
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from raynas.errors import FolderError

LOCK_FILE = "raynas.lock"
"""The lock file in a locked folder (its content: the holder's :class:`LockRecord` as JSON, or nothing)."""

MAX_RECORD_BYTES = 64 * 1024  # a record is a few hundred bytes; read no more of a file someone replaced


@dataclass(frozen=True)
class LockRecord:
    """Who holds (or held) a folder's lock."""

    pid: int
    host: str
    started: str  # UTC, ISO 8601
    action: str  # e.g. "raynas resume"
    command: str  # the holder's command line

    @classmethod
    def now(cls, action: str) -> "LockRecord":
        """The record of this process, starting ``action`` now."""
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return cls(os.getpid(), socket.gethostname(), started, action, shlex.join(sys.argv))

    def holder(self) -> str:
        """``raynas resume (pid 123 on host h, started 2025-01-01T10:00:00Z)``."""
        return f"{self.action} (pid {self.pid} on host {self.host}, started {self.started})"


def lock_path(directory: Path) -> Path:
    """The lock file of ``directory``."""
    return Path(directory) / LOCK_FILE


def read_record(fd: int) -> Optional[LockRecord]:
    """The record in the open lock file ``fd``; None when it is empty or unreadable."""
    data = os.pread(fd, MAX_RECORD_BYTES, 0)
    if not data.strip():
        return None
    try:
        fields = json.loads(data.decode("utf-8"))
        return LockRecord(int(fields["pid"]), str(fields["host"]), str(fields["started"]), str(fields["action"]),
                          str(fields["command"]))
    except (ValueError, KeyError, TypeError):  # half written, or not ours
        return None


def _write_record(fd: int, record: Optional[LockRecord]) -> None:
    """Replace the lock file's content with ``record`` (nothing when None) and flush it."""
    os.ftruncate(fd, 0)
    if record is not None:
        os.pwrite(fd, (json.dumps(asdict(record), indent=1) + "\n").encode("utf-8"), 0)
    os.fsync(fd)


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        return True
    return True


def stale_line(directory: Path, record: LockRecord) -> str:
    """What a driver prints when it takes over the lock a dead driver left (its flock was free)."""
    if record.host != socket.gethostname():
        why = ("on another host, so raynas cannot look for that process; its flock is free, so it ended "
               "(or its host lost the lock)")
    elif process_alive(record.pid):
        why = f"pid {record.pid} exists but does not hold the lock (the pid was reused)"
    else:
        why = f"pid {record.pid} is gone (the kernel freed its flock when it ended)"
    return (f"raynas: {directory} was locked by {record.holder()}, which ended without releasing the lock: {why}; "
            "taking the lock over")


def busy_message(directory: Path, record: Optional[LockRecord]) -> str:
    """The one-line error of a driver that finds ``directory`` locked."""
    path = lock_path(directory)
    if record is None:
        who = f"another process holds its lock {path} (it has not written its pid and host yet)"
    else:
        who = f"{record.holder()} holds its lock {path}"
    return (f"'{directory}' is in use: {who}; only one raynas command may run on a folder at a time: wait for "
            "it to end (or stop it), then run this again")


@contextlib.contextmanager
def folder_lock(directory: str | os.PathLike, action: str, *,
                echo: Callable[[str], None] = print) -> Iterator[LockRecord]:
    """Hold ``directory``'s lock for the block (see the module docstring); yields this process's record.

    Raises :class:`FolderError` (one line) when another process holds it or the lock file cannot be made.
    A stale record (its holder died) is reported through ``echo`` and taken over.
    """
    directory = Path(directory)
    path = lock_path(directory)
    try:
        # 0644: the lock file sits among the files a resume checks for group/other write (raynas.folder_trust)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        raise FolderError(f"cannot lock '{directory}': {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderError(busy_message(directory, read_record(fd))) from None
        except OSError as exc:  # ENOLCK: a file system without locks
            raise FolderError(f"cannot lock '{directory}': {path}: {exc.strerror}") from None
    except BaseException:
        os.close(fd)
        raise
    try:
        previous = read_record(fd)
        if previous is not None:
            echo(stale_line(directory, previous))
        record = LockRecord.now(action)
        _write_record(fd, record)
        yield record
    finally:
        with contextlib.suppress(OSError):  # the folder may be gone (a failed start removes it)
            _write_record(fd, None)  # a clean end: no stale record for the next driver
        os.close(fd)  # releases the flock
