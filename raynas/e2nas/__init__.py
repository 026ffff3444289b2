"""E2NAS groundwork: a graph autoencoder that maps cells to a continuous latent space and back.

Zhang et al., "Differentiable Neural Architecture Search in Equivalent Space with Exploration Enhancement",
NeurIPS 2020. This package holds the first piece: :mod:`raynas.e2nas.encoding` (cells of a space as tensors,
decoding logits into cells that are valid by construction) and :mod:`raynas.e2nas.vgae` (the variational graph
autoencoder, its seeded pretraining, files, and the straight-through architecture weights of a latent).
Importing this package imports torch.
"""

from __future__ import annotations

from raynas.e2nas.encoding import (DROPPED, CellLayout, best_ops, cell_layout, decode, decode_indices, encode,
                                   enumerate_choices, is_valid, layouts, one_hot, sample_choices, to_choices)
from raynas.e2nas.vgae import (ArchVGAE, evaluate, load, pretrain, prior_decodes, relaxed_weights,
                               reconstruction_loss, save)

__all__ = ["DROPPED", "ArchVGAE", "CellLayout", "best_ops", "cell_layout", "decode", "decode_indices", "encode",
           "enumerate_choices", "evaluate", "is_valid", "layouts", "load", "one_hot", "pretrain", "prior_decodes",
           "reconstruction_loss", "relaxed_weights", "sample_choices", "save", "to_choices"]
