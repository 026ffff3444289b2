"""The trained networks of an evaluation run: rebuilt from a trial's last checkpoint, weights loaded.

``raynas export`` uses this to hand a trained architecture over as a standalone file. The checkpoint
holds the network's construction arguments (space, genotype, channels, layers, classes, input shape), so
nothing else is needed. Importing this module imports neither torch nor Ray.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from raynas.errors import ConfigError


@dataclass
class TrainedNetwork:
    """A network rebuilt from an evaluation trial's checkpoint, in eval mode."""

    model: Any  # torch.nn.Module
    input_shape: tuple[int, int, int]  # (channels, height, width) of one input
    trial_id: str
    run_dir: Path
    genotype: str
    test_acc: Optional[float]


def _find_trial(directory: Path, trial_id: Optional[str]) -> tuple[Path, dict[str, Any]]:
    """(run folder, evaluations row) of ``trial_id``, or of the finished trial with the best test accuracy."""
    from raynas.results import evaluation_runs, load_table

    runs = evaluation_runs(directory)
    if not runs:
        raise ConfigError(f"'{directory}' has no evaluation run (raynas train writes one; pass its folder or the "
                          "search folder it trained genotypes of)")
    rows = [(run, row) for run in runs for row in load_table(str(run), "evaluations").to_pylist()]
    if trial_id is not None:
        for run, row in rows:
            if row["trial_id"] == trial_id:
                return run, row
        known = ", ".join(row["trial_id"] for _, row in rows[:10]) or "none"
        raise ConfigError(f"--trial {trial_id!r}: no such evaluation in {directory}; its evaluations: {known}")
    finished = [(run, row) for run, row in rows if row["status"] == "TERMINATED" and row["test_acc"] is not None]
    if not finished:
        raise ConfigError(f"'{directory}' has no finished evaluation yet (see raynas results {directory})")
    return max(finished, key=lambda item: item[1]["test_acc"])


def load_trained_network(directory: str | os.PathLike, trial_id: Optional[str] = None) -> TrainedNetwork:
    """The trained network of evaluation ``trial_id`` (default: the best finished one) of ``directory`` (an
    evaluation run folder, or a search folder whose ``evaluations/`` hold runs), from its last checkpoint."""
    from raynas.evaluation.run import trial_checkpoint
    from raynas.runtime import load_state
    from raynas.spaces import get_space

    run, row = _find_trial(Path(directory), trial_id)
    state = load_state(str(trial_checkpoint(run, row["trial_id"])))
    args = state["network"]
    space = get_space(args["space"])
    model = space.build_network(space.parse_genotype(args["genotype"]), channels=args["channels"],
                                layers=args["layers"], num_classes=args["num_classes"],
                                in_channels=args["in_channels"], auxiliary=args["auxiliary"], drop_path_prob=0.0)
    model.load_state_dict(state["model"])
    model.eval()
    shape = (int(args["in_channels"]), int(args["image_size"]), int(args["image_size"]))
    return TrainedNetwork(model, shape, row["trial_id"], run, args["genotype"], row["test_acc"])
