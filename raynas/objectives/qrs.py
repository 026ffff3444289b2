"""Quadruple relative similarities (QRS): TA-DARTS' knowledge transfer from a main model to an auxiliary one
(Sheth, Xie, "Improving Differentiable Neural Architecture Search by Encouraging Transferability", ICLR 2023).

[paper] Knowledge moves from the main model to the auxiliary model by matching *quadruple relative
similarities* of their representations.

[recon] The paper's exact form was not available to us; this is the reconstruction of ``methods.md``:
with penultimate features ``f1`` (main) and ``f2`` (auxiliary) of the same batch and cosine similarity
``s``, a quadruple ``(i, j, k, l)`` compares two pairs of samples,
``r1 = s(f1_i, f1_j) - s(f1_k, f1_l)`` and ``r2`` likewise from ``f2``, and the loss asks the auxiliary model
to order the pairs as the main model does:

- ``bce`` (default): ``mean BCE(sigmoid(r2 / tau), sigmoid(r1 / tau))``, soft targets from the main model;
- ``mse``: ``mean (r2 - r1)^2``;
- ``hinge``: ``mean relu(margin - sign(r1) * r2)``, only the order of the pairs.

Quadruples are pairs of distinct unordered sample pairs ``{i, j} != {k, l}``, each pair of pairs once
(``quadruples: all``: ``P (P - 1) / 2`` of them for ``P = N (N - 1) / 2`` sample pairs, one ``[P, P]``
matrix: fine up to batches of about 100), or ``count`` pairs of pairs drawn uniformly with replacement from a
given generator (``quadruples: sampled``), for large batches. Everything is vectorised; nothing loops over
samples. Cosine similarity makes the loss invariant to a positive rescaling of any sample's features and to
a rotation of either feature space. Neither input is detached: TA-DARTS' hypergradient reaches the main
model's architecture through ``f1``; a caller that wants the main model fixed detaches ``f1`` itself.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

MATCHINGS = ("bce", "mse", "hinge")


def cosine_similarities(features: torch.Tensor) -> torch.Tensor:
    """``[N, N]`` cosine similarities of the rows of ``features`` (``[N, D]``; zero rows give 0)."""
    unit = F.normalize(features.flatten(1), dim=1)
    return unit @ unit.T


def sample_pairs(n: int, device: Optional[torch.device] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of the ``n (n - 1) / 2`` unordered pairs ``i < j`` of ``n`` samples."""
    rows, cols = torch.triu_indices(n, n, offset=1, device=device)
    return rows, cols


def pair_similarities(features: torch.Tensor) -> torch.Tensor:
    """The cosine similarity of every unordered sample pair ``i < j`` (``[P]``, in :func:`sample_pairs` order)."""
    rows, cols = sample_pairs(features.shape[0], features.device)
    return cosine_similarities(features)[rows, cols]


def relative_similarities(sim: torch.Tensor, *, count: Optional[int] = None,
                          generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``s_p - s_q`` for pairs of pairs ``p < q`` of the pair similarities ``sim`` (``[P]``).

    ``count`` None: every ``p < q`` (``[P (P - 1) / 2]``); else ``count`` pairs ``(p, q)``, ``p != q``, drawn
    uniformly with replacement from ``generator`` (CPU), the same draw for any ``sim`` of the same length.
    """
    pairs = sim.shape[0]
    if count is None:
        p, q = torch.triu_indices(pairs, pairs, offset=1, device=sim.device)
    else:
        p = torch.randint(pairs, (count,), generator=generator)
        q = (p + torch.randint(1, pairs, (count,), generator=generator)) % pairs  # any pair but p
        p, q = p.to(sim.device), q.to(sim.device)
    return sim[p] - sim[q]


def qrs_loss(main: torch.Tensor, aux: torch.Tensor, *, tau: float = 0.1, matching: str = "bce",
             margin: float = 0.0, count: Optional[int] = None,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """The QRS matching loss of auxiliary features ``aux`` to main features ``main`` (both ``[N, ...]``).

    ``count`` None uses every quadruple; otherwise ``count`` sampled ones (``generator`` decides which, the
    same for ``main`` and ``aux``). Needs at least 3 samples (two different pairs).
    """
    if main.shape[0] != aux.shape[0]:
        raise ValueError(f"main and aux features must describe the same batch: "
                         f"{main.shape[0]} vs {aux.shape[0]} samples")
    if main.shape[0] < 3:
        raise ValueError(f"QRS needs at least 3 samples (two different pairs), got {main.shape[0]}")
    if matching not in MATCHINGS:
        raise ValueError(f"matching {matching!r}; valid: {', '.join(MATCHINGS)}")
    if count is not None and generator is None:
        generator = torch.Generator().manual_seed(0)
    state = generator.get_state() if generator is not None else None
    r1 = relative_similarities(pair_similarities(main), count=count, generator=generator)
    if generator is not None and state is not None:
        generator.set_state(state)  # the same quadruples for both models
    r2 = relative_similarities(pair_similarities(aux), count=count, generator=generator)
    if matching == "bce":
        return F.binary_cross_entropy_with_logits(r2 / tau, torch.sigmoid(r1 / tau))
    if matching == "mse":
        return (r2 - r1).pow(2).mean()
    return F.relu(margin - torch.sign(r1) * r2).mean()
