"""Uniform path sampling: the weight step of weight-sharing random search (``method: rs``).

Random search with weight sharing (Li & Talwalkar, "Random Search and Reproducibility for Neural
Architecture Search", UAI 2019) trains the supernet by running, at every weight step, one architecture
drawn uniformly from the space; the architecture parameters are never trained (the search loop skips the
architecture step when ``method`` is ``rs``). NA-RS (Wang, Cao, Li, Kitani, "Neighborhood-Aware Neural
Architecture Search", BMVC 2021) trains its supernet the same way and differs only in how sampled
architectures are scored afterwards (:mod:`raynas.selection.random_sampling`).

[recon] Choices made here (``methods.md``, NA-RS: "train a weight-sharing supernet with uniform path
sampling"):

- a path is ``space.sample`` drawn with ``random.Random`` seeded by ``(search.seed, global step)`` alone:
  every shard of a sharded search trains the same path, and a resumed search draws what an uninterrupted
  one would, without any state to checkpoint;
- the path's architecture weights are one-hot rows (an edge outside a DARTS-family genotype: a zero row),
  so only the path's ops run and only their parameters get gradients;
- a selection stage that fine-tunes (e.g. DARTS-PT's perturbation after an ``rs`` search) has fixed rows in
  ``model.projection``; explicit weights bypass the projection in ``Supernet.resolve_weights``, so the path
  is projected here: fixed rows as decided (a kept op, or a dropped edge), the others sampled.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Optional

from raynas.objectives.base import SearchEnv, StepContext, Term

if TYPE_CHECKING:
    import torch

    from raynas.config.schema import ExperimentConfig
    from raynas.spaces.base import SearchSpace
    from raynas.spaces.genotype import Genotype
    from raynas.supernet.base import Supernet


def path_rng(seed: int, step: int) -> random.Random:
    """The generator of the path of global step ``step``: the same in every process and on every resume."""
    # a string seed goes through SHA-512 in random.seed, unlike hash(), which varies between processes
    return random.Random(f"raynas.rs:{int(seed)}:{int(step)}")


def sample_path(space: "SearchSpace", seed: int, step: int) -> "Genotype":
    """The uniformly drawn genotype that the weight step of global step ``step`` trains."""
    return space.sample(path_rng(seed, step))


class UniformPathTerm(Term):
    """Trains one uniformly sampled path per weight step (term ``rs``, enabled by ``method: rs``).

    Keeps no state between steps: the path depends only on ``(ctx.seed, ctx.global_step)``.
    """

    name = "rs"

    def __init__(self, space: "SearchSpace") -> None:
        self.space = space

    @classmethod
    def from_config(cls, cfg: "ExperimentConfig", env: SearchEnv) -> "UniformPathTerm":
        """The term for the search's space (``cfg`` has no options for it)."""
        return cls(env.space)

    def path_weights(self, model: "Supernet", ctx: StepContext) -> "Optional[dict[str, torch.Tensor]]":
        """One-hot architecture weights of this step's sampled path, with the projection's fixed rows."""
        from raynas.supernet import discrete_weights

        genotype = sample_path(self.space, ctx.seed, ctx.global_step)
        weights = discrete_weights(self.space, self.space.choices_from_genotype(genotype), device=ctx.device)
        projection: Any = getattr(model, "projection", None)
        if projection is not None and projection.decided_count():
            weights = projection.apply(weights)
        return weights
