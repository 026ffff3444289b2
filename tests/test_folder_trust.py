"""raynas.folder_trust: a folder a resume loads pickles from must be owned by you and writable by you alone.

Real folders and files with real modes and owners (owners other than this user need root to make: those
tests are skipped elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from raynas.errors import FolderError
from raynas.folder_trust import check_trusted, untrusted_path

OTHER_UID = 54321
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="making files owned by another user needs root")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An experiment folder as raynas leaves it: private for writing."""
    exp = tmp_path / "exp"
    (exp / "tune" / "trial_1" / "checkpoint_000001").mkdir(parents=True)
    (exp / "tables").mkdir()
    (exp / "config.yaml").write_text("name: x\n")
    (exp / "tune" / "tuner.pkl").write_bytes(b"pickle")
    (exp / "tune" / "experiment_state-2025.json").write_text("{}")
    (exp / "tune" / "trial_1" / "error.pkl").write_bytes(b"pickle")
    for path in [exp, *exp.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return exp


def test_a_private_folder_is_trusted(folder):
    assert untrusted_path(folder) is None
    check_trusted(folder, "experiment 'x'")
    assert untrusted_path(folder.parent / "missing") is None  # nothing to load; the caller says what it is not


@pytest.mark.parametrize(("relative", "mode", "who"), [
    ("", 0o775, "its group"),
    ("tune", 0o757, "others"),
    ("config.yaml", 0o666, "its group and others"),
    ("tune/tuner.pkl", 0o664, "its group"),
    ("tune/experiment_state-2025.json", 0o646, "others"),
    ("tune/trial_1/error.pkl", 0o664, "its group"),
    ("tune/trial_1/checkpoint_000001", 0o777, "its group and others"),
])
def test_anything_others_may_write_is_refused_in_one_line(folder, relative, mode, who):
    path = folder / relative if relative else folder
    os.chmod(path, mode)
    with pytest.raises(FolderError) as refused:
        check_trusted(folder, f"experiment '{folder}'")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"experiment '{folder}' is not safe to resume: {path} is writable by {who} "
                              f"(mode {mode:04o})")
    assert "trusted like code" in message and f"chmod -R go-w {folder}" in message


def test_files_outside_tune_are_checked_one_level_deep_only(folder):
    (folder / "tables" / "trials.parquet").write_bytes(b"x")
    os.chmod(folder / "tables" / "trials.parquet", 0o666)  # data, read by pyarrow: never unpickled
    assert untrusted_path(folder) is None


@as_root
@pytest.mark.parametrize("relative", ["", "tune", "tune/tuner.pkl", "tune/trial_1/error.pkl"])
def test_a_path_owned_by_another_user_is_refused(folder, relative):
    path = folder / relative if relative else folder
    os.chown(path, OTHER_UID, -1)
    with pytest.raises(FolderError) as refused:
        check_trusted(folder, "experiment 'x'")
    message = str(refused.value)
    assert f"{path} belongs to uid {OTHER_UID}, not to you" in message and "resume only folders you created" in message


@as_root
def test_a_link_is_judged_by_what_it_points_to(folder, tmp_path):
    planted = tmp_path / "planted.pkl"
    planted.write_bytes(b"pickle")
    os.chown(planted, OTHER_UID, -1)
    (folder / "tune" / "searcher-state-2025.pkl").symlink_to(planted)
    with pytest.raises(FolderError, match=rf"searcher-state-2025.pkl belongs to uid {OTHER_UID}"):
        check_trusted(folder, "experiment 'x'")
