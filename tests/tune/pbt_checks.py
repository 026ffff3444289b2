"""Checks of a PBT experiment folder shared by the PBT end-to-end tests: Tune's noise, the state every restore
went on from, and each trial's latest registered checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from cli_helpers import saved_latest_checkpoints  # noqa: E402


def noise_lines(*texts: str) -> list[str]:
    """Lines of Tune's own errors and tracebacks."""
    return [line for text in texts for line in text.splitlines() if "ERROR" in line or "Traceback" in line]


def epoch_rows(exp: Path) -> dict[tuple[str, int], dict]:
    """(trial id, epoch) -> the epochs-table row."""
    rows = pq.read_table(exp / "tables" / "epochs.parquet").to_pylist()
    return {(row["trial_id"], row["epoch"]): row for row in rows}


def fingerprint(row: dict) -> float:
    """The state fingerprint an epoch row reported."""
    return dict(row["extra"])["state_fingerprint"]


def check_restores(rows: dict[tuple[str, int], dict]) -> tuple[int, int]:
    """Every first report after a restore went on from the state its source (another trial: an exploit; the
    trial itself: a PBT pause or a resume) reported at that epoch; returns (exploits, own restores).

    The epochs table keeps a trial's last report of each epoch. Under asynchronous PBT a source may itself
    exploit a slower trial after it was copied and replay that epoch from an earlier state: its row then
    postdates the restore that read the earlier report, whose fingerprint the table no longer holds. Such a
    restore is checked for what it can be: the source's row is a replay (the source went on from an earlier
    epoch at or before it)."""
    exploits = own = 0
    for (trial_id, epoch), row in rows.items():
        extra = dict(row["extra"])
        if "restored_epoch" not in extra:
            continue
        source = row["restored_from"] or trial_id
        exploits, own = (exploits + 1, own) if row["restored_from"] else (exploits, own + 1)
        restored_epoch = int(extra["restored_epoch"])
        saved = rows[(source, restored_epoch)]
        if saved["reported_at"] > row["reported_at"]:
            assert replayed(rows, source, restored_epoch), (trial_id, epoch, source)
            continue
        assert extra["restored_fingerprint"] == fingerprint(saved), (trial_id, epoch, source)
    return exploits, own


def replayed(rows: dict[tuple[str, int], dict], trial_id: str, epoch: int) -> bool:
    """Whether ``trial_id``'s kept row of ``epoch`` comes from a restore of an earlier epoch."""
    for e in range(1, epoch + 1):
        extra = dict(rows[(trial_id, e)]["extra"]) if (trial_id, e) in rows else {}
        if "restored_epoch" in extra and int(extra["restored_epoch"]) < epoch:
            return True
    return False


def check_latest_checkpoints(exp: Path, rows: dict[tuple[str, int], dict]) -> None:
    """Each trial's latest registered checkpoint exists, loads, and is the state of its last reported epoch."""
    from raynas.runtime import load_state

    latest = saved_latest_checkpoints(exp / "tune")
    last_epoch: dict[str, int] = {}
    for trial_id, epoch in rows:
        last_epoch[trial_id] = max(epoch, last_epoch.get(trial_id, 0))
    assert set(latest) == set(last_epoch)
    for trial_id, (epoch, folder) in latest.items():
        state = load_state(str(folder / "search_state.pt"))
        assert (state["owner"], state["epoch"], epoch) == (trial_id, last_epoch[trial_id], last_epoch[trial_id])
        assert state["fingerprint"] == fingerprint(rows[(trial_id, epoch)])
