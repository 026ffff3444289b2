"""The Ray this process runs on, across runs: reuse it, restart it, or refuse a run it cannot serve.

Ray is initialised once per process, and ``ray.init`` of a running Ray fails or ignores its arguments. A
command-line run starts Ray once and exits; the Python API (:mod:`raynas.api`) may run several searches and
trainings in one process. :func:`raynas.experiment.start_ray` asks :func:`settle` before it starts Ray:

- no Ray running: start one;
- a Ray that raynas started (or joined) in this process: reuse it when every ``ray.*`` setting the run sets
  matches it, else shut it down and start one with the run's settings (a line says which settings differ);
- a Ray raynas did not start (the user's ``ray.init``, a test's): use it as it is, as Ray Tune does; a set
  ``ray.address`` or ``ray.num_cpus`` it contradicts is a one-line :class:`ConfigError`, before anything runs.

A setting left unset (``ray.address``/``ray.num_cpus`` null) accepts the running Ray; ``ray.allocator``
always has a value, so a Ray raynas started on another allocator is restarted. ``ray.dashboard: true``
restarts a Ray raynas started without that dashboard (false accepts one with a dashboard). The allocator of a
Ray raynas did not start is its own. This module imports Ray only where it is already imported.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Callable, Optional

from raynas.config.schema import RayConfig
from raynas.errors import ConfigError


@dataclass(frozen=True)
class RaySettings:
    """What a Ray raynas starts is started with: the cluster it joins (None: a local instance), the CPUs of a
    local instance, the allocator and the worker environment of its job (allocator, hold control)."""

    address: Optional[str]
    num_cpus: Optional[int]
    allocator: str
    env_vars: tuple[tuple[str, str], ...]
    dashboard: Optional[tuple[str, Optional[int]]] = None  # a local instance's dashboard (host, port); None: none


def settings_for(ray_cfg: RayConfig, env_vars: dict[str, str]) -> RaySettings:
    """The settings :func:`raynas.experiment.start_ray` starts Ray with for ``ray_cfg`` (a local instance
    gets ``ray.num_cpus``, else this machine's CPUs)."""
    num_cpus = None if ray_cfg.address else int(ray_cfg.num_cpus or os.cpu_count() or 1)
    dashboard = None
    if ray_cfg.dashboard and not ray_cfg.address:
        dashboard = (ray_cfg.dashboard_host.strip(), ray_cfg.dashboard_port)
    return RaySettings(ray_cfg.address, num_cpus, ray_cfg.allocator, tuple(sorted(env_vars.items())), dashboard)


# The Ray this process started through start_ray: its settings and which connection it is (a Ray the user
# shut down and started again is not ours any more, even with the same settings).
_started: Optional[tuple[RaySettings, tuple[str, str]]] = None


def _connection() -> tuple[str, str]:
    """The running Ray connection: this driver's node and job ids (new for every ``ray.init``)."""
    import ray

    context = ray.get_runtime_context()
    return context.get_node_id(), context.get_job_id()


def record_started(settings: RaySettings) -> None:
    """Remember that this process just started (or joined) Ray with ``settings``."""
    global _started
    _started = (settings, _connection())


def started_settings() -> Optional[RaySettings]:
    """The settings of the Ray raynas started in this process, when it is still the one running; else None."""
    if _started is None or "ray" not in sys.modules:
        return None
    import ray

    if not ray.is_initialized() or _connection() != _started[1]:
        return None
    return _started[0]


def differences(running: RaySettings, ray_cfg: RayConfig, wanted: RaySettings) -> list[str]:
    """The ``ray.*`` settings of ``ray_cfg`` that the Ray raynas started with ``running`` does not have, in
    words (``ray.num_cpus 2 (running: 1)``); unset ones accept it."""
    where = running.address or "a local instance"
    found = []
    if ray_cfg.address and ray_cfg.address != running.address:
        found.append(f"ray.address {ray_cfg.address} (running: {where})")
    if ray_cfg.num_cpus is not None and not ray_cfg.address and ray_cfg.num_cpus != running.num_cpus:
        found.append(f"ray.num_cpus {ray_cfg.num_cpus} (running: "
                     + (f"{running.num_cpus})" if running.num_cpus is not None else f"{where})"))
    if wanted.dashboard is not None and wanted.dashboard != running.dashboard:  # one not asked for does no harm
        found.append(f"ray.dashboard on {_host_port(wanted.dashboard)} (running: "
                     + (f"on {_host_port(running.dashboard)})" if running.dashboard else "off)"))
    if wanted.allocator != running.allocator:
        found.append(f"ray.allocator {wanted.allocator} (running: {running.allocator})")
    elif wanted.env_vars != running.env_vars:
        found.append("the worker environment (RAYNAS_HOLD_*)")
    return found


def _host_port(dashboard: tuple[str, Optional[int]]) -> str:
    """``127.0.0.1:8265``, or ``127.0.0.1`` with the port left to Ray."""
    host, port = dashboard
    return host if port is None else f"{host}:{port}"


def check_foreign(ray_cfg: RayConfig) -> None:
    """Refuse (one-line :class:`ConfigError`) a set ``ray.address`` or ``ray.num_cpus`` that the running Ray,
    which raynas did not start, contradicts; raynas runs on that Ray as it is."""
    import ray

    advice = "raynas runs on it as it is: leave the setting unset (null), or call ray.shutdown() first"
    if ray_cfg.address and ray_cfg.address not in ("auto", "local"):
        running = ray.get_runtime_context().gcs_address
        if ray_cfg.address != running:
            raise ConfigError(f"ray.address = {ray_cfg.address!r}: this process already runs a Ray it did not "
                              f"start through raynas (ray.init), connected to {running}; {advice}")
    if ray_cfg.num_cpus is not None and not ray_cfg.address:
        cpus = float(ray.cluster_resources().get("CPU", 0.0))
        if cpus != ray_cfg.num_cpus:
            raise ConfigError(f"ray.num_cpus = {ray_cfg.num_cpus}: this process already runs a Ray it did not "
                              f"start through raynas (ray.init), with {cpus:g} CPUs; {advice}")
    if ray_cfg.dashboard:
        from raynas.ray_dashboard import running_url

        if not running_url():
            raise ConfigError("ray.dashboard = true: this process already runs a Ray it did not start through "
                              f"raynas (ray.init), without a dashboard; {advice}")


def check_running(ray_cfg: RayConfig) -> None:
    """Before anything is written: :func:`check_foreign` when a Ray that raynas did not start is running
    (a Ray raynas started is restarted instead). Imports Ray only when it is already imported."""
    if "ray" not in sys.modules:
        return  # nobody imported Ray: nothing runs
    import ray

    if ray.is_initialized() and started_settings() is None:
        check_foreign(ray_cfg)


def settle(ray_cfg: RayConfig, wanted: RaySettings, echo: Callable[[str], None]) -> bool:
    """Whether a running Ray serves a run with ``ray_cfg`` (``wanted``: what starting one would use). False
    when none runs, or when the Ray raynas started had other settings: it is shut down here (said on
    ``echo``), to be started again. A Ray raynas did not start serves, or raises :class:`ConfigError`."""
    import ray

    if not ray.is_initialized():
        return False
    running = started_settings()
    if running is None:
        check_foreign(ray_cfg)
        return True
    changed = differences(running, ray_cfg, wanted)
    if not changed:
        return True
    echo(f"raynas: restarting the Ray this process started, with this run's settings: {'; '.join(changed)}")
    ray.shutdown()
    return False
