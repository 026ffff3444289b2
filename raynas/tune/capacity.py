"""Does one trial fit where it will run? Checked before any trial runs (``raynas search`` and ``resume``).

A trial's resources are all or nothing: its own process and the actors of its placement group (shards,
selection workers, SD-DARTS teachers; :func:`raynas.tune.resources.trial_parts`). Ray keeps a trial that
asks for more than the cluster has PENDING for ever, and Tune only says, every minute, that no trial has
started. A local instance (``ray.num_cpus`` CPUs, default this machine's) cannot grow, so a trial that does
not fit it is refused with a one-line error before anything is written (:func:`check_local_cpus`, from the
config alone, and :func:`check_fits` on the started instance, which also knows its GPUs). A joined cluster
may autoscale, so nothing is refused there: :func:`waiting_line` says once what a trial waits for.
Imports neither torch nor Ray.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional

from raynas.config.schema import ExperimentConfig
from raynas.errors import ConfigError
from raynas.tune.resources import trial_parts

#: Ray's names of the resources a trial asks for, and how a message names them.
RESOURCES = {"CPU": "CPU", "GPU": "GPU"}


def trial_demand(cfg: ExperimentConfig) -> dict[str, float]:
    """What one trial of ``cfg`` asks for in all: ``{"CPU": ..., "GPU": ...}`` summed over its processes."""
    parts = trial_parts(cfg)
    return {"CPU": sum(p.count * p.cpus for p in parts), "GPU": sum(p.count * p.gpus for p in parts)}


def demand_text(cfg: ExperimentConfig, resource: str) -> str:
    """``3 CPUs (1 for the trial + 2 shards x 1)``: one trial's total of ``resource`` and where it goes."""
    parts = [p for p in trial_parts(cfg) if (p.cpus if resource == "CPU" else p.gpus) > 0]
    total = trial_demand(cfg)[resource]
    pieces = []
    for part in parts:
        each = part.cpus if resource == "CPU" else part.gpus
        pieces.append(f"{each:g} for the trial" if part.label == "the trial"
                      else f"{part.count} {part.label} x {each:g}")
    return f"{_amount(total, resource)} ({' + '.join(pieces)})"


def local_cpus(cfg: ExperimentConfig) -> int:
    """The CPUs of the local Ray instance raynas starts for ``cfg``: ``ray.num_cpus``, else this machine's."""
    return int(cfg.ray.num_cpus or os.cpu_count() or 1)


def is_local(cfg: ExperimentConfig) -> bool:
    """Whether ``cfg`` runs on a local Ray instance raynas starts itself (no ``ray.address`` / ``--address``)."""
    return not cfg.ray.address


def check_local_cpus(cfg: ExperimentConfig) -> None:
    """Refuse (:class:`ConfigError`) a local run whose trial needs more CPUs than the instance will have.

    Called before anything is written or started; a joined cluster is never refused here.
    """
    if is_local(cfg):
        _check(cfg, "CPU", float(local_cpus(cfg)), has=_local_cpus_text(cfg))


def check_fits(cfg: ExperimentConfig, available: Mapping[str, float]) -> None:
    """Refuse a trial that does not fit the started local instance's ``available`` resources
    (``ray.cluster_resources()``): the CPUs again, and the GPUs, which Ray detects when it starts."""
    for resource in RESOURCES:
        _check(cfg, resource, float(available.get(resource, 0.0)),
               has=f"{_amount(float(available.get(resource, 0.0)), resource)}")


def waiting_line(cfg: ExperimentConfig, available: Mapping[str, float]) -> Optional[str]:
    """On a joined cluster: one line saying what a trial waits for when the cluster has less than one
    trial needs now (it may autoscale); None when a trial fits."""
    short = [r for r in RESOURCES if trial_demand(cfg)[r] > float(available.get(r, 0.0))]
    if not short:
        return None
    needs = " and ".join(demand_text(cfg, r) for r in short)
    has = " and ".join(_amount(float(available.get(r, 0.0)), r) for r in short)
    return (f"raynas: each trial needs {needs} at once and the cluster has {has} now: the trials wait "
            "until nodes with enough join (an autoscaling cluster adds them)")


def _check(cfg: ExperimentConfig, resource: str, available: float, *, has: str) -> None:
    needed = trial_demand(cfg)[resource]
    if needed <= available:
        return
    if resource == "CPU":
        fix = (f"--set ray.num_cpus={_whole(needed)} (Ray then shares this machine's cores among them) or ask "
               "for fewer (resources.shards, resources.cpus_per_*)")
    else:
        fix = "run on a machine with GPUs or join a cluster that has them (--address), or set resources.gpus_per_* to 0"
    raise ConfigError(f"resources: one trial needs {demand_text(cfg, resource)} but the local Ray instance has "
                      f"{has}; allowed: at most {available:g} per trial; fix: {fix}")


def _local_cpus_text(cfg: ExperimentConfig) -> str:
    source = f"ray.num_cpus={cfg.ray.num_cpus}" if cfg.ray.num_cpus else "this machine's CPUs"
    return f"{_amount(float(local_cpus(cfg)), 'CPU')} ({source})"


def _amount(value: float, resource: str) -> str:
    return f"{value:g} {RESOURCES[resource]}{'' if value == 1 else 's'}"


def _whole(value: float) -> int:
    return int(value) if float(value).is_integer() else int(value) + 1
