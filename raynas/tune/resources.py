"""Config -> the Ray resources one trial asks for, and where each of its helpers runs.

Importing this module imports neither torch nor Ray (Tune is imported only to build a placement group).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raynas.config.schema import ExperimentConfig


def trial_resources(cfg: ExperimentConfig) -> Any:
    """What :func:`ray.tune.with_resources` gets for one trial of ``cfg``.

    A trial with nothing but its own process asks for plain ``{"cpu": cpus_per_trial, "gpu": gpus_per_trial}``.
    Otherwise it gets a placement group (strategy ``PACK``) whose bundle 0 is the trial's own process and
    whose further bundles are, in this order:

    - with ``resources.shards`` = S > 1: bundles ``1 .. S``, shard ``r``'s actor in bundle ``1 + r``
      (``cpus_per_shard`` and ``gpus_per_shard``; bundle 0 then has no GPU: the shards hold them), the
      layout :class:`raynas.actors.shard_group.ShardGroup` expects;
    - with ``selection.workers`` = W > 1 (shards are then 1): bundles ``1 .. W``, one selection worker actor
      each (``cpus_per_selection_worker`` and ``gpus_per_selection_worker``), the layout
      :class:`raynas.selection.parallel.ParallelEvaluator` expects;
    - with ``objectives.sd.placement: actor`` and A = ``objectives.sd.actors``: A teacher bundles
      (``cpus_per_teacher`` and ``gpus_per_teacher``) per search process, after all of the above: teacher
      ``i`` of an unsharded search in bundle ``1 + W' + i`` (W' = W when W > 1, else 0), teacher ``i`` of
      shard ``r`` in bundle ``1 + S + r * A + i``; :func:`teacher_bundles` computes these indices and
      :class:`raynas.actors.teacher.TeacherGroup` uses them.

    Example, S = 2 shards with A = 2 teachers each: ``[trial, shard 0, shard 1, t(0,0), t(0,1), t(1,0),
    t(1,1)]``. GPUs appear in a bundle only when asked for.
    """
    res = cfg.resources
    bundles = trial_bundles(cfg)
    if len(bundles) == 1:
        return {"cpu": res.cpus_per_trial, "gpu": res.gpus_per_trial}
    from ray import tune

    return tune.PlacementGroupFactory(bundles, strategy="PACK")


@dataclass(frozen=True)
class TrialPart:
    """One kind of process a trial runs: ``count`` of them, each asking ``cpus`` and ``gpus``."""

    label: str  # "the trial", "shards", "selection workers", "teachers"
    count: int
    cpus: float
    gpus: float


def trial_parts(cfg: ExperimentConfig) -> list[TrialPart]:
    """The processes of one trial of ``cfg`` in bundle order (see :func:`trial_resources`): the trial's own
    first, then its shards or selection workers, then its teachers; kinds it does not run are left out."""
    res = cfg.resources
    workers = _worker_bundles(cfg)
    teachers = _teachers_per_search(cfg)
    if res.shards > 1:  # the config keeps gpus_per_trial at 0 here: the shards hold the GPUs
        parts = [TrialPart("the trial", 1, res.cpus_per_trial, 0.0),
                 TrialPart("shards", res.shards, res.cpus_per_shard, res.gpus_per_shard)]
    else:
        parts = [TrialPart("the trial", 1, res.cpus_per_trial, res.gpus_per_trial)]
        if workers:
            parts.append(TrialPart("selection workers", workers, res.cpus_per_selection_worker,
                                   res.gpus_per_selection_worker))
    if teachers:
        parts.append(TrialPart("teachers", res.shards * teachers, res.cpus_per_teacher, res.gpus_per_teacher))
    return parts


def trial_bundles(cfg: ExperimentConfig) -> list[dict[str, float]]:
    """The bundles of one trial of ``cfg`` in the order :func:`trial_resources` documents (a trial with
    nothing but its own process: one bundle); Ray's resource names, GPUs only when asked for."""
    return [_bundle(part.cpus, part.gpus) for part in trial_parts(cfg) for _ in range(part.count)]


def shard_bundles(cfg: ExperimentConfig) -> list[int]:
    """The placement-group bundle of each shard actor, shard ``r`` in bundle ``1 + r`` (see
    :func:`trial_resources`, which makes these bundles when ``resources.shards`` > 1)."""
    return list(range(1, 1 + int(cfg.resources.shards)))


def selection_worker_bundles(cfg: ExperimentConfig) -> list[int]:
    """The placement-group bundle of each parallel selection worker, worker ``i`` in bundle ``1 + i`` (see
    :func:`trial_resources`, which makes these bundles when ``selection.workers`` > 1)."""
    return list(range(1, 1 + int(cfg.selection.workers)))


def teacher_bundles(cfg: ExperimentConfig, rank: int = 0, world_size: int = 1) -> list[int]:
    """The placement-group bundle of each teacher actor of shard ``rank`` of ``world_size`` (see
    :func:`trial_resources`); empty unless ``objectives.sd.placement`` is ``actor``."""
    teachers = _teachers_per_search(cfg)
    if world_size > 1:
        first = 1 + world_size + rank * teachers
    else:
        first = 1 + _worker_bundles(cfg)
    return list(range(first, first + teachers))


def _worker_bundles(cfg: ExperimentConfig) -> int:
    """Bundles of parallel selection workers (none when the selection runs in the trial's process)."""
    workers = int(cfg.selection.workers)
    return workers if workers > 1 else 0


def _teachers_per_search(cfg: ExperimentConfig) -> int:
    """Teacher actors of one search process (0 unless SD-DARTS keeps its teachers in actors)."""
    sd = cfg.objectives.sd
    return int(sd.actors) if sd is not None and sd.placement == "actor" else 0


def _bundle(cpus: float, gpus: float) -> dict[str, float]:
    """One placement-group bundle; GPUs appear only when asked for."""
    return {"CPU": cpus, **({"GPU": gpus} if gpus > 0 else {})}
