"""A sharded search that diverges stops on every shard at the same step with raynas' one-line error."""

from __future__ import annotations

import pytest

from raynas.actors.shard_group import ShardGroup
from raynas.config import config_from_dict
from raynas.errors import SearchDivergedError
from raynas.search import Search


@pytest.mark.slow  # moved from the default tier to keep it under 10 minutes; make test-all runs it
@pytest.mark.timeout(600)
def test_divergence_is_raised_as_itself_without_hanging(ray_local):
    cfg = config_from_dict({
        "space": "nb201",
        "data": {"name": "digits", "limit": 128},
        "supernet": {"channels": 4, "layers": 1},
        "search": {"epochs": 1, "batch_size": 32, "weight_lr": 1e30, "weight_lr_min": 0.0, "grad_clip": 0.0},
        "resources": {"shards": 2},
    })
    with pytest.raises(SearchDivergedError) as single:
        Search(cfg).run_epoch()
    with ShardGroup(cfg) as group:
        with pytest.raises(SearchDivergedError) as sharded:
            group.run_epoch()
    # the loss checked is the whole batch's, so the shards stop where one process stops
    assert str(sharded.value) == str(single.value)
    assert "\n" not in str(sharded.value)
