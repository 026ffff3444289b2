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
from typing import Callable

import psutil

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
# Ray Tune saves a run's experiment state at most every 10 s by default ("auto"). A test that kills a run once
# its saved state holds a checkpoint waits for that save; a run started with this environment saves every
# second, so the state comes sooner. What the state holds, and when a hold lets the trial go on, is unchanged.
SAVE_STATE_EVERY_SECOND = {"TUNE_GLOBAL_CHECKPOINT_S": "1"}


def cli_env(ray_temp: str | None = None) -> dict[str, str]:
    """The environment of a CLI subprocess: no usage stats, Ray's temp folder short.

    The loopback switch and the auth mode the test process itself runs with are removed: the CLI must keep
    its own local Ray on 127.0.0.1 and turn token authentication on itself, as it does on a user's machine.
    It inherits the session's private token file (``RAY_AUTH_TOKEN_PATH``, tests/conftest.py).
    """
    env = dict(os.environ)
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    env.pop("RAY_AUTH_MODE", None)
    env.update({"RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"})
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
        found |= listening_addresses(proc)
    return found


def listening_addresses(proc: psutil.Process) -> set[str]:
    """The IP addresses ``proc`` listens on (empty if it is gone)."""
    try:
        return {conn.laddr.ip for conn in proc.net_connections(kind="inet") if conn.status == psutil.CONN_LISTEN}
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return set()


def _kill_leftovers(pids: set[int]) -> None:
    """Stop Ray processes the run started that outlived it (never `ray stop`: it hits every Ray here)."""
    for pid in pids:
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass


def saved_checkpoint_epoch(tune_dir: Path) -> int:
    """The newest epoch of any trial's checkpoint that Tune's saved experiment state knows of (0: none yet).

    That is the checkpoint a resume restores from; Tune saves its state every few seconds, so it can lag
    the checkpoints the trials reported.
    """
    from ray import tune

    try:
        trials = tune.ExperimentAnalysis(str(tune_dir)).trials
    except Exception:  # the state file is being written, or not yet there
        return 0
    results = [trial.run_metadata.checkpoint_manager.latest_checkpoint_result for trial in trials]
    return max((r.metrics.get("epoch", 0) for r in results if r is not None), default=0)


def saved_latest_checkpoints(tune_dir: Path) -> dict[str, tuple[int, Path]]:
    """Trial id -> (epoch, folder) of the checkpoint Tune's saved experiment state registers as each trial's
    latest (what a resume restores; PBT: what an exploit of it reads); {} while no state is readable."""
    import logging

    from ray import tune

    # without Tune's result files it warns on every read that it cannot fetch metrics: the tables hold them
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    try:
        trials = tune.ExperimentAnalysis(str(tune_dir)).trials
    except Exception:  # the state file is being written, or not yet there
        return {}
    latest = {}
    for trial in trials:
        result = trial.run_metadata.checkpoint_manager.latest_checkpoint_result
        if result is not None:
            latest[trial.trial_id] = (int(result.metrics.get("epoch", 0)), Path(result.checkpoint.path))
    return latest


@dataclass
class Hold:
    """The run control of :mod:`raynas.tune.hold` for one run: trials wait after reporting ``epoch``.

    A test starts a run with it, waits until the trials it expects are :meth:`held` (a state they stay in
    until released or killed, so waiting for it cannot be outrun by a fast machine), acts, and may
    :meth:`release` them.
    """

    folder: Path
    epoch: int

    def env(self) -> dict[str, str]:
        """The variables that turn the control on in a CLI subprocess."""
        from raynas.tune.hold import HOLD_DIR_ENV, HOLD_EPOCH_ENV

        return {HOLD_DIR_ENV: str(self.folder), HOLD_EPOCH_ENV: str(self.epoch)}

    def held(self) -> dict[str, int]:
        """Trial id -> epoch of every trial held now (or once held, if it was since killed or released)."""
        from raynas.tune.hold import held_trials

        return held_trials(self.folder)

    def release(self) -> None:
        """Let every held trial go on, and every later one pass the hold point without stopping."""
        from raynas.tune.hold import RELEASE_FILE

        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / RELEASE_FILE).touch()


class BackgroundRun:
    """``raynas ARGS`` started in the background with its own short Ray temp folder.

    Its process tree is sampled whenever the run is polled, so that :meth:`cleanup` can stop by PID every
    Ray process it started, also after the driver was SIGKILLed (never `ray stop`). Use as a context manager.
    """

    def __init__(self, *args: str, cwd: Path = ROOT, hold: "Hold | None" = None,
                 env: dict[str, str] | None = None) -> None:
        """Start ``raynas ARGS`` in ``cwd``, under ``hold``'s run control if given, with ``env`` added to the
        CLI's environment (e.g. :data:`SAVE_STATE_EVERY_SECOND`)."""
        self.ray_temp = tempfile.mkdtemp(prefix="rn")  # short: Ray's unix socket paths must stay under 108 bytes
        self.out_path = Path(self.ray_temp) / "stdout.txt"
        self.err_path = Path(self.ray_temp) / "stderr.txt"
        self.seen: dict[int, psutil.Process] = {}  # Process objects: psutil refuses to signal a reused PID
        self.listening: set[str] = set()  # every address the run's processes were seen listening on
        run_env = {**cli_env(self.ray_temp), **(hold.env() if hold else {}), **(env or {})}
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "raynas.cli", *args], cwd=cwd,
                                         env=run_env, stdout=out, stderr=err, text=True)

    def __enter__(self) -> "BackgroundRun":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    @property
    def stdout(self) -> str:
        """What the run printed on stdout so far."""
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        """What the run printed on stderr so far."""
        return self.err_path.read_text()

    def processes(self) -> list[psutil.Process]:
        """The driver and its live descendants now (their PIDs are remembered for clean-up)."""
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for proc in procs:
            self.seen.setdefault(proc.pid, proc)
            self.listening |= listening_addresses(proc)
        return procs

    def wait_until(self, predicate: Callable[["BackgroundRun"], bool], timeout: float = 240) -> None:
        """Poll until ``predicate(self)`` holds; fail if the run ends or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            self.processes()
            if self.proc.poll() is not None:
                raise AssertionError(f"raynas exited ({self.proc.returncode}) before the awaited state:\n"
                                     f"{self.stdout[-2000:]}\n{self.stderr[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the awaited state did not come within {timeout}s:\n{self.stdout[-2000:]}")
            time.sleep(0.2)

    def wait(self, timeout: float = 300) -> int:
        """Wait for the run to end (sampling its processes meanwhile); its exit code."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            self.processes()
            if time.monotonic() > deadline:
                self.proc.kill()
                raise TimeoutError(f"raynas ran past {timeout}s:\n{self.stdout[-2000:]}")
            time.sleep(0.3)
        return self.proc.returncode

    def kill_driver(self) -> None:
        """SIGKILL the driver (the CLI process), then every Ray process it had started, as a reboot would."""
        self.processes()
        self.proc.kill()
        self.proc.wait()
        self._kill_seen()

    def _kill_seen(self) -> None:
        for proc in self.seen.values():
            try:
                proc.kill()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass

    def cleanup(self) -> None:
        """Stop whatever the run started that is still alive, by PID, and remove its Ray temp folder."""
        if self.proc.poll() is None:
            self.processes()
            self.proc.kill()
            self.proc.wait()
        self._kill_seen()
        shutil.rmtree(self.ray_temp, ignore_errors=True)


def busy_trial_workers(run: BackgroundRun) -> list[psutil.Process]:
    """Ray worker processes of the run now executing a trial (process title ``ray::ImplicitFunc.train``)."""
    busy = []
    for proc in run.processes():
        try:
            if " ".join(proc.cmdline()).startswith("ray::ImplicitFunc.train"):
                busy.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return busy
