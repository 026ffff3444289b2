"""TensorBoard event files of a search's trials (``tune.tensorboard``): Tune's logger, fed the metrics only.

Each trial's folder under ``<experiment>/tune/`` gets an ``events.out.tfevents.*`` file with one scalar
series per metric, tagged ``ray/tune/<metric>`` and stepped by the search's epoch; ``tensorboard --logdir
<experiment>/tune`` shows every trial of the population. Tune steps its logger by ``timesteps_total`` when a
result has it, else by ``training_iteration`` (the reports a trial made, which after a PBT exploit or a
restore need not be its epoch), so the epoch is handed over as ``timesteps_total``.
"""

from __future__ import annotations

from typing import Any

from ray.tune.logger import TBXLoggerCallback

#: Tune's keys that say which step a result is (TensorBoard's global step): the first one set counts
STEP_KEYS = ("timesteps_total", "training_iteration")
#: numbers of a result that are no metric: flags, identifiers and wall-clock times
NOT_METRICS = frozenset({"done", "should_checkpoint", "state_fingerprint", "restored_fingerprint", "reported_at"})


def scalar_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The metrics of a trial's result (numbers; true/false as 1/0), stepped by its ``epoch``: what
    TensorBoard shows as scalars.

    A search's report also holds the epoch's architecture weights and genotype as nested lists and text,
    which Tune's logger would try to log as histograms (a warning about each); the tables hold those.
    """
    numbers = {key: value for key, value in result.items()
               if key in STEP_KEYS or (isinstance(value, (int, float)) and key not in NOT_METRICS)}
    if isinstance(numbers.get("epoch"), int) and numbers["epoch"] > 0:
        numbers["timesteps_total"] = numbers["epoch"]
    return numbers


class ScalarTBXLoggerCallback(TBXLoggerCallback):
    """Tune's ``TBXLoggerCallback`` logging :func:`scalar_metrics` of each result only."""

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        super().log_trial_result(iteration, trial, scalar_metrics(result))
