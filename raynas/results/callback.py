"""The Ray Tune callback that records every trial report as Parquet parts (runs in the driver)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from ray.tune import Callback

from raynas.config.overrides import with_overrides
from raynas.results.writer import ResultsWriter, check_mode, rows_from_report, summarise_trial

_MAX_ERROR_CHARS = 2000

DIVERGED_KEY = "diverged"
"""Report key of a diverged search's last report: its one-line reason (raynas.tune.trainable sends it)."""

CHECKPOINT_FALLBACK_KEY = "checkpoint_fallback"
"""Report key of the first report after a restore from an older checkpoint because the latest one could
not be loaded (or of the first epoch, when none loads): the one line that says so
(:func:`raynas.tune.checkpoints.load_newest_intact`)."""


def trial_overrides(trial_config: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """The dotted overrides of a trial from its Tune config.

    raynas' trainable gets ``{"overrides": {dotted key: value}}``; a flat dict of dotted keys is taken as is.
    """
    config = dict(trial_config or {})
    nested = config.get("overrides")
    return dict(nested) if len(config) == 1 and isinstance(nested, Mapping) else config


def trial_error_line(trial: Any) -> Optional[str]:
    """The last line of a trial's error trace (``ValueError: ...``), or None when Tune has none."""
    # Tune writes the trace next to the driver first (error_file) and syncs it to storage later, when
    # get_error() can read it: on_trial_error runs in between.
    try:
        local = trial.error_file
        text = Path(local).read_text(errors="replace") if local and Path(local).is_file() else trial.get_error()
    except Exception:  # the text is a courtesy: a storage hiccup must not abort the whole experiment
        return None
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[-1][:_MAX_ERROR_CHARS] if lines else None


def planned_epochs(config: Optional[Mapping[str, Any]]) -> Optional[int]:
    """Every epoch a trial of the resolved ``config`` reports (search and selection stage); None without one."""
    if config is None:
        return None
    from raynas.config import config_from_dict
    from raynas.selection import total_epochs

    try:
        return total_epochs(config_from_dict(dict(config)))
    except Exception:  # a config this version cannot read: the column stays empty, the report is written
        return None


class ResultsCallback(Callback):
    """Writes each report of each trial to the experiment's result tables and keeps a trials row current.

    A trial's overrides come from its Tune config (see :func:`trial_overrides`); ``config_json`` is
    ``base_config`` with them applied, and ``epochs_planned`` that config's length. ``scheduler`` names the
    trial scheduler that may end trials early (``asha``); a trial it ended gets ``stopped_by``.

    On every result: the report's epochs/alphas/genotypes parts and the trial's row (status RUNNING, best
    so far); on completion or error the row's final status; at the end of the experiment the parts are
    consolidated. A trial first seen after a driver restart reloads its earlier epochs from its parts, so
    its summary covers the whole search.
    """

    def __init__(self, experiment_dir: Union[str, Path], experiment_name: str, metric: str, mode: str,
                 base_config: Optional[Mapping[str, Any]] = None, scheduler: Optional[str] = None) -> None:
        super().__init__()
        self.writer = ResultsWriter(experiment_dir, experiment_name)
        self.metric = metric
        self.mode = check_mode(mode)
        self.base_config = copy.deepcopy(dict(base_config)) if base_config is not None else None
        self.scheduler = scheduler
        self._history: dict[str, dict[int, dict[str, Any]]] = {}
        self._identity: dict[str, dict[str, Any]] = {}

    def _history_of(self, trial_id: str) -> dict[int, dict[str, Any]]:
        if trial_id not in self._history:
            self._history[trial_id] = {row["epoch"]: row for row in self.writer.trial_history(trial_id)}
        return self._history[trial_id]

    def _identity_of(self, trial: Any) -> dict[str, Any]:
        """Identity fields of a trial, from its config until a report names them."""
        if trial.trial_id not in self._identity:
            overrides = trial_overrides(trial.config)
            config = with_overrides(self.base_config, overrides) if self.base_config is not None else None
            search = (config or {}).get("search")
            self._identity[trial.trial_id] = {
                "overrides": overrides, "config": config,
                "space": (config or {}).get("space"), "method": (config or {}).get("method"),
                "seed": search.get("seed") if isinstance(search, dict) else None,
                "epochs_planned": planned_epochs(config),
            }
        return self._identity[trial.trial_id]

    def trial_row(self, trial: Any, status: str, error: Optional[str] = None) -> dict[str, Any]:
        """The trials-table row of ``trial`` from its epochs written so far, with ``status`` and ``error``."""
        history = self._history_of(trial.trial_id)
        return summarise_trial(trial.trial_id, history.values(), self.metric, self.mode,
                               experiment=self.writer.experiment_name, status=status, error=error,
                               scheduler=self.scheduler, **self._identity_of(trial))

    def _write_trial(self, trial: Any, status: str, error: Optional[str] = None) -> None:
        self.writer.write_trial(self.trial_row(trial, status, error))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        """Write the report's parts and refresh the trial's row (status RUNNING; ERROR for a divergence)."""
        if result.get(DIVERGED_KEY):  # no epoch of its own: the row keeps the epochs before it
            self._write_trial(trial, "ERROR", error=str(result[DIVERGED_KEY]))
            return
        trial_id = trial.trial_id
        history = self._history_of(trial_id)
        rows = rows_from_report(trial_id, result)
        self.writer.write_rows(trial_id, rows)
        row = rows["epochs"].to_pylist()[0]
        if rows["genotypes"].num_rows:
            genotype = rows["genotypes"].to_pylist()[0]
            row.update(genotype=genotype["genotype"], num_skip=genotype["num_skip"],
                       connected=genotype["connected"])
        history[row["epoch"]] = row
        identity = self._identity_of(trial)
        for key in ("space", "method", "seed"):
            if result.get(key) is not None:
                identity[key] = result[key]
        self._write_trial(trial, "RUNNING")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """Mark the trial TERMINATED, or ERROR with the reason when its search diverged."""
        diverged = (trial.last_result or {}).get(DIVERGED_KEY)
        if diverged:
            self._write_trial(trial, "ERROR", error=str(diverged))
        else:
            self._write_trial(trial, "TERMINATED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """Mark the trial ERROR, with the last line of its error trace."""
        self._write_trial(trial, "ERROR", error=trial_error_line(trial))

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Consolidate every table's parts into one file per table."""
        self.writer.consolidate()
