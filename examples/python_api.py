"""raynas from Python: a small search on noisy digits, its results, and its best cell trained from scratch.

    python examples/python_api.py [--out DIR] [--epochs N]

Two NB201 searches (seeds 0 and 1) of a tiny supernet on 256 noisy digits, then the best cell trained from
scratch for one epoch: about a minute on 2 CPUs, most of it Ray starting. tests/api/test_example.py runs it.
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

import raynas

# The mapping a YAML search config holds (search_configs/smoke/nb201.yaml, in Python).
CONFIG = {
    "name": "python-api",
    "space": "nb201",
    "method": "darts",
    "data": {"name": "digits", "noise_std": 0.5, "limit": 256},
    "supernet": {"channels": 4, "layers": 1},
    "search": {"epochs": 2, "batch_size": 32, "arch_lr": 0.01},
    "tune": {"grid": {"search.seed": [0, 1]}},
    "ray": {"num_cpus": 2},
}


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="raynas_results", help="folder of the experiment folder")
    parser.add_argument("--epochs", type=int, default=2, help="search epochs")
    args = parser.parse_args(argv)
    print(f"raynas {raynas.__version__}")

    # Search: the config as a dict, an override as a dotted key; the folder is <out>/python-api.
    experiment = raynas.search(CONFIG, overrides={"search.epochs": args.epochs}, out=args.out)

    # Read: the leaderboard and any table are pandas DataFrames; best() is the top trial. The ranking column
    # names the metric (tune.metric, by default derived_params) and its scope (final_: the last epoch's value).
    board = experiment.leaderboard()
    print(board[["trial_id", "final_derived_params", "num_skip", "genotype"]].to_string(index=False))
    best = experiment.best()
    print(f"best: trial {best.trial_id}, {best.metric} {best.metric_value:.4f}, genotype {best.genotype}")
    epochs = experiment.table("epochs", where=f"trial_id == '{best.trial_id}'", sort=["epoch"])
    print(epochs[["epoch", "train_loss", "val_acc", "derived_val_acc"]].to_string(index=False))

    # Train the best genotype from scratch (one seed, one epoch, the search's data), on the same Ray.
    evaluation = raynas.train(experiment, seeds=[0], epochs=1, name="from-scratch",
                              overrides={"channels": 4, "layers": 1, "batch_size": 64})
    print(evaluation.table()[["genotype", "seed", "test_acc"]].to_string(index=False))

    # Later, or in another process: the finished folder, read-only.
    finished = raynas.load(experiment.directory)
    print(f"loaded {finished.name}: {len(finished.leaderboard())} trials, "
          f"{len(finished.table('evaluations'))} evaluation(s)")


if __name__ == "__main__":
    main()
