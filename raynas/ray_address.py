"""Is a Ray cluster there? A bounded probe of a ``--address`` before anything is created or started.

``ray.init(address=...)`` of an address where no Ray cluster answers waits for minutes (Ray retries its
GCS connection) and, in ``raynas search``, used to leave behind a folder holding only its config, which
then blocked the same command. :func:`check_reachable` asks first, within ``RAYNAS_CONNECT_TIMEOUT_S``
seconds (default 10) per step: the host name resolves, a TCP connection opens, and the port answers the
HTTP/2 connection preface with a SETTINGS frame, as Ray's GCS (and Ray Client's server, ``ray://``) does:
both are gRPC servers. Any other outcome is a one-line :class:`ConfigError`. ``auto`` is resolved as Ray
resolves it (``RAY_ADDRESS``, the last ``ray start``, a running GCS on this machine) and the result is
probed. With ``RAY_USE_TLS`` set the GCS speaks TLS first, so only the TCP connection is checked.
Imports Ray only to resolve ``auto``.
"""

from __future__ import annotations

import math
import os
import socket
from typing import Optional

from raynas.errors import ConfigError

TIMEOUT_ENV = "RAYNAS_CONNECT_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 3600.0

# The HTTP/2 client connection preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5).
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
FRAME_HEADER = 9
SETTINGS_FRAME = 0x04


def connect_timeout() -> float:
    """Seconds one step of the probe may take (``RAYNAS_CONNECT_TIMEOUT_S``; a ConfigError if malformed)."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_TIMEOUT_S:
        raise ConfigError(f"{TIMEOUT_ENV} = {raw!r}: give seconds, more than 0 and at most {MAX_TIMEOUT_S:g}")
    return value


def split_address(address: str, option: str) -> tuple[str, int]:
    """``(host, port)`` of ``host:port``, ``[v6]:port`` or ``ray://host:port``; a ConfigError otherwise."""
    text = address.strip()
    if text.startswith("ray://"):
        text = text[len("ray://"):]
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{option} = {address!r}: not a Ray address; give host:port (e.g. 127.0.0.1:6379), "
                          "ray://host:port or auto")
    return host, int(port)


def resolve_auto(option: str) -> str:
    """The address ``auto`` stands for, as ``ray.init`` finds it; a ConfigError when there is none."""
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
    except ImportError:  # Ray moved it: let ray.init resolve (and fail) on its own
        return ""
    try:
        return canonicalize_bootstrap_address_or_die("auto")
    except (ConnectionError, ValueError) as exc:
        raise ConfigError(f"{option} = 'auto': no running Ray cluster found on this machine "
                          f"({' '.join(str(exc).split())[:160]}); give its address as host:port") from None


def _answers_http2(sock: socket.socket) -> bool:
    """Whether the peer answers the HTTP/2 preface with a SETTINGS frame (before the socket's timeout)."""
    sock.sendall(HTTP2_PREFACE)
    header = b""
    while len(header) < FRAME_HEADER:
        chunk = sock.recv(FRAME_HEADER - len(header))
        if not chunk:
            return False
        header += chunk
    return header[3] == SETTINGS_FRAME


def check_reachable(address: Optional[str], option: str = "--address") -> None:
    """Refuse (one-line ConfigError) an ``address`` where no Ray cluster answers within the timeout; None
    (start a local Ray) passes. ``option`` names where the address came from (``--address``, ``ray.address``)."""
    if not address or address.strip() == "local":  # ray.init's "local": start one here
        return
    timeout = connect_timeout()
    target = resolve_auto(option) if address.strip() == "auto" else address
    if not target:
        return
    host, port = split_address(target, option)
    where = f"{option} = {address}" + (f" ({host}:{port})" if target != address else "")
    advice = f"start one there (ray start --head) or correct the address; {TIMEOUT_ENV} sets the wait"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return  # TLS first: the preface cannot be checked in the clear
            try:
                if _answers_http2(sock):
                    return
                reason = "it closed the connection"
            except socket.timeout:
                reason = f"no answer within {timeout:g} s"
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
    except socket.gaierror as exc:
        raise ConfigError(f"{where}: cannot resolve host {host!r} ({exc.strerror}); correct the address") from None
    except socket.timeout:
        raise ConfigError(f"{where}: no Ray cluster answers (no connection within {timeout:g} s); {advice}") from None
    except OSError as exc:
        raise ConfigError(f"{where}: no Ray cluster answers ({exc.strerror or type(exc).__name__}); "
                          f"{advice}") from None
    raise ConfigError(f"{where}: something listens there but it is not a Ray cluster (its GCS speaks gRPC; "
                      f"this port did not: {reason}); {advice}")
