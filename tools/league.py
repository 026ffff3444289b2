"""The methods' league: each method's search quality on the ground truth, from one population of method x seed.

Reads one scored NB201 search experiment (every epoch's derived cell has its ``gt_test_acc``;
docs/benchmark.md) whose trials vary the method as a grid of ``variant`` x ``search.seed``, such as the one
``search_configs/league.yaml`` runs (docs/search_quality.md):

    raynas search search_configs/league.yaml
    python tools/league.py raynas_results/league [--out table.md] [--plot league.png] [--json]
                           [--baseline darts --baseline random] [--pair sd-darts-1ep:sd-darts]

A league run as several populations (its seeds over two sessions: ``--set 'tune.grid.search.seed=[5, 6]'``)
is read from all their folders at once: ``python tools/league.py part1 part2``. A population committed as a
snapshot (``tools/league_snapshot.py``: its config.yaml and tables under ``benchmarks/league/<population>/``)
reads as its live folder.

A population still running works too: only finished trials count (status TERMINATED, every planned epoch
reported) and the table says how many seeds each method has, and how many are running or not started yet.
A trial's method is its ``variant`` (the trials of a population without variants: its ``method``).

For each method, one row:

- **ground truth**: the mean over seeds of the test accuracy of the cell the search returns
  (``final_gt_test_acc``), with a 95 % t interval over seeds; its percentile among the benchmark's cells
  (mean, 95 % t interval) and its regret to the benchmark's best cell (mean);
- **skips**: ``skip_connect`` ops in the returned cell (mean);
- **cells**: distinct cells derived over the search's epochs (mean): how much the search moved, the
  exploration E2NAS claims;
- **gap**: the discretization gap (supernet minus derived cell, validation accuracy with inherited weights)
  at the last search epoch, ``search.epochs``, before any selection stage (mean);
- **sharpness**: ``arch_sharpness`` (dominant Hessian eigenvalue of the architecture loss w.r.t. the alphas,
  ``search.sharpness_every``) last measured by ``search.epochs`` (mean; n/a where not measured);
- **cost**: core-minutes per search: the trial's CPUs (``resources.cpus_per_trial``) times the wall seconds
  of its epochs (``epoch_time_s``: search and selection stage; ground-truth lookups, sharpness and checkpoints
  left out). On a machine shared with other work, wall seconds overstate the CPU time.

Then a paired comparison of every method with each baseline (``--baseline``, default ``darts`` and
``random`` where the population has them) on the seeds both finished: the mean of the per-seed differences
of the ground truth with its 95 % paired t interval, and what that allows one to conclude ("beats", "is
worse than", or "does not beat" when the interval covers 0). ``--plot`` draws each method's ground truth over
epochs (mean over its finished seeds, the band its 95 % t interval; dashed: the benchmark's best cell; dotted:
the last search epoch, after which come the selection stages) as a PNG. ``--out`` writes the Markdown.

Bad input (a folder that is not an experiment, one with no ground truth or no finished trial, an unknown
baseline, a plot path that is not ``.png``) is one line on stderr and exit code 2. Imports neither torch
nor Ray.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Optional, Sequence, Union

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raynas.errors import RaynasError, ResultsError  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ranking_study import strict_json  # noqa: E402  (a sibling tool: NaN-free JSON)

#: Student's t, 97.5th percentile, by degrees of freedom 1..30 (scipy.stats.t.ppf(0.975, df) to 4 places)
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788,
         2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595,
         2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
_Z975 = 1.959963984540054
#: the baselines compared with when --baseline is not given (those the population has)
DEFAULT_BASELINES = ("darts", "random")


def t_quantile(df: int) -> float:
    """The 97.5th percentile of Student's t with ``df`` degrees of freedom (a table to 30, then the
    Cornish-Fisher expansion around the normal quantile, within 1e-4 of the exact value)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, not {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


def mean_interval(values: Sequence[float], bounds: tuple[float, float] = (-math.inf, math.inf)) -> dict[str, Any]:
    """``{"mean", "low", "high", "n"}``: the mean of ``values`` and its 95 % t interval, clipped to ``bounds``
    (the values' possible range: a few spread-out seeds give a t interval wider than it); NaN bounds below two
    values, everything NaN for none."""
    n = len(values)
    if n == 0:
        return {"mean": math.nan, "low": math.nan, "high": math.nan, "n": 0}
    mean = sum(values) / n
    if n == 1:
        return {"mean": mean, "low": math.nan, "high": math.nan, "n": 1}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "low": max(bounds[0], mean - half), "high": min(bounds[1], mean + half), "n": n}


def _finite(value: Any) -> Optional[float]:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def _mean(values: Sequence[Optional[float]]) -> float:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else math.nan


def _planned(experiment: Path) -> Optional[dict[str, set[Any]]]:
    """The search seeds per method the experiment's config plans (None when its config cannot be read)."""
    from raynas.config import expand_trials, load_config

    try:
        trials = expand_trials(load_config(experiment / "config.yaml"))
    except RaynasError:
        return None
    planned: dict[str, set[Any]] = {}
    for trial in trials:
        planned.setdefault(trial.config.variant or trial.config.method, set()).add(trial.config.search.seed)
    return planned


def _trial_record(trial: dict[str, Any], epochs: dict[int, dict[str, Any]], cells: set[str]) -> dict[str, Any]:
    """What the league reads of one trial: its method, seed, status, final ground truth and search figures."""
    config = json.loads(trial["config_json"] or "{}")
    search_epochs = int(config.get("search", {}).get("epochs") or 0)
    cpus = float(config.get("resources", {}).get("cpus_per_trial") or 1.0)
    finished = (trial["status"] == "TERMINATED" and trial["epochs_planned"] is not None
                and trial["epochs_done"] == trial["epochs_planned"] and bool(epochs))

    def extra(row: dict[str, Any], key: str) -> Optional[float]:
        return _finite(dict(row.get("extra") or ()).get(key))

    search_rows = [epochs[e] for e in sorted(epochs) if e <= search_epochs]
    gaps = [g for row in search_rows if (g := extra(row, "discretization_gap")) is not None]
    sharpness = [s for row in search_rows if (s := extra(row, "arch_sharpness")) is not None]
    seconds = [t for row in epochs.values() if (t := _finite(row.get("epoch_time_s"))) is not None]
    return {
        "trial_id": trial["trial_id"], "method": config.get("variant") or trial["method"],
        "seed": trial["seed"], "status": trial["status"], "finished": finished, "search_epochs": search_epochs,
        "gt": _finite(trial["final_gt_test_acc"]), "percentile": _finite(trial["final_gt_percentile"]),
        "regret": _finite(trial["final_gt_regret"]), "skips": trial["num_skip"], "cells": len(cells) or None,
        "gap": gaps[-1] if gaps else None, "sharpness": sharpness[-1] if sharpness else None,
        "core_minutes": cpus * sum(seconds) / 60.0,
        "curve": {e: g for e, row in epochs.items() if (g := _finite(row.get("gt_test_acc"))) is not None},
        "best_cell": next((g + r for row in epochs.values() if (g := _finite(row.get("gt_test_acc"))) is not None
                           and (r := _finite(row.get("gt_regret"))) is not None), None),
    }


def load_population(experiment: Path) -> list[dict[str, Any]]:
    """Every trial of ``experiment`` (:func:`_trial_record`), in trial order; a :class:`ResultsError` for a
    folder without trials or without any ground truth."""
    from raynas.results import load_table

    trials = sorted(load_table(experiment, "trials").to_pylist(), key=lambda row: row["trial_id"])
    if not trials:
        raise ResultsError(f"{experiment}: no trials yet; is it a search experiment folder?")
    by_trial: dict[str, dict[int, dict[str, Any]]] = {}
    for row in load_table(experiment, "epochs").to_pylist():
        by_trial.setdefault(row["trial_id"], {})[int(row["epoch"])] = row
    cells: dict[str, set[str]] = {}
    for row in load_table(experiment, "genotypes").to_pylist():
        cells.setdefault(row["trial_id"], set()).add(row["genotype"])
    records = [_trial_record(trial, by_trial.get(trial["trial_id"], {}), cells.get(trial["trial_id"], set()))
               for trial in trials]
    if not any(r["gt"] is not None or r["curve"] for r in records):
        raise ResultsError(f"{experiment} has no ground truth (final_gt_test_acc and gt_test_acc are null): the "
                           "league needs NB201 searches on the benchmark's data, digits with noise_std 1.0 "
                           "(docs/benchmark.md)")
    return records


def _method_row(name: str, records: list[dict[str, Any]], planned: Optional[set[Any]]) -> dict[str, Any]:
    done = [r for r in records if r["finished"] and r["gt"] is not None]
    running = sum(1 for r in records if r["status"] == "RUNNING")
    return {
        "method": name, "seeds": sorted(r["seed"] for r in done), "running": running,
        "errors": sum(1 for r in records if r["status"] == "ERROR"),
        "not_started": None if planned is None else len(planned - {r["seed"] for r in records}),
        "gt": mean_interval([r["gt"] for r in done], (0.0, 1.0)),
        "percentile": mean_interval([r["percentile"] for r in done if r["percentile"] is not None], (0.0, 100.0)),
        "regret": _mean([r["regret"] for r in done]), "skips": _mean([r["skips"] for r in done]),
        "cells": _mean([r["cells"] for r in done]),
        "gap": _mean([r["gap"] for r in done]), "sharpness": _mean([r["sharpness"] for r in done]),
        "core_minutes": _mean([r["core_minutes"] for r in done]),
    }


def conclusion(method: str, baseline: str, diff: dict[str, Any]) -> str:
    """The plain sentence a paired difference (``method`` minus ``baseline``) allows."""
    n = diff["n"]
    if n < 2:
        return f"{n} paired seed{'s' if n != 1 else ''}: too few to compare {method} with {baseline}"
    if diff["low"] > 0:
        return f"{method} beats {baseline}, by {diff['mean']:+.4f} test accuracy on average over {n} seeds"
    if diff["high"] < 0:
        return f"{method} is worse than {baseline}, by {diff['mean']:+.4f} test accuracy on average over {n} seeds"
    return (f"{method} does not beat {baseline}, nor is it shown worse: the interval covers 0, so {n} seeds show "
            "no difference")


def paired(records: list[dict[str, Any]], method: str, baseline: str) -> dict[str, Any]:
    """``method`` minus ``baseline`` on the seeds both finished: mean difference, 95 % paired t interval,
    the seeds and the conclusion."""
    def final(name: str) -> dict[Any, float]:
        return {r["seed"]: r["gt"] for r in records if r["method"] == name and r["finished"] and r["gt"] is not None}

    mine, theirs = final(method), final(baseline)
    seeds = sorted(set(mine) & set(theirs))
    diff = mean_interval([mine[s] - theirs[s] for s in seeds])
    return {"method": method, "baseline": baseline, "seeds": seeds, **diff,
            "conclusion": conclusion(method, baseline, diff)}


def curves(records: list[dict[str, Any]], methods: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Per method and epoch: the mean ground truth over its finished seeds with its 95 % t interval."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in methods:
        done = [r["curve"] for r in records if r["method"] == name and r["finished"]]
        epochs = sorted({e for curve in done for e in curve})
        out[name] = [{"epoch": e, **mean_interval([c[e] for c in done if e in c], (0.0, 1.0))} for e in epochs]
    return out


def combine(experiments: Sequence[Path]) -> tuple[list[dict[str, Any]], Optional[dict[str, set[Any]]]]:
    """The trials and planned trials per method of one league run as several populations (``experiments``,
    e.g. seeds 0-4 in one session and 5-9 in the next): trial records of all (a method's seed that one folder
    finished and another only started counts once, finished), and per method the union of the seeds they
    plan (a seed one folder planned and another ran is not "not started"). A :class:`ResultsError`
    when two folders both finished the same method and seed (the same league run twice)."""
    records: list[dict[str, Any]] = []
    planned: Optional[dict[str, set[Any]]] = {}
    where: dict[tuple[str, Any], Path] = {}
    for experiment in experiments:
        mine = load_population(experiment)
        for record in mine:
            key = (record["method"], record["seed"])
            if record["finished"] and key in where:
                raise ResultsError(f"{record['method']} seed {record['seed']} finished in both {where[key]} and "
                                   f"{experiment}: name each population of the league once")
            if record["finished"]:
                where[key] = experiment
        records += mine
        seeds = _planned(experiment)
        planned = None if planned is None or seeds is None else \
            {name: planned.get(name, set()) | seeds.get(name, set()) for name in {**planned, **seeds}}
    finished = {(r["method"], r["seed"]) for r in records if r["finished"]}
    records = [r for r in records if r["finished"] or (r["method"], r["seed"]) not in finished]
    return records, planned


def league(experiments: Union[Path, Sequence[Path]], baselines: Optional[Sequence[str]] = None,
           pairs: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """The league of ``experiments`` (one folder, or several populations of one league; see the module
    docstring): rows, paired comparisons (every method with each baseline, then ``pairs``), curves."""
    experiments = [experiments] if isinstance(experiments, Path) else list(experiments)
    records, planned = combine(experiments)
    # the config's order (seed-major grid: the variants' order), methods not started yet included
    methods = list(dict.fromkeys([*(planned or {}), *(r["method"] for r in records)]))
    name = ", ".join(str(e) for e in experiments)
    if not any(r["finished"] and r["gt"] is not None for r in records):
        running = sum(1 for r in records if r["status"] == "RUNNING")
        raise ResultsError(f"{name}: no finished scored trial yet ({len(records)} started, {running} "
                           "running); run the league again when some have finished")
    if baselines is None:
        baselines = [m for m in DEFAULT_BASELINES if m in methods]
    for option, names in (("--baseline", baselines), ("--pair", [m for pair in pairs for m in pair])):
        for method in names:
            if method not in methods:
                raise ResultsError(f"{option} {method!r}: not a method of {name} (methods: {', '.join(methods)})")
    rows = [_method_row(m, [r for r in records if r["method"] == m],
                        None if planned is None else planned.get(m, set())) for m in methods]
    comparisons = [paired(records, m, base) for base in baselines for m in methods if m != base]
    extra = [paired(records, m, base) for m, base in pairs]
    best = next((r["best_cell"] for r in records if r["best_cell"] is not None), None)
    return {"experiment": name, "trials": len(records),
            "finished": sum(1 for r in records if r["finished"]),
            "planned": sum(len(seeds) for seeds in planned.values()) if planned else None,
            "best_cell": best, "search_epochs": sorted({r["search_epochs"] for r in records if r["search_epochs"]}),
            "core_minutes": sum(r["core_minutes"] for r in records), "methods": methods,
            "rows": rows, "baselines": list(baselines), "paired": comparisons, "pairs": extra,
            "curves": curves(records, methods)}


def _figure(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _with_interval(figure: dict[str, Any], digits: int = 4) -> str:
    if math.isnan(figure["mean"]):
        return "n/a"
    if math.isnan(figure["low"]):
        return _figure(figure["mean"], digits)
    return f"{figure['mean']:.{digits}f} [{figure['low']:.{digits}f}, {figure['high']:.{digits}f}]"


def _seed_count(row: dict[str, Any]) -> str:
    text = str(len(row["seeds"]))
    waiting = [f"{row['running']} running"] if row["running"] else []
    if row["not_started"]:
        waiting.append(f"{row['not_started']} not started")
    if row["errors"]:
        waiting.append(f"{row['errors']} failed")
    return f"{text} ({', '.join(waiting)})" if waiting else text


def markdown(result: dict[str, Any], plot: Optional[str] = None) -> str:
    """The league as Markdown (for docs/search_quality.md)."""
    planned = f" of {result['planned']} planned" if result["planned"] is not None else ""
    best = f"; the benchmark's best cell scores {result['best_cell']:.4f}" if result["best_cell"] is not None else ""
    lines = [f"{result['finished']} finished trials{planned} in {result['experiment']} ({result['trials']} "
             f"started; {result['core_minutes'] / 60:.1f} core-hours of epochs so far){best}. Means over each "
             "method's finished seeds; [95 % t intervals over seeds].", "",
             "| method | seeds | ground-truth test acc | percentile | regret | skips | cells | gap | sharpness "
             "| core-min per search |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['method']} | {_seed_count(row)} | {_with_interval(row['gt'])} "
                     f"| {_with_interval(row['percentile'], 1)} | {_figure(row['regret'])} "
                     f"| {_figure(row['skips'], 1)} | {_figure(row['cells'], 1)} | {_figure(row['gap'], 3)} "
                     f"| {_figure(row['sharpness'], 3)} "
                     f"| {_figure(row['core_minutes'], 2)} |")
    for base in result["baselines"]:
        lines += ["", f"Paired with {base} (same seeds; method minus {base}, ground-truth test accuracy):", "",
                  "| method | paired seeds | mean difference [95 % t interval] | what it allows one to conclude |",
                  "|---|---|---|---|"]
        for comp in (c for c in result["paired"] if c["baseline"] == base):
            lines.append(f"| {comp['method']} | {comp['n']} | {_with_interval(comp, 4)} | {comp['conclusion']} |")
    if result.get("pairs"):
        lines += ["", "Paired comparisons asked for (same seeds; method minus baseline):", "",
                  "| method | baseline | paired seeds | mean difference [95 % t interval] | what it allows one to "
                  "conclude |", "|---|---|---|---|---|"]
        for comp in result["pairs"]:
            lines.append(f"| {comp['method']} | {comp['baseline']} | {comp['n']} | {_with_interval(comp, 4)} "
                         f"| {comp['conclusion']} |")
    if plot:
        lines += ["", f"![ground truth over epochs, mean and 95 % interval per method]({plot})"]
    return "\n".join(lines) + "\n"


PANEL_COLUMNS = 4
"""Panels per row of the plot: one panel per method, so 18 methods' bands never cover each other."""


def panel_grid(count: int) -> tuple[int, int]:
    """(rows, columns) of the plot's panels for ``count`` methods."""
    columns = max(1, min(PANEL_COLUMNS, count))
    return -(-count // columns), columns


def plot_curves(result: dict[str, Any], path: Path) -> Path:
    """Each method's ground truth over epochs (mean, band: 95 % t interval over its finished seeds) as a PNG:
    one panel per method, each with the baselines' means in grey (the first dashed, the others dotted) and
    the best cell, on shared axes, so a method reads against DARTS and random sampling at a glance."""
    from raynas.plots.style import new_figure, save_figure

    shown = [row for row in result["rows"] if result["curves"][row["method"]]]
    rows, columns = panel_grid(len(shown))
    fig = new_figure(3.1 * columns, 2.3 * rows + 0.6, constrained=True)
    axes = fig.subplots(rows, columns, sharex=True, sharey=True, squeeze=False).ravel()
    references = [(name, result["curves"][name]) for name in result["baselines"] if result["curves"].get(name)]
    for ax, row in zip(axes, shown):
        for rank, (name, points) in enumerate(references):
            if name != row["method"]:
                ax.plot([p["epoch"] for p in points], [p["mean"] for p in points], color="#777777", lw=1,
                        ls="--" if rank == 0 else ":", label=name)
        points = result["curves"][row["method"]]
        epochs = [p["epoch"] for p in points]
        ax.plot(epochs, [p["mean"] for p in points], color="#1f77b4", lw=1.6, label=row["method"])
        low = [p["low"] if not math.isnan(p["low"]) else p["mean"] for p in points]
        high = [p["high"] if not math.isnan(p["high"]) else p["mean"] for p in points]
        ax.fill_between(epochs, low, high, color="#1f77b4", alpha=0.2, lw=0)
        for epochs_searched in result["search_epochs"]:  # after it: the selection stages (DARTS-PT's, random's)
            ax.axvline(epochs_searched, color="#bbbbbb", ls=":", lw=0.8)
        if result["best_cell"] is not None:
            ax.axhline(result["best_cell"], color="#444444", ls="-", lw=0.6)
        seeds = len(row["seeds"])
        ax.set_title(f"{row['method']} ({seeds} seed{'s' if seeds != 1 else ''}): "
                     f"{_figure(row['gt']['mean'], 3)}", fontsize=9)
        ax.grid(alpha=0.3, lw=0.5)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    for ax in axes[::columns]:
        ax.set_ylabel("ground truth", fontsize=8)
    for index in range(max(0, len(shown) - columns), len(shown)):  # the lowest panel of each column
        axes[index].xaxis.set_tick_params(labelbottom=True)
        axes[index].set_xlabel("epoch", fontsize=8)
    names = ", ".join(f"{name} ({'dashed' if rank == 0 else 'dotted'})" for rank, (name, _) in enumerate(references))
    best = f"; solid grey line: the best cell ({result['best_cell']:.4f})" if result["best_cell"] is not None else ""
    fig.suptitle("the derived cell's ground-truth test accuracy over epochs: mean and 95 % interval over seeds "
                 f"(blue); grey: {names or 'no baseline'}{best}", fontsize=9)
    [written] = save_figure(fig, path.with_suffix(""), ["png"])
    return written


def main(argv: Optional[list[str]] = None) -> int:
    """Print the league of an experiment folder; ``--out`` writes it, ``--plot`` draws it, ``--json`` prints
    the figures after it. One-line error and exit 2 for a folder it cannot read."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path, nargs="+",
                        help="a scored search experiment folder (running or finished), or several populations "
                             "of one league (e.g. its seeds run in two sessions)")
    parser.add_argument("--baseline", action="append", default=None, metavar="METHOD",
                        help="compare every method with this one on paired seeds (repeatable; default: "
                             f"{' and '.join(DEFAULT_BASELINES)}, those the population has)")
    parser.add_argument("--pair", action="append", default=[], metavar="METHOD:BASELINE",
                        help="also compare METHOD with BASELINE on paired seeds (repeatable), e.g. a setting's "
                             "variant with the method's default")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    parser.add_argument("--plot", type=Path, default=None, help="draw the ground truth over epochs into this .png")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON after the table")
    args = parser.parse_args(argv)
    try:
        if args.plot is not None and args.plot.suffix.lower() != ".png":
            raise ResultsError(f"--plot {str(args.plot)!r}: name a .png file")
        pairs = [tuple(pair.split(":")) for pair in args.pair]
        for text, pair in zip(args.pair, pairs):
            if len(pair) != 2 or not all(pair):
                raise ResultsError(f"--pair {text!r}: write METHOD:BASELINE, two method names")
        result = league(args.experiment, args.baseline, pairs)
        if args.plot is not None:
            plot_curves(result, args.plot)
    except RaynasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    plot = None
    if args.plot is not None:  # the image as the Markdown file finds it
        plot = str(args.plot.resolve().relative_to(args.out.resolve().parent)) if args.out and \
            args.plot.resolve().is_relative_to(args.out.resolve().parent) else str(args.plot)
    table = markdown(result, plot)
    print(table, end="")
    if args.out:
        args.out.write_text(table)
    if args.json:
        print(json.dumps(strict_json(result), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
