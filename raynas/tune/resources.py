"""Config -> the Ray resources one trial asks for."""

from __future__ import annotations

from typing import Any

from raynas.config import ExperimentConfig


def trial_resources(cfg: ExperimentConfig) -> Any:
    """What :func:`ray.tune.with_resources` gets for one trial of ``cfg``."""
    return {"cpu": cfg.resources.cpus_per_trial, "gpu": cfg.resources.gpus_per_trial}
