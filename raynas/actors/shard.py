"""One shard of a data-parallel search: a process holding a supernet replica and a slice of every batch.

:class:`ShardActor` runs as a Ray actor (started by :class:`raynas.actors.shard_group.ShardGroup`, the only place that
calls ``.remote()`` on it). It joins a ``torch.distributed`` process group (``nccl`` on a GPU, ``gloo`` on
the CPU) through a TCP store that rank 0 opens on a free port of its node's Ray address (and only there),
then builds :class:`raynas.search.Search` as its rank; the search averages gradients and batch-norm
statistics over the group (:mod:`raynas.distributed`). Many training steps run per actor call (one
epoch), so nothing but the epoch's report and the checkpoints passes through Ray.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import socket
import struct
from dataclasses import replace
from typing import Any, Optional

from raynas.config.schema import ExperimentConfig

_SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address
#: torch.distributed backends a shard group can use (default: nccl on a GPU, gloo on the CPU)
BACKENDS = ("gloo", "nccl")


def interface_of(address: str) -> Optional[str]:
    """The name of the network interface holding IPv4 ``address`` (Linux), or None when none does."""
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
            except OSError:  # no IPv4 address on this interface
                continue
        if socket.inet_ntoa(packed[20:24]) == address:
            return name
    return None


class ShardActor:
    """Shard ``rank`` of ``world_size`` of the search ``cfg``; torch uses ``cfg.resources.cpus_per_shard`` threads.

    Call order: ``open_store`` (rank 0 only), then ``join`` on every shard at once, then the same sequence
    of ``run_epoch``/``get_state``/``set_state`` calls on every shard (they contain collectives).
    """

    def __init__(self, cfg: ExperimentConfig, rank: int, world_size: int) -> None:
        import torch

        threads = max(1, int(cfg.resources.cpus_per_shard))
        torch.set_num_threads(threads)
        self.cfg = replace(cfg, search=replace(cfg.search, threads=threads))
        self.rank = rank
        self.world_size = world_size
        self.search: Any = None
        self._store: Any = None

    def open_store(self, timeout_s: float) -> tuple[str, int]:
        """Rank 0: open the rendezvous store on a free port of this node; return ``(address, port)``."""
        import ray
        import torch.distributed as dist

        host = ray.util.get_node_ip_address()
        # bound here because a TCPStore given only a port listens on every interface, not just Ray's
        family = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0][0]
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.bind((host, 0))
        listener.listen(128)
        port = int(listener.getsockname()[1])
        self._store = dist.TCPStore(host, port, self.world_size, is_master=True, wait_for_workers=False,
                                    timeout=datetime.timedelta(seconds=timeout_s),
                                    master_listen_fd=listener.detach())
        return host, port

    def join(self, host: str, port: int, timeout_s: float, backend: Optional[str] = None) -> str:
        """Join the process group at ``host:port`` and build this shard's search; return its device.

        ``backend``: ``nccl`` on a GPU and ``gloo`` on the CPU unless given (gloo also takes GPU tensors, so
        shards can share one GPU over it, which NCCL refuses)."""
        import ray
        import torch
        import torch.distributed as dist

        from raynas.runtime import pick_device

        from raynas.search import Search

        device = pick_device(self.cfg.search.device)
        backend = backend or ("nccl" if device.type == "cuda" else "gloo")
        if backend == "gloo" and "GLOO_SOCKET_IFNAME" not in os.environ:
            # gloo otherwise binds to whatever the host name resolves to, which need not be reachable
            # from the other nodes (or, on a loopback-only Ray, may not be loopback)
            name = interface_of(ray.util.get_node_ip_address())
            if name:
                os.environ["GLOO_SOCKET_IFNAME"] = name
        store = self._store
        if store is None:
            store = dist.TCPStore(host, port, self.world_size, is_master=False,
                                  timeout=datetime.timedelta(seconds=timeout_s))
        dist.init_process_group(backend, store=store, rank=self.rank, world_size=self.world_size)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        self.search = Search(self.cfg, device=device, rank=self.rank, world_size=self.world_size)
        return str(device)

    def run_epoch(self) -> Optional[dict[str, Any]]:
        """Train and evaluate one epoch; rank 0 returns the report, the others None."""
        report = self.search.run_epoch()
        return report if self.rank == 0 else None

    def get_state(self, full: bool) -> dict[str, Any]:
        """The search state (``full``), or only this shard's RNG states."""
        state = self.search.get_state()
        return state if full else {"rng": state["rng"]}

    def set_state(self, state: dict[str, Any]) -> int:
        """Restore a state; ``state["shard_rngs"]`` (one per shard) gives each shard its own RNG states."""
        rngs = state.get("shard_rngs")
        if rngs is not None and len(rngs) == self.world_size:
            state = {**state, "rng": rngs[self.rank]}
        self.search.set_state(state)
        return int(self.search.epoch)

    def apply_hyperparameters(self) -> None:
        """:meth:`raynas.search.Search.apply_hyperparameters` (after a PBT exploit)."""
        self.search.apply_hyperparameters()

    def fingerprint(self) -> int:
        """:meth:`raynas.search.Search.fingerprint` of this shard's architecture parameters."""
        return int(self.search.fingerprint())

    def step_seconds(self) -> list[float]:
        """Wall time of each training step of the last epoch."""
        return list(self.search.step_seconds)
