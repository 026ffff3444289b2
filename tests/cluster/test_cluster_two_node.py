"""A real two-node Ray cluster in two network namespaces, driven by the ``raynas search`` CLI.

Namespace A holds the head (10.77.0.1) and the driver; namespace B holds a worker node (10.77.0.2); a veth
pair joins them. Each node offers one CPU and each trial asks for one, so a population of four trials can
only run by using both nodes; the epochs table must show both node addresses. Everything started here is
stopped by PID (never ``ray stop``: it would stop every Ray on the machine) and both namespaces are
deleted, also when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
RAY = str(Path(sys.executable).with_name("ray"))
HEAD_IP, WORKER_IP = "10.77.0.1", "10.77.0.2"
PORT = 6379
ADDRESS = f"{HEAD_IP}:{PORT}"
SEEDS = [0, 1, 2, 3]
EPOCHS = 2


def _can_use_netns() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    return subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0


pytestmark = [
    pytest.mark.cluster,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not _can_use_netns(), reason="needs root and iproute2's `ip netns`"),
]

# Polls the head from namespace A until both nodes are alive; prints their addresses.
WAIT_FOR_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False)
deadline = time.monotonic() + float(sys.argv[2])
while True:
    ips = sorted(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"])
    if len(ips) >= 2 or time.monotonic() > deadline:
        break
    time.sleep(0.5)
print(" ".join(ips))
"""


def ray_env() -> dict[str, str]:
    """Environment of every Ray process here: token authentication, no usage stats, multi-node allowed.

    Every node, the driver and the node poller share the session's private token file (``RAY_AUTH_TOKEN_PATH``,
    tests/conftest.py), as the nodes of a real cluster share one token.
    """
    env = dict(os.environ)
    # Set to 0 (as the local test fixture does), a joining node aborts: "Multi-node Ray clusters are not supported".
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    env.pop("RAY_ADDRESS", None)
    env.update({"RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"})
    return env


def ip(*args: str) -> str:
    """Run ``ip ARGS``; raise with its stderr when it fails."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def in_netns(ns: str, *cmd: str, timeout: float) -> subprocess.CompletedProcess:
    """Run CMD inside namespace NS from the repository root, capturing its output."""
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], cwd=ROOT, env=ray_env(), capture_output=True,
                          text=True, timeout=timeout)


def netns_procs(ns: str) -> set[psutil.Process]:
    """The processes living in namespace NS (empty when it is gone)."""
    done = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    procs = set()
    for pid in done.stdout.split() if done.returncode == 0 else ():
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.add(psutil.Process(int(pid)))  # remembers its start time: a reused PID is not mistaken for it
    return procs


def namespaces() -> set[str]:
    """Names of the network namespaces that exist now."""
    return {line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()}


def is_gone(proc: psutil.Process) -> bool:
    """Whether PROC no longer runs (a zombie waiting for its parent counts as gone)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@dataclass
class NetnsCluster:
    """Two namespaces joined by a veth pair, a Ray head in ``head_ns`` and a worker in ``worker_ns``."""

    tag: str
    temp: Path
    started: set[psutil.Process] = field(default_factory=set)

    @property
    def head_ns(self) -> str:
        """Namespace of the head node and the driver."""
        return f"{self.tag}a"

    @property
    def worker_ns(self) -> str:
        """Namespace of the worker node."""
        return f"{self.tag}b"

    @property
    def veth_a(self) -> str:
        """The veth end in namespace A (interface names have at most 15 characters)."""
        return f"{self.tag}va"

    @property
    def veth_b(self) -> str:
        """The veth end in namespace B."""
        return f"{self.tag}vb"


def create_link(cluster: NetnsCluster) -> None:
    """Create both namespaces and the veth pair between them, addressed and up (lo too)."""
    ip("netns", "add", cluster.head_ns)
    ip("netns", "add", cluster.worker_ns)
    end_a, end_b = cluster.veth_a, cluster.veth_b
    ip("link", "add", end_a, "type", "veth", "peer", "name", end_b)
    ip("link", "set", end_a, "netns", cluster.head_ns)
    ip("link", "set", end_b, "netns", cluster.worker_ns)
    for ns, dev, addr in ((cluster.head_ns, end_a, HEAD_IP), (cluster.worker_ns, end_b, WORKER_IP)):
        ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "link", "set", dev, "up")


def start_nodes(cluster: NetnsCluster) -> None:
    """``ray start`` the head in namespace A and a worker in namespace B, one CPU each."""
    common = ["--num-cpus=1", "--object-store-memory=300000000", "--disable-usage-stats"]
    head = in_netns(cluster.head_ns, RAY, "start", "--head", f"--node-ip-address={HEAD_IP}", f"--port={PORT}",
                    "--include-dashboard=false", f"--temp-dir={cluster.temp / 'a'}", *common, timeout=180)
    cluster.started |= netns_procs(cluster.head_ns)
    assert head.returncode == 0, f"ray start --head failed:\n{head.stdout}\n{head.stderr}"
    worker = in_netns(cluster.worker_ns, RAY, "start", f"--address={ADDRESS}", f"--node-ip-address={WORKER_IP}",
                      f"--temp-dir={cluster.temp / 'b'}", *common, timeout=180)
    cluster.started |= netns_procs(cluster.worker_ns)
    assert worker.returncode == 0, f"ray start --address failed:\n{worker.stdout}\n{worker.stderr}"


def wait_for_nodes(cluster: NetnsCluster, timeout: float = 120) -> list[str]:
    """Addresses of the alive nodes once both registered with the head (or what there is after TIMEOUT)."""
    done = in_netns(cluster.head_ns, PYTHON, "-c", WAIT_FOR_NODES, ADDRESS, str(timeout), timeout=timeout + 120)
    assert done.returncode == 0, f"could not reach the head:\n{done.stderr[-3000:]}"
    return done.stdout.split()


def tear_down(cluster: NetnsCluster) -> None:
    """Stop every process in both namespaces by PID (TERM, then KILL), then delete the namespaces."""
    procs = netns_procs(cluster.head_ns) | netns_procs(cluster.worker_ns)
    cluster.started |= procs
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(is_gone(p) for p in procs):
            time.sleep(0.2)
        procs = {p for p in procs if not is_gone(p)}
        if not procs:
            break
    existing = namespaces()
    for ns in (cluster.head_ns, cluster.worker_ns):
        if ns in existing:
            ip("netns", "del", ns)  # removes the veth pair with it
    if Path("/sys/class/net", cluster.veth_a).exists():  # created but never moved into namespace A
        ip("link", "del", cluster.veth_a)
    shutil.rmtree(cluster.temp, ignore_errors=True)


@contextlib.contextmanager
def netns_cluster() -> Iterator[NetnsCluster]:
    """A two-node Ray cluster in fresh namespaces, torn down on exit whatever happened inside."""
    tag = f"rn{os.getpid() % 10_000_000}"  # unique per run, so parallel runs do not clash
    temp = Path(tempfile.mkdtemp(prefix="rn"))  # short: Ray's socket paths must stay under 108 bytes
    cluster = NetnsCluster(tag, temp)
    try:
        create_link(cluster)
        start_nodes(cluster)
        yield cluster
    finally:
        tear_down(cluster)


def test_search_spreads_trials_over_two_nodes(tmp_path: Path) -> None:
    """`raynas search --address` on a two-node cluster: trials on both nodes, all finished, tables complete."""
    from raynas.results import load_table

    out = tmp_path / "results"
    with netns_cluster() as cluster:
        assert wait_for_nodes(cluster) == [HEAD_IP, WORKER_IP]
        run = in_netns(cluster.head_ns, PYTHON, "-m", "raynas.cli", "search", "search_configs/smoke/nb201.yaml",
                       "--address", ADDRESS, "--out", str(out),
                       "--set", f"tune.grid.search.seed={SEEDS}", "--set", f"search.epochs={EPOCHS}",
                       "--set", "resources.cpus_per_trial=1", timeout=600)
        assert run.returncode == 0, f"raynas search failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
        started = set(cluster.started)
    assert not {cluster.head_ns, cluster.worker_ns} & namespaces()
    assert not Path("/sys/class/net", cluster.veth_a).exists()
    assert started and all(is_gone(proc) for proc in started)

    experiment = out / "smoke-nb201"
    trials = load_table(experiment, "trials").to_pylist()
    assert len(trials) == len(SEEDS)
    assert {t["status"] for t in trials} == {"TERMINATED"}
    assert sorted(t["seed"] for t in trials) == SEEDS
    assert all(t["epochs_done"] == EPOCHS and t["genotype"] for t in trials)

    epochs = load_table(experiment, "epochs").to_pylist()
    keys = {(e["trial_id"], e["epoch"]) for e in epochs}
    assert keys == {(t["trial_id"], ep) for t in trials for ep in range(1, EPOCHS + 1)}
    assert len(epochs) == len(keys)
    assert {e["node_ip"] for e in epochs} == {HEAD_IP, WORKER_IP}

    genotypes = load_table(experiment, "genotypes").to_pylist()
    assert {(g["trial_id"], g["epoch"]) for g in genotypes} == keys
    alphas = load_table(experiment, "alphas").to_pylist()
    per_key: dict[tuple[str, int], int] = {}
    for a in alphas:
        per_key[(a["trial_id"], a["epoch"])] = per_key.get((a["trial_id"], a["epoch"]), 0) + 1
    assert set(per_key) == keys and len(set(per_key.values())) == 1

    # Trials on the worker node wrote their checkpoints into the same experiment folder.
    checkpoints = list((experiment / "tune").glob("*/checkpoint_*"))
    assert len({c.parent for c in checkpoints}) == len(SEEDS)
