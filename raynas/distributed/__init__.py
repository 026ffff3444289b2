"""Data-parallel arithmetic of a sharded search: batch slices, loss scaling, gradient averaging, synced BN.

Torch only (no Ray): :mod:`raynas.actors` starts the shard processes and their process group; the search
loop uses :class:`ShardComm` and :func:`sync_batchnorm`. Importing this package imports torch.
"""

from raynas.distributed.comm import ShardComm
from raynas.distributed.syncbn import ShardBatchNorm, sync_batchnorm

__all__ = ["ShardBatchNorm", "ShardComm", "sync_batchnorm"]
