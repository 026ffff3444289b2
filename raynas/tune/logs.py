"""Ray's and Tune's own log lines go to a file in the experiment folder; the console keeps raynas' lines.

Ray configures a logger named ``ray`` that prints every INFO record of Ray and Ray Tune on stderr: PBT's
exploit reports, Tune's errors with their tracebacks and whole metric dicts, its hints about Tune's own
API. Mixed into raynas' progress lines they hide what a user needs. While :func:`ray_logs_to` is active
that logger (and Python's warnings, through ``py.warnings``, and MLflow's, :data:`INTEGRATION_LOGGERS`) writes
to ``<experiment>/logs/tune.log`` instead, in full, and :class:`ConsoleSummary` puts one line on stderr for
each distinct warning or error
that raynas does not already report in its own words (:data:`ROUTINE`). Imports Ray only when entered.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TextIO

#: Where the log goes, relative to the experiment folder.
LOG_FILE = Path("logs") / "tune.log"

#: (logger name prefix, message start) of Ray Tune's warnings and errors that raynas reports itself: the
#: file keeps them, the console does not repeat them.
ROUTINE = (
    ("ray.tune", "Stop signal received"),  # Ctrl+C: raynas prints how to resume (raynas resume DIR)
    ("ray.tune", "Experiment has been interrupted"),  # ... and not Tune's Tuner.restore(...) hint
    ("ray.tune", "Trials did not complete"),  # failed or interrupted trials: raynas' summary lists them
    ("ray.tune", "Trial task failed for trial"),  # a trial's progress line says FAILED, the summary why
)

#: Longest message text a console line shows (Tune's errors can hold a whole result dict).
MAX_CHARS = 160

#: Loggers of the integrations Tune's callbacks call (tune.callbacks) that go to the file as well. MLflow sets
#: up its own console handler when imported unless MLFLOW_CONFIGURE_LOGGING is false, which
#: :mod:`raynas.tune.integrations` sets before importing it.
INTEGRATION_LOGGERS = ("mlflow",)


def is_routine(logger_name: str, message: str) -> bool:
    """Whether a record is one raynas reports in its own words (see :data:`ROUTINE`)."""
    return any(logger_name.startswith(prefix) and message.lstrip().startswith(start) for prefix, start in ROUTINE)


def first_line(message: str) -> str:
    """The first non-empty line of ``message``, cut to :data:`MAX_CHARS`."""
    line = next((text.strip() for text in message.splitlines() if text.strip()), "")
    return line if len(line) <= MAX_CHARS else line[:MAX_CHARS - 3] + "..."


class ConsoleSummary(logging.Handler):
    """One console line per distinct Ray/Tune warning or error that is not routine, pointing at the file."""

    def __init__(self, log_file: Path, stream: TextIO | None = None) -> None:
        super().__init__(level=logging.WARNING)
        self.log_file = log_file
        self._stream = stream  # None: sys.stderr at the time of the record
        self._seen: set[tuple[str, str, str]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        """Print ``raynas: Ray Tune warning (logger): first line (details: FILE)`` once per distinct message."""
        try:
            message = record.getMessage()
            if is_routine(record.name, message):
                return
            line = first_line(message)
            key = (record.levelname, record.name, line[:60])  # Tune repeats some warnings every minute
            if key in self._seen:
                return
            self._seen.add(key)
            print(f"raynas: Ray {record.levelname.lower()} ({record.name}): {line} (details: {self.log_file})",
                  file=self._stream or sys.stderr, flush=True)
        except Exception:  # a log line must never take the experiment down
            self.handleError(record)


@contextmanager
def ray_logs_to(directory: Path) -> Iterator[Path]:
    """Send Ray's and Tune's logging (and Python warnings) to ``directory / LOG_FILE`` while active.

    Enter it before Ray starts, so that Ray's start-up lines go there too. Ray re-formats the ``ray``
    logger's handlers when it starts (the file then has Ray's own line format); the console summary does
    not depend on a format. The previous handlers come back on exit.
    """
    import importlib

    importlib.import_module("ray")  # its import installs the "ray" logger's console handler, replaced here

    path = Path(directory) / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s\t%(levelname)s %(name)s -- %(message)s"))
    console = ConsoleSummary(path)
    loggers = [logging.getLogger(name) for name in ("ray", "py.warnings", *INTEGRATION_LOGGERS)]
    saved = [(logger, list(logger.handlers), logger.propagate, logger.level) for logger in loggers]
    for logger in loggers:
        logger.handlers = [to_file, console]
        logger.propagate = False
    for name in INTEGRATION_LOGGERS:  # their INFO lines (MLflow creating its store) belong in the file too
        logging.getLogger(name).setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield path
    finally:
        logging.captureWarnings(False)
        for logger, handlers, propagate, level in saved:
            logger.handlers = handlers
            logger.propagate = propagate
            logger.setLevel(level)
        to_file.close()
