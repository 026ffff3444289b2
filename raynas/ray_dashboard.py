"""The Ray dashboard of a search (``ray.dashboard``): off by default, on loopback when on.

The local Ray raynas starts listens on 127.0.0.1 only (:func:`raynas.experiment.keep_local_ray_on_loopback`);
its dashboard does too unless ``ray.dashboard_host`` says otherwise. Its API asks for the Ray token
(:mod:`raynas.ray_auth`), so the line with the URL says where the token is. The dashboard needs Ray's
optional packages (``pip install 'ray[default]'``): :func:`check_installed` says so before anything is
written. Joining a cluster (``ray.address``), the cluster's own dashboard is the one shown. Imports Ray only
in :func:`running_url`.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from raynas.config.schema import RayConfig
from raynas.errors import ConfigError

#: the modules Ray's dashboard imports on top of Ray itself (ray.dashboard.optional_deps), by top-level name
DASHBOARD_MODULES = ("aiohttp", "aiohttp_cors", "grpc", "opencensus", "prometheus_client",
                     "opentelemetry.exporter.prometheus")
#: what brings them
DASHBOARD_PIP = "'ray[default]'"


def missing_modules() -> list[str]:
    """The modules of :data:`DASHBOARD_MODULES` that cannot be imported here (found, not imported)."""
    import importlib.util

    missing = []
    for module in DASHBOARD_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # its parent package is missing or broken
            found = False
        if not found:
            missing.append(module)
    return missing


def check_installed(ray_cfg: RayConfig) -> None:
    """Refuse ``ray.dashboard: true`` for a local instance when Ray's dashboard packages are missing (one-line
    :class:`ConfigError` naming them and the pip package); imports nothing, writes nothing."""
    if not ray_cfg.dashboard or ray_cfg.address:
        return
    missing = missing_modules()
    if missing:
        raise ConfigError(f"ray.dashboard = true: Ray's dashboard needs packages that are not installed "
                          f"({', '.join(missing)}); install them (pip install {DASHBOARD_PIP}) or set "
                          "ray.dashboard: false")


def init_kwargs(ray_cfg: RayConfig) -> dict[str, Any]:
    """The ``ray.init`` arguments of a local instance's dashboard: none unless ``ray.dashboard``."""
    if not ray_cfg.dashboard:
        return {"include_dashboard": False}
    kwargs = {"include_dashboard": True, "dashboard_host": ray_cfg.dashboard_host.strip()}
    if ray_cfg.dashboard_port is not None:  # unset: Ray takes 8265 or, when that is taken, the next free one
        kwargs["dashboard_port"] = ray_cfg.dashboard_port
    return kwargs


def port_taken(ray_cfg: RayConfig, error: Exception) -> Optional[ConfigError]:
    """The one-line error for ``ray.init``'s ``error`` when it is Ray refusing a taken ``ray.dashboard_port``
    (None for any other error)."""
    if not ray_cfg.dashboard or ray_cfg.dashboard_port is None or "already occupied" not in str(error):
        return None
    return ConfigError(f"ray.dashboard_port = {ray_cfg.dashboard_port}: the port is taken on "
                       f"{ray_cfg.dashboard_host.strip()}; choose a free one, or leave it null (8265, or the next "
                       "free one)")


def dashboard_url(address: str) -> str:
    """``http://`` + the ``host:port`` Ray reports (it already is a URL when it has a scheme)."""
    return address if "://" in address else f"http://{address}"


def running_url() -> str:
    """The dashboard address (``host:port``) of the Ray this process is connected to; empty when it serves
    none. Ray returns it from ``ray.init``; a Ray this process reuses is asked through Ray's worker module."""
    try:
        from ray._private.worker import get_dashboard_url

        return get_dashboard_url() or ""
    except Exception:  # a Ray Client connection, or a Ray without it: no URL to show
        return ""


def url_line(address: str) -> Optional[str]:
    """``raynas: Ray dashboard: http://127.0.0.1:8265 (...)`` for a dashboard at ``address`` (``host:port``);
    None when there is none. With token authentication on, the line says where the token it asks for is."""
    if not address:
        return None
    token = ""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        from raynas.ray_auth import AUTH_TOKEN, token_path

        where = "the variable RAY_AUTH_TOKEN" if os.environ.get(AUTH_TOKEN) else f"the file {token_path()}"
        token = f" (its API asks for the Ray token: {where})"
    return f"raynas: Ray dashboard: {dashboard_url(address)}{token}"
