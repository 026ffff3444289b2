"""Token authentication for the Ray instances raynas starts or joins.

Ray (2.52 and later) authenticates every RPC and dashboard request with one shared token when
``RAY_AUTH_MODE=token``; without it, any local user who can reach the ports can run code in your Ray.
raynas keeps it on for the local instance it starts: the token is read, in Ray's own order, from
``RAY_AUTH_TOKEN``, else the file named by ``RAY_AUTH_TOKEN_PATH``, else Ray's default file
``~/.ray/auth_token``. raynas creates that file when it is missing (mode 0600, random), makes an existing
one of yours private, and refuses one that belongs to someone else. The default file is Ray's own, so the
``ray`` CLI (``ray status``, ``ray job submit``) and a second driver on this machine find the token without
more set-up.

Joining a cluster (``--address``): the token travels the same way (``RAY_AUTH_TOKEN``,
``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``). raynas turns token mode on when one of them is there
(a token sent to a cluster without authentication is ignored, so this never breaks a join) and leaves it
off otherwise. An explicit ``RAY_AUTH_MODE`` is always respected (``disabled`` turns authentication off).

The variables are set in this process's environment, so Ray's own processes and workers inherit them.
This module imports neither torch nor Ray.
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
import tempfile
from pathlib import Path
from typing import Optional

from raynas.errors import ConfigError

AUTH_MODE = "RAY_AUTH_MODE"
AUTH_TOKEN = "RAY_AUTH_TOKEN"
AUTH_TOKEN_PATH = "RAY_AUTH_TOKEN_PATH"


def default_token_path() -> Path:
    """Ray's own default token file, ``~/.ray/auth_token``."""
    return Path.home() / ".ray" / "auth_token"


def token_path() -> Path:
    """The token file Ray reads when ``RAY_AUTH_TOKEN`` is not set: ``RAY_AUTH_TOKEN_PATH`` or the default."""
    named = os.environ.get(AUTH_TOKEN_PATH)
    return Path(named).expanduser() if named else default_token_path()


def enable_for_local_ray() -> Optional[Path]:
    """Turn token authentication on for the local Ray instance this process is about to start.

    Returns the token file in use (None when the token comes from ``RAY_AUTH_TOKEN`` or the user set
    ``RAY_AUTH_MODE`` to something other than ``token``). Raises :class:`ConfigError` for a token file that
    is not a regular file, is empty, or belongs to another user.
    """
    mode = os.environ.get(AUTH_MODE)
    if mode is not None and mode.lower() != "token":
        return None  # the user's explicit choice (e.g. disabled), as Ray itself respects it
    _set_mode_token()
    if os.environ.get(AUTH_TOKEN):
        return None
    return ensure_private_token(token_path())


def enable_for_join() -> None:
    """Before joining a cluster with an address: send the token when one is available.

    Ray enables token mode for an explicit address only when ``RAY_AUTH_MODE=token`` is set; this sets it
    when a token is available (``RAY_AUTH_TOKEN``, or the token file exists). Raises :class:`ConfigError`
    when ``RAY_AUTH_MODE=token`` is set but no token can be found (Ray would otherwise fail with a
    multi-line message after its connection attempts).
    """
    mode = os.environ.get(AUTH_MODE)
    if mode is not None and mode.lower() != "token":
        return
    has_token = bool(os.environ.get(AUTH_TOKEN)) or token_path().is_file()
    if mode is None:
        if has_token:
            _set_mode_token()
        return
    if not has_token:
        raise ConfigError(
            f"{AUTH_MODE}=token but no Ray token was found: set {AUTH_TOKEN}, or {AUTH_TOKEN_PATH} to the "
            f"cluster's token file, or put it in {default_token_path()} (mode 0600)")
    _set_mode_token()


def ensure_private_token(path: Path) -> Path:
    """``path`` as a private token file: created (mode 0600, a random token) when missing, made private
    when it is yours and others can read it; :class:`ConfigError` when it is not a regular non-empty file
    of yours."""
    if not path.exists():
        _create_token(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"Ray token file '{path}' cannot be read ({exc.strerror}); allowed: a regular "
                          f"file of yours with mode 0600") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"Ray token file '{path}' is not a regular file; allowed: a regular file of yours "
                          f"with mode 0600 (or unset {AUTH_TOKEN_PATH} to use {default_token_path()})")
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        raise ConfigError(f"Ray token file '{path}' belongs to another user (uid {info.st_uid}); allowed: a "
                          f"file of yours with mode 0600 that no one else can read or replace")
    if info.st_mode & 0o077:
        # Ray writes its own default token with the umask (often 0644): anyone who reads it owns your Ray.
        os.chmod(path, 0o600)
    if info.st_size == 0:
        raise ConfigError(f"Ray token file '{path}' is empty; allowed: a file holding the token "
                          f"(remove it and raynas creates a new one)")
    return path


def _set_mode_token() -> None:
    """``RAY_AUTH_MODE=token`` for this process and its children, also if Ray's config was already read."""
    os.environ[AUTH_MODE] = "token"
    raylet = sys.modules.get("ray._raylet")
    if raylet is not None and raylet.get_authentication_mode() != raylet.AuthenticationMode.TOKEN:
        # Ray caches its config (the auth mode with it) once read; a process that already read it in
        # another mode (a notebook) must reread it, as Ray's own enabling code does.
        raylet.Config.initialize("")


def _create_token(path: Path) -> None:
    """Write a new random token to ``path`` (mode 0600) without ever exposing a partial or public file.

    The token is written to a private temporary file in the same folder and linked into place, so a
    concurrent raynas either creates the file or finds the complete one.
    """
    folder = path.parent
    if not folder.exists():
        try:
            folder.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            pass
        except OSError as exc:
            raise ConfigError(f"cannot create the Ray token folder '{folder}' ({exc.strerror}); set "
                              f"{AUTH_TOKEN_PATH} to a token file in a folder of yours") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".auth_token.", dir=folder)  # mode 0600
    except OSError as exc:
        raise ConfigError(f"cannot write a Ray token in '{folder}' ({exc.strerror}); set {AUTH_TOKEN_PATH} "
                          f"to a token file in a folder of yours") from None
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # atomic, and never replaces a token another process wrote meanwhile
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
