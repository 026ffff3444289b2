"""Checkpoint retention of PBT populations: every checkpoint is kept while the population runs, each
trial's last one after it finished.

Tune's retention (``CheckpointConfig.num_to_keep``) is per trial: each trial's checkpoint manager deletes
its oldest checkpoints as it registers new ones. Under population based training a trial's checkpoint is
also another trial's: an exploit points the exploiting trial at the source's checkpoint folder, and the
exploiting trial restores from it only when it starts again, which can be many of the source's epochs
later (it may wait for a CPU, or be exploited again and again while the source is paused). The source's
manager cannot see that and deletes the folder; the exploiting trial then fails ("No such file or
directory: .../checkpoint_000002/search_state.pt"), and a resume of a trial whose latest checkpoint is gone
fails the same way. PBT also makes Tune register a top trial's checkpoint twice (PBT's own save of it and
Tune's), so the manager deleted that folder twice: the second deletion raised ``FileNotFoundError`` out of
``register_checkpoint`` ("Error handling checkpoint" with the whole result dict), which also skipped the
update of the trial's checkpoint index, so the trial's next checkpoint went into a folder name it had used
before and a later deletion removed its newest checkpoint.

So a PBT experiment runs with ``num_to_keep=None`` (:func:`raynas.tune.schedulers.checkpoints_to_keep`):
nothing is deleted while any trial may still need a checkpoint. Once every trial has finished,
:func:`prune_superseded_checkpoints` removes all but the checkpoint each trial registers as its latest.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def prune_superseded_checkpoints(tune_dir: Path) -> int:
    """Delete every checkpoint folder under ``tune_dir``'s trial folders but each trial's latest one (the
    checkpoint Tune's saved state restores it from); call it only when every trial has finished. Returns
    how many folders were removed."""
    from ray import tune

    trials = tune.ExperimentAnalysis(str(tune_dir)).trials
    keep = {Path(trial.checkpoint.path).resolve() for trial in trials if trial.checkpoint is not None}
    removed = 0
    for trial in trials:
        for folder in sorted(Path(trial.path).glob("checkpoint_*")):
            if folder.is_dir() and folder.resolve() not in keep:
                shutil.rmtree(folder)
                removed += 1
    return removed
