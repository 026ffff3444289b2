#!/usr/bin/env python3
"""Benchmark the CLI's start-up: ``raynas --help`` and ``raynas results`` on a large experiment folder.

Targets (issue 9, target 4): ``raynas --help`` under 0.5 s without importing torch or ray, and ``raynas
results DIR`` on an experiment of 100 trials x 50 epochs under 2 s. Every figure is the median wall time of
``--runs`` runs of the installed console script (``raynas`` next to this Python) as a subprocess. Which
heavy modules (torch, ray, pandas) each command imported is read from one extra ``-X importtime`` run of the
same script.

The experiment folder is real: written by :class:`raynas.results.ResultsWriter` one report per (trial,
epoch), as the Tune callback writes them (part files, then the consolidated ``tables/*.parquet``), with the
DARTS space's architecture weights (2 cells x 14 edges x 8 ops per epoch), a derived genotype per epoch,
per-trial summaries from :func:`raynas.results.summarise_trial` and the resolved ``config.yaml``. Building it
takes a minute or so; ``--dir`` keeps it (and reuses one already there). Prints each figure, its ratio to
the target and the load average; ``--json`` prints one JSON object instead.

    python tools/bench_startup.py [--runs 7] [--trials 100] [--epochs 50] [--dir PATH] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HELP_TARGET_S = 0.5
RESULTS_TARGET_S = 2.0
HEAVY = ("torch", "ray", "pandas")
CONFIG = ROOT / "search_configs" / "darts_cifar10.yaml"

RESULTS_VARIANTS: dict[str, list[str]] = {
    "leaderboard": [],
    "sort": ["--sort", "-best_val_acc", "--sort", "trial_id"],
    "where": ["--where", "seed >= 50 and num_skip <= 3"],
    "json": ["--format", "json"],
    "genotypes_last_epoch": ["--table", "genotypes", "--where", "epoch == 50"],
}
"""Name -> arguments after ``raynas results DIR``; the first is the figure the target is about."""


def console_script() -> Path:
    """The ``raynas`` console script installed beside the running Python."""
    script = Path(sys.executable).parent / "raynas"
    if not script.is_file():
        raise SystemExit(f"no console script at {script}: install raynas in this environment (pip install -e .)")
    return script


def cli_env() -> dict[str, str]:
    """Environment of the CLI runs: no usage statistics (nothing here should start Ray)."""
    env = dict(os.environ)
    env.update({"RAY_USAGE_STATS_ENABLED": "0"})
    return env


def time_command(cmd: list[str], runs: int) -> dict[str, Any]:
    """Median, min and max wall seconds of ``runs`` runs of ``cmd`` (after one untimed warm-up run)."""
    subprocess.run(cmd, env=cli_env(), capture_output=True, check=True)  # warm the page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(cmd, env=cli_env(), capture_output=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr.decode()[-2000:]}")
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "max_s": round(max(times), 4), "output_bytes": len(done.stdout)}


def heavy_imports(cmd: list[str]) -> list[str]:
    """Which of :data:`HEAVY` the Python command ``cmd`` imported (its ``-X importtime`` lines name each one)."""
    done = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=cli_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    imported = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            module = line.rsplit("|", 1)[1].strip()
            imported.add(module.split(".", 1)[0])
    return [name for name in HEAVY if name in imported]


def _report(space: Any, rng: random.Random, trial: int, epoch: int, epochs: int,
            alphas: dict[str, list[list[float]]]) -> dict[str, Any]:
    """One epoch's report of a DARTS search, shaped as raynas.search.Search.run_epoch returns it plus the
    keys Ray Tune adds; ``alphas`` (cell -> edge -> op logits) drift in place from epoch to epoch."""
    progress = epoch / epochs
    columns: dict[str, list] = {k: [] for k in ("cell", "edge", "src", "dst", "op", "alpha", "weight")}
    best: dict[str, dict[int, list[tuple[tuple[float, str], int]]]] = {}
    for cell in space.cell_types:
        for e, (src, dst) in enumerate(space.edges(cell)):
            ops = space.edge_ops(cell, e)
            row = alphas[cell][e]
            for k in range(len(ops)):
                row[k] += rng.gauss(0.0, 0.02) + (0.004 if ops[k] == "skip_connect" else 0.0)
            total = sum(math.exp(a) for a in row)
            for op, a in zip(ops, row):
                columns["cell"].append(cell)
                columns["edge"].append(e)
                columns["src"].append(src)
                columns["dst"].append(dst)
                columns["op"].append(op)
                columns["alpha"].append(a)
                columns["weight"].append(math.exp(a) / total)
            best.setdefault(cell, {}).setdefault(dst, []).append(
                (max((math.exp(a) / total, op) for op, a in zip(ops, row) if op != "none"), e))
    # the DARTS derivation: per node the two incoming edges with the strongest op other than none
    choices = {cell: {e: op for nodes in by_dst.values() for (_, op), e in sorted(nodes, reverse=True)[:2]}
               for cell, by_dst in best.items()}
    genotype = space.genotype_from_choices(choices)
    val_acc = 0.35 + 0.5 * progress + rng.gauss(0.0, 0.01) + 0.002 * (trial % 7)
    derived_acc = val_acc - 0.1 * rng.random()
    elapsed = 95.0 * epoch + rng.random()
    return {
        "epoch": epoch,
        "train_loss": 2.0 * (1.1 - progress) + rng.random() * 0.05, "train_acc": 0.3 + 0.6 * progress,
        "val_loss": 2.1 * (1.1 - progress) + rng.random() * 0.05, "val_acc": val_acc,
        "derived_val_loss": 2.3 * (1.1 - progress), "derived_val_acc": derived_acc,
        "weight_lr": 0.001 + 0.012 * (1 + math.cos(math.pi * progress)), "arch_lr": 3e-4,
        "epoch_time_s": 95.0 + rng.random(),
        "genotype": str(genotype),
        "num_skip": genotype.count("skip_connect", cell=space.cell_types[0]),
        "connected": bool(space.is_connected(genotype)),
        "alphas": columns,
        "space": "darts", "method": "darts", "seed": trial,
        "reported_at": 1.8e9 + elapsed, "state_fingerprint": f"{rng.getrandbits(64):016x}",
        "discretization_gap": val_acc - derived_acc,
        # what Ray Tune adds to every result
        "training_iteration": epoch, "time_total_s": elapsed, "time_this_iter_s": 95.0,
        "timestamp": int(1.8e9 + elapsed), "time_since_restore": elapsed, "iterations_since_restore": epoch,
        "pid": 4242, "done": False, "hostname": "node-1", "node_ip": "10.0.0.1", "date": "2027-01-15_10-00-00",
        "trial_id": f"bench_{trial:05d}", "experiment_id": "f00dfeed", "config": {"overrides": {"search.seed": trial}},
    }


def build_experiment(directory: Path, trials: int, epochs: int) -> float:
    """Write a finished DARTS experiment of ``trials`` x ``epochs`` reports into ``directory``; its seconds."""
    from raynas.config import config_to_dict, dump_config, load_config, with_overrides
    from raynas.results import ResultsWriter, summarise_trial
    from raynas.spaces import get_space

    start = time.perf_counter()
    cfg = load_config(str(CONFIG), [f"search.epochs={epochs}", "name=bench-startup",
                                     "data.download=true"])  # the data is validated only, never loaded
    directory.mkdir(parents=True)
    dump_config(cfg, directory / "config.yaml")
    base = config_to_dict(cfg)
    space = get_space("darts")
    writer = ResultsWriter(directory, cfg.name)
    for trial in range(trials):
        trial_id = f"bench_{trial:05d}"
        rng = random.Random(trial)
        alphas = {cell: [[rng.gauss(0.0, 1e-3) for _ in space.edge_ops(cell, e)]
                         for e in range(len(space.edges(cell)))] for cell in space.cell_types}
        rows = []
        for epoch in range(1, epochs + 1):
            report = _report(space, rng, trial, epoch, epochs, alphas)
            writer.write_report(trial_id, report)
            rows.append({**{k: v for k, v in report.items() if k != "alphas"},
                         "wall_time_s": report["time_total_s"]})
        overrides = {"search.seed": trial}
        status = "ERROR" if trial % 37 == 36 else "TERMINATED"  # a few failed trials, as in a real population
        writer.write_trial(summarise_trial(
            trial_id, rows, cfg.tune.metric, cfg.tune.mode, experiment=cfg.name, status=status, space="darts",
            method="darts", seed=trial, overrides=overrides, config=with_overrides(base, overrides),
            error="FloatingPointError: the search diverged (loss nan)" if status == "ERROR" else None))
    writer.consolidate()
    return time.perf_counter() - start


def main() -> None:
    """Parse the arguments, run the benchmark, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per command (median reported)")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--dir", default=None, help="experiment folder to build and keep (reused if present)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    script = console_script()
    load_before = os.getloadavg()
    python = [sys.executable, str(script)]  # the console script run by its own interpreter, so -X works
    help_cmd = [str(script), "--help"]
    result: dict[str, Any] = {"help": {**time_command(help_cmd, args.runs), "target_s": HELP_TARGET_S,
                                       "heavy_imports": heavy_imports([*python, "--help"])}}
    result["help"]["ratio_to_target"] = round(result["help"]["median_s"] / HELP_TARGET_S, 3)

    temp = None
    if args.dir:
        directory = Path(args.dir)
    else:
        temp = tempfile.mkdtemp(prefix="rnstart")
        directory = Path(temp) / "bench-startup"
    try:
        build_s = None
        if not (directory / "tables").is_dir():
            build_s = round(build_experiment(directory, args.trials, args.epochs), 1)
        result["experiment"] = {"dir": str(directory), "trials": args.trials, "epochs": args.epochs,
                                "build_s": build_s,
                                "bytes": sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())}
        result["results"] = {}
        for name, extra in RESULTS_VARIANTS.items():
            cmd = ["results", str(directory), *extra]
            figures = time_command([str(script), *cmd], args.runs)
            figures.update(args=extra, target_s=RESULTS_TARGET_S,
                           ratio_to_target=round(figures["median_s"] / RESULTS_TARGET_S, 3),
                           heavy_imports=heavy_imports([*python, *cmd]))
            result["results"][name] = figures
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    result["setting"] = {"runs": args.runs, "python": sys.version.split()[0], "cpus": os.cpu_count(),
                         "load_avg_before": [round(x, 2) for x in load_before],
                         "load_avg_after": [round(x, 2) for x in os.getloadavg()]}

    if args.json:
        print(json.dumps(result))
        return
    h = result["help"]
    print(f"raynas --help: median {h['median_s']:.3f} s (min {h['min_s']:.3f}, max {h['max_s']:.3f}) over "
          f"{args.runs} runs; target {HELP_TARGET_S} s, ratio {h['ratio_to_target']:.2f}; "
          f"heavy imports: {', '.join(h['heavy_imports']) or 'none'}")
    e = result["experiment"]
    built = f"built in {e['build_s']} s" if e["build_s"] is not None else "reused"
    print(f"experiment: {e['trials']} trials x {e['epochs']} epochs, {e['bytes'] / 1e6:.1f} MB, {built}: {e['dir']}")
    for name, r in result["results"].items():
        print(f"raynas results DIR {' '.join(r['args'])}".rstrip()
              + f": median {r['median_s']:.3f} s (min {r['min_s']:.3f}, max {r['max_s']:.3f}); "
              f"target {RESULTS_TARGET_S} s, ratio {r['ratio_to_target']:.2f}; "
              f"heavy imports: {', '.join(r['heavy_imports']) or 'none'}; {r['output_bytes']} bytes out  [{name}]")
    s = result["setting"]
    print(f"load average (1, 5, 15 min): before {s['load_avg_before']}, after {s['load_avg_after']} "
          f"on {s['cpus']} CPUs")


if __name__ == "__main__":
    main()
