"""Progress output of a running experiment: one line per trial epoch, and one when a trial ends."""

from __future__ import annotations

import sys
from typing import Any, Callable, TextIO

from ray import tune

from raynas.ranking import RANK_METRICS
from raynas.results.callback import CHECKPOINT_FALLBACK_KEY, DIVERGED_KEY

#: search.rank_metrics kind -> the accuracy column its progress text shows (params is not an accuracy)
_RANK_ACCURACY = {kind: columns[0] for kind, columns in RANK_METRICS.items() if columns[0].endswith("_val_acc")}
PARAMS_COLUMN = RANK_METRICS["params"][0]


def overrides_label(overrides: dict[str, Any]) -> str:
    """A short label of a trial's overrides, e.g. ``search.seed=1``."""
    return ",".join(f"{k}={v}" for k, v in overrides.items()) or "base"


def ground_truth_text(result: dict[str, Any]) -> str:
    """``  gt_acc 0.812 (p73)``: the derived cell's ground truth and percentile, empty when not scored."""
    accuracy, percentile = result.get("gt_test_acc"), result.get("gt_percentile")
    if accuracy is None:
        return ""
    return f"  gt_acc {accuracy:.3f}" + (f" (p{percentile:.0f})" if percentile is not None else "")


def rank_metrics_text(result: dict[str, Any]) -> str:
    """``  bn_acc 0.612  finetune_acc 0.701  params 12,345``: the ranking metrics measured this epoch
    (search.rank_metrics, NaN or absent on the epochs between ``rank_metrics_every``), empty when none was."""
    parts = []
    for kind, column in _RANK_ACCURACY.items():
        value = result.get(column)
        if isinstance(value, (int, float)) and value == value:  # NaN != NaN: not measured this epoch
            parts.append(f"  {kind}_acc {value:.3f}")
    params = result.get(PARAMS_COLUMN)
    if isinstance(params, (int, float)) and params == params:
        parts.append(f"  params {int(params):,}")
    return "".join(parts)


class ProgressCallback(tune.Callback):
    """Prints each trial's epoch metrics as they arrive (Tune's own tables are turned off)."""

    def __init__(self, epochs: Callable[[dict[str, Any]], int], stream: TextIO | None = None) -> None:
        self._epochs = epochs
        self._stream = stream  # None: sys.stdout when printing (Tune pickles callbacks; stdout is not data)

    def _say(self, text: str) -> None:
        print(text, file=self._stream or sys.stdout, flush=True)

    def _name(self, trial: Any) -> str:
        overrides = trial.config.get("overrides", {})
        return f"[{trial.trial_id} {overrides_label(overrides)}]"

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if result.get(DIVERGED_KEY):
            self._say(f"{self._name(trial)} DIVERGED: {result[DIVERGED_KEY]}")
            return
        if result.get(CHECKPOINT_FALLBACK_KEY):
            self._say(f"{self._name(trial)} {result[CHECKPOINT_FALLBACK_KEY]}")
        epochs = self._epochs(trial.config.get("overrides", {}))
        stage = f"  decided {result['decided_edges']}" if "decided_edges" in result else ""
        self._say(f"{self._name(trial)} epoch {result['epoch']:>3}/{epochs}"
                  f"  train_loss {result['train_loss']:.3f}  train_acc {result['train_acc']:.3f}"
                  f"  val_acc {result['val_acc']:.3f}  derived_val_acc {result['derived_val_acc']:.3f}"
                  f"{rank_metrics_text(result)}{ground_truth_text(result)}  skip {result['num_skip']}{stage}  "
                  f"{result['epoch_time_s']:.1f}s")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if result.get(DIVERGED_KEY):
            self._say(f"{self._name(trial)} FAILED (diverged, not retried)")
            return
        self._say(f"{self._name(trial)} finished: {result.get('genotype', '?')}")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """A trial's process died and Tune retries it (``tune.max_failures``)."""
        self._say(f"{self._name(trial)} lost its process; retrying from its last checkpoint (tune.max_failures)")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._say(f"{self._name(trial)} FAILED (see the trial's error.txt under the experiment's tune/ folder)")


class EvaluationProgress(tune.Callback):
    """Prints each training-from-scratch epoch as it arrives, and each trial's end (``raynas train``)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def _say(self, text: str) -> None:
        print(text, file=self._stream or sys.stdout, flush=True)

    @staticmethod
    def _name(trial: Any) -> str:
        from raynas.results.evaluation_callback import evaluation_spec

        spec = evaluation_spec(trial.config)
        overrides, source = spec.get("overrides", {}), spec.get("source_trial")
        return f"[{trial.trial_id} seed={overrides.get('seed')}{' from ' + source if source else ''}]"

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from raynas.results.evaluation_callback import evaluation_spec

        self._say(f"{self._name(trial)} training {evaluation_spec(trial.config).get('overrides', {}).get('genotype')}")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        from raynas.train import epoch_line

        if result.get(CHECKPOINT_FALLBACK_KEY):
            self._say(f"{self._name(trial)} {result[CHECKPOINT_FALLBACK_KEY]}")
        self._say(f"{self._name(trial)} {epoch_line(result)}")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        self._say(f"{self._name(trial)} finished: test_acc {result.get('test_acc', float('nan')):.4f}, "
                  f"{result.get('params', 0):,} params, {result.get('macs', 0) / 1e6:.2f}M multiply-adds")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._say(f"{self._name(trial)} lost its process; retrying from its last checkpoint (--max-failures)")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._say(f"{self._name(trial)} FAILED (see the trial's error.txt under the run's tune/ folder)")
