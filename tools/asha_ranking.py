"""What an ASHA population kept, by the ground truth: one row per experiment ranked by a different metric.

Reads finished NB201 search experiments on the benchmark's data (every epoch scored, docs/benchmark.md) that
ran the same drawn trials under ASHA with different ``tune.metric`` values, such as
``search_configs/asha_ranking.yaml`` runs:

    python tools/asha_ranking.py raynas_results/asha-derived raynas_results/asha-bn [--out table.md] [--json]

For each experiment, one row of a Markdown table:

- the metric ASHA ranked by, the trials, and how many it kept to the last epoch (``search.epochs``);
- **kept**: the mean ground truth (``final_gt_test_acc``) of the cells of the kept trials, with a 95 %
  bootstrap interval over those trials (``--bootstrap`` draws, seeded by ``--seed``) and their mean percentile;
- **winner**: the ground truth of the cell of the trial the population ranks first (the leaderboard's top);
- **best kept**: the best ground truth among the kept trials, and the best that any trial's last cell reached
  (what a perfect metric could have kept, within the cells these searches derived).

Imports neither torch nor Ray.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raynas.errors import RaynasError, ResultsError  # noqa: E402


def mean_with_interval(values: Sequence[float], *, draws: int, seed: int) -> dict[str, float]:
    """The mean of ``values`` and its 95 % bootstrap interval (percentiles 2.5 and 97.5 of resampled means)."""
    import numpy as np

    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return {"mean": math.nan, "low": math.nan, "high": math.nan}
    rng = np.random.default_rng(seed)
    means = array[rng.integers(0, array.size, size=(draws, array.size))].mean(axis=1)
    low, high = (float(v) for v in np.percentile(means, [2.5, 97.5]))
    return {"mean": float(array.mean()), "low": low, "high": high}


def experiment_row(experiment: Path, *, draws: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The row of one finished scored ASHA experiment (see the module docstring)."""
    from raynas.results import leaderboard, load_table

    trials = load_table(experiment, "trials").to_pylist()
    if not trials:
        raise ResultsError(f"{experiment}: no trials table; is it a finished experiment?")
    if any(row.get("final_gt_test_acc") is None for row in trials):
        raise ResultsError(f"{experiment}: trials without final_gt_test_acc; score the searches "
                           "(benchmark.score: on, the benchmark's data)")
    planned = max(int(row["epochs_planned"]) for row in trials)
    kept = [row for row in trials if int(row["epochs_done"]) >= planned]
    top = leaderboard(experiment).to_pylist()[0]
    gt = {row["trial_id"]: float(row["final_gt_test_acc"]) for row in trials}
    return {"experiment": str(experiment), "metric": trials[0]["metric"], "trials": len(trials),
            "epochs": planned, "kept": len(kept),
            "kept_gt": mean_with_interval([gt[row["trial_id"]] for row in kept], draws=draws, seed=seed),
            "kept_percentile": (sum(float(row["final_gt_percentile"]) for row in kept) / len(kept)
                                if kept else math.nan),
            "winner_trial": top["trial_id"], "winner_gt": gt[top["trial_id"]],
            "best_kept_gt": max((gt[row["trial_id"]] for row in kept), default=math.nan),
            "best_any_gt": max(gt.values())}


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    """The rows as a Markdown table, with the command that made them."""
    lines = [f"`{command}`", "",
             "| ranked by | trials | kept to the end | kept cells' ground truth (95 % interval) | kept cells' "
             "percentile | winner's ground truth | best kept | best of any trial |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        kept = row["kept_gt"]
        lines.append(f"| `{row['metric']}` | {row['trials']} | {row['kept']} | {kept['mean']:.4f} "
                     f"[{kept['low']:.4f}, {kept['high']:.4f}] | {row['kept_percentile']:.1f} | "
                     f"{row['winner_gt']:.4f} | {row['best_kept_gt']:.4f} | {row['best_any_gt']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    """Print (and with ``--out`` write) the table; one-line error and exit 2 for a folder it cannot read."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="+", type=Path, help="finished scored ASHA experiment folders")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap draws (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args(argv)
    if args.bootstrap < 1:
        parser.error(f"--bootstrap must be >= 1, got {args.bootstrap}")
    try:
        rows = [experiment_row(folder, draws=args.bootstrap, seed=args.seed) for folder in args.experiments]
    except RaynasError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    table = markdown(rows, "python tools/asha_ranking.py " + " ".join(str(p) for p in args.experiments))
    print(table, end="")
    if args.out:
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
