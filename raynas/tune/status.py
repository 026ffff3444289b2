"""The population status line: how a whole search stands, every ``tune.status_every`` seconds and at its end.

The per-epoch lines of :class:`raynas.tune.progress.ProgressCallback` suit a cluster log; a person at a
terminal needs the overview: how many trials run, finished, failed and wait, the best trial so far and when
the population will be done. :class:`PopulationStatus` is a Tune callback: Tune's driver loop calls
``on_step_begin`` many times a second, and the callback prints when its clock says the period is over (no
thread, no polling of its own). The clock is a parameter, so the period is tested without waiting.

The ETA is the epochs left (each unfinished trial's planned epochs less those it has done; a trial that
ended, early or not, plans no more) at the rate epochs arrived in this run so far.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, TextIO

from ray import tune

from raynas.results.callback import DIVERGED_KEY


@dataclass(frozen=True)
class TrialState:
    """What the status line needs of one trial: its id, Tune status, epochs done and planned, and its metric
    value at its latest epoch (None before its first report, or NaN)."""

    trial_id: str
    status: str
    epochs_done: int
    epochs_planned: int
    value: Optional[float]
    failed: bool = False


@dataclass(frozen=True)
class Status:
    """A population's counts, best trial and epochs, as one status line shows them."""

    running: int
    paused: int
    finished: int
    failed: int
    pending: int
    total: int
    best: Optional[TrialState]
    epochs_done: int
    epochs_planned: int


def summarize(states: Iterable[TrialState], expected_trials: int, epochs_per_unseen: int, mode: str) -> Status:
    """The :class:`Status` of the trials Tune knows and of the ``expected_trials`` it has not created yet
    (a searcher suggests trials as it goes), each of those planning ``epochs_per_unseen`` epochs.

    A failed trial is one Tune marks ERROR or one that diverged (raynas ends it as finished for Tune); a
    PBT trial waiting to be exploited or to continue is paused. The best trial is the one whose latest
    value ranks first by ``mode``.
    """
    states = list(states)
    counts = {"RUNNING": 0, "PAUSED": 0, "PENDING": 0, "finished": 0, "failed": 0}
    best: Optional[TrialState] = None
    best_value = math.nan  # best's value, a number (set with best)
    done = planned = 0
    for state in states:
        ended = state.failed or state.status in ("TERMINATED", "ERROR")
        if state.failed or state.status == "ERROR":
            counts["failed"] += 1
        elif state.status == "TERMINATED":
            counts["finished"] += 1
        else:
            counts[state.status if state.status in counts else "PENDING"] += 1
        done += state.epochs_done
        planned += state.epochs_done if ended else max(state.epochs_planned, state.epochs_done)
        value = state.value
        if value is not None and not math.isnan(value) and (
                best is None or (value > best_value if mode == "max" else value < best_value)):
            best, best_value = state, value
    unseen = max(0, expected_trials - len(states))
    planned += unseen * epochs_per_unseen
    return Status(running=counts["RUNNING"], paused=counts["PAUSED"], finished=counts["finished"],
                  failed=counts["failed"], pending=counts["PENDING"] + unseen, total=len(states) + unseen,
                  best=best, epochs_done=done, epochs_planned=planned)


def format_duration(seconds: float) -> str:
    """``45s``, ``12m 05s`` or ``3h 02m``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_value(value: float) -> str:
    """A metric value: whole numbers of 1,000 and more with separators (parameters), else 4 decimals."""
    if float(value).is_integer() and abs(value) >= 1000:
        return f"{int(value):,}"
    return f"{value:.4f}"


def eta_seconds(status: Status, epochs_seen: int, elapsed: float) -> Optional[float]:
    """Seconds until the planned epochs are done at the rate ``epochs_seen`` arrived in ``elapsed`` seconds;
    None before any arrived."""
    if epochs_seen <= 0 or elapsed <= 0:
        return None
    return max(0, status.epochs_planned - status.epochs_done) * elapsed / epochs_seen


def status_line(status: Status, metric: str, *, eta: Optional[float] = None, elapsed: Optional[float] = None,
                final: bool = False) -> str:
    """One line, e.g. ``raynas: population: 2 running, 5 finished, 1 failed, 8 pending of 16 | best val_acc
    0.8123 (2f544_00003, epoch 7) | epochs 45/160, ETA 12m 30s``; ``final``: the time it took instead, and
    ``done`` (every trial ended) or ``stopped`` (interrupted, Ctrl+C)."""
    counts = [f"{status.running} running"] + ([f"{status.paused} paused"] if status.paused else []) + [
        f"{status.finished} finished", f"{status.failed} failed", f"{status.pending} pending of {status.total}"]
    best = status.best
    # summarize() picks a best trial only among those with a value
    best_text = ("no " + metric + " yet" if best is None or best.value is None else
                 f"best {metric} {format_value(best.value)} ({best.trial_id}, epoch {best.epochs_done})")
    epochs = f"epochs {status.epochs_done}/{status.epochs_planned}"
    if final:
        timing = f" in {format_duration(elapsed)}" if elapsed is not None else ""
    else:
        timing = ", ETA " + (format_duration(eta) if eta is not None else "unknown")
    unfinished = status.running + status.paused + status.pending
    head = ("raynas: population " + ("stopped" if unfinished else "done") + ": ") if final else "raynas: population: "
    return f"{head}{', '.join(counts)} | {best_text} | {epochs}{timing}"


class PopulationStatus(tune.Callback):
    """Prints :func:`status_line` every ``every`` seconds of ``clock`` and once when the experiment ends.

    ``planned(overrides)`` is a trial's planned epochs (from its overrides); ``expected_trials`` the trials
    the search will run in all, of ``planned_unseen`` epochs each until Tune creates them.
    """

    def __init__(self, metric: str, mode: str, planned: Callable[[dict[str, Any]], int], expected_trials: int,
                 planned_unseen: int, every: float, clock: Callable[[], float] = time.monotonic,
                 stream: TextIO | None = None) -> None:
        self._metric, self._mode, self._planned = metric, mode, planned
        self._expected, self._planned_unseen, self._every = expected_trials, planned_unseen, every
        self._clock = clock
        self._stream = stream  # None: sys.stdout when printing (Tune pickles callbacks; stdout is not data)
        self._plans: dict[str, int] = {}  # trial id -> planned epochs (a config is parsed once per trial)
        self._start: Optional[float] = None
        self._last: Optional[float] = None
        self._epochs_seen = 0  # results that arrived in this run: the rate of the ETA

    def _state(self, trial: Any) -> TrialState:
        result = trial.last_result or {}
        if trial.trial_id not in self._plans:
            self._plans[trial.trial_id] = self._planned(trial.config.get("overrides", {}))
        value = result.get(self._metric)
        return TrialState(trial.trial_id, trial.status, int(result.get("epoch") or 0), self._plans[trial.trial_id],
                          float(value) if isinstance(value, (int, float)) else None,
                          failed=bool(result.get(DIVERGED_KEY)))

    def status(self, trials: list) -> Status:
        """The population's :class:`Status` now."""
        return summarize((self._state(trial) for trial in trials), self._expected, self._planned_unseen,
                         self._mode)

    def _say(self, text: str) -> None:
        print(text, file=self._stream or sys.stdout, flush=True)

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        now = self._clock()
        if self._start is None or self._last is None:  # set together: the first step
            self._start = self._last = now
            return
        if self._every <= 0 or now - self._last < self._every:
            return
        self._last = now
        status = self.status(trials)
        self._say(status_line(status, self._metric, eta=eta_seconds(status, self._epochs_seen, now - self._start)))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if not result.get(DIVERGED_KEY):
            self._epochs_seen += 1

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self._every <= 0:
            return
        elapsed = None if self._start is None else self._clock() - self._start
        self._say(status_line(self.status(trials), self._metric, elapsed=elapsed, final=True))
