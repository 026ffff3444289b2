#!/usr/bin/env python3
"""Benchmark ``raynas resume``: seconds from starting it to the first new epoch report.

Runs a small experiment (default ``search_configs/smoke/resume.yaml``: a 2-epoch and a 12-epoch NB201
trial on 128 noisy digits) with its own local Ray, SIGKILLs the driver once the long trial has reported
``--kill-after`` epochs and is held there (:mod:`raynas.tune.hold`, so the kill point does not depend on the
machine's speed), stops every Ray process the driver had started (by PID, as a reboot would; never
``ray stop``), then times ``raynas resume`` until its first epoch line. Prints the figures; ``--json`` prints
one JSON object with ``resume_to_first_epoch_s`` (the benchmark figure), ``resume_to_restored_s`` (until
the "resuming" line: Ray started, Tune state restored), ``resume_total_s``, ``killed_at_epoch``,
``first_resumed_epoch`` and, as a yardstick taken under the same machine load, ``search_to_first_epoch_s``
(the interrupted ``raynas search`` from its start to its first epoch report).

    python tools/bench_resume.py [--config search_configs/smoke/resume.yaml] [--kill-after 4] [--num-cpus 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

from raynas.tune.hold import HOLD_DIR_ENV, HOLD_EPOCH_ENV, held_trials

ROOT = Path(__file__).resolve().parents[1]
EPOCH_LINE = re.compile(r"^\[(\S+) [^\]]*\] epoch +(\d+)/(\d+)")


class TrackedCli:
    """A ``raynas`` subprocess whose process tree is remembered so that it can be stopped by PID.

    A thread stamps every stdout line with ``time.perf_counter()`` as it arrives.
    """

    def __init__(self, args: list[str], ray_temp: str, extra_env: dict[str, str] | None = None) -> None:
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1",
               "RAYNAS_RAY_TEMP_DIR": ray_temp, **(extra_env or {})}
        self.seen: dict[int, psutil.Process] = {}
        self.proc = subprocess.Popen([sys.executable, "-m", "raynas.cli", *args], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self._lines: list[tuple[float, str]] = []
        self._read = 0
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self._lines.append((time.perf_counter(), line.rstrip("\n")))

    def track(self) -> None:
        """Remember the driver and its live descendants."""
        try:
            root = psutil.Process(self.proc.pid)
            for proc in [root, *root.children(recursive=True)]:
                self.seen.setdefault(proc.pid, proc)
        except psutil.NoSuchProcess:
            pass

    def lines(self) -> list[tuple[float, str]]:
        """(arrival time, line) of the stdout lines that arrived since the last call."""
        self.track()
        if self.proc.poll() is not None:
            self._reader.join(timeout=5)  # the pipe is closed: every line is in
        new = self._lines[self._read:]
        self._read += len(new)
        return new

    def stop_all(self) -> None:
        """SIGKILL the driver and every process of its tree seen so far (psutil refuses reused PIDs)."""
        self.track()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for proc in self.seen.values():
            try:
                proc.kill()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass


def run(config: str, kill_after: int, num_cpus: int, timeout: float) -> dict:
    """Search, kill, resume; the timings of the resume."""
    name = yaml.safe_load(Path(config).read_text())["name"]
    work = Path(tempfile.mkdtemp(prefix="rnb"))
    exp = work / "out" / name
    search_start = time.perf_counter()
    hold = work / "hold"  # trials wait after epoch kill_after until killed: the kill cannot come too late
    search = TrackedCli(["search", config, "--out", str(work / "out"), "--set", f"ray.num_cpus={num_cpus}"],
                        str(work / "r1"), {HOLD_DIR_ENV: str(hold), HOLD_EPOCH_ENV: str(kill_after)})
    killed_at: dict[str, tuple[int, int]] = {}
    search_first = None
    try:
        deadline = time.monotonic() + timeout
        while True:
            for stamp, line in search.lines():
                match = EPOCH_LINE.match(line)
                if match:
                    killed_at[match.group(1)] = (int(match.group(2)), int(match.group(3)))
                    search_first = search_first or stamp - search_start
            held = held_trials(hold)
            if held and all(killed_at.get(trial, (0, 0))[0] == kill_after for trial in held):
                break  # a trial is held at kill_after and its report has reached the driver
            if search.proc.poll() is not None:
                raise SystemExit(f"the search ended before a trial reached epoch {kill_after} with epochs left; "
                                 "try a longer config")
            if time.monotonic() > deadline:
                raise SystemExit(f"no trial was held at epoch {kill_after} within {timeout}s")
            time.sleep(0.1)
    finally:
        search.stop_all()
    last_before = max(epoch for epoch, total in killed_at.values() if epoch < total)

    start = time.perf_counter()
    resume = TrackedCli(["resume", str(exp)], str(work / "r2"))
    restored = first = first_epoch = None
    try:
        deadline = time.monotonic() + timeout
        ended = False
        while not ended:
            ended = resume.proc.poll() is not None  # read once more after the end: the last lines
            for stamp, line in resume.lines():
                now = stamp - start
                if restored is None and line.startswith("raynas: resuming"):
                    restored = now
                match = EPOCH_LINE.match(line)
                if first is None and match:
                    first, first_epoch = now, int(match.group(2))
            if time.monotonic() > deadline:
                raise SystemExit(f"raynas resume ran past {timeout}s")
            time.sleep(0.05)
        total = time.perf_counter() - start
        code = resume.proc.returncode
        if first is None or restored is None:
            raise SystemExit(f"raynas resume exited ({code}) without resuming an epoch")
    finally:
        resume.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return {"resume_to_first_epoch_s": round(first, 2), "resume_to_restored_s": round(restored, 2),
            "resume_total_s": round(total, 2), "resume_exit_code": code, "killed_at_epoch": last_before,
            "first_resumed_epoch": first_epoch, "search_to_first_epoch_s": round(search_first, 2),
            "num_cpus": num_cpus, "config": config}


def main() -> None:
    """Parse the arguments, run the benchmark, print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="search_configs/smoke/resume.yaml")
    parser.add_argument("--kill-after", type=int, default=4, help="epochs of an unfinished trial before the kill")
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run(args.config, args.kill_after, args.num_cpus, args.timeout)
    if args.json:
        print(json.dumps(result))
        return
    print(f"raynas resume -> first new epoch report: {result['resume_to_first_epoch_s']:.2f} s "
          f"(Ray started and Tune state restored after {result['resume_to_restored_s']:.2f} s)")
    print(f"driver killed after epoch {result['killed_at_epoch']}; resumed at epoch {result['first_resumed_epoch']}; "
          f"resume finished in {result['resume_total_s']:.2f} s with exit code {result['resume_exit_code']}")
    print("yardstick under the same load: raynas search -> first epoch report "
          f"{result['search_to_first_epoch_s']:.2f} s")


if __name__ == "__main__":
    main()
