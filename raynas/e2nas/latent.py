"""The architecture parameters of an E2NAS search: one latent vector per cell type, decoded by a frozen
autoencoder (Zhang et al., "Differentiable Neural Architecture Search in Equivalent Space with Exploration
Enhancement", NeurIPS 2020).

[code] The latent ``z`` starts at ``init_scale * randn`` (1e-3 in the released code) and is what the
architecture optimizer moves. Every forward of the supernet decodes it into one op per edge (and, in
DARTS-like cells, two inputs per node) and runs the straight-through weights of
:func:`raynas.e2nas.vgae.relaxed_weights`: exactly one-hot values, gradients through the decoder's softmax.
The autoencoder is not a submodule of the supernet: it is neither trained nor saved with the search (the
search state holds a hash of it, so a resume with another file is refused).

Two estimators turn ``z`` into architecture weights (``e2nas.estimator``):

- ``ours``: the decoded cell (the decoder's most likely op per edge) with the gradient of the decoder's
  softmax (:func:`raynas.e2nas.vgae.relaxed_weights`); the architecture step runs every op of an edge.
- ``released`` ([code] ``search_model_eenas.py`` of the released code, NB201 only): ``p = softmax(z)`` over
  all of ``z``'s entries, reshaped to ``[edges, ops]``, carries the gradient, ``onehot(cell) + p -
  p.detach()``, for a ``cell`` drawn from the decoder's op distributions (:meth:`sample_indices`) with no
  gradient through the decoder; the supernet runs it single-path (GDAS' forward: one op per edge in both
  steps). The decoder never sees ``p``: how a coordinate of ``z`` moves the decoded cell is up to the
  autoencoder, not to this gradient. ``z`` needs ``edges x ops`` dimensions (30 on NB201).
"""

from __future__ import annotations

import hashlib
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from raynas.e2nas.encoding import choices_key, masked_op_logits, to_choices
from raynas.e2nas.vgae import ArchVGAE, relaxed_weights
from raynas.errors import ConfigError
from raynas.spaces import Genotype, SearchSpace

#: ``e2nas.estimator`` values (module docstring)
ESTIMATORS = ("ours", "released")
Indices = dict[str, torch.Tensor]


def released_fit_problem(autoencoder: ArchVGAE) -> Optional[str]:
    """Why the released estimator cannot read ``autoencoder``'s latent as an ``edges x ops`` table (None: it
    can): its cells must keep every edge (NB201) and its latent must have ``edges * ops`` dimensions."""
    for cell, layout in autoencoder.layouts.items():
        if layout.selects_inputs():
            return (f"the released code's estimator reads softmax(z) as an edges x ops table of NB201 cells; space "
                    f"{autoencoder.space.name!r} chooses each node's inputs; use 'ours'")
        cells = layout.num_edges * layout.num_ops
        if autoencoder.latent != cells:
            return (f"the released code's estimator reads softmax(z) as the {layout.num_edges} x {layout.num_ops} "
                    f"table of cell {cell!r}, so the latent needs {cells} dimensions; the autoencoder has "
                    f"{autoencoder.latent} (pretrain with --latent {cells})")
    return None


def autoencoder_hash(model: ArchVGAE) -> str:
    """A SHA-256 of the autoencoder's config and weights (identifies the file a search was started with)."""
    digest = hashlib.sha256(repr(sorted(model.config().items())).encode())
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def architecture_hash(choices: Any) -> int:
    """A 63-bit integer naming an architecture (its choices), to count distinct architectures compactly."""
    return int(hashlib.sha256(repr(choices_key(choices)).encode()).hexdigest()[:15], 16)


class LatentArchitecture(nn.Module):
    """``z`` (``{cell: Parameter [latent]}``) and the frozen autoencoder that decodes it.

    Install it with :meth:`raynas.supernet.Supernet.use_latent`; the supernet's ``arch_parameters`` are then
    the latents and its ``arch_weights`` the decoded one-hot weights. Build it on the autoencoder's device.
    """

    # declared for the type checker: set in __init__ as a plain attribute (not a submodule), which
    # nn.Module's __getattr__ would otherwise type as Tensor | Module
    autoencoder: ArchVGAE

    def __init__(self, autoencoder: ArchVGAE, space: SearchSpace, *, init_scale: float = 1e-3,
                 estimator: str = "ours") -> None:
        super().__init__()
        if autoencoder.space.name != space.name:
            raise ConfigError(f"e2nas.autoencoder was trained for space {autoencoder.space.name!r}, the search runs "
                              f"{space.name!r}: pretrain one with `raynas e2nas pretrain {space.name}`")
        if estimator not in ESTIMATORS:
            raise ConfigError(f"e2nas.estimator = {estimator!r}: must be one of {', '.join(map(repr, ESTIMATORS))}")
        problem = released_fit_problem(autoencoder) if estimator == "released" else None
        if problem is not None:
            raise ConfigError(f"e2nas.estimator = 'released': {problem}")
        self.estimator = estimator
        #: the supernet runs one op per edge also in the architecture step (GDAS' forward)
        self.single_path = estimator == "released"
        autoencoder.requires_grad_(False)
        autoencoder.eval()
        # a plain attribute, not a submodule: not in parameters() (so never trained) nor in state_dict()
        object.__setattr__(self, "autoencoder", autoencoder)
        self.cells = list(space.cell_types)
        device = autoencoder.device
        self.z = nn.ParameterDict({cell: nn.Parameter(init_scale * torch.randn(autoencoder.latent).to(device))
                                   for cell in self.cells})
        self.autoencoder_hash = autoencoder_hash(autoencoder)

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "LatentArchitecture":
        # .to(device) on the supernet moves the autoencoder with the latents
        super()._apply(fn, *args, **kwargs)
        self.autoencoder._apply(fn, *args, **kwargs)
        return self

    def parameters_in_order(self) -> list[nn.Parameter]:
        """The latents in the order of the space's cell types."""
        return [self.z[cell] for cell in self.cells]

    def latent(self) -> dict[str, torch.Tensor]:
        """``{cell: z}`` (the parameters themselves, differentiable)."""
        return {cell: self.z[cell] for cell in self.cells}

    def weights(self) -> dict[str, torch.Tensor]:
        """The straight-through weights ``{cell: [edges, ops]}`` of the decoded architecture (the estimator's:
        module docstring)."""
        if self.estimator == "released":
            return self.released_weights(self.decoded_indices())
        return relaxed_weights(self.autoencoder, self.latent())

    def released_weights(self, indices: Indices) -> dict[str, torch.Tensor]:
        """The released estimator's straight-through weights of the cell ``indices`` (``{cell: LongTensor
        [edges]}``): values ``onehot(indices)`` exactly, gradient that of ``softmax(z)`` over all of ``z``
        reshaped to ``[edges, ops]`` (so a row is not a distribution by itself, as in the released code)."""
        out = {}
        for cell, layout in self.autoencoder.layouts.items():
            z = self.z[cell]
            p = F.softmax(z, dim=-1).reshape(layout.num_edges, layout.num_ops)
            hard = F.one_hot(indices[cell].to(z.device), layout.num_ops).to(p.dtype)
            # hard + (p - p.detach()) is hard to the bit (the released code's hard - p.detach() + p rounds),
            # which the single-path forward needs to tell the running op from the others
            out[cell] = hard + (p - p.detach())
        return out

    def sample_indices(self, generator: torch.Generator) -> Indices:
        """A cell drawn from the decoder's op distribution of each edge (``softmax`` of the allowed ops'
        logits at ``z``), with ``generator`` (a CPU one), as ``{cell: LongTensor [edges]}`` on the CPU.

        [code] The released code decodes ``z`` stochastically (D-VAE's ``decode(z, stochastic=True)``: each
        vertex type drawn in turn, given the ones before); this decoder scores all edges at once, so the
        edges are drawn independently given ``z``.
        """
        with torch.no_grad():
            logits, _ = self.autoencoder.decode_logits(self.latent())
            out = {}
            for cell, layout in self.autoencoder.layouts.items():
                p = F.softmax(masked_op_logits(layout, logits[cell]), dim=-1).to("cpu", torch.float64)
                out[cell] = torch.multinomial(p, 1, generator=generator).squeeze(-1)
            return out

    def decoded_indices(self) -> dict[str, torch.Tensor]:
        """The decoded cell of ``z`` as ``{cell: LongTensor [edges]}`` (op columns, -1 for a dropped edge)."""
        with torch.no_grad():
            return {cell: t.cpu() for cell, t in self.autoencoder.decode_to_indices(self.latent()).items()}

    def decoded(self) -> dict[str, dict[int, str]]:
        """The decoded architecture as choices ``{cell: {edge: op}}``."""
        return to_choices(self.autoencoder.space, {c: t.unsqueeze(0) for c, t in self.decoded_indices().items()})[0]

    def genotype(self) -> Genotype:
        """The decoded architecture as a genotype of the space."""
        return self.autoencoder.space.genotype_from_choices(self.decoded())

    def derived_genotype(self, *, skip_disconnected: bool = True) -> Genotype:
        """The decoded architecture; with ``skip_disconnected``, a decoded NB201-style cell without a path
        from input to output is replaced by magnitude selection's connected choice on the decoder's
        probabilities (DARTS-like decoded cells are connected by construction)."""
        space = self.autoencoder.space
        genotype = self.genotype()
        if skip_disconnected and not space.is_connected(genotype):
            from raynas.selection.magnitude import magnitude_choices

            probabilities = {cell: p.cpu().numpy() for cell, (_, p) in self.probabilities().items()}
            genotype = space.genotype_from_choices(magnitude_choices(space, probabilities, skip_disconnected=True))
        return genotype

    def probabilities(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per cell ``(op logits, softmax over the allowed ops)``, each ``[edges, ops]``, detached: what the
        alphas table shows for an E2NAS search (the decoded op is the argmax of each kept edge's row)."""
        with torch.no_grad():
            logits, _ = self.autoencoder.decode_logits(self.latent())
            return {cell: (logits[cell], F.softmax(masked_op_logits(layout, logits[cell]), dim=-1))
                    for cell, layout in self.autoencoder.layouts.items()}

    def check_autoencoder(self, saved_hash: str) -> None:
        """Raise :class:`ConfigError` unless ``saved_hash`` (from a search state) names this autoencoder."""
        if saved_hash != self.autoencoder_hash:
            raise ConfigError("e2nas.autoencoder differs from the file this search started with (its weights "
                              "changed): resume with the original autoencoder file")
