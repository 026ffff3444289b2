"""The Ray Tune function trainable: one trial = one differentiable search.

The trial's Tune config is ``{"overrides": {dotted key: value}}``; the resolved base config travels with
:func:`ray.tune.with_parameters`. Every epoch reports the metrics of ``docs/architecture.md`` and a
checkpoint holding :meth:`raynas.search.Search.get_state`; a restored trial continues from its last
checkpoint (the last one with ``done``), or from the newest older one that loads when the latest is torn
(:func:`raynas.tune.checkpoints.load_newest_intact`; the first report then carries
``checkpoint_fallback``, the line the progress output prints). The state file is written atomically into a
fresh folder (:func:`raynas.runtime.save_state`) and Tune copies that complete folder to storage before the
report reaches the driver, so the checkpoint a trial restores from is never half written; it is read back
with ``weights_only=True``. A search scored against the ground truth (``benchmark.score`` resolved to on by
the driver) adds its derived cell's
``gt_test_acc``, ``gt_percentile`` and ``gt_regret`` to every epoch's report. Each trial's config passes
through its terms' :meth:`raynas.objectives.base.Term.prepare_trial` (an E2NAS search with
``e2nas.pretrain_per_search`` reads its seed's autoencoder).

A search that diverges (:class:`raynas.errors.SearchDivergedError`) is deterministic: retrying it from its
checkpoint would diverge again, so it is not left to ``tune.max_failures``. The trial ends with one
divergence report (:func:`divergence_report`) that the results callback records as status ERROR with the
reason; Tune sees a finished trial, retries nothing, and a resume does not run it again.
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import Any

from ray import tune

from raynas.benchmark.scoring import ground_truth_columns, ground_truth_for
from raynas.config import ExperimentConfig, config_from_dict, with_overrides
from raynas.objectives import prepare_trial
from raynas.errors import SearchDivergedError
from raynas.results.callback import CHECKPOINT_FALLBACK_KEY, DIVERGED_KEY
from raynas.tune.checkpoints import load_newest_intact
from raynas.tune.hold import hold_point

STATE_FILE = "search_state.pt"


def search_trainable(config: dict[str, Any], base: dict[str, Any]) -> None:
    """Run one search, reporting each epoch to Tune (the function trainable)."""
    from raynas.runtime import load_state, save_state
    from raynas.search import Search

    cfg = prepare_trial(config_from_dict(with_overrides(base, config.get("overrides", {}))))
    truth = ground_truth_for(cfg)  # None unless the driver resolved benchmark.score to on
    search = Search(cfg) if cfg.resources.shards == 1 else shard_group(cfg)
    search.owner = tune.get_context().get_trial_id()
    lineage: dict[str, Any] = {}
    try:
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            state, fallback = load_newest_intact(checkpoint, STATE_FILE, load_state)
            lineage = restore_state(search, state) if state is not None else {}  # None: none loads, from epoch 1
            if fallback:  # the driver's progress line says so (a worker's own output is not shown)
                lineage[CHECKPOINT_FALLBACK_KEY] = fallback
        while not search.done:
            report = {**search.run_epoch(), **lineage}
            lineage = {}  # only the first report after a restore says which state it went on from
            if truth is not None:  # before the report: schedulers and searchers may rank by it
                report.update(ground_truth_columns(truth, report["genotype"]))
            if search.done:
                # The last report ends the trial: Tune stops it without asking the scheduler, so PBT does not
                # exploit into a finished search (a restart that reports nothing and leaves the trial's latest
                # checkpoint another trial's) and ASHA has nothing left to decide.
                report["done"] = True
            with tempfile.TemporaryDirectory(prefix="raynas-ckpt-") as folder:
                save_state(search.get_state(), os.path.join(folder, STATE_FILE))
                tune.report(report, checkpoint=tune.Checkpoint.from_directory(folder))
            hold_point(search.owner, search.epoch, search.done)  # off unless RAYNAS_HOLD_* are set
    except SearchDivergedError as err:
        tune.report(divergence_report(cfg, err))
    finally:
        search.close()  # a reused trial process would otherwise keep the search's actors alive


def restore_state(search: Any, state: dict[str, Any]) -> dict[str, Any]:
    """Load a checkpointed ``state`` into ``search``; returns the lineage keys of the next report.

    The next report carries ``restored_epoch`` (the epoch the state was saved at) and
    ``restored_fingerprint`` (the loaded architecture parameters' fingerprint, equal to the saver's
    ``state_fingerprint`` at that epoch): which checkpoint the trial goes on from, whether after a resume, a
    retry, a PBT pause or an exploit. A state saved by this trial continues as it was. A state saved by
    another trial is a PBT exploit: the search keeps that trial's weights, architecture parameters and
    optimizer state but runs on with this trial's own meta-hyperparameters
    (:meth:`raynas.search.Search.apply_hyperparameters`), and the report also carries ``restored_from``
    (the source trial).
    """
    search.set_state(state)
    owner = state.get("owner")
    lineage = {"restored_epoch": search.epoch, "restored_fingerprint": search.fingerprint()}
    if owner is None or owner == search.owner:
        return lineage
    search.apply_hyperparameters()
    return {"restored_from": str(owner), **lineage}


def divergence_report(cfg: ExperimentConfig, err: SearchDivergedError) -> dict[str, Any]:
    """The last report of a diverged trial: the one-line reason, no checkpoint, and ``done``.

    ``done`` makes Tune stop the trial without consulting the scheduler (PBT must not exploit into it); the
    ranking metric is NaN because Tune insists that every report carries it and a searcher such as Optuna
    records a NaN trial as failed. Raised in a shard actor, the error arrives as Ray's task error whose
    ``cause`` is the original; the reason is that one line, not the remote traceback.
    """
    cause = getattr(err, "cause", None)
    lines = str(cause if isinstance(cause, SearchDivergedError) else err).strip().splitlines()
    return {DIVERGED_KEY: lines[-1] if lines else "the search diverged", cfg.tune.metric: math.nan, "done": True}


def shard_group(cfg: ExperimentConfig) -> Any:
    """The trial's search run by ``cfg.resources.shards`` shard actors (the interface of ``Search``).

    The actors die with the trial: their handles go out of scope when the trainable returns, and Tune
    removes the trial's placement group.
    """
    from raynas.actors.shard_group import ShardGroup

    return ShardGroup(cfg)
