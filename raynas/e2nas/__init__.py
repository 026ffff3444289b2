"""E2NAS: search in the continuous latent space of a graph autoencoder over cells.

Zhang et al., "Differentiable Neural Architecture Search in Equivalent Space with Exploration Enhancement",
NeurIPS 2020. :mod:`raynas.e2nas.encoding` turns the cells of a space into tensors and decodes logits into
cells that are valid by construction; :mod:`raynas.e2nas.vgae` is the variational graph autoencoder, its
seeded pretraining, its files and the straight-through architecture weights of a latent;
:mod:`raynas.e2nas.latent` is the latent parameterisation a supernet searches with
(:meth:`raynas.supernet.base.Supernet.use_latent`); :mod:`raynas.e2nas.prepare` pretrains the autoencoder an
experiment's searches share. The search objective is :mod:`raynas.objectives.e2nas`. Importing this package
imports torch.
"""

from __future__ import annotations

from raynas.e2nas.encoding import (DROPPED, CellLayout, best_ops, cell_layout, decode, decode_indices, encode,
                                   enumerate_choices, is_valid, layouts, one_hot, sample_choices, to_choices)
from raynas.e2nas.vgae import (ArchVGAE, evaluate, load, pretrain, prior_decodes, relaxed_weights,
                               reconstruction_loss, save)

__all__ = ["DROPPED", "ArchVGAE", "CellLayout", "best_ops", "cell_layout", "decode", "decode_indices", "encode",
           "enumerate_choices", "evaluate", "is_valid", "layouts", "load", "one_hot", "pretrain", "prior_decodes",
           "reconstruction_loss", "relaxed_weights", "sample_choices", "save", "to_choices"]
