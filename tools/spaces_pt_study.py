"""DARTS vs DARTS-PT on the RobustDARTS spaces S1-S4 and the DARTS space, by their cells trained from scratch.

These spaces have no ground-truth table, so a search's derived cell is scored by training it from scratch
under a fixed protocol, with several seeds. Reads search populations whose trials vary the space and the
method as a grid of ``variant`` x ``search.seed`` (``search_configs/spaces_pt.yaml``), each with the ``raynas
train`` run of its cells (docs/search_quality.md, "DARTS and DARTS-PT on S1-S4 and the DARTS space"). The
study runs as one population or, seed by seed, as several *parts*, each a population and its training run:

    raynas search spaces_pt --set name=spaces_pt-s0 --set 'tune.grid.search.seed=[0]'
    raynas train raynas_results/spaces_pt-s0 --top 10 --seeds 0-2 --config benchmarks/spaces_pt/protocol.yaml \\
        --name protocol
    python tools/spaces_pt_study.py raynas_results/spaces_pt-s0 [raynas_results/spaces_pt-s0/evaluations/protocol] \\
        benchmarks/spaces_pt/s1 ... [--out table.md] [--json]

Each part is a search folder, live or a committed snapshot (``tools/spaces_pt_snapshot.py`` writes one:
``config.yaml``, ``tables/{trials,epochs}.parquet`` and ``evaluations/<run>/`` with its ``evaluation.yaml``
and ``tables/evaluations.parquet``), optionally followed by its training run folder; without one, the only run
under its ``evaluations/``. A (space, method, search seed) finished in two parts is an error (the same search
counted twice); one finished in a part and only started in another counts once, finished.

A trial's space is its config's ``space``, its method ``darts-pt`` when its selection is ``perturbation``,
else its ``method`` (``darts``). A trial's cell is its final genotype; the cell's test accuracy is the mean
of its finished trainings (status TERMINATED, every planned epoch) over their seeds in its part's training
run. Trainings are matched to the trials of their part by the genotype, so a cell that two trials of a part
derived (``raynas train`` trains it once) counts for both; a part's trainings never count for another part.

Per space and method, one row over all parts: the searches counted (finished, with a trained cell; and how
many are running, failed, not started, waiting for their cell's training, or whose cell is not in the
training run), the mean over search seeds of the cell's test accuracy with a 95 % t interval over search
seeds, the ``skip_connect`` ops of the normal cell (mean), the cell's parameters under the protocol (mean),
the distinct cells, the training seeds per cell, the median over cells of the training seeds' standard
deviation (the protocol's own noise), and the core-minutes per search (CPUs times the wall seconds of its
epochs).

Then, per space, DARTS-PT minus DARTS paired on the search seeds both have: the mean difference with its 95 %
paired t interval, and what it allows one to conclude (``tools/league.py``'s statistics and sentences).

Works on populations still running and on training runs still running (the counts say how many seeds).
Bad input (a folder that is not a search experiment or not an evaluation run, a training run on other data
than its search's, one none of whose cells is a trial's, parts trained under different protocols, a search
finished in two parts, nothing finished yet) is one line on stderr and exit code 2. Imports neither torch
nor Ray.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raynas.errors import GenotypeError, RaynasError, ResultsError  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from league import _figure, _with_interval, conclusion, mean_interval  # noqa: E402  (a sibling tool)
from ranking_study import strict_json  # noqa: E402  (a sibling tool: NaN-free JSON)

#: the compared methods, baseline first
BASELINE, METHOD = "darts", "darts-pt"
#: the data settings that fix the protocol's split: a training run must share them with the search
SPLIT_KEYS = ("name", "noise_std", "test_fraction", "seed")
#: the tables the study reads of a search folder and of its training run (all a part's snapshot holds)
SEARCH_TABLES, RUN_TABLES = ("trials", "epochs"), ("evaluations",)

#: the search seeds planned per (space, method)
Planned = dict[tuple[str, str], set[int]]


def method_label(method: str, selection: str) -> str:
    """A search's method as the study names it: ``darts-pt`` for perturbation selection, else ``method``."""
    return METHOD if selection == "perturbation" else method


def cell_key(genotype: Optional[str]) -> Optional[str]:
    """The genotype in its canonical text (the trials and evaluations tables both hold that text; parsing it
    again makes the match independent of spacing)."""
    from raynas.spaces.genotype import parse_genotype

    if not genotype:
        return None
    try:
        return str(parse_genotype(genotype))
    except GenotypeError:
        return genotype


def _finite(value: Any) -> Optional[float]:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def load_searches(experiment: Path) -> list[dict[str, Any]]:
    """Every trial of the search ``experiment``: id, space, method, seed, status, whether it finished, its
    final cell, its normal cell's ``skip_connect`` count and its core-minutes; in trial order."""
    from raynas.results import load_table

    trials = sorted(load_table(experiment, "trials").to_pylist(), key=lambda row: row["trial_id"])
    if not trials:
        raise ResultsError(f"{experiment}: no trials yet; is it a search experiment folder?")
    seconds: dict[str, float] = {}
    for row in load_table(experiment, "epochs").to_pylist():
        if (time_s := _finite(row.get("epoch_time_s"))) is not None:
            seconds[row["trial_id"]] = seconds.get(row["trial_id"], 0.0) + time_s
    records = []
    for trial in trials:
        config = resolved(json.loads(trial["config_json"] or "{}"))
        finished = (trial["status"] == "TERMINATED" and trial["epochs_planned"] is not None
                    and trial["epochs_done"] == trial["epochs_planned"])
        records.append({
            "trial_id": trial["trial_id"], "space": config.get("space") or trial["space"],
            "method": method_label(config.get("method") or trial["method"],
                                   (config.get("selection") or {}).get("name", "magnitude")),
            "seed": trial["seed"], "status": trial["status"], "finished": finished,
            "cell": cell_key(trial["genotype"]) if finished else None, "skips": trial["num_skip"],
            "core_minutes": float((config.get("resources") or {}).get("cpus_per_trial") or 1.0)
                            * seconds.get(trial["trial_id"], 0.0) / 60.0})
    return records


def resolved(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's settings with its variant applied: the trials table stores the population's config with the
    trial's grid values (``variant: s4-darts-pt``), and the variant's settings (its space, its selection) are
    applied when a config is built from it. The stored settings as they are when they no longer build."""
    from raynas.config import config_from_dict, config_to_dict

    try:
        return config_to_dict(config_from_dict(config))
    except (RaynasError, TypeError, ValueError):
        return config


def planned_searches(experiment: Path) -> Optional[Planned]:
    """The search seeds per (space, method) that the experiment's config plans (None when its config cannot be
    read)."""
    from raynas.config import expand_trials, load_config

    try:
        trials = expand_trials(load_config(experiment / "config.yaml"))
    except RaynasError:
        return None
    planned: dict[tuple[str, str], set[int]] = {}
    for trial in trials:
        key = (trial.config.space, method_label(trial.config.method, trial.config.selection.name))
        planned.setdefault(key, set()).add(trial.config.search.seed)
    return planned


def load_trainings(run: Path, experiment: Path) -> tuple[Any, dict[str, dict[str, Any]], int]:
    """The training run ``run`` of the search ``experiment``: its plan, its cells (canonical genotype ->
    ``{"accs": {seed: test accuracy}, "params"}``, finished trainings only) and how many trainings finished.
    A :class:`ResultsError` when it trained on other data than the search's: its test split would not be the
    images the searches never saw."""
    from raynas.config import load_config
    from raynas.evaluation.plan import read_plan
    from raynas.results import load_table

    plan = read_plan(run)  # a one-line ConfigError for a folder that is not an evaluation run
    searched = load_config(experiment / "config.yaml").data
    differ = [key for key in SPLIT_KEYS if getattr(plan.train.data, key) != getattr(searched, key)]
    if differ:
        shown = ", ".join(f"data.{key} {getattr(plan.train.data, key)!r} (the search: {getattr(searched, key)!r})"
                          for key in differ)
        raise ResultsError(f"{run} trained on other data than {experiment}: {shown}; its test split must be the "
                           "held-out half the searches never saw (train with benchmarks/spaces_pt/protocol.yaml)")
    cells: dict[str, dict[str, Any]] = {cell_key(arch.genotype): {"accs": {}, "params": None}
                                        for arch in plan.architectures}
    done = 0
    for row in load_table(run, "evaluations").to_pylist():
        acc = _finite(row["test_acc"])
        if row["status"] != "TERMINATED" or acc is None or row["epochs_done"] != row["epochs"]:
            continue
        cell = cells.setdefault(cell_key(row["genotype"]), {"accs": {}, "params": None})
        cell["accs"][row["seed"]] = acc
        cell["params"] = row["params"]
        done += 1
    return plan, cells, done


def _score(record: dict[str, Any], cells: dict[str, dict[str, Any]]) -> Optional[dict[str, Any]]:
    """A finished search's cell as trained: mean test accuracy over its seeds, their spread, its parameters."""
    cell = cells.get(record["cell"]) if record["finished"] else None
    if not cell or not cell["accs"]:
        return None
    accs = list(cell["accs"].values())
    return {"acc": sum(accs) / len(accs), "seeds": len(accs),
            "seed_sd": statistics.stdev(accs) if len(accs) > 1 else None, "params": cell["params"]}


def parts_of(folders: Sequence[Path]) -> list[tuple[Path, Path]]:
    """The parts named by ``folders`` (the command line's order): each search folder with the training run
    folder that follows it, or, when none follows, the only run under its ``evaluations/``."""
    from raynas.results import EVALUATION_PLAN, evaluation_runs

    parts: list[tuple[Path, Optional[Path]]] = []
    for folder in folders:
        if not folder.is_dir():
            raise ResultsError(f"{folder}: no such folder (name a search folder, each optionally followed by its "
                               "training run)")
        if (folder / EVALUATION_PLAN).is_file():
            if not parts or parts[-1][1] is not None:
                raise ResultsError(f"{folder} is a training run but follows no search folder: name each part's "
                                   "search folder before its run")
            parts[-1] = (parts[-1][0], folder)
        elif not (folder / "config.yaml").is_file():
            raise ResultsError(f"{folder} is not a search folder (no config.yaml in it): name a population's "
                               "folder or a snapshot of one, each optionally followed by its training run")
        elif any(folder.resolve() == experiment.resolve() for experiment, _ in parts):
            raise ResultsError(f"{folder} is named twice: give each part of the study once")
        else:
            parts.append((folder, None))
    resolved_parts = []
    for experiment, run in parts:
        if run is None:
            runs = evaluation_runs(experiment)
            if len(runs) != 1:
                found = f"{len(runs)}: {', '.join(r.name for r in runs)}" if runs else "none"
                raise ResultsError(f"{experiment}: name its training run after it (training runs under "
                                   f"{experiment / 'evaluations'}: {found})")
            run = runs[0]
        resolved_parts.append((experiment, run))
    return resolved_parts


def load_part(experiment: Path, run: Path) -> dict[str, Any]:
    """One part of the study: the searches of ``experiment`` (each with its cell's ``score`` in ``run`` and
    whether ``run`` plans its cell), ``run``'s plan, the seeds ``experiment`` plans, the trainings finished and
    the cells more than one finished search derived. A :class:`ResultsError` when none of ``run``'s cells is
    the final cell of one of ``experiment``'s finished searches (the run of another search)."""
    records = load_searches(experiment)
    plan, cells, trainings_done = load_trainings(run, experiment)
    finished_cells = [r["cell"] for r in records if r["finished"]]
    if not set(finished_cells) & set(cells):
        raise ResultsError(f"{run}: none of its {len(plan.architectures)} cells is the final cell of a finished "
                           f"search of {experiment}; pass the run that `raynas train {experiment} --top 100` wrote")
    for record in records:
        record.update(part=str(experiment), score=_score(record, cells), in_run=record["cell"] in cells)
    return {"experiment": experiment, "run": run, "records": records, "plan": plan,
            "planned": planned_searches(experiment), "trainings_done": trainings_done,
            "shared_cells": sum(1 for cell in set(finished_cells) if cell in cells and finished_cells.count(cell) > 1)}


#: training settings each trial sets for itself or that do not change what it learns
_PER_TRIAL = ("space", "genotype", "seed", "device", "threads")


def _protocol(plan: Any) -> dict[str, Any]:
    """The training settings of a run that its cells' accuracies depend on, flat (``data.noise_std``)."""
    from raynas.config import config_to_dict

    def flat(prefix: str, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return {k: v for key, item in value.items() for k, v in flat(f"{prefix}{key}.", item).items()}
        return {prefix[:-1]: value}

    settings = flat("", config_to_dict(plan.train))
    return {key: value for key, value in settings.items() if key not in _PER_TRIAL}


def combine(parts: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], Optional[Planned]]:
    """The searches of all ``parts`` (:func:`load_part`) and the seeds they plan per (space, method). A
    (space, method, seed) that one part finished and another only started counts once, finished. A
    :class:`ResultsError` when two parts finished the same one, or trained under different protocols."""
    where: dict[tuple[str, str, Any], str] = {}
    for part in parts:
        for record in part["records"]:
            key = (record["space"], record["method"], record["seed"])
            if record["finished"] and key in where:
                raise ResultsError(f"{key[0]} {key[1]} seed {key[2]} finished in both {where[key]} and "
                                   f"{record['part']}: give each part once, and search each seed of a variant in "
                                   "one part only")
            if record["finished"]:
                where[key] = record["part"]
    first = parts[0]
    for part in parts[1:]:
        mine, theirs = _protocol(part["plan"]), _protocol(first["plan"])
        differ = [key for key in sorted({*mine, *theirs}) if mine.get(key) != theirs.get(key)]
        if differ:
            shown = ", ".join(f"{key} {mine.get(key)!r} ({first['run']}: {theirs.get(key)!r})" for key in differ)
            raise ResultsError(f"{part['run']} trained under another protocol than {first['run']}: {shown}; train "
                               "every part with benchmarks/spaces_pt/protocol.yaml")
    records = [r for part in parts for r in part["records"]
               if r["finished"] or (r["space"], r["method"], r["seed"]) not in where]
    planned: Optional[Planned] = {}
    for part in parts:
        if planned is None or part["planned"] is None:
            planned = None
            continue
        for key, seeds in part["planned"].items():
            planned[key] = planned.get(key, set()) | seeds
    return records, planned


def _row(space: str, method: str, records: list[dict[str, Any]], planned: Optional[set[int]]) -> dict[str, Any]:
    counted = [(r, r["score"]) for r in records if r["score"] is not None]
    finished = [r for r in records if r["finished"]]
    seeds = [s["seeds"] for _, s in counted]
    spreads = [s["seed_sd"] for _, s in counted if s["seed_sd"] is not None]
    return {
        "space": space, "method": method, "seeds": sorted(r["seed"] for r, _ in counted),
        "running": sum(1 for r in records if r["status"] == "RUNNING"),
        "errors": sum(1 for r in records if r["status"] == "ERROR"),
        "not_started": None if planned is None else len(planned - {r["seed"] for r in records}),
        "awaiting": sum(1 for r in finished if r["in_run"] and r["score"] is None),
        "untrained": sum(1 for r in finished if not r["in_run"]),
        "acc": mean_interval([s["acc"] for _, s in counted], (0.0, 1.0)),
        "skips": _mean([r["skips"] for r, _ in counted]),
        "params": _mean([s["params"] for _, s in counted]),
        "cells": len({r["cell"] for r, _ in counted}),
        "training_seeds": [min(seeds), max(seeds)] if seeds else None,
        "seed_sd": statistics.median(spreads) if spreads else math.nan,
        "core_minutes": _mean([r["core_minutes"] for r, _ in counted]),
    }


def _mean(values: Sequence[Optional[float]]) -> float:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else math.nan


def paired(records: list[dict[str, Any]], space: str) -> dict[str, Any]:
    """DARTS-PT minus DARTS in ``space`` on the search seeds both have a trained cell for (``records`` as
    :func:`combine` returns them): mean difference, its 95 % paired t interval, the seeds and the conclusion."""
    def accs(method: str) -> dict[Any, float]:
        return {r["seed"]: r["score"]["acc"] for r in records if r["space"] == space and r["method"] == method
                and r["score"] is not None}

    mine, theirs = accs(METHOD), accs(BASELINE)
    seeds = sorted(set(mine) & set(theirs))
    diff = mean_interval([mine[s] - theirs[s] for s in seeds])
    return {"space": space, "method": METHOD, "baseline": BASELINE, "seeds": seeds, **diff,
            "conclusion": conclusion(METHOD, BASELINE, diff)}


def study(*folders: Path) -> dict[str, Any]:
    """The study of the parts ``folders`` names (each search folder, optionally followed by its training run;
    module docstring): rows per space and method, paired comparisons per space, and what was read."""
    parts = [load_part(experiment, run) for experiment, run in parts_of(folders)]
    if not parts:
        raise ResultsError("no part given: name a search folder, optionally followed by its training run")
    records, planned = combine(parts)
    trainings_done = sum(part["trainings_done"] for part in parts)
    runs = ", ".join(str(part["run"]) for part in parts)
    if not any(r["score"] is not None for r in records):
        raise ResultsError(f"{runs}: no cell of a finished search has a finished training yet ({trainings_done} "
                           "trainings finished); run this again when some have")
    keys = list(dict.fromkeys([*(planned or {}), *((r["space"], r["method"]) for r in records)]))
    spaces = list(dict.fromkeys(space for space, _ in keys))
    order = {BASELINE: 0, METHOD: 1}
    keys.sort(key=lambda key: (spaces.index(key[0]), order.get(key[1], 2), key[1]))
    rows = [_row(space, method, [r for r in records if (r["space"], r["method"]) == (space, method)],
                 None if planned is None else planned.get((space, method), set())) for space, method in keys]
    comparisons = [paired(records, space) for space in spaces if {(space, BASELINE), (space, METHOD)} <= set(keys)]
    train = parts[0]["plan"].train
    return {"experiment": ", ".join(str(part["experiment"]) for part in parts), "run": runs,
            "parts": [{"experiment": str(part["experiment"]), "run": str(part["run"]),
                       "trials": len(part["records"]), "finished": sum(1 for r in part["records"] if r["finished"]),
                       "trainings_planned": len(part["plan"].architectures) * len(part["plan"].seeds),
                       "trainings_done": part["trainings_done"]} for part in parts],
            "trials": len(records), "finished": sum(1 for r in records if r["finished"]),
            "planned": sum(map(len, planned.values())) if planned else None,
            "protocol": {"channels": train.channels, "layers": train.layers, "epochs": train.epochs,
                         "seeds": sorted({seed for part in parts for seed in part["plan"].seeds})},
            "cells_planned": sum(len(part["plan"].architectures) for part in parts),
            "trainings_planned": sum(len(p["plan"].architectures) * len(p["plan"].seeds) for p in parts),
            "trainings_done": trainings_done, "shared_cells": sum(part["shared_cells"] for part in parts),
            "core_minutes": sum(r["core_minutes"] for r in records), "rows": rows, "paired": comparisons}


def _searches(row: dict[str, Any]) -> str:
    waiting = [f"{row['running']} running"] if row["running"] else []
    for key, words in (("not_started", "not started"), ("errors", "failed"), ("awaiting", "awaiting training"),
                       ("untrained", "cell not in the run")):
        if row[key]:
            waiting.append(f"{row[key]} {words}")
    return f"{len(row['seeds'])}" + (f" ({', '.join(waiting)})" if waiting else "")


def _seed_range(row: dict[str, Any]) -> str:
    if not row["training_seeds"]:
        return "n/a"
    low, high = row["training_seeds"]
    return str(low) if low == high else f"{low}-{high}"


def markdown(result: dict[str, Any]) -> str:
    """The study as Markdown (for docs/search_quality.md)."""
    planned = f" of {result['planned']} planned" if result["planned"] is not None else ""
    p = result["protocol"]
    shared = (f"; {result['shared_cells']} cell{'s' if result['shared_cells'] != 1 else ''} derived by more than one "
              "search, trained once" if result["shared_cells"] else "")
    parts = result["parts"]
    searched, trained = ((result["experiment"], result["run"]) if len(parts) == 1 else
                         (f"{len(parts)} parts ({result['experiment']})", "each part's training run"))
    lines = [f"{result['finished']} finished searches{planned} in {searched} ({result['trials']} started; "
             f"{result['core_minutes'] / 60:.1f} core-hours of epochs so far); their cells trained in {trained} "
             f"(C={p['channels']}, {p['layers']} cells, {p['epochs']} epochs, seeds "
             f"{', '.join(map(str, p['seeds']))}): {result['trainings_done']} of {result['trainings_planned']} "
             f"trainings of {result['cells_planned']} cells finished{shared}. A cell's test accuracy is the mean "
             "over its training seeds; the rows give means over search seeds, [95 % t intervals over search seeds].",
             "", "| space | method | search seeds | test acc | skips | params | cells | training seeds | seed sd "
             "| core-min per search |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['space']} | {row['method']} | {_searches(row)} | {_with_interval(row['acc'])} "
                     f"| {_figure(row['skips'], 1)} | {_figure(row['params'], 0)} | {row['cells']} "
                     f"| {_seed_range(row)} | {_figure(row['seed_sd'])} | {_figure(row['core_minutes'], 2)} |")
    if result["paired"]:
        lines += ["", f"{METHOD} minus {BASELINE}, paired on the search seeds (test accuracy of the derived cells):",
                  "", "| space | paired seeds | mean difference [95 % t interval] | what it allows one to conclude |",
                  "|---|---|---|---|"]
        for comp in result["paired"]:
            lines.append(f"| {comp['space']} | {comp['n']} | {_with_interval(comp)} | {comp['conclusion']} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    """Print the study of its parts (search populations and their training runs); ``--out`` writes it,
    ``--json`` prints the figures after it. One-line error and exit 2 for folders it cannot read."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", metavar="PART",
                        help="a part of the study: a search population folder (running or finished; live or a "
                             "snapshot that tools/spaces_pt_snapshot.py wrote), optionally followed by the raynas "
                             "train run of its cells (default: the only run under its evaluations/); repeatable")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON after the table")
    args = parser.parse_args(argv)
    try:
        if args.out is not None and not args.out.parent.is_dir():
            raise ResultsError(f"--out {str(args.out)!r}: no folder {str(args.out.parent)!r} to write it into")
        result = study(*args.folders)
    except RaynasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = markdown(result)
    print(table, end="")
    if args.out:
        args.out.write_text(table)
    if args.json:
        print(json.dumps(strict_json(result), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
