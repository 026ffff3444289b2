"""Which in-search metric predicts architecture quality: Kendall tau of each candidate against the ground truth.

Reads a finished NB201 search experiment on the benchmark's data (so every epoch has its derived cell's
``gt_test_acc``; docs/benchmark.md) whose searches measured the ranking metrics (``search.rank_metrics``;
docs/ranking.md), such as the one ``search_configs/ranking_study.yaml`` runs:

    raynas search search_configs/ranking_study.yaml
    python tools/ranking_study.py raynas_results/ranking-study [--fractions 0.25,0.5] [--out table.md] [--json]

For every candidate metric (``val_acc``/``val_loss``: the supernet; ``derived_val_acc``/``derived_val_loss``:
the derived cell with inherited weights; and the extra ones of :mod:`raynas.ranking` the experiment measured)
it prints one row of a Markdown table:

- **final**: Kendall tau-b, over the trials, between the metric at each trial's last epoch and the ground
  truth of the cell the trial returns (``final_gt_test_acc``);
- for each fraction q of ``search.epochs`` (default 25 % and 50 %: what ASHA and PBT decide on): the epoch
  ``e = round(q * search.epochs)``, or the last epoch before it where the metric was measured
  (``search.rank_metrics_every``); tau between the metric at ``e`` and the ground truth of the cell derived
  at ``e`` (``gt_test_acc`` of that epoch), and tau between the metric at ``e`` and ``final_gt_test_acc``;
- each tau with a 95 % bootstrap interval: the trials resampled with replacement (``--bootstrap`` draws,
  seeded by ``--seed``), the 2.5th and 97.5th percentiles of the resampled taus (draws where either side is
  constant are left out);
- the median seconds of one evaluation of the metric (its time column: ``val_time_s``,
  ``derived_val_time_s``, ``derived_bn_time_s``, ...).

Losses are negated, so that a positive tau always means "ranks like the ground truth". Only finished trials
count (status TERMINATED, every planned epoch reported). Imports neither torch nor Ray.
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

from raynas.errors import RaynasError, ResultsError  # noqa: E402
from raynas.ranking import METRIC_COST_COLUMN, RANK_METRIC_COLUMNS  # noqa: E402

#: the candidates, in the table's order; a row per candidate the experiment measured
CANDIDATES = ("val_acc", "val_loss", "derived_val_acc", "derived_val_loss", *RANK_METRIC_COLUMNS)
#: one line per candidate: what it is (the table's second column)
DESCRIPTIONS = {
    "val_acc": "supernet, architecture split",
    "val_loss": "supernet, architecture split (negated)",
    "derived_val_acc": "derived cell, inherited weights",
    "derived_val_loss": "derived cell, inherited weights (negated)",
    "derived_bn_val_acc": "derived cell, BatchNorm statistics re-estimated",
    "derived_bn_val_loss": "derived cell, BatchNorm statistics re-estimated (negated)",
    "derived_finetune_val_acc": "derived cell, copy fine-tuned",
    "derived_finetune_val_loss": "derived cell, copy fine-tuned (negated)",
    "derived_neighborhood_val_acc": "derived cell and its neighbours, mean",
    "derived_neighborhood_val_loss": "derived cell and its neighbours, mean (negated)",
    "derived_params": "parameters of the derived network",
}


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of paired values (ties in either corrected for); NaN when either side is constant or
    there are fewer than two pairs."""
    import numpy as np

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) < 2:
        return math.nan
    upper = np.triu_indices(len(a), k=1)
    da = np.sign(a[:, None] - a[None, :])[upper]
    db = np.sign(b[:, None] - b[None, :])[upper]
    untied_a, untied_b = np.count_nonzero(da), np.count_nonzero(db)
    if untied_a == 0 or untied_b == 0:
        return math.nan
    return float(np.sum(da * db) / math.sqrt(untied_a * untied_b))


def tau_with_interval(x: Sequence[float], y: Sequence[float], *, draws: int, seed: int) -> dict[str, Any]:
    """``{"tau", "low", "high", "n"}``: tau-b of the pairs and its 95 % bootstrap interval over them."""
    import numpy as np

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    tau = kendall_tau(a, b)
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(draws if len(a) >= 2 else 0):
        pick = rng.integers(0, len(a), len(a))
        value = kendall_tau(a[pick], b[pick])
        if not math.isnan(value):
            taus.append(value)
    low, high = (float(v) for v in np.percentile(taus, [2.5, 97.5])) if taus else (math.nan, math.nan)
    return {"tau": tau, "low": low, "high": high, "n": int(len(a))}


def _finite(value: Any) -> Optional[float]:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def load_trials(experiment: Path) -> list[dict[str, Any]]:
    """The finished trials of ``experiment``: ``{"trial_id", "search_epochs", "final_gt", "epochs": {epoch:
    row}}``; a :class:`ResultsError` when the experiment has no ground truth or no finished trial."""
    from raynas.results import load_table

    trials = load_table(experiment, "trials").to_pylist()
    rows = load_table(experiment, "epochs").to_pylist()
    by_trial: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        by_trial.setdefault(row["trial_id"], {})[int(row["epoch"])] = row
    out = []
    for trial in trials:
        epochs = by_trial.get(trial["trial_id"], {})
        finished = (trial["status"] == "TERMINATED" and trial["epochs_planned"] is not None
                    and trial["epochs_done"] == trial["epochs_planned"] and epochs)
        if not finished:
            continue
        config = json.loads(trial["config_json"] or "{}")
        out.append({"trial_id": trial["trial_id"], "search_epochs": int(config["search"]["epochs"]),
                    "final_gt": _finite(trial["final_gt_test_acc"]), "final_epoch": max(epochs), "epochs": epochs})
    if not out:
        raise ResultsError(f"{experiment} has no finished trial (status TERMINATED with every planned epoch)")
    if all(t["final_gt"] is None for t in out):
        raise ResultsError(f"{experiment} has no ground truth (final_gt_test_acc is null): run the study on the "
                           "benchmark's data, an NB201 search on digits with noise_std 1.0 (docs/ranking.md)")
    return out


def _value(row: Optional[dict[str, Any]], metric: str) -> Optional[float]:
    value = _finite(row.get(metric)) if row else None
    return -value if value is not None and metric.endswith("loss") else value


def measured_at(trial: dict[str, Any], metric: str, epoch: int) -> Optional[int]:
    """The last epoch at or before ``epoch`` at which ``trial`` measured ``metric`` (None: none)."""
    for e in range(min(epoch, trial["final_epoch"]), 0, -1):
        if _value(trial["epochs"].get(e), metric) is not None:
            return e
    return None


def metric_row(trials: list[dict[str, Any]], metric: str, fractions: Sequence[float], *, draws: int,
               seed: int) -> dict[str, Any]:
    """The figures of one candidate metric (see the module docstring)."""
    final = [(_value(t["epochs"][t["final_epoch"]], metric), t["final_gt"]) for t in trials]
    pairs = [(m, g) for m, g in final if m is not None and g is not None]
    row: dict[str, Any] = {"metric": metric, "description": DESCRIPTIONS.get(metric, ""),
                           "final": tau_with_interval(*zip(*pairs), draws=draws, seed=seed) if pairs else None,
                           "at": []}
    for q in fractions:
        now, later, epochs = [], [], set()
        for t in trials:
            target = max(1, round(q * t["search_epochs"]))
            e = measured_at(t, metric, target)
            if e is None:
                continue
            epochs.add(e)
            value, gt = _value(t["epochs"][e], metric), _finite(t["epochs"][e].get("gt_test_acc"))
            if gt is not None:
                now.append((value, gt))
            if t["final_gt"] is not None:
                later.append((value, t["final_gt"]))
        row["at"].append({
            "fraction": q, "epochs": sorted(epochs),
            "vs_gt_then": tau_with_interval(*zip(*now), draws=draws, seed=seed) if now else None,
            "vs_final_gt": tau_with_interval(*zip(*later), draws=draws, seed=seed) if later else None,
        })
    times = [v for t in trials for r in t["epochs"].values()
             if (v := _finite(r.get(METRIC_COST_COLUMN.get(metric, "")))) is not None]
    row["seconds"] = statistics.median(times) if times else None
    return row


def study(experiment: Path, fractions: Sequence[float], *, draws: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Every candidate the experiment measured, with its figures, and what the study read."""
    trials = load_trials(experiment)
    measured = [m for m in CANDIDATES
                if any(_value(r, m) is not None for t in trials for r in t["epochs"].values())]
    return {"experiment": str(experiment), "trials": len(trials), "fractions": list(fractions), "bootstrap": draws,
            "search_epochs": sorted({t["search_epochs"] for t in trials}),
            "rows": [metric_row(trials, m, fractions, draws=draws, seed=seed) for m in measured]}


def _tau(figure: Optional[dict[str, Any]]) -> str:
    if figure is None or math.isnan(figure["tau"]):
        return "n/a"
    interval = "" if math.isnan(figure["low"]) else f" [{figure['low']:.2f}, {figure['high']:.2f}]"
    return f"{figure['tau']:.2f}{interval}"


def _epochs(at: dict[str, Any]) -> str:
    return ",".join(map(str, at["epochs"])) or "-"


def markdown(result: dict[str, Any]) -> str:
    """The study as a Markdown table (for docs/ranking.md), with a line saying what it was computed on."""
    head = ["metric", "what", "final cell: tau vs its gt"]
    for q in result["fractions"]:
        pct = f"{q * 100:g} %"
        head += [f"{pct}: tau vs gt then", f"{pct}: tau vs final gt"]
    head += ["s per evaluation"]
    lines = [f"{result['trials']} finished trials of {result['experiment']} (search.epochs "
             f"{', '.join(map(str, result['search_epochs']))}); Kendall tau-b with 95 % bootstrap intervals over "
             f"trials ({result['bootstrap']} draws); losses negated.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in result["rows"]:
        cells = [f"`{row['metric']}`", row["description"], _tau(row["final"])]
        for at in row["at"]:
            cells += [f"{_tau(at['vs_gt_then'])} (epoch {_epochs(at)})", _tau(at["vs_final_gt"])]
        cells.append("n/a" if row["seconds"] is None else f"{row['seconds']:.3g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def strict_json(value: Any) -> Any:
    """``value`` with NaNs as None, in nested dicts and lists too: strict JSON (tools/league.py uses it)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strict_json(v) for v in value]
    return value


def _fractions(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or not all(0.0 < v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"--fractions {text!r}: give comma-separated numbers in (0, 1], e.g. "
                                         "0.25,0.5")
    return values


def main(argv: Optional[list[str]] = None) -> int:
    """Print the study of an experiment folder; ``--out`` also writes the table, ``--json`` prints the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path, help="a finished search experiment folder")
    parser.add_argument("--fractions", type=_fractions, default=[0.25, 0.5],
                        help="intermediate epochs as fractions of search.epochs (default: 0.25,0.5)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap draws per interval (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: 0)")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown table here")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON after the table")
    args = parser.parse_args(argv)
    if not 1 <= args.bootstrap <= 1_000_000:
        parser.error(f"--bootstrap {args.bootstrap}: must be between 1 and 1,000,000")
    try:
        result = study(args.experiment, args.fractions, draws=args.bootstrap, seed=args.seed)
    except RaynasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = markdown(result)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    if args.json:
        print(json.dumps(strict_json(result), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
