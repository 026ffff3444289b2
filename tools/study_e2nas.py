"""Compare E2NAS with DARTS on noisy digits: exploration (distinct architectures) and accuracy from scratch.

For every (method, seed) this runs one search on the NB201 space (the quickstart's data and supernet with
more input noise and more epochs, where DARTS drifts to parameter-free cells), then trains the derived
architecture from scratch briefly. Methods: ``darts``; ``e2nas`` (latent search with the differentiable
exploration density and complementation trained, our defaults); ``e2nas-code`` (the released code's
exploration and complementation: detached novelty, complementation off; our estimator, not the released
one). Every search uses the same settings (the quickstart's
``arch_lr`` 0.01 moves alphas and latents alike). The E2NAS autoencoder is pretrained once first
(``--pretrain-epochs``) unless ``--autoencoder`` names a file. Jobs run in ``--jobs`` processes, one torch
thread each; everything is the library's own code (``raynas.search.Search``, ``raynas.train``).

Exploration is counted two ways: ``epoch cells``, the distinct derived cells over the epochs' reports (the
same measure for every method), and for E2NAS ``trained cells``, the distinct cells its weight steps trained
(``e2nas_distinct``).

    python tools/study_e2nas.py                                       # the study in docs/e2nas.md
    python tools/study_e2nas.py --epochs 2 --train-epochs 1 --seeds 0 --pretrain-epochs 1   # a smoke run
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from study_common import (add_nb201_study_args, add_runner_args, finish, run_jobs, scratch_test_acc,  # noqa: E402  (a sibling tool)
                          summary_by_method)

BASE_CONFIG = ROOT / "search_configs" / "quickstart.yaml"

#: method label -> the overrides that make it ({autoencoder} is filled in)
METHODS: dict[str, list[str]] = {
    "darts": [],
    "e2nas": ["method=e2nas", "e2nas.autoencoder={autoencoder}"],
    "e2nas-code": ["method=e2nas", "e2nas.autoencoder={autoencoder}", "e2nas.exploration=detached",
                   "e2nas.complement=0"],
}


def search_overrides(method: str, seed: int, args: argparse.Namespace) -> list[str]:
    """The quickstart config turned into one longer search of ``method``."""
    return [
        f"data.noise_std={args.noise}", f"search.seed={seed}", f"search.epochs={args.epochs}",
        f"supernet.channels={args.channels}", f"supernet.layers={args.nb201_layers}", "search.threads=1",
        "tune.grid={}", *(o.format(autoencoder=args.autoencoder) for o in METHODS[method]),
    ]


def run_job(method: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One search of ``method``: its exploration figures, last epoch and derived cell trained from scratch."""
    import torch

    torch.set_num_threads(1)
    from raynas.config import load_config
    from raynas.search import Search

    cfg = load_config(str(BASE_CONFIG), search_overrides(method, seed, args))
    start = time.perf_counter()
    search = Search(cfg)
    genotypes: list[str] = []
    while not search.done:
        report = search.run_epoch()
        genotypes.append(report["genotype"])
    search_s = time.perf_counter() - start
    genotype = search.genotype
    row: dict[str, Any] = {
        "method": method, "seed": seed, "genotype": str(genotype),
        "skips": genotype.count("skip_connect", cell=search.space.cell_types[0]),
        "epoch_cells": len(set(genotypes)), "trained_cells": report.get("e2nas_distinct", math.nan),
        "supernet_val_acc": report["val_acc"], "derived_val_acc": report["derived_val_acc"],
        "gap": report["discretization_gap"], "search_s": search_s,
    }
    row["test_acc"] = scratch_test_acc(search.space, genotype, cfg, seed, args)
    row["total_s"] = time.perf_counter() - start
    return row


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per method, mean ± std over seeds of each figure."""
    return summary_by_method(rows, list(METHODS), [("epoch_cells", "epoch cells (distinct)"),
                             ("trained_cells", "trained cells (distinct)"), ("skips", "skips"),
                             ("derived_val_acc", "derived val acc (inherited weights)"), ("gap", "discretization gap"),
                             ("test_acc", "test acc from scratch")])


def rows_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: every job's genotype and figures."""
    lines = ["| method | seed | genotype | skips | epoch cells | trained cells | test acc |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (list(METHODS).index(r["method"]), r["seed"])):
        trained = "n/a" if math.isnan(r["trained_cells"]) else f"{int(r['trained_cells'])}"
        lines.append(f"| {r['method']} | {r['seed']} | `{r['genotype']}` | {r['skips']} | {r['epoch_cells']} "
                     f"| {trained} | {r['test_acc']:.3f} |")
    return "\n".join(lines)


def progress_line(row: dict[str, Any]) -> str:
    """The progress line of a finished job."""
    return (f"{row['method']} seed {row['seed']}: {row['epoch_cells']} epoch cells, trained cells "
            f"{row['trained_cells']}, skips {row['skips']}, test acc {row['test_acc']:.3f} "
            f"({row['total_s'] / 60:.1f} min)")


def main(argv: list[str] | None = None) -> int:
    """Run the study; print per-job lines and the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_nb201_study_args(parser, list(METHODS))
    parser.add_argument("--autoencoder", default=None, help="NB201 autoencoder file (default: pretrain one)")
    parser.add_argument("--pretrain-epochs", type=int, default=5, help="epochs of that pretraining (default: 5)")
    add_runner_args(parser)
    args = parser.parse_args(argv)
    args.darts_layers = args.nb201_layers  # train_briefly's name for the layers of darts-like networks
    methods = args.methods.split(",")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)}; valid: {', '.join(METHODS)}")
    with tempfile.TemporaryDirectory(prefix="e2nas-study") as temp:
        if args.autoencoder is None and any(m.startswith("e2nas") for m in methods):
            import torch

            from raynas.e2nas import pretrain, save

            torch.set_num_threads(1)
            model, metrics = pretrain("nb201", epochs=args.pretrain_epochs, holdout=0.1, seed=0)
            args.autoencoder = str(Path(temp) / "nb201-vgae.pt")
            save(model, args.autoencoder)
            print(f"autoencoder: {args.pretrain_epochs} epochs, {metrics['seconds']:.1f} s, held-out cells "
                  f"reconstructed {metrics['holdout_recon_acc']:.4f}", flush=True)
        jobs = [(method, int(seed)) for seed in args.seeds.split(",") for method in methods]
        print(f"{len(jobs)} jobs: NB201, noise {args.noise}, {args.epochs} search epochs, {args.train_epochs} "
              f"training epochs, {args.jobs} processes", flush=True)
        rows = run_jobs(jobs, run_job, args, progress_line)
    finish(summary_table(rows), rows_table(rows), rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
