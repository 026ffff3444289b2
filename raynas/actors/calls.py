"""Calls on groups of Ray actors: starting them in their placement-group bundles, gathering their results
(failing fast), and stopping them.

Imports Ray only inside the functions, so the actor modules that use these stay importable without it.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from raynas.errors import RaynasError


def kill_actors(actors: Sequence[Any]) -> None:
    """Kill ``actors`` without restarts; ones already dead (or a Ray already shut down) are skipped."""
    import ray

    for actor in actors:
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # already dead or Ray shut down: nothing left to stop
            pass


def gather(refs: Sequence[Any], timeout_s: Optional[float] = None) -> list[Any]:
    """``ray.get`` of every ref, raising the first failure at once (the others may be stuck in a collective).

    A raynas error inside a shard (a diverged search) is re-raised as itself, its one-line message intact.
    """
    import ray

    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1, timeout=timeout_s)
        if not ready:
            raise TimeoutError(f"{len(pending)} shard call(s) did not finish within {timeout_s}s")
        try:
            ray.get(ready)
        except ray.exceptions.RayTaskError as err:
            if isinstance(err.cause, RaynasError):
                raise err.cause from None
            raise
    return ray.get(list(refs))


def spawn_in_bundles(actor_class: type, args: Sequence[tuple[Any, ...]], *, num_cpus: float, num_gpus: float,
                     bundles: Sequence[int], needs: str) -> list[Any]:
    """Start one actor of ``actor_class`` per entry of ``args`` (its constructor's arguments), asking
    ``num_cpus`` and ``num_gpus`` each.

    Inside a trial whose resources come from :func:`raynas.tune.resources.trial_resources`, actor ``i`` runs
    in bundle ``bundles[i]`` of the trial's placement group (the indices the same module computes, e.g.
    :func:`raynas.tune.resources.shard_bundles`); a group too small for them is a one-line
    :class:`RaynasError` saying what they ``needs`` (e.g. ``"2 shards need 3 (one per shard after the trial's
    own)"``). Outside a placement group (tests,
    tools) the actors ask Ray for their resources directly. An actor that was started is killed if a later
    one fails to start.
    """
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = ray.util.get_current_placement_group()
    if group is not None and bundles and len(group.bundle_specs) <= max(bundles):
        raise RaynasError(f"the trial's placement group has {len(group.bundle_specs)} bundle(s); {needs}: build "
                          "them with raynas.tune.resources.trial_resources")
    remote_class: Any = ray.remote(actor_class)
    actors: list[Any] = []
    try:
        for i, actor_args in enumerate(args):
            options: dict[str, Any] = {"num_cpus": num_cpus, "num_gpus": num_gpus}
            if group is not None:
                options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                    group, placement_group_bundle_index=bundles[i])
            actors.append(remote_class.options(**options).remote(*actor_args))
    except BaseException:
        kill_actors(actors)
        raise
    return actors
