"""``raynas resume --max-failures N``: a fresh retry budget for the trials of a resumed run.

Ray Tune (2.x) cannot be told this on restore: ``Tuner.restore`` takes no RunConfig, and each trial keeps
the ``max_failures`` of the FailureConfig it was created under in the experiment state Tune saved (with its
count of failures so far, ``run_metadata.num_failures``, which a restore keeps too). So the budget is set
on the restored trials themselves, by a callback, before the resumed run starts any of them: a trial may
fail ``N`` more times in this run (those before it do not count), and Tune saves that limit with the trial.
A trial first created in this run (not started before) gets the same ``N``.
"""

from __future__ import annotations

from typing import Any

from ray import tune


class RetryBudget(tune.Callback):
    """Let every trial of the run be retried ``max_failures`` more times after its process dies.

    Set once per trial, at the first step that sees it: before the run starts it, whether it was restored
    (its saved failures are added, so they do not use up the new budget) or created now.
    """

    def __init__(self, max_failures: int) -> None:
        self.max_failures = max_failures
        self._seen: set[str] = set()

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        for trial in trials:
            if trial.trial_id in self._seen:
                continue
            self._seen.add(trial.trial_id)
            trial.max_failures = trial.run_metadata.num_failures + self.max_failures
            trial.invalidate_json_state()  # Tune caches a trial's saved form: the new limit is saved too


def retry_callbacks(max_failures: int | None) -> list[Any]:
    """The callbacks a resumed run adds for ``--max-failures`` (none when it is not given)."""
    return [] if max_failures is None else [RetryBudget(max_failures)]


def retry_line(max_failures: int | None) -> str | None:
    """What a resume prints about its ``--max-failures`` (None when it is not given)."""
    if max_failures is None:
        return None
    return (f"raynas: a trial whose process dies is retried up to {max_failures} time(s) in this run, from its last "
            "checkpoint (--max-failures)")
