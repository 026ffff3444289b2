"""Compare DARTS and TA-DARTS on noisy digits, on NB201 and RobustDARTS S3: skip connections and accuracy.

For every (space, method, seed) this runs one first-order search (the quickstart's data with more input
noise, where DARTS drifts to skip connections), takes the magnitude selection, and trains the derived cell
from scratch briefly. TA-DARTS differs only by ``objectives.ta``: the reconstruction's defaults (lambda =
gamma = 1, tau = 0.1, BCE matching, 1024 sampled quadruples, nested hypergradient) with a depth-8 ResNet of
``--aux-channels`` channels as the auxiliary model (ResNet-20 would cost several times the supernet here).
Jobs run in ``--jobs`` processes, one torch thread each; everything is the library's own code.

    python tools/study_transfer.py                                  # the study in docs/transfer.md
    python tools/study_transfer.py --nb201-epochs 2 --s3-epochs 1 --train-epochs 1 --seeds 0   # a smoke run

Prints one line per finished job, then a summary table (markdown) per space and method; ``--out`` also
writes the summary and every job's row to a file, ``--json`` prints the rows as JSON.
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
SPACES = ("nb201", "s3")
METHODS = ("darts", "ta")


def search_overrides(space: str, method: str, seed: int, args: argparse.Namespace) -> list[str]:
    """The quickstart config turned into one longer first-order search of ``method`` on ``space``."""
    nb201 = space == "nb201"
    overrides = [
        f"space={space}", f"data.noise_std={args.noise}", f"search.seed={seed}", "search.order=1",
        f"search.epochs={args.nb201_epochs if nb201 else args.s3_epochs}", f"supernet.channels={args.channels}",
        f"supernet.layers={args.nb201_layers if nb201 else args.darts_layers}", "search.threads=1", "tune.grid={}",
    ]
    if method == "ta":
        overrides.append(f"objectives.ta={{aux_depth: 8, aux_channels: {args.aux_channels}}}")
    return overrides


def run_job(space: str, method: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One search, its last epoch's figures and its derived cell trained from scratch."""
    import torch

    torch.set_num_threads(1)
    from raynas.config import load_config
    from raynas.search import Search

    cfg = load_config(str(BASE_CONFIG), search_overrides(space, method, seed, args))
    start = time.perf_counter()
    search = Search(cfg)
    skip_curve = []
    while not search.done:
        report = search.run_epoch()
        skip_curve.append(int(report["num_skip"]))
    search_s = time.perf_counter() - start
    genotype = search.genotype
    row: dict[str, Any] = {
        "space": space, "method": method, "seed": seed, "genotype": str(genotype), "skips": skip_curve[-1],
        "skip_curve": skip_curve, "supernet_val_acc": report["val_acc"],
        "derived_val_acc": report["derived_val_acc"], "gap": report["discretization_gap"],
        "aux_val_loss": report.get("ta_aux_val_loss", math.nan), "search_s": search_s,
    }
    connected = search.space.is_connected(genotype)
    row["test_acc"] = train_briefly(space, str(genotype), cfg, seed, args)["test_acc"] if connected else math.nan
    row["total_s"] = time.perf_counter() - start
    return row


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per space and method, mean ± std over seeds of each figure."""
    lines = ["| space | method | seeds | skips (normal cell) | supernet val acc | derived val acc (inherited) "
             "| discretization gap | test acc from scratch | search time |", "|---|---|---|---|---|---|---|---|---|"]
    for space in SPACES:
        for method in METHODS:
            group = [r for r in rows if r["space"] == space and r["method"] == method]
            if not group:
                continue
            cols = [mean_std([float(r[k]) for r in group]) for k in
                    ("skips", "supernet_val_acc", "derived_val_acc", "gap", "test_acc")]
            minutes = sum(r["search_s"] for r in group) / len(group) / 60
            lines.append(f"| {space} | {method} | {len(group)} | " + " | ".join(cols) + f" | {minutes:.1f} min |")
    return "\n".join(lines)


def rows_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: every job's genotype and figures."""
    lines = ["| space | method | seed | genotype | skips per epoch | gap | test acc |", "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (SPACES.index(r["space"]), METHODS.index(r["method"]), r["seed"])):
        curve = " ".join(str(v) for v in r["skip_curve"])
        lines.append(f"| {r['space']} | {r['method']} | {r['seed']} | `{r['genotype']}` | {curve} | {r['gap']:.3f} "
                     f"| {r['test_acc']:.3f} |")
    return "\n".join(lines)


def progress_line(row: dict[str, Any]) -> str:
    """The progress line of a finished job."""
    return (f"{row['space']} {row['method']} seed {row['seed']}: "
            f"skips {row['skips']}, gap {row['gap']:.3f}, test acc {row['test_acc']:.3f} "
            f"({row['total_s'] / 60:.1f} min)")


def main(argv: list[str] | None = None) -> int:
    """Run the study; print per-job lines and the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", default=",".join(SPACES), help=f"comma-separated, of {', '.join(SPACES)}")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated search seeds (default: 0,1,2)")
    parser.add_argument("--noise", type=float, default=1.0, help="input noise std (default: 1.0)")
    parser.add_argument("--nb201-epochs", type=int, default=30, help="NB201 search epochs (default: 30)")
    parser.add_argument("--s3-epochs", type=int, default=15, help="S3 search epochs (default: 15)")
    parser.add_argument("--channels", type=int, default=8, help="supernet and derived network channels (default: 8)")
    parser.add_argument("--nb201-layers", type=int, default=1, help="NB201 cells per stage (default: 1)")
    parser.add_argument("--darts-layers", type=int, default=4, help="S3 cells (default: 4)")
    parser.add_argument("--aux-channels", type=int, default=8, help="auxiliary ResNet channels (default: 8)")
    parser.add_argument("--train-epochs", type=int, default=20, help="training from scratch (default: 20)")
    add_runner_args(parser)
    args = parser.parse_args(argv)
    for name, valid in (("spaces", SPACES), ("methods", METHODS)):
        unknown = sorted(set(getattr(args, name).split(",")) - set(valid))
        if unknown:
            parser.error(f"--{name}: unknown {', '.join(unknown)}; valid: {', '.join(valid)}")
    # the slowest first (S3 with TA), so the two processes finish together
    jobs = [(space, method, int(seed)) for space in reversed(args.spaces.split(","))
            for method in reversed(args.methods.split(",")) for seed in args.seeds.split(",")]
    print(f"{len(jobs)} jobs: noise {args.noise}, NB201 {args.nb201_epochs} / S3 {args.s3_epochs} search epochs, "
          f"{args.train_epochs} training epochs, {args.jobs} processes", flush=True)
    rows = run_jobs(jobs, run_job, args, progress_line)
    finish(summary_table(rows), rows_table(rows), rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
