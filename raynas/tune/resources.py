"""Config -> the Ray resources one trial asks for."""

from __future__ import annotations

from typing import Any

from raynas.config import ExperimentConfig


def trial_resources(cfg: ExperimentConfig) -> Any:
    """What :func:`ray.tune.with_resources` gets for one trial of ``cfg``.

    With ``resources.shards`` > 1: a placement group whose bundle 0 is the trial's own process (the
    coordinator, ``cpus_per_trial``) and bundle ``1 + r`` shard ``r``'s actor (``cpus_per_shard`` and
    ``gpus_per_shard``), the layout :class:`raynas.actors.ShardGroup` expects.

    With ``selection.workers`` > 1 (shards are then 1): a placement group whose bundle 0 is the trial's own
    process (``cpus_per_trial`` and ``gpus_per_trial``) and bundles ``1 .. workers`` one selection task each
    (``cpus_per_selection_worker`` and ``gpus_per_selection_worker``), the layout
    :class:`raynas.selection.parallel.TaskEvaluator` expects. GPUs appear in a bundle only when asked for.

    Otherwise plain ``{"cpu": cpus_per_trial, "gpu": gpus_per_trial}``. Placement groups use ``PACK``.
    """
    res = cfg.resources
    workers = int(cfg.selection.workers)
    if res.shards == 1 and workers == 1:
        return {"cpu": res.cpus_per_trial, "gpu": res.gpus_per_trial}
    from ray import tune

    if res.shards > 1:  # the config keeps gpus_per_trial at 0 here: the shards hold the GPUs
        head, each, count = _bundle(res.cpus_per_trial, 0), _bundle(res.cpus_per_shard, res.gpus_per_shard), res.shards
    else:
        head = _bundle(res.cpus_per_trial, res.gpus_per_trial)
        each, count = _bundle(res.cpus_per_selection_worker, res.gpus_per_selection_worker), workers
    return tune.PlacementGroupFactory([head] + [dict(each) for _ in range(count)], strategy="PACK")


def _bundle(cpus: float, gpus: float) -> dict[str, float]:
    """One placement-group bundle; GPUs appear only when asked for."""
    return {"CPU": cpus, **({"GPU": gpus} if gpus > 0 else {})}
