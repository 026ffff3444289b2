"""Running the real ``raynas`` CLI as a subprocess for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def cli_env(ray_temp: str | None = None) -> dict[str, str]:
    """The environment of a CLI subprocess: no auth token, no usage stats, Ray's temp folder short."""
    env = dict(os.environ)
    env.update({"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"})
    if ray_temp:
        env["RAYNAS_RAY_TEMP_DIR"] = ray_temp
    return env


def raynas(*args: str, timeout: float = 300, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run ``raynas ARGS`` and capture its output."""
    return subprocess.run([sys.executable, "-m", "raynas.cli", *args], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


@dataclass
class WatchedRun:
    """A finished CLI run and every listening socket its process tree opened while it ran."""

    returncode: int
    stdout: str
    stderr: str
    listening: set[str] = field(default_factory=set)


def run_watching_sockets(*args: str, timeout: float = 300) -> WatchedRun:
    """Run ``raynas ARGS`` with its own short Ray temp folder, sampling its process tree's listening sockets."""
    ray_temp = tempfile.mkdtemp(prefix="rn")  # short: Ray's unix socket paths must stay under 108 bytes
    out_path = Path(ray_temp) / "stdout.txt"
    err_path = Path(ray_temp) / "stderr.txt"
    seen: set[str] = set()
    pids: set[int] = set()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "raynas.cli", *args], cwd=ROOT,
                                env=cli_env(ray_temp), stdout=out, stderr=err, text=True)
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    proc.kill()
                    raise TimeoutError(f"raynas {' '.join(args)} ran past {timeout}s")
                seen |= _listening(proc.pid, pids)
                time.sleep(0.3)
        finally:
            _kill_leftovers(pids)
    run = WatchedRun(proc.returncode, out_path.read_text(), err_path.read_text(), seen)
    shutil.rmtree(ray_temp, ignore_errors=True)
    return run


def _listening(root_pid: int, pids: set[int]) -> set[str]:
    found: set[str] = set()
    try:
        procs = [psutil.Process(root_pid), *psutil.Process(root_pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return found
    for proc in procs:
        pids.add(proc.pid)
        try:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add(conn.laddr.ip)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _kill_leftovers(pids: set[int]) -> None:
    """Stop Ray processes the run started that outlived it (never `ray stop`: it hits every Ray here)."""
    for pid in pids:
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass
