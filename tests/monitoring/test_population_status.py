"""The population status line (raynas.tune.status): counts, best trial, ETA, and its period on an injected clock.

The callback is driven as Tune's loop drives it (on_step_begin, on_trial_result, on_experiment_end) with real
Tune Trial objects; the clock is a list of times the test advances, so the period is checked without waiting.
"""

from __future__ import annotations

import io
import math

import pytest
from ray.tune.experiment import Trial

from raynas.results.callback import DIVERGED_KEY
from raynas.tune.status import (PopulationStatus, Status, TrialState, eta_seconds, format_duration, format_value,
                                status_line, summarize)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_trial(trial_id: str, status: str = Trial.PENDING, epochs: int = 4, **result: object) -> Trial:
    # stub=True: Tune's own flag for a Trial whose trainable is not looked up (nothing runs here)
    trial = Trial("search_trainable", config={"overrides": {"search.epochs": epochs}}, trial_id=trial_id, stub=True)
    trial.set_status(status)
    if result:
        trial.update_last_result(dict(result))
    return trial


def status_callback(clock: Clock, out: io.StringIO, every: float = 30.0, expected: int = 4) -> PopulationStatus:
    return PopulationStatus("val_acc", "max", lambda overrides: overrides["search.epochs"], expected, 4, every,
                            clock=clock, stream=out)


def test_summary_counts_every_kind_of_trial_and_picks_the_best_latest_value() -> None:
    states = [TrialState("a", "RUNNING", 2, 5, 0.40), TrialState("b", "TERMINATED", 5, 5, 0.70),
              TrialState("c", "TERMINATED", 3, 5, math.nan, failed=True),  # diverged: finished for Tune
              TrialState("d", "ERROR", 1, 5, 0.90), TrialState("e", "PAUSED", 2, 5, 0.55),
              TrialState("f", "PENDING", 0, 5, None)]
    status = summarize(states, expected_trials=8, epochs_per_unseen=5, mode="max")
    assert (status.running, status.paused, status.finished, status.failed, status.pending, status.total) == \
        (1, 1, 1, 2, 3, 8)  # pending: f and the 2 trials a searcher has not suggested yet
    assert status.best.trial_id == "d"  # the best value reported, even by a trial that failed later
    assert status.epochs_done == 2 + 5 + 3 + 1 + 2
    # ended trials plan what they did; the others their own plan; unseen ones 5 each
    assert status.epochs_planned == 5 + 5 + 3 + 1 + 5 + 5 + 2 * 5
    assert summarize(states, 6, 5, "min").best.trial_id == "a"


def test_a_trial_past_its_plan_plans_what_it_did() -> None:
    status = summarize([TrialState("a", "RUNNING", 7, 5, 0.1)], 1, 5, "max")
    assert (status.epochs_done, status.epochs_planned) == (7, 7)


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (44.6, "45s"), (725, "12m 05s"), (3 * 3600 + 125, "3h 02m")])
def test_durations(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_values_read_as_parameters_or_accuracies() -> None:
    assert format_value(123456.0) == "123,456"
    assert format_value(0.81234) == "0.8123"
    assert format_value(12.0) == "12.0000"


def test_eta_is_the_epochs_left_at_the_rate_they_arrived() -> None:
    status = Status(1, 0, 0, 0, 1, 2, None, epochs_done=10, epochs_planned=40)
    assert eta_seconds(status, epochs_seen=5, elapsed=50.0) == pytest.approx(300.0)  # 30 left at 10 s each
    assert eta_seconds(status, epochs_seen=0, elapsed=50.0) is None


def test_line_before_any_result_and_at_the_end() -> None:
    empty = Status(0, 0, 0, 0, 2, 2, None, 0, 8)
    assert status_line(empty, "derived_params") == \
        "raynas: population: 0 running, 0 finished, 0 failed, 2 pending of 2 | no derived_params yet | " \
        "epochs 0/8, ETA unknown"
    best = TrialState("x_00001", "TERMINATED", 4, 4, 12345.0)
    done = Status(0, 0, 2, 0, 0, 2, best, 8, 8)
    assert status_line(done, "derived_params", elapsed=75, final=True) == \
        "raynas: population done: 0 running, 2 finished, 0 failed, 0 pending of 2 | best derived_params 12,345 " \
        "(x_00001, epoch 4) | epochs 8/8 in 1m 15s"
    stopped = Status(1, 1, 0, 0, 0, 2, None, 3, 8)
    assert status_line(stopped, "val_acc", elapsed=5, final=True).startswith(
        "raynas: population stopped: 1 running, 1 paused, 0 finished")


def test_the_callback_prints_once_per_period_of_its_clock_and_at_the_end() -> None:
    clock, out = Clock(), io.StringIO()
    callback = status_callback(clock, out)
    trials = [make_trial("t_00000", Trial.RUNNING), make_trial("t_00001", Trial.RUNNING),
              make_trial("t_00002")]
    callback.on_step_begin(0, trials)  # the first step starts the clock
    clock.now += 29.0
    callback.on_step_begin(1, trials)
    assert out.getvalue() == ""  # the period is not over
    for trial, value in zip(trials[:2], (0.30, 0.45)):  # two epochs arrive
        trial.update_last_result({"epoch": 1, "val_acc": value})
        callback.on_trial_result(2, trials, trial, trial.last_result)
    clock.now += 1.0  # 30 s since the start: one line
    callback.on_step_begin(3, trials)
    callback.on_step_begin(4, trials)  # same instant: no second line
    lines = out.getvalue().splitlines()
    # 4 trials expected (one not suggested yet), 4 epochs each: 14 left at 15 s an epoch
    assert lines == ["raynas: population: 2 running, 0 finished, 0 failed, 2 pending of 4 | best val_acc 0.4500 "
                     "(t_00001, epoch 1) | epochs 2/16, ETA 3m 30s"]
    clock.now += 29.0
    callback.on_step_begin(5, trials)
    assert len(out.getvalue().splitlines()) == 1  # 29 s since the last line
    clock.now += 1.0
    callback.on_step_begin(6, trials)
    assert len(out.getvalue().splitlines()) == 2

    trials[0].update_last_result({"epoch": 2, DIVERGED_KEY: "the architecture loss is NaN", "val_acc": math.nan})
    trials[0].set_status(Trial.TERMINATED)  # a diverged trial ends as finished for Tune
    trials[1].update_last_result({"epoch": 4, "val_acc": 0.6})
    trials[1].set_status(Trial.TERMINATED)
    trials[2].set_status(Trial.ERROR)
    clock.now += 5.0
    callback.on_experiment_end(trials)
    assert out.getvalue().splitlines()[-1] == (
        "raynas: population stopped: 0 running, 1 finished, 2 failed, 1 pending of 4 | best val_acc 0.6000 "
        "(t_00001, epoch 4) | epochs 6/10 in 1m 05s")


def test_zero_turns_it_off() -> None:
    clock, out = Clock(), io.StringIO()
    callback = status_callback(clock, out, every=0.0, expected=1)
    trials = [make_trial("t_00000", Trial.RUNNING)]
    for step in range(3):
        callback.on_step_begin(step, trials)
        clock.now += 1000.0
    callback.on_experiment_end(trials)
    assert out.getvalue() == ""
