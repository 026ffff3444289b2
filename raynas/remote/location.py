"""Where an experiment folder on object storage is: ``s3://bucket/prefix`` and ``gs://`` URIs, parsed and
checked, and the local *working copy* each one has (:func:`Remote.working_copy`, :func:`location_of`: a
folder under the cache root is the working copy of the URI its path spells). Imports nothing heavy."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from raynas.errors import ConfigError

SCHEMES = {"s3": "s3", "gs": "gcs"}
"""URI scheme -> the ``type_name`` of the pyarrow file system it gives."""

CACHE_ENV = "RAYNAS_REMOTE_CACHE"
"""Where working copies live (default ``~/.cache/raynas/remote``)."""

_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.S)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_BAD_SEGMENT = re.compile(r"[\x00-\x1f\x7f\\]")


def is_remote(location: object) -> bool:
    """Whether ``location`` is written as a URI (``scheme://...``) rather than a local path."""
    return isinstance(location, str) and _URI.match(location) is not None


@dataclass(frozen=True)
class Remote:
    """A folder on object storage: ``scheme://bucket/key``."""

    scheme: str
    bucket: str
    key: str  # '/'-separated, no leading or trailing '/', may be empty

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self.fs_path}"

    @property
    def fs_path(self) -> str:
        """The path pyarrow's file system uses (the URI without its scheme)."""
        return f"{self.bucket}/{self.key}" if self.key else self.bucket

    def child(self, name: str) -> "Remote":
        return Remote(self.scheme, self.bucket, f"{self.key}/{name}" if self.key else name)

    def working_copy(self) -> Path:
        """The local folder that holds this folder's files (see the module docstring)."""
        return cache_root().joinpath(self.scheme, self.bucket, *self.key.split("/")) if self.key else \
            cache_root() / self.scheme / self.bucket


def parse(text: str, option: str) -> Remote:
    """``text`` as a :class:`Remote`; a one-line :class:`ConfigError` naming ``option`` when it is not
    ``s3://BUCKET[/PREFIX]`` or ``gs://BUCKET[/PREFIX]``."""
    match = _URI.match(text)
    shown = text if len(text) <= 80 else text[:77] + "..."
    allowed = "s3://BUCKET/PREFIX or gs://BUCKET/PREFIX"
    if match is None:
        raise ConfigError(f"{option} = {shown!r}: not a URI; expected {allowed}")
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme not in SCHEMES:
        raise ConfigError(f"{option} = {shown!r}: storage scheme '{scheme}://' is not supported; use a local "
                          f"folder, {allowed}")
    if "?" in rest or "#" in rest:
        raise ConfigError(f"{option} = {shown!r}: no '?' or '#' in a storage URI; settings come from the "
                          f"environment (docs/storage.md); expected {allowed}")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ConfigError(f"{option} = {shown!r}: no bucket; expected {allowed}")
    if not _BUCKET.fullmatch(bucket):
        raise ConfigError(f"{option} = {shown!r}: '{bucket}' is not a bucket name (3-222 of a-z, 0-9, '.', "
                          f"'-', '_'); expected {allowed}")
    segments = key.rstrip("/").split("/") if key.rstrip("/") else []
    for segment in segments:
        if segment in ("", ".", "..") or _BAD_SEGMENT.search(segment) or len(segment.encode()) > 255:
            raise ConfigError(f"{option} = {shown!r}: '{segment}' is not usable as a folder of the prefix (no "
                              f"empty, '.' or '..' parts, control characters or '\\'); expected {allowed}")
    return Remote(scheme, bucket, "/".join(segments))


def cache_root() -> Path:
    """The folder of working copies: ``$RAYNAS_REMOTE_CACHE``, else ``~/.cache/raynas/remote``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser().absolute() if root else Path.home() / ".cache" / "raynas" / "remote"


def location_of(directory: str | os.PathLike[str]) -> Optional[Remote]:
    """The remote folder whose working copy ``directory`` is, or None for an ordinary local folder."""
    try:
        parts = Path(directory).resolve().relative_to(cache_root().resolve()).parts
    except ValueError:
        return None
    if len(parts) < 2 or parts[0] not in SCHEMES:
        return None
    return Remote(parts[0], parts[1], "/".join(parts[2:]))


def display(directory: str | os.PathLike[str]) -> str:
    """How messages name a folder: its URI for a working copy, else the path as given."""
    remote = location_of(directory)
    return remote.uri if remote is not None else os.fspath(directory)


def tune_location(directory: str | os.PathLike[str], tune_dir: str) -> str | Path:
    """Where Ray Tune keeps the experiment in ``directory``: ``<uri>/<tune_dir>`` for a working copy, else
    the local folder ``<directory>/<tune_dir>`` (absolute)."""
    remote = location_of(directory)
    return f"{remote.uri}/{tune_dir}" if remote is not None else (Path(directory) / tune_dir).resolve()


def uri_of(filesystem: Any, path: str) -> str | Path:
    """A location Tune gave as (pyarrow file system, path), as a local Path or a URI."""
    kind = getattr(filesystem, "type_name", "local")
    if kind == "local":
        return Path(path)
    scheme = next((name for name, type_name in SCHEMES.items() if type_name == kind), kind)
    return f"{scheme}://{path.lstrip('/')}"
