"""The Ray Tune function trainable: one trial = one differentiable search.

The trial's Tune config is ``{"overrides": {dotted key: value}}``; the resolved base config travels with
:func:`ray.tune.with_parameters`. Every epoch reports the metrics of ``docs/architecture.md`` and a
checkpoint holding :meth:`raynas.search.Search.get_state`; a restored trial continues from its last
checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ray import tune

from raynas.config import config_from_dict, with_overrides

STATE_FILE = "search_state.pt"


def search_trainable(config: dict[str, Any], base: dict[str, Any]) -> None:
    """Run one search, reporting each epoch to Tune (the function trainable)."""
    from raynas.search import Search, load_state, save_state

    cfg = config_from_dict(with_overrides(base, config.get("overrides", {})))
    search = Search(cfg)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            search.set_state(load_state(os.path.join(folder, STATE_FILE)))
    while not search.done:
        report = search.run_epoch()
        with tempfile.TemporaryDirectory(prefix="raynas-ckpt-") as folder:
            save_state(search.get_state(), os.path.join(folder, STATE_FILE))
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(folder))
