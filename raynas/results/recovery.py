"""The rows of a torn result part that no consolidated table holds, from what Ray Tune saved: a resume's
``recover`` for :class:`raynas.results.writer.ResultsWriter`.

A resume checks an experiment's parts before Ray starts (:meth:`ResultsWriter.consolidate`). A part that a
crash or the disk tore is rewritten from the consolidated table when that holds its rows, but a driver
killed mid-run has usually not consolidated yet. Then the rows come from Ray Tune's saved experiment state,
the same state the resume restores the trials from:

* a trials or evaluations row (one per trial) is derived data: it is rebuilt from the trial as Tune saved it
  (status, config, last report) and, for a search, from the trial's epoch parts;
* an epoch's rows (epochs, alphas, genotypes, decisions) are rebuilt from the report Tune saved with that
  epoch: the trial's last report, or the report of one of its registered checkpoints;
* else, when the resumed trial runs that epoch again (it did not finish, and the epoch comes after the
  checkpoint it goes on from), the torn part is set aside and the resumed run writes it anew.

A part with none of these (an older epoch of a trial, damaged on the disk after it was written) has no copy:
the resume refuses with one line, as without ``recover``. The parts a crash can tear are the newest ones,
whose rows Tune's saved state holds or the resumed run writes again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

import pyarrow as pa

from raynas.errors import ResultsError
from raynas.results.callback import DIVERGED_KEY, ResultsCallback, trial_error_line
from raynas.results.schema import schema_for
from raynas.results.writer import report_epoch, rows_from_report

TrialRow = Callable[[str, Any], Optional[dict[str, Any]]]
"""(per-trial table name, a trial as Tune saved it) -> the table's row of that trial, or None."""


def saved_reports(trial: Any) -> Iterator[Mapping[str, Any]]:
    """The reports Tune saved of a trial: its last one and those of its registered checkpoints."""
    if trial.last_result:
        yield trial.last_result
    manager = getattr(trial.run_metadata, "checkpoint_manager", None)
    if manager is not None:
        results = list(manager.best_checkpoint_results)
        if manager.latest_checkpoint_result is not None:
            results.append(manager.latest_checkpoint_result)
        for result in results:
            if result.metrics:
                yield result.metrics


def restored_epoch(trial: Any) -> int:
    """The epoch a resume continues the trial from: that of its latest checkpoint (0: from the start)."""
    manager = getattr(trial.run_metadata, "checkpoint_manager", None)
    latest = manager.latest_checkpoint_result if manager is not None else None
    if latest is None or not latest.metrics:
        return 0
    try:
        return report_epoch(latest.metrics)
    except ResultsError:
        return 0


def saved_status(trial: Any) -> tuple[str, Optional[str]]:
    """A trial's status for the result tables, and its error line, from Tune's saved status."""
    if trial.status == "TERMINATED":
        diverged = (trial.last_result or {}).get(DIVERGED_KEY)
        return ("ERROR", str(diverged)) if diverged else ("TERMINATED", None)
    if trial.status == "ERROR":
        return "ERROR", trial_error_line(trial)
    return "RUNNING", None


class SavedState:
    """``recover`` of a resume (see the module docstring) from the Tune state saved under ``tune_dir``;
    ``trial_row`` builds a per-trial row (:data:`TrialRow`). Tune's state is read at the first torn part."""

    def __init__(self, tune_dir: Path | str, trial_row: TrialRow) -> None:
        self.tune_dir = tune_dir  # a local folder, or a storage URI (raynas.remote)
        self.trial_row = trial_row
        self._trials: Optional[dict[str, Any]] = None

    def trials(self) -> dict[str, Any]:
        """Trial id -> trial, as Tune's saved state has them."""
        if self._trials is None:
            from ray import tune

            self._trials = {trial.trial_id: trial for trial in tune.ExperimentAnalysis(str(self.tune_dir)).trials}
        return self._trials

    def __call__(self, name: str, trial_id: str, epoch: Optional[int]) -> Optional[tuple[Optional[pa.Table], str]]:
        trial = self.trials().get(trial_id)
        if trial is None:
            return None
        if epoch is None:
            row = self.trial_row(name, trial)
            if row is None:
                return None
            return pa.Table.from_pylist([row], schema=schema_for(name)), "Ray Tune's saved state of the trial"
        for report in saved_reports(trial):
            try:
                if not report.get(DIVERGED_KEY) and report_epoch(report) == epoch:
                    where = f"the report of epoch {epoch} in Ray Tune's saved state"
                    return rows_from_report(trial_id, report)[name], where
            except ResultsError:  # a report this version cannot read: not a copy
                continue
        restored = restored_epoch(trial)
        if trial.status != "TERMINATED" and epoch > restored:
            return None, (f"trial {trial_id} runs epoch {epoch} again (it goes on from the checkpoint of epoch "
                          f"{restored}) and writes the part anew")
        return None


def search_recovery(tune_dir: Path | str, results: ResultsCallback) -> SavedState:
    """``recover`` of a search's resume: trials rows as ``results`` (a results callback of the folder, used for
    nothing else) writes them, from the trial's epoch parts, which it reads with this ``recover`` too (a crash
    tears a trial's newest epoch parts along with its trials part)."""
    def trial_row(name: str, trial: Any) -> Optional[dict[str, Any]]:
        if name != "trials":
            return None
        status, error = saved_status(trial)
        return results.trial_row(trial, status, error)

    saved = SavedState(tune_dir, trial_row)
    results.writer.recover = saved
    return saved


def evaluation_recovery(tune_dir: Path, run_name: str, base_config: Mapping[str, Any]) -> SavedState:
    """``recover`` of an evaluation run's resume (``raynas train``): evaluations rows from the saved trials."""
    from raynas.results.evaluation_callback import evaluation_row

    def trial_row(name: str, trial: Any) -> Optional[dict[str, Any]]:
        if name != "evaluations":
            return None
        status, error = saved_status(trial)
        row = evaluation_row(trial.trial_id, status, trial.config, trial.last_result, base_config, error)
        return {"experiment": run_name, **row}

    return SavedState(tune_dir, trial_row)
