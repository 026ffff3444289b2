"""The Ray Tune function trainable of ``raynas train``: one trial = one training from scratch.

The trial's Tune config is ``{"evaluation": {"overrides": {"genotype", "space", "seed"}, "source", "source_trial"}}``
(:meth:`raynas.evaluation.EvaluationPlan.trial_specs`); the shared training settings travel with
:func:`ray.tune.with_parameters`. Every epoch reports :meth:`raynas.train.ScratchTraining.run_epoch` (which
carries the whole history, so the evaluations row is complete from any single report) with a checkpoint of
:meth:`~raynas.train.ScratchTraining.get_state`, written atomically into a fresh folder; a restored trial
continues from its last checkpoint bit for bit on the CPU (from the newest older one that loads when the
latest is torn, :func:`raynas.tune.checkpoints.load_newest_intact`, which the progress output says).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ray import tune

from raynas.config import train_config_from_dict, with_overrides
from raynas.results.callback import CHECKPOINT_FALLBACK_KEY
from raynas.results.evaluation_callback import evaluation_spec
from raynas.tune.checkpoints import load_newest_intact
from raynas.tune.hold import hold_point


def evaluation_trainable(config: dict[str, Any], base: dict[str, Any]) -> None:
    """Train one genotype from scratch, reporting each epoch to Tune (the function trainable)."""
    from raynas.runtime import load_state, save_state
    from raynas.train import TRAIN_STATE_FILE, ScratchTraining

    overrides = evaluation_spec(config)["overrides"]
    training = ScratchTraining(train_config_from_dict(with_overrides(base, overrides)))
    checkpoint = tune.get_checkpoint()
    fallback = None
    if checkpoint is not None:
        state, fallback = load_newest_intact(checkpoint, TRAIN_STATE_FILE, load_state)
        if state is not None:  # None: no checkpoint loads, the training starts from the beginning
            training.set_state(state)
    while not training.done:
        report = training.run_epoch()
        if fallback:  # the first report after a restore from an older checkpoint says so
            report[CHECKPOINT_FALLBACK_KEY], fallback = fallback, None
        with tempfile.TemporaryDirectory(prefix="raynas-train-ckpt-") as folder:
            save_state(training.get_state(), os.path.join(folder, TRAIN_STATE_FILE))
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(folder))
        hold_point(tune.get_context().get_trial_id(), training.epoch, training.done)  # off unless RAYNAS_HOLD_*
