"""Measure DARTS' skip-connection collapse and what perturbation selection (DARTS-PT) does about it.

For every (space, noise, seed) this trains one DARTS supernet on noisy digits for ``--epochs`` epochs, takes
the magnitude selection of the trained supernet (the genotype DARTS returns), then runs the perturbation
selection stage from that same trained supernet, and trains both derived architectures from scratch
briefly, reporting their skip connections and test accuracies. Jobs run in ``--jobs`` processes, one torch
thread each; everything is the library's own code (``raynas.search.Search``, ``raynas.train``).

    python tools/study_skip_collapse.py                       # the study in docs/skip_collapse.md
    python tools/study_skip_collapse.py --epochs 2 --train-epochs 1 --seeds 0 --spaces nb201   # a smoke run

Prints one line per finished job, then a summary table (markdown) per space and noise level; ``--out``
also writes the summary and every job's row (markdown) to a file, ``--json`` the rows as JSON.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from study_common import add_runner_args, finish, mean_std, run_jobs, train_briefly  # noqa: E402  (a sibling tool)

BASE_CONFIG = ROOT / "search_configs" / "quickstart.yaml"


def search_overrides(space: str, noise: float, seed: int, args: argparse.Namespace) -> list[str]:
    """The quickstart config turned into one long DARTS search with a perturbation stage."""
    darts_like = space != "nb201"
    return [
        f"space={space}", f"data.noise_std={noise}", f"search.seed={seed}",
        f"search.epochs={args.darts_epochs if darts_like else args.epochs}",
        f"supernet.channels={args.channels}", f"supernet.layers={args.darts_layers if darts_like else args.nb201_layers}",
        "search.threads=1", "search.eval_derived=false", "selection.name=perturbation",
        f"selection.proj_intv={args.darts_proj_intv if darts_like else args.proj_intv}", "tune.grid={}",
    ]


def run_job(space: str, noise: float, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One supernet, both selections, both derived networks trained from scratch."""
    import torch

    torch.set_num_threads(1)
    from raynas.config import load_config
    from raynas.search import Search

    cfg = load_config(str(BASE_CONFIG), search_overrides(space, noise, seed, args))
    start = time.perf_counter()
    search = Search(cfg)
    cell = search.space.cell_types[0]
    while search.epoch < cfg.search.epochs:
        report = search.run_epoch()
    magnitude = search.genotype
    supernet_val_acc = report["val_acc"]
    search_s = time.perf_counter() - start
    while not search.done:
        report = search.run_epoch()
    perturbation = search.genotype
    stage_s = time.perf_counter() - start - search_s
    row: dict[str, Any] = {
        "space": space, "noise": noise, "seed": seed, "supernet_val_acc": supernet_val_acc,
        "magnitude": str(magnitude), "perturbation": str(perturbation),
        "magnitude_skip": magnitude.count("skip_connect", cell=cell),
        "perturbation_skip": perturbation.count("skip_connect", cell=cell),
        "search_s": search_s, "stage_s": stage_s,
    }
    for name, genotype in (("magnitude", magnitude), ("perturbation", perturbation)):
        if search.space.is_connected(genotype):
            trained = train_briefly(space, str(genotype), cfg, seed, args)
        else:
            trained = {"test_acc": math.nan, "params": 0}
        row[f"{name}_test_acc"] = trained["test_acc"]
        row[f"{name}_params"] = trained["params"]
    row["total_s"] = time.perf_counter() - start
    return row


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per space and noise, skip connections and test accuracy of each selection."""
    lines = ["| space | noise | seeds | skips, magnitude | skips, perturbation | test acc, magnitude "
             "| test acc, perturbation |", "|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["space"], row["noise"]), []).append(row)
    for (space, noise), group in sorted(groups.items()):
        lines.append(
            f"| {space} | {noise} | {len(group)} "
            f"| {mean_std([float(r['magnitude_skip']) for r in group])} "
            f"| {mean_std([float(r['perturbation_skip']) for r in group])} "
            f"| {mean_std([r['magnitude_test_acc'] for r in group])} "
            f"| {mean_std([r['perturbation_test_acc'] for r in group])} |")
    return "\n".join(lines)


def rows_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: every job's genotypes and figures."""
    lines = ["| space | noise | seed | supernet val acc | magnitude genotype | skips | test acc "
             "| perturbation genotype | skips | test acc | wall time |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["space"], r["noise"], r["seed"])):
        lines.append(f"| {r['space']} | {r['noise']} | {r['seed']} | {r['supernet_val_acc']:.3f} "
                     f"| `{r['magnitude']}` | {r['magnitude_skip']} | {r['magnitude_test_acc']:.3f} "
                     f"| `{r['perturbation']}` | {r['perturbation_skip']} | {r['perturbation_test_acc']:.3f} "
                     f"| {r['total_s'] / 60:.1f} min |")
    return "\n".join(lines)


def progress_line(row: dict[str, Any]) -> str:
    """The progress line of a finished job."""
    return (f"{row['space']} noise {row['noise']} seed {row['seed']}: "
            f"skips magnitude {row['magnitude_skip']} vs perturbation {row['perturbation_skip']}; "
            f"test acc {row['magnitude_test_acc']:.3f} vs {row['perturbation_test_acc']:.3f} "
            f"({row['total_s'] / 60:.1f} min)")


def main(argv: list[str] | None = None) -> int:
    """Run the study; print per-job lines and the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", default="nb201,s2,s3", help="comma-separated spaces (default: nb201,s2,s3)")
    parser.add_argument("--noise", default="0.5,1.0", help="comma-separated input noise levels (default: 0.5,1.0)")
    parser.add_argument("--seeds", default="0,1", help="comma-separated search seeds (default: 0,1)")
    parser.add_argument("--epochs", type=int, default=50,
                        help="NB201: DARTS search epochs before selection (default: 50)")
    parser.add_argument("--darts-epochs", type=int, default=25,
                        help="s1-s4, darts: DARTS search epochs before selection (default: 25)")
    parser.add_argument("--proj-intv", type=int, default=5,
                        help="NB201 perturbation: fine-tuning epochs between decisions (default: 5, the paper's)")
    parser.add_argument("--darts-proj-intv", type=int, default=1,
                        help="s1-s4, darts perturbation: fine-tuning epochs between decisions (default: 1; the "
                             "paper's 5 makes the 17-round stage 81 epochs)")
    parser.add_argument("--channels", type=int, default=8, help="supernet and derived network channels (default: 8)")
    parser.add_argument("--nb201-layers", type=int, default=1, help="NB201 cells per stage (default: 1)")
    parser.add_argument("--darts-layers", type=int, default=4, help="cells of the s1-s4 networks (default: 4)")
    parser.add_argument("--train-epochs", type=int, default=30, help="training from scratch (default: 30)")
    add_runner_args(parser)
    args = parser.parse_args(argv)
    jobs = [(space, float(noise), int(seed)) for space in args.spaces.split(",")
            for noise in args.noise.split(",") for seed in args.seeds.split(",")]
    print(f"{len(jobs)} jobs: search epochs {args.epochs} (nb201) / {args.darts_epochs} (darts-like), perturbation "
          f"proj_intv {args.proj_intv} / {args.darts_proj_intv}, {args.train_epochs} training epochs, "
          f"{args.jobs} processes", flush=True)
    rows = run_jobs(jobs, run_job, args, progress_line)
    finish(summary_table(rows), rows_table(rows), rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
