#!/usr/bin/env python3
"""Benchmark what orchestration costs: a population of N small searches through raynas vs bare processes.

raynas: one ``raynas search`` run (a fresh local Ray, Tune, the Parquet tables and a checkpoint per trial
epoch) with ``ray.num_cpus`` = the parallelism and one CPU per trial. Bare: the same N searches, each a
``python -c`` process running :class:`raynas.search.Search` to the end with nothing reported or saved,
``--parallel`` at a time. Pooled: the same searches in ``--parallel`` long-lived processes, each running
its share one after another, as Tune's reused trial processes do: the floor without any orchestration.
All use one torch thread per search. Prints the wall time of each, the ratios and the overhead (raynas
against bare); ``--json`` prints one JSON object with ``raynas_s``, ``bare_s``, ``ratio``, ``overhead_s``,
``overhead_per_search_s``, the CPU seconds of each (``raynas_cpu_s``, ``bare_cpu_s``: user + system time
of every process each started, less sensitive than wall time to other load on the machine), ``cpu_ratio``,
the pooled figures (``pooled_s``, ``pooled_cpu_s``, ``ratio_vs_pooled``, ``cpu_ratio_vs_pooled``) and the
settings.

    python tools/bench_tune_overhead.py [--searches 8] [--parallel 2] [--config search_configs/smoke/nb201.yaml]
                                        [--epochs N] [--repeats 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]

# argv: config, comma-separated seeds, overrides; runs the seeds' searches one after another.
BARE_SEARCHES = """
import sys
from raynas.config import load_config
from raynas.search import Search
for seed in sys.argv[2].split(","):
    search = Search(load_config(sys.argv[1], [*sys.argv[3:], "search.seed=" + seed]))
    while not search.done:
        search.run_epoch()
"""


def env_for_ray(ray_temp: str) -> dict[str, str]:
    """Environment of the raynas run: its own short Ray temp folder, no usage stats (token auth as a user's)."""
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env.update({"RAY_USAGE_STATS_ENABLED": "0", "RAYNAS_RAY_TEMP_DIR": ray_temp})
    return env


def common_overrides(epochs: int | None) -> list[str]:
    """Overrides both variants share: one torch thread per search, optionally the epoch count."""
    return ["search.threads=1"] + ([f"search.epochs={epochs}"] if epochs else [])


class TreeCpu:
    """CPU seconds (user + system) of this process' descendants while it runs, sampled every ``interval``.

    Ray's workers are grandchildren that nobody here waits for, so ``RUSAGE_CHILDREN`` misses them; a
    sampler sees every descendant and keeps each one's last reading (a process loses at most its last
    interval's CPU).
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval, self.seen, self._stop = interval, {}, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(self.interval):
            for proc in me.children(recursive=True):
                try:
                    times = proc.cpu_times()
                    self.seen[(proc.pid, proc.create_time())] = times.user + times.system
                except psutil.Error:
                    continue

    def __enter__(self) -> "TreeCpu":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def total(self) -> float:
        """CPU seconds of every descendant seen."""
        return sum(self.seen.values())


def timed(run: Callable[..., None], *args: object) -> tuple[float, float]:
    """(wall seconds, descendants' CPU seconds) of ``run(*args)``."""
    with TreeCpu() as cpu:
        start = time.perf_counter()
        run(*args)
        wall = time.perf_counter() - start
    return wall, cpu.total


def run_raynas(config: str, seeds: list[int], parallel: int, epochs: int | None) -> None:
    """Run ``raynas search`` over ``seeds``; raises if the run or any trial failed."""
    work = Path(tempfile.mkdtemp(prefix="rnb"))  # short: Ray's socket paths must stay under 108 bytes
    ray_temp = str(work / "ray")
    sets = [f"tune.grid.search.seed={seeds}", f"ray.num_cpus={parallel}", "resources.cpus_per_trial=1",
            "name=bench", *common_overrides(epochs)]
    cmd = [sys.executable, "-m", "raynas.cli", "search", config, "--out", str(work / "out")]
    for item in sets:
        cmd += ["--set", item]
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env_for_ray(ray_temp), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"raynas search failed ({done.returncode}):\n{done.stderr[-3000:]}")
        check_trials(work / "out" / "bench", len(seeds))
    finally:
        stop_leftovers(ray_temp)
        shutil.rmtree(work, ignore_errors=True)


def check_trials(experiment: Path, expected: int) -> None:
    """Refuse a timing whose tables do not hold ``expected`` finished trials."""
    from raynas.results import load_table

    statuses = load_table(experiment, "trials").column("status").to_pylist()
    if statuses.count("TERMINATED") != expected:
        raise RuntimeError(f"expected {expected} TERMINATED trials, got {statuses}")


def stop_leftovers(ray_temp: str) -> None:
    """Kill, by PID, Ray processes of this run (they name its temp folder) that outlived the driver."""
    import psutil

    mine = [p for p in psutil.process_iter(["cmdline"]) if any(ray_temp in a for a in p.info["cmdline"] or ())]
    for proc in mine:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(mine, timeout=10)  # before the folder is removed: a dying process may still write


def run_searches(config: str, seeds: list[int], epochs: int | None) -> None:
    """One plain process running the searches of ``seeds`` one after another."""
    cmd = [sys.executable, "-c", BARE_SEARCHES, config, ",".join(map(str, seeds)), *common_overrides(epochs)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"bare search (seeds {seeds}) failed:\n{done.stderr[-3000:]}")


def run_bare(config: str, seeds: list[int], parallel: int, epochs: int | None) -> None:
    """Run the same searches as plain processes, one per search, ``parallel`` at a time."""
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda seed: run_searches(config, [seed], epochs), seeds))


def run_pooled(config: str, seeds: list[int], parallel: int, epochs: int | None) -> None:
    """Run the same searches in ``parallel`` long-lived processes (start-up paid once per process)."""
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda i: run_searches(config, seeds[i::parallel], epochs), range(parallel)))


def main(argv: list[str] | None = None) -> dict:
    """Time both variants ``--repeats`` times (alternating) and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--searches", type=int, default=8, help="searches in the population")
    parser.add_argument("--parallel", type=int, default=2, help="searches running at once (CPUs)")
    parser.add_argument("--config", default="search_configs/smoke/nb201.yaml")
    parser.add_argument("--epochs", type=int, default=None, help="search epochs (default: the config's)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    seeds = list(range(args.searches))
    load_before = os.getloadavg()[0]
    bare, pooled, tuned = [], [], []
    for _ in range(args.repeats):
        bare.append(timed(run_bare, args.config, seeds, args.parallel, args.epochs))
        pooled.append(timed(run_pooled, args.config, seeds, args.parallel, args.epochs))
        tuned.append(timed(run_raynas, args.config, seeds, args.parallel, args.epochs))
    bare_s, pooled_s, raynas_s = (statistics.median(t[0] for t in runs) for runs in (bare, pooled, tuned))
    bare_cpu, pooled_cpu, raynas_cpu = (statistics.median(t[1] for t in runs) for runs in (bare, pooled, tuned))
    result = {
        "config": args.config, "searches": args.searches, "parallel": args.parallel, "epochs": args.epochs,
        "repeats": args.repeats, "raynas_s": round(raynas_s, 2), "bare_s": round(bare_s, 2),
        "ratio": round(raynas_s / bare_s, 3), "overhead_s": round(raynas_s - bare_s, 2),
        "overhead_per_search_s": round((raynas_s - bare_s) / args.searches, 3),
        "raynas_cpu_s": round(raynas_cpu, 1), "bare_cpu_s": round(bare_cpu, 1),
        "cpu_ratio": round(raynas_cpu / bare_cpu, 3),
        "pooled_s": round(pooled_s, 2), "pooled_cpu_s": round(pooled_cpu, 1),
        "ratio_vs_pooled": round(raynas_s / pooled_s, 3), "cpu_ratio_vs_pooled": round(raynas_cpu / pooled_cpu, 3),
        "pooled_runs_s": [round(t[0], 2) for t in pooled],
        "raynas_runs_s": [round(t[0], 2) for t in tuned], "bare_runs_s": [round(t[0], 2) for t in bare],
        "load_avg_1m_before": round(load_before, 2),  # other work on the machine skews wall times
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.searches} searches of {args.config}, {args.parallel} at a time "
              f"(median of {args.repeats}):")
        print(f"  raynas search (Ray Tune, tables, checkpoints): {raynas_s:8.2f} s wall, {raynas_cpu:7.1f} s CPU")
        print(f"  bare processes (raynas.search.Search only):    {bare_s:8.2f} s wall, {bare_cpu:7.1f} s CPU")
        print(f"  {args.parallel} pooled processes (start-up paid once each):   {pooled_s:8.2f} s wall, "
              f"{pooled_cpu:7.1f} s CPU")
        print(f"  ratio {result['ratio']:.2f}, overhead {result['overhead_s']:.2f} s "
              f"({result['overhead_per_search_s']:.2f} s per search); CPU ratio {result['cpu_ratio']:.2f}")
        print(f"  against pooled processes: ratio {result['ratio_vs_pooled']:.2f}, "
              f"CPU ratio {result['cpu_ratio_vs_pooled']:.2f}")
    return result


if __name__ == "__main__":
    main()
