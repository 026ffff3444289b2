"""A local working copy of a remote experiment folder and the transfers between the two (see
:mod:`raynas.remote`): :class:`WorkingCopy` uploads what changed here and downloads what changed there,
:func:`fetch` / :func:`local_folder` give a command that reads a folder its working copy, :func:`publish`
uploads what a command wrote into it, :func:`sync_up` everything that changed, and :func:`new_experiment`
checks where a new search goes."""

from __future__ import annotations

import concurrent.futures
import json
import os
import posixpath
import secrets
import sys
from pathlib import Path
from typing import Any, Iterable, Optional

from raynas.errors import ConfigError, StorageError
from raynas.files import atomic_path, write_text_atomically
from raynas.folder_lock import LOCK_FILE
from raynas.remote.location import Remote, display, is_remote, location_of, parse
from raynas.remote.store import check_bucket, entries, filesystem, holds_files, storage_error

MANIFEST = ".raynas-remote.json"
"""The working copy's record of what it exchanged with its URI (never uploaded)."""

NOT_DOWNLOADED = ("tune", "plots")
"""Top-level folders a download skips: Tune reads its state and checkpoints remotely; pictures are outputs."""

TEMP_SUFFIX = ".tmp"
THREADS = 8  # concurrent transfers: latency, not bandwidth, bounds small objects


def new_experiment(out: str, name: str) -> Path:
    """The working copy of a new experiment ``<out>/<name>`` on storage, after checking that the bucket is
    there and that neither the remote folder nor a working copy of it exists; writes nothing."""
    base = parse(out, "--out")
    check_bucket(base, "--out")
    remote = base.child(name)
    if holds_files(remote.uri):
        raise ConfigError(f"experiment folder '{remote.uri}' already exists; choose another --out or name "
                          f"(e.g. --set name={name}-2), or remove it")
    local = remote.working_copy()
    if local.exists():
        raise ConfigError(f"a working copy of '{remote.uri}' from an earlier run is left at '{local}' while the "
                          "remote folder is empty; remove the working copy, or choose another --out or name")
    return local


def driver_running(directory: Path) -> bool:
    """Whether a raynas driver holds ``directory``'s lock now (:mod:`raynas.folder_lock`); then its working
    copy is newer than the remote and nothing is downloaded into it."""
    import fcntl

    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # releases the shared lock at once
    return False


def fetch(text: str, option: str, *, logs: bool = False) -> Path:
    """Download the experiment folder at URI ``text`` into its working copy and return that: every file but
    Tune's state and checkpoints (``tune/``), pictures (``plots/``) and, unless ``logs``, ``logs/``.
    A one-line error when nothing is there. A working copy a driver on this machine holds is returned as it
    is: it is ahead of the remote."""
    remote = parse(text, option)
    check_bucket(remote, option)
    copy = WorkingCopy(remote)
    if copy.directory.is_dir() and driver_running(copy.directory):
        return copy.directory
    if copy.download(skip=NOT_DOWNLOADED + (() if logs else ("logs",))) is None:
        raise ConfigError(f"{option} = {remote.uri!r}: nothing is stored there; expected an experiment folder "
                          "that raynas search --out wrote (<out>/<name>)")
    return copy.directory


class WorkingCopy:
    """A local working copy of a remote folder and the record of what it exchanged with it (see the module
    docstring). Not safe to share between threads; transfers run on a pool of :data:`THREADS` threads."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        self.directory = remote.working_copy()
        self.records: dict[str, list[Optional[int]]] = {}  # relative path -> [local size, ns, remote size, ns]
        try:
            loaded = json.loads((self.directory / MANIFEST).read_text())
            self.records = {str(k): list(v) for k, v in loaded.get("files", {}).items()}
        except (OSError, ValueError, AttributeError):
            pass
        self._fs: Any = None

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._fs = filesystem(self.remote.uri)[0]
        return self._fs

    def save(self) -> None:
        """Write the manifest (atomically)."""
        if self.directory.is_dir():
            write_text_atomically(self.directory / MANIFEST, json.dumps({"uri": self.remote.uri,
                                                                         "files": self.records}))

    def remote_files(self) -> dict[str, tuple[int, Optional[int]]]:
        """Relative path -> (size, modification ns) of every object under the remote folder."""
        from pyarrow import fs as pafs

        prefix = self.remote.fs_path + "/"
        return {info.path[len(prefix):]: (info.size, info.mtime_ns) for info in entries(self.remote.uri, True)
                if info.type == pafs.FileType.File and info.path.startswith(prefix)}

    # ------------------------------------------------------------------ download
    def download(self, skip: Iterable[str] = NOT_DOWNLOADED) -> Optional[int]:
        """Fetch every remote file changed since it was last exchanged (or missing here), except those under
        the top-level folders ``skip`` and temporary keys; returns how many (None: the remote folder is empty)."""
        listed = self.remote_files()
        if not listed:
            return None
        skipped = set(skip)
        todo = []
        for rel, stamp in listed.items():
            if rel.split("/", 1)[0] in skipped or _local_only(rel):
                continue
            record = self.records.get(rel)
            if record is not None and record[2:] == list(stamp):
                continue  # unchanged there since the last exchange (a newer file here stays)
            local = self.directory / rel
            if local.is_file() and _stamp(local) == stamp:
                self.records[rel] = [*stamp, *stamp]
                continue
            todo.append((rel, stamp))
        self.directory.mkdir(parents=True, exist_ok=True)
        done, error = self._pool(self._download_one, todo)
        for rel, local_stamp, stamp in done:
            self.records[rel] = [*local_stamp, *stamp]
        self.save()
        if error is not None:
            raise error
        return len(todo)

    def _download_one(self, item: tuple[str, tuple[int, Optional[int]]]) -> tuple[str, tuple[int, int], tuple]:
        rel, stamp = item
        target = self.directory / rel
        source = f"{self.remote.fs_path}/{rel}"
        try:
            with self.fs.open_input_stream(source) as stream:
                data = stream.readall()
        except OSError as exc:
            raise storage_error(f"cannot download {self.remote.uri}/{rel}", exc) from None
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
            if stamp[1] is not None:  # the object's time: readers compare parts' and tables' times
                os.utime(tmp, ns=(stamp[1], stamp[1]))
        return rel, _stamp(target), stamp

    # ------------------------------------------------------------------ upload
    def upload(self, paths: Optional[Iterable[Path]] = None, *, settle: bool = False) -> int:
        """Upload the files ``paths`` (default: every file of the working copy) that changed since they were
        last exchanged; returns how many. ``settle``: then list the remote once and record the objects' times
        of the files this process uploaded (so that a later download does not fetch them back)."""
        root = self.directory.resolve()
        if paths is None:
            rels: Iterable[str] = (os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
                                   for folder, _, files in os.walk(root) for name in files)
        else:
            rels = (Path(path).resolve().relative_to(root).as_posix() for path in paths)
        todo = []
        for rel in rels:
            if _local_only(rel):
                continue
            try:
                stamp = _stamp(root / rel)
            except FileNotFoundError:  # not written (yet), or removed since it was named
                continue
            record = self.records.get(rel)
            if record is None or record[:2] != list(stamp):
                todo.append((rel, stamp))
        done, error = self._pool(self._upload_one, todo)
        for rel, stamp in done:
            self.records[rel] = [*stamp, None, None]
        if settle and error is None:
            self._settle(None if paths is None else [rel for rel, _ in done])
        if todo or settle:
            self.save()
        if error is not None:
            raise error
        return len(todo)

    def _upload_one(self, item: tuple[str, tuple[int, int]]) -> tuple[str, tuple[int, int]]:
        rel, stamp = item
        data = (self.directory / rel).read_bytes()  # whole before anything is sent
        final = f"{self.remote.fs_path}/{rel}"
        head, name = posixpath.split(final)
        temp = f"{head}/.{name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
        try:
            with self.fs.open_output_stream(temp) as stream:
                stream.write(data)
            self.fs.move(temp, final)  # a server-side copy: the key shows the whole file, old or new
        except OSError as exc:
            raise storage_error(f"cannot upload {self.remote.uri}/{rel}", exc) from None
        return rel, stamp

    def _settle(self, rels: Optional[list[str]]) -> None:
        """Record the remote times of what this process uploaded: of ``rels`` (one request each), or of
        everything (one listing)."""
        if rels is None:
            listed = self.remote_files()
        else:
            try:
                infos = self.fs.get_file_info([f"{self.remote.fs_path}/{rel}" for rel in rels])
            except OSError as exc:
                raise storage_error(f"cannot list {self.remote.uri}", exc) from None
            listed = {rel: (info.size, info.mtime_ns) for rel, info in zip(rels, infos) if info.size is not None}
        for rel, record in self.records.items():
            if record[2] is None and rel in listed and listed[rel][0] == record[0]:
                record[2:] = list(listed[rel])

    @staticmethod
    def _pool(work: Any, items: list[Any]) -> tuple[list[Any], Optional[StorageError]]:
        """``work`` of every item on a thread pool: the results of those that went through, and the first
        error (every item is tried, so what can go through does)."""
        if not items:
            return [], None
        with concurrent.futures.ThreadPoolExecutor(min(THREADS, len(items))) as pool:
            futures = [pool.submit(work, item) for item in items]
        done, error = [], None
        for future in futures:
            try:
                done.append(future.result())
            except StorageError as exc:
                error = error or exc
        return done, error


def _stamp(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns


def _local_only(rel: str) -> bool:
    """Files that stay in the working copy: its manifest, the driver's lock and temporary files."""
    name = posixpath.basename(rel)
    return rel in (MANIFEST, LOCK_FILE) or (name.startswith(".") and name.endswith(TEMP_SUFFIX))


def sync_up(directory: str | os.PathLike[str], *, warn_only: bool = False) -> int:
    """Upload what changed in ``directory`` when it is a working copy (nothing otherwise); returns how many
    files. ``warn_only``: a failure is one line on stderr instead of an error (a run that ends anyway)."""
    remote = location_of(directory)
    if remote is None or not Path(directory).is_dir():
        return 0
    try:
        return WorkingCopy(remote).upload(settle=True)
    except StorageError as exc:
        if not warn_only:
            raise
        print(f"raynas: warning: {exc}; the working copy {directory} keeps the files (raynas resume "
              f"{remote.uri} uploads them)", file=sys.stderr, flush=True)
        return 0


def local_folder(directory: str, option: str, *, logs: bool = False) -> str:
    """``directory`` as a local folder for a command that reads it: a storage URI is downloaded into its
    working copy first (:func:`fetch`), a local path is returned as it is."""
    return str(fetch(directory, option, logs=logs)) if is_remote(directory) else directory


def refuse_uri(option: str, value: Optional[str], instead: str) -> None:
    """A one-line :class:`ConfigError` when an option that takes a local path was given a storage URI."""
    if value is not None and is_remote(value):
        raise ConfigError(f"{option} = {value!r}: takes a local path; {instead}")


def publish(directory: str | os.PathLike[str], paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Upload the files (or folders of files) ``paths`` that a command wrote into ``directory`` when that is
    a working copy; returns how each is named for the user: its URI when uploaded, else its path."""
    remote = location_of(directory)
    written = [Path(path) for path in paths]
    if remote is None:
        return [str(path) for path in written]
    copy = WorkingCopy(remote)
    root = copy.directory.resolve()
    files: list[Path] = []
    named = []
    for path in written:
        if not path.resolve().is_relative_to(root):  # written elsewhere (--out): stays local
            named.append(str(path))
            continue
        files += [Path(folder) / name for folder, _, found in os.walk(path) for name in found] if path.is_dir() \
            else [path]
        named.append(display(path))
    copy.upload(files, settle=True)
    return named
