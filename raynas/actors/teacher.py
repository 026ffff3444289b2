"""SD-DARTS teachers in Ray actors (``objectives.sd.placement: actor``).

A :class:`TeacherActor` holds some of a search's supernet snapshots in a
:class:`raynas.actors.teacher_pool.TeacherPool` and answers a batch with its teachers' summed probabilities and
votes. :class:`TeacherGroup` (the only code that calls ``.remote()`` on it) starts ``objectives.sd.actors``
of them for one search process, sends snapshot ``i`` to actor ``i mod actors`` and merges the actors'
answers with :func:`raynas.actors.teacher_pool.merge_sums`, so a group answers as the local teachers do.

Ordering: every call goes from the search's thread to the actors, and Ray runs one caller's calls to an
actor in the order they were sent, so a snapshot sent before a question is there when the question is
answered, and a question sent before a snapshot is dropped is answered before the drop.

State: the group keeps the object-store reference of every snapshot it sent (put once with ``ray.put`` as
CPU tensors, shared by the push and by :meth:`TeacherGroup.snapshots`). A checkpoint therefore reads the
snapshots from the local object store, with no call to the actors and no GPU-to-CPU copy, and holds exactly
the bytes the actors loaded; the cost is that the object store keeps the K + 1 kept snapshots of each
search (it frees each one when it is dropped).

Resources: ``resources.cpus_per_teacher`` and ``gpus_per_teacher`` per actor; torch runs
``max(1, int(cpus_per_teacher))`` threads on the actor's GPU if it has one, else on the CPU. Inside a Tune
trial whose placement group comes from :func:`raynas.tune.resources.trial_resources`, the actors run in the
bundles :func:`raynas.tune.resources.teacher_bundles` names; elsewhere (tests, tools) they ask Ray for their
resources directly. Importing this module imports neither torch nor Ray.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from raynas.config.schema import ExperimentConfig, required_section
from raynas.errors import RaynasError

if TYPE_CHECKING:
    import torch

__all__ = ["TeacherActor", "TeacherGroup"]


class TeacherActor:
    """Holds snapshots of one search's supernet and answers batches with them (a Ray actor's class).

    ``num_classes`` and ``in_channels`` size the supernet of ``cfg`` as the search's data does.
    """

    def __init__(self, cfg: ExperimentConfig, num_classes: int, in_channels: int) -> None:
        import ray
        import torch

        from raynas.actors.teacher_pool import TeacherPool
        from raynas.supernet.build import build_supernet

        torch.set_num_threads(max(1, int(cfg.resources.cpus_per_teacher)))
        if ray.get_gpu_ids() and torch.cuda.is_available():
            device = torch.device("cuda", torch.cuda.current_device())
        else:
            device = torch.device("cpu")
        sd = required_section(cfg.objectives.sd, "objectives.sd")
        self.pool = TeacherPool(lambda: build_supernet(cfg, num_classes, in_channels), device, sd.temperature)

    def device(self) -> str:
        """Where the teachers run (``cpu`` or ``cuda:N``); answers once the actor is up."""
        return str(self.pool.device)

    def add(self, tag: int, snapshot: Mapping[str, Any]) -> None:
        """Hold ``snapshot`` (``{"model": state_dict, "arch_weights": {...}}``) under ``tag``."""
        self.pool.load(tag, snapshot["model"], snapshot["arch_weights"])

    def drop(self, tag: int) -> None:
        """Forget the snapshot ``tag``."""
        self.pool.forget(tag)

    def clear(self) -> None:
        """Forget every snapshot."""
        self.pool.clear()

    def tags(self) -> list[int]:
        """Tags of the held snapshots, oldest first."""
        return self.pool.tags

    def answer(self, x: "torch.Tensor", tags: Sequence[int]) -> Optional[tuple["torch.Tensor", "torch.Tensor"]]:
        """Summed probabilities and votes (CPU) of the held teachers among ``tags`` on ``x``; None if none."""
        sums = self.pool.answer(x, tags)
        return None if sums is None else (sums[0].cpu(), sums[1].cpu())


class TeacherGroup:
    """The ``objectives.sd.actors`` teacher actors of shard ``rank`` of ``world_size`` of one search.

    Offers the teacher-holder interface of :class:`raynas.objectives.sd.LocalTeachers`; ``request``
    returns object references at once (``asynchronous``) and ``collect`` waits for them. ``close`` kills
    the actors (idempotent). The first ``collect`` waits at most ``start_timeout_s`` for the actors to start.
    Needs an initialised Ray (a Tune trial has one).
    """

    asynchronous = True

    def __init__(self, cfg: ExperimentConfig, *, num_classes: int, in_channels: int, rank: int = 0,
                 world_size: int = 1, start_timeout_s: float = 600.0) -> None:
        import ray

        from raynas.actors.calls import spawn_in_bundles
        from raynas.tune.resources import teacher_bundles

        count = int(required_section(cfg.objectives.sd, "objectives.sd").actors)
        if not ray.is_initialized():
            raise RaynasError("objectives.sd.placement = 'actor' runs Ray actors but Ray is not initialised: "
                              "call ray.init first, or set objectives.sd.placement = 'local'")
        self.start_timeout_s = float(start_timeout_s)
        self._snapshots: dict[int, tuple[int, Any]] = {}  # tag -> (index, object ref)
        res = cfg.resources
        bundles = teacher_bundles(cfg, rank, world_size)
        self._actors: list[Any] = spawn_in_bundles(
            TeacherActor, [(cfg, num_classes, in_channels)] * count, num_cpus=res.cpus_per_teacher,
            num_gpus=res.gpus_per_teacher, bundles=bundles,
            needs=f"its {count} teacher actor(s) need bundles {bundles[0]}..{bundles[-1]}")
        self._starting: Optional[list[Any]] = [a.device.remote() for a in self._actors]
        self.devices: list[str] = []  #: each actor's device, known once the actors started

    def add(self, index: int, tag: int, model_state: Mapping[str, "torch.Tensor"],
            arch_weights: Mapping[str, "torch.Tensor"]) -> None:
        """Send snapshot number ``index`` (tagged ``tag``) to actor ``index mod actors``."""
        import ray

        snapshot = {"model": {k: v.detach().cpu() for k, v in model_state.items()},
                    "arch_weights": {cell: w.detach().cpu() for cell, w in arch_weights.items()}}
        ref = ray.put(snapshot)
        self._owner(index).add.remote(int(tag), ref)
        self._snapshots[int(tag)] = (int(index), ref)

    def drop(self, tag: int) -> None:
        """Make the actor holding ``tag`` forget it, and release its object-store copy."""
        entry = self._snapshots.pop(int(tag), None)
        if entry is not None:
            self._owner(entry[0]).drop.remote(int(tag))

    def clear(self) -> None:
        """Make every actor forget every snapshot."""
        for actor in self._actors:
            actor.clear.remote()
        self._snapshots = {}

    def request(self, x: "torch.Tensor", tags: Sequence[int]) -> list[Any]:
        """Ask the actors holding ``tags`` about ``x``; returns their answers' references, in actor order."""
        import ray

        owners = sorted({self._snapshots[int(t)][0] % len(self._actors) for t in tags})
        payload: Any = x.detach().cpu()
        if len(owners) > 1:
            payload = ray.put(payload)  # stored once, read by every asked actor
        tag_list = [int(t) for t in tags]
        return [self._actors[a].answer.remote(payload, tag_list) for a in owners]

    def collect(self, request: Sequence[Any]) -> tuple["torch.Tensor", "torch.Tensor"]:
        """The merged answers of a :meth:`request` (:func:`raynas.actors.teacher_pool.merge_sums`)."""
        from raynas.actors.calls import gather
        from raynas.actors.teacher_pool import merge_sums

        self._wait_started()
        return merge_sums(gather(request))

    def snapshots(self, tags: Sequence[int]) -> list[dict[str, Any]]:
        """The snapshots ``tags`` as sent (CPU tensors), read from the object store."""
        import ray

        return ray.get([self._snapshots[int(t)][1] for t in tags])

    def held_tags(self) -> list[list[int]]:
        """The tags each actor holds now, in actor order (asks the actors; for checks and tests)."""
        from raynas.actors.calls import gather

        return gather([actor.tags.remote() for actor in self._actors])

    def close(self) -> None:
        """Kill the teacher actors (idempotent)."""
        from raynas.actors.calls import kill_actors

        kill_actors(self._actors)
        self._actors = []
        self._snapshots = {}
        self._starting = None

    def _owner(self, index: int) -> Any:
        return self._actors[int(index) % len(self._actors)]

    def _wait_started(self) -> None:
        """Wait (bounded) for the actors to start, the first time only: a trial without the resources they
        ask for would otherwise wait for ever."""
        import ray

        if self._starting is None:
            return
        start = time.perf_counter()
        ready, pending = ray.wait(self._starting, num_returns=len(self._starting), timeout=self.start_timeout_s)
        if pending:
            raise RaynasError(f"{len(pending)} of {len(self._starting)} teacher actor(s) did not start within "
                              f"{time.perf_counter() - start:.0f}s: each asks for resources.cpus_per_teacher and "
                              "gpus_per_teacher; give Ray room for them or set objectives.sd.placement = 'local'")
        self.devices = ray.get(ready)
        self._starting = None
