"""Uploads of a running experiment whose folder is on object storage (``--out s3://...``, :mod:`raynas.remote`).

Ray Tune uploads its own state and the trials' checkpoints. :class:`RemoteSync`, a Tune callback in the
driver placed right after the results callback, uploads what raynas writes into the working copy:

* every report's parts (epochs, alphas, genotypes, decisions of that epoch and the trial's row) as soon as
  the results callback wrote them, before Tune's next save of its experiment state. So the remote parts are
  never behind the checkpoints that state names: a driver killed at any moment leaves a remote folder that
  ``raynas resume URI`` on another machine continues without a lost row;
* every file changed since its last upload (config, logs, events) when Tune starts, every
  :data:`PERIOD_S` seconds, and when the experiment ends, after the tables were consolidated.

An upload that fails is one warning line and is tried again at the next one: the experiment goes on, and
the working copy keeps everything.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

from ray.tune import Callback

from raynas.errors import ResultsError, StorageError
from raynas.remote import Remote, WorkingCopy
from raynas.results.writer import PER_EPOCH_TABLES, ResultsWriter, report_epoch

PERIOD_S = 60.0
"""Seconds between two uploads of every changed file (reports' parts go at once)."""


class RemoteSync(Callback):
    """Uploads ``writer``'s experiment folder, the working copy of ``remote`` (see the module docstring)."""

    def __init__(self, remote: Remote, writer: ResultsWriter, period_s: float = PERIOD_S) -> None:
        super().__init__()
        self.remote = remote
        self.writer = writer
        self.period_s = period_s
        self._copy: Optional[WorkingCopy] = None
        self._next = 0.0
        self._warned: set[str] = set()

    @property
    def copy(self) -> WorkingCopy:
        if self._copy is None:  # made in the driver: the callback itself is pickled with Tune's settings
            self._copy = WorkingCopy(self.remote)
        return self._copy

    def _upload(self, paths: Optional[list[Path]] = None, settle: bool = False) -> None:
        try:
            self.copy.upload(paths, settle=settle)
        except StorageError as exc:
            line = str(exc)
            if line not in self._warned:  # once per distinct failure, not once per report
                self._warned.add(line)
                print(f"raynas: warning: {line}; tried again at the next upload", file=sys.stderr, flush=True)

    def _sync_all(self) -> None:
        self._next = time.monotonic() + self.period_s
        self._upload(settle=True)

    def setup(self, stop: Any = None, num_samples: Optional[int] = None, total_num_samples: Optional[int] = None,
              **info: Any) -> None:
        """Upload the folder as it is when Tune starts (config, fingerprint, a resume's repairs)."""
        self._sync_all()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        """Upload the parts the results callback just wrote for this report."""
        trial_id = trial.trial_id
        paths = [self.writer.part_path("trials", trial_id)]
        try:
            epoch = report_epoch(result)
        except ResultsError:  # a diverged trial's last report has no epoch: its row only
            epoch = None
        if epoch is not None:
            paths += [self.writer.part_path(name, trial_id, epoch) for name in PER_EPOCH_TABLES]
        self._upload([path for path in paths if path.exists()])

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """Upload the trial's final row."""
        self._upload([self.writer.part_path("trials", trial.trial_id)])

    on_trial_error = on_trial_complete

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        """Every :data:`PERIOD_S` seconds: every file changed since its last upload (the log above all)."""
        if time.monotonic() >= self._next:
            self._sync_all()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Upload the consolidated tables and everything else that changed."""
        self._sync_all()
