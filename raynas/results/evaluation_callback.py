"""The Ray Tune callback of ``raynas train``: each report becomes the trial's row of the evaluations table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from ray.tune import Callback

from raynas.results.callback import trial_error_line
from raynas.results.schema import EVALUATION_CURVES, EVALUATIONS
from raynas.results.writer import ResultsWriter

_FROM_REPORT = ("space", "dataset", "genotype", "seed", "params", "flops", "macs", "epochs", "config_json",
                *EVALUATION_CURVES,
                *(f"epoch_{name}" for name in EVALUATION_CURVES))


def evaluation_spec(trial_config: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's evaluation spec (overrides, source, source_trial) from its Tune config ``{"evaluation": spec}``."""
    return dict(trial_config.get("evaluation") or {})


def evaluation_row(trial_id: str, status: str, trial_config: Mapping[str, Any], result: Optional[Mapping[str, Any]],
                   base_config: Optional[Mapping[str, Any]] = None, error: Optional[str] = None) -> dict[str, Any]:
    """The evaluations-table row of a trial from its Tune config and its last report (None before one)."""
    from raynas.config.overrides import with_overrides

    trial_config = evaluation_spec(trial_config)
    overrides = dict(trial_config.get("overrides") or {})
    result = dict(result or {})
    row: dict[str, Any] = {name: None for name in EVALUATIONS.names if name != "experiment"}
    row.update(trial_id=trial_id, status=status, error=error, source=trial_config.get("source"),
               source_trial=trial_config.get("source_trial"), space=overrides.get("space"),
               genotype=overrides.get("genotype"), seed=overrides.get("seed"))
    if base_config is not None:  # until the first report brings the resolved config (protocol filled in)
        row["config_json"] = json.dumps(with_overrides(base_config, overrides), sort_keys=True, default=str)
        row["dataset"] = (base_config.get("data") or {}).get("name")
    for name in _FROM_REPORT:
        if result.get(name) is not None:
            row[name] = result[name]
    accuracies = list(row.get("epoch_test_acc") or [])
    row["epochs_done"] = len(accuracies)
    if accuracies:
        best = max(range(len(accuracies)), key=lambda i: (accuracies[i], -i))
        row["best_test_acc"], row["best_epoch"] = accuracies[best], best + 1
    row["wall_time_s"] = result.get("train_time_s")
    return row


class EvaluationsCallback(Callback):
    """Keeps one evaluations row per trial current: RUNNING on each report, TERMINATED or ERROR at its end;
    consolidates the table when the run ends."""

    def __init__(self, run_dir: Union[str, Path], run_name: str, base_config: Mapping[str, Any]) -> None:
        super().__init__()
        self.writer = ResultsWriter(run_dir, run_name)
        self.base_config = dict(base_config)

    def _write(self, trial: Any, status: str, error: Optional[str] = None) -> None:
        self.writer.write_evaluation(evaluation_row(trial.trial_id, status, trial.config, trial.last_result,
                                                    self.base_config, error))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        """Rewrite the trial's row from this report (status RUNNING)."""
        self.writer.write_evaluation(evaluation_row(trial.trial_id, "RUNNING", trial.config, result, self.base_config))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """Mark the trial TERMINATED."""
        self._write(trial, "TERMINATED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """Mark the trial ERROR with the last line of its error trace."""
        self._write(trial, "ERROR", trial_error_line(trial))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Consolidate the evaluations parts into ``tables/evaluations.parquet``."""
        self.writer.consolidate(["evaluations"])
