"""The RobustDARTS spaces S1-S4 (Zela et al., ICLR 2020) and the DARTS space without ``none`` (DARTS-PT).

Zela et al., "Understanding and Robustifying Differentiable Architecture Search", ICLR 2020, define four
reduced versions of the DARTS cell space on which DARTS fails; Wang et al., "Rethinking Architecture
Selection in Differentiable NAS", ICLR 2021 (DARTS-PT), search the DARTS space with ``none`` removed (called
``s5`` in their released code). All five keep the DARTS cell of :mod:`raynas.spaces.darts` (14 edges, same
edge order) and differ only in the candidate ops per edge, so each is a
:class:`~raynas.spaces.darts.DartsLikeSpace`:

================  ==========================================================================================
space             candidate ops per edge (architecture-parameter column order)
================  ==========================================================================================
``s1``            two ops per edge, differing per edge and cell (:data:`S1_NORMAL_OPS`, :data:`S1_REDUCE_OPS`)
``s2``            skip_connect, sep_conv_3x3 (every edge of both cells)
``s3``            none, skip_connect, sep_conv_3x3 (every edge of both cells)
``s4``            noise, sep_conv_3x3 (every edge of both cells); ``noise`` outputs N(0, 1) noise
``darts-nonone``  max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5, dil_conv_3x3,
                  dil_conv_5x5 (the DARTS ops other than ``none``, every edge of both cells)
================  ==========================================================================================

This module imports no torch.
"""

from __future__ import annotations

from raynas.spaces.darts import DARTS_OPS, DartsLikeSpace, same_ops_on_every_edge

_SKIP, _MAX, _AVG = "skip_connect", "max_pool_3x3", "avg_pool_3x3"
_SEP3, _DIL3, _DIL5 = "sep_conv_3x3", "dil_conv_3x3", "dil_conv_5x5"

#: S1 normal cell: the two candidate ops of edges 0..13 (Zela et al., the ops DARTS ranked highest per edge)
S1_NORMAL_OPS: tuple[tuple[str, str], ...] = (
    (_SKIP, _DIL3), (_SKIP, _DIL5),                                    # node 2
    (_SKIP, _DIL5), (_SKIP, _SEP3), (_SKIP, _DIL3),                    # node 3
    (_MAX, _SKIP), (_SKIP, _SEP3), (_SKIP, _SEP3), (_SKIP, _DIL3),     # node 4
    (_SKIP, _SEP3), (_MAX, _SKIP), (_SKIP, _DIL3), (_DIL3, _DIL5), (_DIL3, _DIL5),  # node 5
)
#: S1 reduction cell: the two candidate ops of edges 0..13
S1_REDUCE_OPS: tuple[tuple[str, str], ...] = (
    (_MAX, _AVG), (_MAX, _DIL3),                                       # node 2
    (_MAX, _AVG), (_MAX, _AVG), (_SKIP, _DIL5),                        # node 3
    (_MAX, _AVG), (_MAX, _SEP3), (_SKIP, _DIL3), (_SKIP, _DIL5),       # node 4
    (_MAX, _AVG), (_MAX, _AVG), (_SKIP, _DIL5), (_SKIP, _DIL5), (_SKIP, _DIL5),  # node 5
)
#: S2 ops, on every edge of both cells
S2_OPS = ("skip_connect", "sep_conv_3x3")
#: S3 ops, on every edge of both cells
S3_OPS = ("none", "skip_connect", "sep_conv_3x3")
#: S4 ops, on every edge of both cells; ``noise`` replaces its input by standard Gaussian noise
S4_OPS = ("noise", "sep_conv_3x3")
#: the DARTS ops without ``none``, in DARTS order (DARTS-PT's ``s5``)
DARTS_NONONE_OPS = tuple(op for op in DARTS_OPS if op != "none")

#: RobustDARTS S1: a different pair of ops per edge
S1 = DartsLikeSpace("s1", {"normal": S1_NORMAL_OPS, "reduce": S1_REDUCE_OPS})
#: RobustDARTS S2: skip_connect or sep_conv_3x3 on every edge
S2 = DartsLikeSpace("s2", same_ops_on_every_edge(S2_OPS))
#: RobustDARTS S3: none, skip_connect or sep_conv_3x3 on every edge
S3 = DartsLikeSpace("s3", same_ops_on_every_edge(S3_OPS))
#: RobustDARTS S4: noise or sep_conv_3x3 on every edge
S4 = DartsLikeSpace("s4", same_ops_on_every_edge(S4_OPS))
#: the DARTS space without ``none`` (7 ops), as searched by DARTS-PT
DARTS_NONONE = DartsLikeSpace("darts-nonone", same_ops_on_every_edge(DARTS_NONONE_OPS))

#: registry name -> space, for the lazy loaders of :mod:`raynas.spaces`
ROBUST_SPACES: dict[str, DartsLikeSpace] = {space.name: space for space in (S1, S2, S3, S4, DARTS_NONONE)}
