"""What every ``raynas resume`` does before it reads a folder, and every run that creates one right after.

A resume (of a search, an evaluation run or a benchmark build) goes through :func:`resume_guard`, in
this order, before Ray Tune's saved state is read or anything is written:

1. the folder is trusted like code (:mod:`raynas.folder_trust`): owned by you, writable by you alone;
2. this process takes the folder's lock (:mod:`raynas.folder_lock`): one driver per folder;
3. the settings file is the one the run started with (:mod:`raynas.config_fingerprint`); a changed one is
   refused, naming the keys, unless the resume accepts it explicitly (``--accept-config-change``): then the
   change goes into the folder's fingerprint history and, where the folder has tables, a ``config_change``
   row of its events table (:mod:`raynas.results.events`).

A run that creates a folder holds :func:`raynas.folder_lock.folder_lock` from the moment the folder exists
and calls :func:`raynas.config_fingerprint.record_fingerprint` once its settings file is written.
Nothing here imports torch or Ray.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator, Optional

from raynas.config_fingerprint import FINGERPRINT_FILE, ConfigChange, accept_change, check_config
from raynas.errors import ConfigError
from raynas.folder_lock import folder_lock
from raynas.folder_trust import check_trusted

ACCEPT_OPTION = "--accept-config-change"
RESUME_ACTION = "raynas resume"


def refusal(what: str, change: ConfigChange, events: bool) -> str:
    """The one-line error of a resume that finds its settings file changed."""
    recorded = "the folder and its events table" if events else "the folder"
    return (f"{what} cannot be resumed as it is: its {change.source} changed since the run started "
            f"({change.summary()}); its unfinished trials would go on partly with the old settings and partly "
            f"with the new ones: restore {change.source} (the values the run started with are in "
            f"{FINGERPRINT_FILE}), or resume with {ACCEPT_OPTION} to go on with the new settings (recorded in "
            f"{recorded})")


@contextlib.contextmanager
def resume_guard(directory: str | Path, *, source: str, experiment: str, what: str, accept_config_change: bool,
                 echo: Callable[[str], None] = print, events: bool = True) -> Iterator[Optional[ConfigChange]]:
    """Check, lock and compare ``directory`` (see the module docstring) and hold its lock for the block.

    ``source`` is the settings file (``config.yaml``), ``experiment`` the name the events table records,
    ``what`` names the folder in messages (``experiment 'DIR'``), ``events`` whether the folder has tables.
    Yields the accepted change, or None when the settings are unchanged.
    """
    directory = Path(directory)
    check_trusted(directory, what)
    with folder_lock(directory, RESUME_ACTION, echo=echo):
        recorded_now, change = check_config(directory, source)
        if recorded_now:
            echo(f"raynas: {what} has no {FINGERPRINT_FILE} (it was made before raynas kept one): recorded now "
                 f"from its {source} as it is; later resumes compare against it")
        if change is not None:
            if not accept_config_change:
                raise ConfigError(refusal(what, change, events))
            if events:
                from raynas.results.events import append_event

                append_event(directory, experiment=experiment, kind="config_change", detail=change.detail())
            accept_change(directory, change)
            echo(f"raynas: going on with the changed {source} ({ACCEPT_OPTION}): {change.summary()}; recorded in "
                 f"{FINGERPRINT_FILE}" + (" and tables/events.parquet" if events else ""))
        yield change
