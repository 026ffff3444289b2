"""Compare DARTS, NA-DARTS, SD-DARTS and NA+SD on noisy digits: discretization gap, sharpness, accuracy.

For every (method, seed) this runs one search on the NB201 space (the quickstart's data and supernet with
more input noise and more epochs), logging the architecture loss's sharpness (dominant Hessian eigenvalue
w.r.t. the alphas) every ``--sharpness-every`` epochs, then trains the derived architecture from scratch
briefly. Methods differ only in ``objectives`` (NA: M=4, r=1; SD: K=3, interval a quarter epoch, tau=4,
beta=0.5, soft voting, local teachers). Jobs run in ``--jobs`` processes, one torch thread each; everything
is the library's own code (``raynas.search.Search``, ``raynas.train``).

    python tools/study_flatness.py                                   # the study in docs/flatness.md
    python tools/study_flatness.py --epochs 2 --train-epochs 1 --seeds 0 --sharpness-every 1   # a smoke run

Prints one line per finished job, then a summary table (markdown) per method; ``--out`` also writes the
summary and every job's row to a file, ``--json`` prints the rows as JSON.
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

from study_common import (add_nb201_study_args, add_runner_args, finish, run_jobs, scratch_test_acc,  # noqa: E402  (a sibling tool)
                          summary_by_method)

BASE_CONFIG = ROOT / "search_configs" / "quickstart.yaml"

#: method label -> the ``objectives`` overrides that make it
METHODS: dict[str, list[str]] = {
    "darts": [],
    "na": ["objectives.na={}"],
    "sd": ["objectives.sd={}"],
    "na+sd": ["objectives.na={}", "objectives.sd={}"],
}


def search_overrides(method: str, seed: int, args: argparse.Namespace) -> list[str]:
    """The quickstart config turned into one longer search of ``method``."""
    return [
        f"data.noise_std={args.noise}", f"search.seed={seed}", f"search.epochs={args.epochs}",
        f"supernet.channels={args.channels}", f"supernet.layers={args.nb201_layers}", "search.threads=1",
        f"search.sharpness_every={args.sharpness_every}", "tune.grid={}", *METHODS[method],
    ]


def run_job(method: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One search of ``method``, its last epoch's figures and its derived cell trained from scratch."""
    import torch

    torch.set_num_threads(1)
    from raynas.config import load_config
    from raynas.search import Search

    cfg = load_config(str(BASE_CONFIG), search_overrides(method, seed, args))
    start = time.perf_counter()
    search = Search(cfg)
    sharpness: list[float] = []
    while not search.done:
        report = search.run_epoch()
        if "arch_sharpness" in report:
            sharpness.append(float(report["arch_sharpness"]))
    search_s = time.perf_counter() - start
    genotype = search.genotype
    row: dict[str, Any] = {
        "method": method, "seed": seed, "genotype": str(genotype),
        "skips": genotype.count("skip_connect", cell=search.space.cell_types[0]),
        "supernet_val_acc": report["val_acc"], "derived_val_acc": report["derived_val_acc"],
        "gap": report["discretization_gap"], "sharpness": sharpness[-1] if sharpness else math.nan,
        "sharpness_curve": sharpness, "search_s": search_s,
    }
    row["test_acc"] = scratch_test_acc(search.space, genotype, cfg, seed, args)
    row["total_s"] = time.perf_counter() - start
    return row


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per method, mean ± std over seeds of each figure."""
    return summary_by_method(rows, list(METHODS), [("supernet_val_acc", "supernet val acc"),
                             ("derived_val_acc", "derived val acc (inherited weights)"), ("gap", "discretization gap"),
                             ("sharpness", "sharpness (last)"), ("skips", "skips"),
                             ("test_acc", "test acc from scratch")])


def rows_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: every job's genotype and figures."""
    lines = ["| method | seed | genotype | skips | gap | sharpness curve | test acc |", "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (list(METHODS).index(r["method"]), r["seed"])):
        curve = ", ".join(f"{v:.3g}" for v in r["sharpness_curve"])
        lines.append(f"| {r['method']} | {r['seed']} | `{r['genotype']}` | {r['skips']} | {r['gap']:.3f} "
                     f"| {curve} | {r['test_acc']:.3f} |")
    return "\n".join(lines)


def progress_line(row: dict[str, Any]) -> str:
    """The progress line of a finished job."""
    return (f"{row['method']} seed {row['seed']}: gap {row['gap']:.3f}, "
            f"sharpness {row['sharpness']:.3g}, skips {row['skips']}, test acc {row['test_acc']:.3f} "
            f"({row['total_s'] / 60:.1f} min)")


def main(argv: list[str] | None = None) -> int:
    """Run the study; print per-job lines and the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_nb201_study_args(parser, list(METHODS))
    parser.add_argument("--sharpness-every", type=int, default=10, help="epochs between sharpness estimates")
    add_runner_args(parser)
    args = parser.parse_args(argv)
    args.darts_layers = args.nb201_layers  # train_briefly's name for the layers of darts-like networks
    unknown = sorted(set(args.methods.split(",")) - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)}; valid: {', '.join(METHODS)}")
    jobs = [(method, int(seed)) for seed in args.seeds.split(",") for method in args.methods.split(",")]
    print(f"{len(jobs)} jobs: NB201, noise {args.noise}, {args.epochs} search epochs, sharpness every "
          f"{args.sharpness_every}, {args.train_epochs} training epochs, {args.jobs} processes", flush=True)
    rows = run_jobs(jobs, run_job, args, progress_line)
    finish(summary_table(rows), rows_table(rows), rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
