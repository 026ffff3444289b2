"""Config -> the Ray resources one trial asks for."""

from __future__ import annotations

from typing import Any

from raynas.config import ExperimentConfig


def trial_resources(cfg: ExperimentConfig) -> Any:
    """What :func:`ray.tune.with_resources` gets for one trial of ``cfg``.

    With ``resources.shards`` > 1: a placement group whose bundle 0 is the trial's own process (the
    coordinator, ``cpus_per_trial``) and bundle ``1 + r`` shard ``r``'s actor (``cpus_per_shard`` and
    ``gpus_per_shard``), the layout :class:`raynas.actors.ShardGroup` expects.
    """
    res = cfg.resources
    if res.shards == 1:
        return {"cpu": res.cpus_per_trial, "gpu": res.gpus_per_trial}
    from ray import tune

    shard = {"CPU": res.cpus_per_shard, **({"GPU": res.gpus_per_shard} if res.gpus_per_shard else {})}
    return tune.PlacementGroupFactory([{"CPU": res.cpus_per_trial}] + [dict(shard) for _ in range(res.shards)],
                                      strategy="PACK")
