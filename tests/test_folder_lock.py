"""raynas.folder_lock: one driver per folder, with real processes holding real flocks.

A holder is a real Python process that takes the lock and then says so on its stdout; the test reads that
line before it acts, so the lock is held by construction. A killed holder leaves its record with the flock
freed by the kernel: the next driver reports it as stale and takes over.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from raynas.errors import FolderError
from raynas.folder_lock import LOCK_FILE, folder_lock

HOLDER = """
import sys
from raynas.folder_lock import folder_lock
with folder_lock(sys.argv[1], "raynas test-holder"):
    print("locked", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


def start_holder(folder: Path) -> subprocess.Popen:
    """A process that holds ``folder``'s lock until its stdin closes (returns once it holds it)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "locked\n"
    return proc


def test_a_second_driver_is_refused_naming_the_holder(tmp_path):
    holder = start_holder(tmp_path)
    try:
        with pytest.raises(FolderError) as refused:
            with folder_lock(tmp_path, "raynas resume"):
                pytest.fail("the lock was taken twice")
        message = str(refused.value)
        assert "\n" not in message and f"'{tmp_path}' is in use" in message
        assert f"raynas test-holder (pid {holder.pid} on host {socket.gethostname()}, started " in message
        assert str(tmp_path / LOCK_FILE) in message
        record = json.loads((tmp_path / LOCK_FILE).read_text())
        assert record["pid"] == holder.pid and record["action"] == "raynas test-holder"
    finally:
        holder.stdin.close()
        holder.wait()
    assert (tmp_path / LOCK_FILE).read_text() == ""  # a clean end leaves no record
    said: list[str] = []
    with folder_lock(tmp_path, "raynas resume", echo=said.append) as mine:
        assert mine.pid == os.getpid()
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert said == []  # nothing stale after a clean end


def test_the_lock_excludes_a_second_holder_in_the_same_process(tmp_path):
    with folder_lock(tmp_path, "raynas search"):
        with pytest.raises(FolderError, match=rf"raynas search \(pid {os.getpid()} on host "):
            with folder_lock(tmp_path, "raynas resume"):
                pass
    with folder_lock(tmp_path, "raynas resume"):  # released at the end of the block, also after a refusal
        pass


def test_a_killed_holders_lock_is_reported_as_stale_and_taken_over(tmp_path):
    holder = start_holder(tmp_path)
    holder.kill()  # SIGKILL: no clean-up; the kernel frees the flock
    holder.wait()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == holder.pid  # the record stays
    said: list[str] = []
    with folder_lock(tmp_path, "raynas resume", echo=said.append):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert len(said) == 1, said
    assert f"was locked by raynas test-holder (pid {holder.pid} on host {socket.gethostname()}" in said[0]
    assert f"pid {holder.pid} is gone (the kernel freed its flock when it ended); taking the lock over" in said[0]


def test_a_stale_record_of_another_host_says_so(tmp_path):
    record = {"pid": 4242, "host": "elsewhere.example", "started": "2025-01-01T00:00:00Z",
              "action": "raynas search", "command": "raynas search x.yaml"}
    (tmp_path / LOCK_FILE).write_text(json.dumps(record))
    said: list[str] = []
    with folder_lock(tmp_path, "raynas resume", echo=said.append):
        pass
    assert len(said) == 1 and "pid 4242 on host elsewhere.example" in said[0]
    assert "on another host" in said[0] and "its flock is free" in said[0]


def test_a_folder_where_no_lock_file_can_be_made_is_one_line(tmp_path):
    with pytest.raises(FolderError, match=r"cannot lock '.*missing'"):
        with folder_lock(tmp_path / "missing", "raynas resume"):
            pass
