"""Reports shaped like the raynas.tune -> raynas.results contract, and a tiny Tune trainable that sends them.

Importable (not ``__main__``) so Ray workers can load the trainable.
"""

from __future__ import annotations

import math
from typing import Any

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
ALPHA_ROWS = len(OPS) * len(EDGES)


def make_alphas(epoch: int, seed: int) -> dict[str, list]:
    """Long-format alphas of one NB201 cell: raw values that depend on (seed, epoch) and their softmax."""
    alphas: dict[str, list] = {key: [] for key in ("cell", "edge", "src", "dst", "op", "alpha", "weight")}
    for edge, (src, dst) in enumerate(EDGES):
        raw = [0.01 * ((seed + 1) * (edge + 1) * (i + 1) * epoch % 7) for i in range(len(OPS))]
        total = sum(math.exp(a) for a in raw)
        for op, a in zip(OPS, raw):
            alphas["cell"].append("cell")
            alphas["edge"].append(edge)
            alphas["src"].append(src)
            alphas["dst"].append(dst)
            alphas["op"].append(op)
            alphas["alpha"].append(a)
            alphas["weight"].append(math.exp(a) / total)
    return alphas


def make_report(epoch: int, seed: int = 0, **changes: Any) -> dict[str, Any]:
    """One epoch's report; accuracies rise with the epoch and the seed, ``changes`` override any key."""
    genotype_ops = ("nor_conv_3x3", "skip_connect")[(seed + epoch) % 2]
    report = {
        "epoch": epoch,
        "train_loss": 2.0 / epoch, "train_acc": 0.3 + 0.1 * epoch,
        "val_loss": 2.2 / epoch + 0.1 * seed, "val_acc": 0.2 + 0.1 * epoch + 0.01 * seed,
        "derived_val_loss": 2.4 / epoch, "derived_val_acc": 0.1 + 0.1 * epoch + 0.02 * seed,
        "weight_lr": 0.025 / epoch, "arch_lr": 3e-4, "epoch_time_s": 0.5,
        "genotype": f"|{genotype_ops}~0|+|none~0|{genotype_ops}~1|+|skip_connect~0|none~1|nor_conv_1x1~2|",
        "num_skip": 1 + (genotype_ops == "skip_connect") * 2,
        "connected": True,
        "alphas": make_alphas(epoch, seed),
        "space": "nb201", "method": "darts", "seed": seed,
    }
    report.update(changes)
    return report


def write_finished_trials(writer: Any, trial_ids: list[str] | tuple[str, ...], epochs: int = 3) -> None:
    """Write, through ``writer`` (a ResultsWriter), every epoch's report of each trial (trial i: seed i) and
    its TERMINATED trials row ranked by derived_val_acc."""
    from raynas.results import rows_from_report, summarise_trial

    for seed, trial_id in enumerate(trial_ids):
        rows = []
        for epoch in range(1, epochs + 1):
            report = make_report(epoch, seed)
            writer.write_rows(trial_id, rows_from_report(trial_id, report))
            rows.append({"epoch": epoch, **report})
        writer.write_trial(summarise_trial(trial_id, rows, "derived_val_acc", "max", experiment="exp",
                                           status="TERMINATED", seed=seed))


def tiny_trainable(config: dict) -> None:
    """Three epochs of reports for the seed in ``config['overrides']['search.seed']`` (raynas' trial config
    shape); seed 99 fails after epoch 1."""
    from ray import tune

    seed = int(config["overrides"]["search.seed"])
    for epoch in range(1, 4):
        tune.report(make_report(epoch, seed))
        if seed == 99:
            raise ValueError("simulated divergence in the search")
