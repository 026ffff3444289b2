"""How one shard of a data-parallel search turns its slice of a batch into the whole batch's step.

Every shard loads the same global batch (same seeded order) and keeps its slice (:meth:`ShardComm.local`).
Losses are means over a shard's slice; for the gradients to be the whole batch's, shard ``r``
back-propagates ``K * n_r / N * loss`` (:meth:`ShardComm.scale_loss`) and the shards then average their
gradients (:meth:`ShardComm.average_`, one flat collective). The factor must be applied before the backward
pass: synchronised batch norm sums the upstream gradients of every shard inside it, so they must all be on
the whole batch's scale. Slices differ in size by at most one sample; a slice may be empty when a batch has
fewer samples than shards.

With one shard (``world_size == 1``) every method is the identity and nothing touches ``torch.distributed``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.distributed as dist

Batch = tuple[torch.Tensor, torch.Tensor]

#: below this many elements gathered in all, one all-gather and a local sum beat gloo's ring all-reduce
#: (measured with two CPU processes: 0.7 ms against 1.8 ms for 8 floats, equal at 100k, 2x slower at 1M)
GATHER_LIMIT = 1 << 17


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """The elementwise sum of ``t`` over every process of the default group, identical on all of them.

    Small CPU tensors are all-gathered and summed in rank order; large ones and NCCL use ``all_reduce``
    (in place). Returns the sum (``t`` itself after an in-place all-reduce).
    """
    world = dist.get_world_size()
    if world == 1:
        return t
    if t.is_cuda or t.numel() * world > GATHER_LIMIT:
        dist.all_reduce(t)
        return t
    gathered = t.new_empty((world * t.numel(),))
    gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    gather(gathered, t.contiguous().view(-1))
    return gathered.view(world, *t.shape).sum(0)


class ShardComm:
    """Slicing and gradient averaging for shard ``rank`` of ``world_size`` (``torch.distributed``'s default group).

    The caller initialises the process group before the first collective. Every shard must make the same
    calls in the same order (they are collectives); the search loop guarantees it.
    """

    def __init__(self, rank: int = 0, world_size: int = 1) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} of world size {world_size} is out of range")
        self.rank = int(rank)
        self.world_size = int(world_size)

    @property
    def active(self) -> bool:
        """Whether there is more than one shard."""
        return self.world_size > 1

    def local(self, batch: Batch) -> Batch:
        """This shard's contiguous slice of a global ``(x, y)`` batch."""
        if not self.active:
            return batch
        x, y = batch
        return x.tensor_split(self.world_size)[self.rank], y.tensor_split(self.world_size)[self.rank]

    def scale_loss(self, loss: torch.Tensor, batch: Batch) -> torch.Tensor:
        """``loss`` (a mean over this shard's ``batch``) scaled so that the shards' average is the whole batch's.

        One small collective finds the global batch size. An empty slice contributes zero (its mean loss is NaN).
        """
        if not self.active:
            return loss
        local = int(batch[1].shape[0])
        total = float(all_sum(torch.tensor([float(local)], dtype=torch.float64, device=loss.device))[0])
        if local == 0:
            return loss.nan_to_num(0.0) * 0.0
        return loss * (self.world_size * local / total)

    def average_(self, tensors: Sequence[torch.Tensor]) -> None:
        """Replace each tensor by its mean over the shards, in place (one flat collective)."""
        if not self.active or not tensors:
            return
        flat = all_sum(torch.cat([t.detach().reshape(-1) for t in tensors])) / self.world_size
        offset = 0
        with torch.no_grad():
            for t in tensors:
                n = t.numel()
                t.copy_(flat[offset:offset + n].view_as(t))
                offset += n

    def sum_(self, values: Sequence[float]) -> list[float]:
        """The sums over the shards of a few numbers (counts, loss sums), in float64."""
        if not self.active:
            return [float(v) for v in values]
        totals = torch.tensor([float(v) for v in values], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            totals = totals.cuda()
        return [float(v) for v in all_sum(totals).cpu()]
