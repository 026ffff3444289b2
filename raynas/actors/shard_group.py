"""A search trained data-parallel over shard actors (:class:`ShardGroup`).

:class:`ShardGroup` runs one search over ``cfg.resources.shards`` :class:`raynas.actors.shard.ShardActor`
processes and offers the part of :class:`raynas.search.Search` that a trial drives (``run_epoch``,
``get_state``, ``set_state``, ``done``), so a Tune trial uses either interchangeably. Inside a trial whose
resources come from :func:`raynas.tune.resources.trial_resources`, shard ``r`` runs in bundle ``1 + r`` of the
trial's placement group (bundle 0 is the trial's own process); elsewhere (tests, tools) the actors ask Ray
for their resources directly.
"""

from __future__ import annotations

from typing import Any, Optional

from raynas.actors.calls import gather, kill_actors, spawn_in_bundles
from raynas.actors.shard import BACKENDS, ShardActor
from raynas.config.schema import ExperimentConfig
from raynas.tune.resources import shard_bundles


class ShardGroup:
    """One search trained by ``cfg.resources.shards`` shard actors with synchronised gradients.

    Reports and checkpoints come from rank 0 (every shard holds the same weights and architecture); a
    checkpoint also holds each shard's RNG states under ``shard_rngs`` and the group's ``owner``. ``close``
    (or leaving a ``with`` block) kills the actors. ``start_timeout_s`` bounds the wait for the actors to
    start and join. ``backend``: the process group's, ``nccl`` on GPUs and ``gloo`` on CPUs when None (what a
    search uses); ``gloo`` on GPUs lets shards share one GPU, which NCCL refuses (``tools/bench_shards.py``
    measures that way on a machine with fewer GPUs than shards).
    """

    def __init__(self, cfg: ExperimentConfig, *, start_timeout_s: float = 600.0,
                 backend: Optional[str] = None) -> None:
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}: not one of {', '.join(BACKENDS)} (None: nccl on GPUs, gloo "
                             "on CPUs)")
        self.cfg = cfg
        self.epoch = 0
        self.owner: Optional[str] = None  #: the trial that owns this search, saved in its states (PBT lineage)
        self.world_size = int(cfg.resources.shards)
        self._actors: list[Any] = []
        try:
            self._actors = spawn_in_bundles(
                ShardActor, [(cfg, rank, self.world_size) for rank in range(self.world_size)],
                num_cpus=cfg.resources.cpus_per_shard, num_gpus=cfg.resources.gpus_per_shard,
                bundles=shard_bundles(cfg),
                needs=f"{self.world_size} shards need {self.world_size + 1} (one per shard after the trial's own)")
            host, port = gather([self._actors[0].open_store.remote(start_timeout_s)], start_timeout_s)[0]
            self.devices: list[str] = gather([a.join.remote(host, port, start_timeout_s, backend)
                                               for a in self._actors], start_timeout_s)
        except BaseException:
            self.close()
            raise

    @property
    def done(self) -> bool:
        """Whether every configured epoch has run, the selection stage's included."""
        from raynas.selection import total_epochs

        return self.epoch >= total_epochs(self.cfg)

    def run_epoch(self) -> dict[str, Any]:
        """Train and evaluate one epoch on every shard; return rank 0's report."""
        report = gather([a.run_epoch.remote() for a in self._actors])[0]
        self.epoch = int(report["epoch"])
        return report

    def get_state(self) -> dict[str, Any]:
        """Rank 0's :meth:`raynas.search.Search.get_state` plus ``shard_rngs``, every shard's RNG states."""
        states = gather([a.get_state.remote(rank == 0) for rank, a in enumerate(self._actors)])
        return {**states[0], "owner": self.owner, "shard_rngs": [s["rng"] for s in states]}

    def set_state(self, state: dict[str, Any]) -> None:
        """Set the same state on every shard (a state of an unsharded search works too)."""
        import ray

        ref = ray.put(state)
        self.epoch = gather([a.set_state.remote(ref) for a in self._actors])[0]

    def apply_hyperparameters(self) -> None:
        """Apply this trial's own meta-hyperparameters on every shard (after a PBT exploit)."""
        gather([a.apply_hyperparameters.remote() for a in self._actors])

    def fingerprint(self) -> int:
        """Rank 0's architecture fingerprint (every shard holds the same architecture parameters)."""
        return gather([self._actors[0].fingerprint.remote()])[0]

    def step_seconds(self) -> list[float]:
        """Wall time of each training step of rank 0's last epoch."""
        return gather([self._actors[0].step_seconds.remote()])[0]

    def close(self) -> None:
        """Kill the shard actors (idempotent)."""
        kill_actors(self._actors)
        self._actors = []

    def __enter__(self) -> "ShardGroup":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
