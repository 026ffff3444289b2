"""A variational graph autoencoder over cells: E2NAS' map from discrete cells to a continuous latent space.

Zhang et al., "Differentiable Neural Architecture Search in Equivalent Space with Exploration Enhancement",
NeurIPS 2020. [paper] A variational graph autoencoder maps the discrete space injectively into a continuous
latent space in which the search runs; any VGAE that reconstructs cells (near-)perfectly and decodes only
valid cells meets the intent.

=====================  ==========================  ==================================================
setting                released code [code]        here
=====================  ==========================  ==================================================
model                  D-VAE (GRU over the DAG)    edge-op GNN encoder, MLP decoder [recon]
hidden size            501                         ``hidden`` (64)
latent size            30                          ``latent`` (30) per cell type
KL weight              0.005                       ``kl_weight`` (0.005)
optimizer              Adam 1e-4, batch 32         Adam ``lr`` (1e-3), ``batch_size`` (32)
epochs                 100                         ``epochs`` (required)
training cells         all 15,625 NB201 cells      NB201: all (``holdout`` share kept out); DARTS-like:
                                                   a seeded sample (``samples``, default 20,000)
=====================  ==========================  ==================================================

[recon] Encoder: one model per cell type. Nodes of the cell DAG (inputs included) start from learned
per-node embeddings; each of ``layers`` rounds sends, along every kept edge, a message built from the
source state and an embedding of the edge's op (by op name, so spaces with different ops per edge share a
vocabulary) to the destination, and a second message backwards; a node adds both sums to its state
through an MLP with a residual and layer norm. The concatenated node states give ``mu`` and ``logvar``.
Ops live on edges, not as nodes as in D-VAE.

[recon] Decoder: an MLP from ``z`` to per-edge op logits ``[edges, ops]`` and, for DARTS-like cells,
per-edge input-selection scores ``[edges]``; :mod:`raynas.e2nas.encoding` decodes them into cells that are
valid by construction. Loss: the summed cross-entropy of every kept edge's op (over the ops a derived cell
allows) plus, for nodes with more candidate inputs than they keep, the cross-entropy of the node's
softmax over its incoming edges against the uniform distribution on its kept ones; plus ``kl_weight`` times
the KL divergence to N(0, I) summed over latent dimensions; both averaged over the batch.

[code] :func:`relaxed_weights` is the released straight-through estimator ``onehot(decoded) - p.detach() +
p``, ``p = softmax(op logits)``, written as ``onehot + (p - p.detach())`` so the values are exactly one-hot.
[recon] DARTS-like cells multiply each row by a straight-through gate ``kept + (s - s.detach())`` with
``s = 2 * softmax`` of the node's input scores, so rows of dropped edges are zero and still pass gradient.
"""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from raynas.e2nas.encoding import (DROPPED, CellLayout, SpaceLike, best_ops, choices_key, decode_indices, encode,
                                   enumerate_choices, is_valid, kept_edges, layouts, masked_op_logits,
                                   resolve_space, sample_choices, to_choices)
from raynas.errors import ConfigError, SpaceError
from raynas.files import torch_save_atomically
from raynas.spaces import Choices

#: the ``format`` field of a saved model
FILE_FORMAT = "raynas.e2nas.vgae"
FILE_VERSION = 1
#: training cells drawn for a space that cannot be enumerated, when ``samples`` is None
DEFAULT_SAMPLES = 20_000

Latent = Mapping[str, torch.Tensor]


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class _CellEncoder(nn.Module):
    """Edge-op message passing over one cell DAG, read out as ``mu`` and ``logvar``."""

    # buffers registered in __init__ (register_buffer), declared for the type checker
    vocab_ids: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor

    def __init__(self, layout: CellLayout, hidden: int, latent: int, layers: int) -> None:
        super().__init__()
        vocab: dict[str, int] = {}
        for row in layout.ops:
            for op in row:
                vocab.setdefault(op, len(vocab))
        self.register_buffer("vocab_ids", torch.tensor([[vocab[op] for op in row] for row in layout.ops]),
                             persistent=False)
        self.register_buffer("src", torch.tensor([s for s, _ in layout.edges]), persistent=False)
        self.register_buffer("dst", torch.tensor([d for _, d in layout.edges]), persistent=False)
        self.num_nodes = layout.num_nodes
        self.nodes = nn.Parameter(0.1 * torch.randn(layout.num_nodes, hidden))
        self.op_embeddings = nn.ModuleList(nn.Embedding(len(vocab), hidden) for _ in range(layers))
        self.forward_messages = nn.ModuleList(nn.Linear(2 * hidden, hidden) for _ in range(layers))
        self.backward_messages = nn.ModuleList(nn.Linear(2 * hidden, hidden) for _ in range(layers))
        self.updates = nn.ModuleList(nn.Sequential(nn.Linear(3 * hidden, hidden), nn.ReLU(),
                                                   nn.Linear(hidden, hidden)) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.mu = nn.Linear(layout.num_nodes * hidden, latent)
        self.logvar = nn.Linear(layout.num_nodes * hidden, latent)

    def forward(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = indices.shape[0]
        kept = (indices != DROPPED).unsqueeze(-1).to(self.nodes.dtype)
        edge_rows = torch.arange(indices.shape[1], device=indices.device)
        ops = self.vocab_ids[edge_rows, indices.clamp(min=0)]
        h = self.nodes.expand(batch, -1, -1)
        for embed, fwd, bwd, update, norm in zip(self.op_embeddings, self.forward_messages,
                                                 self.backward_messages, self.updates, self.norms):
            op = embed(ops)
            to_dst = F.relu(fwd(torch.cat([h[:, self.src], op], dim=-1))) * kept
            to_src = F.relu(bwd(torch.cat([h[:, self.dst], op], dim=-1))) * kept
            incoming = h.new_zeros(h.shape).index_add(1, self.dst, to_dst)
            outgoing = h.new_zeros(h.shape).index_add(1, self.src, to_src)
            h = norm(h + update(torch.cat([h, incoming, outgoing], dim=-1)))
        flat = h.reshape(batch, -1)
        return self.mu(flat), self.logvar(flat)


class _CellDecoder(nn.Module):
    """An MLP from ``z`` to op logits ``[..., edges, ops]`` and, if the cell selects inputs, scores ``[..., edges]``."""

    def __init__(self, layout: CellLayout, hidden: int, latent: int) -> None:
        super().__init__()
        self.shape = (layout.num_edges, layout.num_ops)
        self.body = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.op_logits = nn.Linear(hidden, layout.num_edges * layout.num_ops)
        self.input_logits = nn.Linear(hidden, layout.num_edges) if layout.selects_inputs() else None

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        h = self.body(z)
        ops = self.op_logits(h).reshape(*z.shape[:-1], *self.shape)
        return ops, None if self.input_logits is None else self.input_logits(h)


class ArchVGAE(nn.Module):
    """The cell autoencoder of one space: per cell type an encoder to a ``latent``-dimensional Gaussian and
    a decoder back to logits (see the module docstring).

    Latents are ``{cell_type: tensor [..., latent]}``; encoded cells are ``{cell_type: LongTensor [batch,
    edges]}`` as :func:`raynas.e2nas.encoding.encode` returns. The model holds no training state.
    """

    def __init__(self, space: SpaceLike, *, latent: int = 30, hidden: int = 64, layers: int = 3) -> None:
        super().__init__()
        self.space = resolve_space(space)
        self.latent = _positive_int("latent", latent)
        self.hidden = _positive_int("hidden", hidden)
        self.layers = _positive_int("layers", layers)
        self.layouts = layouts(self.space)
        self.encoders = nn.ModuleDict({cell: _CellEncoder(layout, hidden, latent, layers)
                                       for cell, layout in self.layouts.items()})
        self.decoders = nn.ModuleDict({cell: _CellDecoder(layout, hidden, latent)
                                       for cell, layout in self.layouts.items()})

    def __repr__(self) -> str:
        return (f"ArchVGAE(space={self.space.name!r}, latent={self.latent}, hidden={self.hidden}, "
                f"layers={self.layers})")

    def config(self) -> dict[str, Any]:
        """What :func:`load` needs to rebuild the model: space name, latent, hidden and layers."""
        return {"space": self.space.name, "latent": self.latent, "hidden": self.hidden, "layers": self.layers}

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        return next(self.parameters()).device

    def encode(self, indices: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(mu, logvar)``, each ``{cell: [batch, latent]}``, of encoded cells."""
        mu, logvar = {}, {}
        for cell, layout in self.layouts.items():
            if cell not in indices:
                raise SpaceError(f"encoded architecture lacks cell {cell!r} of space {self.space.name!r}")
            tensor = indices[cell]
            if tensor.dim() != 2 or tensor.shape[1] != layout.num_edges:
                raise SpaceError(f"encoded cell {cell!r} must have shape [batch, {layout.num_edges}], "
                                 f"got {list(tensor.shape)}")
            if tensor.numel() and not (DROPPED <= int(tensor.min()) and int(tensor.max()) < layout.num_ops):
                raise SpaceError(f"encoded cell {cell!r} holds op columns {int(tensor.min())}..{int(tensor.max())}; "
                                 f"allowed: 0..{layout.num_ops - 1} or {DROPPED} (dropped edge)")
            mu[cell], logvar[cell] = self.encoders[cell](tensor.to(self.device))
        return mu, logvar

    def embed(self, batch: Sequence[Choices]) -> dict[str, torch.Tensor]:
        """The mean latent ``{cell: [len(batch), latent]}`` of architectures given as choices."""
        with torch.no_grad():
            return self.encode(encode(self.space, batch))[0]

    def decode_logits(self, z: Latent) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(op logits {cell: [..., edges, ops]}, input scores {cell: [..., edges]})`` of latents ``z``
        (input scores only for cells that choose their inputs)."""
        self._check_latent(z)
        ops, inputs = {}, {}
        for cell in self.layouts:
            ops[cell], scores = self.decoders[cell](z[cell])
            if scores is not None:
                inputs[cell] = scores
        return ops, inputs

    def _check_latent(self, z: Latent) -> None:
        for cell in self.layouts:
            if cell not in z:
                raise SpaceError(f"latent lacks cell {cell!r}; space {self.space.name!r} needs "
                                 f"{', '.join(self.layouts)}")
            if z[cell].dim() < 1 or z[cell].shape[-1] != self.latent:
                raise SpaceError(f"latent of cell {cell!r} must have shape [..., {self.latent}], "
                                 f"got {list(z[cell].shape)}")

    def decode_to_indices(self, z: Latent) -> dict[str, torch.Tensor]:
        """The decoded cells of latents ``z`` (``{cell: [..., latent]}``) as ``{cell: LongTensor [..., edges]}``."""
        ops, inputs = self.decode_logits(z)
        return {cell: decode_indices(layout, ops[cell], inputs.get(cell)) for cell, layout in self.layouts.items()}

    def decode(self, z: Latent) -> list[dict[str, dict[int, str]]]:
        """The architectures (as choices, valid by construction) of latents ``{cell: [batch, latent]}``;
        a single latent ``[latent]`` per cell gives a list of one."""
        self._check_latent(z)
        z = {cell: value.unsqueeze(0) if value.dim() == 1 else value for cell, value in z.items()}
        with torch.no_grad():
            return to_choices(self.space, {cell: t.cpu() for cell, t in self.decode_to_indices(z).items()})

    def reconstruct(self, batch: Sequence[Choices]) -> list[dict[str, dict[int, str]]]:
        """``batch`` decoded from the mean of its latent (a perfect autoencoder returns ``batch``)."""
        return self.decode(self.embed(batch))

    def loss(self, indices: Mapping[str, torch.Tensor], *, kl_weight: float = 0.005,
             generator: Optional[torch.Generator] = None) -> dict[str, torch.Tensor]:
        """``{"loss", "recon", "kl"}`` of a batch of encoded cells; ``z`` is drawn with ``generator``."""
        mu, logvar = self.encode(indices)
        recon = kl = torch.zeros((), device=self.device)
        for cell, layout in self.layouts.items():
            noise = torch.randn(mu[cell].shape, generator=generator, device=mu[cell].device)
            z = mu[cell] + noise * torch.exp(0.5 * logvar[cell])
            ops, scores = self.decoders[cell](z)
            recon = recon + reconstruction_loss(layout, indices[cell].to(self.device), ops, scores)
            kl = kl + (-0.5 * (1 + logvar[cell] - mu[cell] ** 2 - logvar[cell].exp()).sum(-1)).mean()
        return {"loss": recon + kl_weight * kl, "recon": recon, "kl": kl}


def reconstruction_loss(layout: CellLayout, target: torch.Tensor, op_logits: torch.Tensor,
                        input_logits: Optional[torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of the decoder's logits against encoded cells ``target`` ``[batch, edges]``, summed over
    edges (and input-choosing nodes), averaged over the batch (see the module docstring)."""
    batch = target.shape[0]
    logits = masked_op_logits(layout, op_logits).reshape(-1, layout.num_ops)
    loss = F.cross_entropy(logits, target.reshape(-1), ignore_index=DROPPED, reduction="sum") / batch
    inputs = layout.inputs_per_node
    if input_logits is not None and inputs is not None:
        kept = (target != DROPPED).to(input_logits.dtype)
        for incoming in layout.node_edges:
            if len(incoming) > inputs:
                edges = list(incoming)
                log_p = F.log_softmax(input_logits[:, edges], dim=-1)
                loss = loss - (kept[:, edges] / inputs * log_p).sum() / batch
    return loss


def relaxed_weights(model: ArchVGAE, z: Latent) -> dict[str, torch.Tensor]:
    """Straight-through architecture weights of latents ``z`` (``{cell: [..., latent]}``, e.g. one
    ``[latent]`` vector per cell that requires grad): ``{cell: [..., edges, ops]}`` in the order of
    ``space.edges(cell)`` and ``space.edge_ops(cell, e)`` (the supernet's ``arch_weights`` layout).

    Values are exactly the one-hot decoded cell (rows of dropped DARTS edges all zero); gradients are those
    of ``p = softmax(masked op logits)`` and, for DARTS-like cells, of the input-selection gate (module
    docstring).
    """
    ops, inputs = model.decode_logits(z)
    out = {}
    for cell, layout in model.layouts.items():
        p = F.softmax(masked_op_logits(layout, ops[cell]), dim=-1)
        hard = F.one_hot(best_ops(layout, ops[cell]), layout.num_ops).to(p.dtype)
        weights = hard + (p - p.detach())
        kept_inputs = layout.inputs_per_node
        if kept_inputs is not None:
            scores = inputs[cell]
            keep = kept_edges(layout, scores.detach(), scores.shape[:-1]).to(p.dtype)
            soft = torch.ones_like(scores)
            for incoming in layout.node_edges:
                if len(incoming) > kept_inputs:
                    edges = list(incoming)
                    soft[..., edges] = kept_inputs * F.softmax(scores[..., edges], dim=-1)
            weights = weights * (keep + (soft - soft.detach())).unsqueeze(-1)
        out[cell] = weights
    return out


# -- training ----------------------------------------------------------------------------------------------
def _training_pool(space: SpaceLike, samples: Union[None, int, Sequence[Choices]],
                   seed: int) -> list[dict[str, dict[int, str]]]:
    """Distinct training architectures: every cell of an enumerable space, ``samples`` drawn ones, or the
    given list, de-duplicated in first-seen order."""
    space = resolve_space(space)
    if samples is None:
        try:
            pool: Sequence[Choices] = enumerate_choices(space)
        except SpaceError:
            pool = sample_choices(space, DEFAULT_SAMPLES, seed)
    elif isinstance(samples, int) and not isinstance(samples, bool):
        pool = sample_choices(space, _positive_int("samples", samples), seed)
    elif isinstance(samples, (list, tuple)):
        pool = samples
    else:
        raise ConfigError(f"samples must be None, an integer or a list of choices, got {type(samples).__name__}")
    unique: dict[Any, dict[str, dict[int, str]]] = {}
    for choices in pool:
        unique.setdefault(choices_key(choices), {cell: dict(edges) for cell, edges in choices.items()})
    return list(unique.values())


def evaluate(model: ArchVGAE, batch: Sequence[Choices], *, chunk: int = 4096) -> dict[str, float]:
    """How well ``model`` reconstructs ``batch`` from the mean latent: ``recon_acc`` (share of architectures
    decoded exactly, every cell type equal) and ``edge_acc`` (share of edges with the same op or the same
    dropped state)."""
    if not batch:
        return {"recon_acc": math.nan, "edge_acc": math.nan}
    exact, edges_equal, edges_total = 0, 0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(batch), chunk):
            target = encode(model.space, batch[start:start + chunk])
            decoded = model.decode_to_indices(model.encode(target)[0])
            same = torch.stack([(decoded[cell].cpu() == target[cell]).all(dim=1) for cell in model.layouts], dim=1)
            exact += int(same.all(dim=1).sum())
            for cell in model.layouts:
                edges_equal += int((decoded[cell].cpu() == target[cell]).sum())
                edges_total += target[cell].numel()
    return {"recon_acc": exact / len(batch), "edge_acc": edges_equal / edges_total}


def prior_decodes(model: ArchVGAE, n: int, seed: int) -> dict[str, float]:
    """Decode ``n`` latents drawn from N(0, I) (seeded): ``prior_validity`` (share that the space accepts,
    1.0 by construction) and ``prior_unique`` (share of distinct architectures among them)."""
    if n < 1:
        return {"prior_validity": math.nan, "prior_unique": math.nan}
    generator = torch.Generator().manual_seed(seed)
    z = {cell: torch.randn(n, model.latent, generator=generator).to(model.device) for cell in model.layouts}
    decoded = model.decode(z)
    valid = sum(is_valid(model.space, choices) for choices in decoded)
    return {"prior_validity": valid / n, "prior_unique": len({choices_key(c) for c in decoded}) / n}


def pretrain(space_name: SpaceLike, *, samples: Union[None, int, Sequence[Choices]] = None, epochs: int,
             batch_size: int = 32, lr: float = 1e-3, latent: int = 30, hidden: int = 64, layers: int = 3,
             kl_weight: float = 0.005, holdout: float = 0.0, seed: int = 0, prior_samples: int = 1000,
             device: Union[str, torch.device] = "cpu",
             progress: Optional[Callable[[dict[str, float]], None]] = None) -> tuple[ArchVGAE, dict[str, float]]:
    """Train an :class:`ArchVGAE` on the cells of ``space_name``; return it (in eval mode) and its metrics.

    Training cells: ``samples`` None takes every NB201 cell (15,625) or, for other spaces, 20,000 drawn ones;
    an integer draws that many; a list of choices is used as given; duplicates are dropped in each case.
    A ``holdout`` share of them, chosen with ``seed``, is kept out of training. Everything random (initial
    weights, split, batch order, reparameterisation noise) follows ``seed``: the same seed gives
    bit-identical weights on the CPU; the global torch RNG is left as it was. ``progress`` gets
    ``{"epoch", "loss", "recon", "kl", "seconds"}`` after every epoch.

    Metrics: ``train_recon_acc``, ``train_edge_acc``, ``holdout_recon_acc``, ``holdout_edge_acc`` (NaN without
    a holdout) from :func:`evaluate`; ``prior_validity``, ``prior_unique`` from :func:`prior_decodes`
    (``prior_samples`` draws); ``loss``, ``recon``, ``kl`` of the last epoch; ``train_cells``,
    ``holdout_cells``, ``epochs`` and ``seconds`` (training time).
    """
    space = resolve_space(space_name)
    epochs = _positive_int("epochs", epochs, minimum=0)
    batch_size = _positive_int("batch_size", batch_size)
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
        raise ConfigError(f"lr must be a number > 0, got {lr!r}")
    if not isinstance(holdout, (int, float)) or isinstance(holdout, bool) or not 0 <= holdout < 1:
        raise ConfigError(f"holdout must be a share in [0, 1), got {holdout!r}")
    if not isinstance(kl_weight, (int, float)) or isinstance(kl_weight, bool) or not kl_weight >= 0:
        raise ConfigError(f"kl_weight must be a number >= 0, got {kl_weight!r}")

    pool = _training_pool(space, samples, seed)
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    held = round(holdout * len(pool))
    holdout_cells = [pool[i] for i in sorted(order[:held])]
    train_cells = [pool[i] for i in sorted(order[held:])]
    if not train_cells:
        raise ConfigError(f"no training cells left: {len(pool)} distinct cell(s), holdout {holdout}")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ArchVGAE(space, latent=latent, hidden=hidden, layers=layers)
    model.to(device)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    data = {cell: t.to(model.device) for cell, t in encode(space, train_cells).items()}
    last = {"loss": math.nan, "recon": math.nan, "kl": math.nan}
    started = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        totals = {"loss": 0.0, "recon": 0.0, "kl": 0.0}
        permutation = torch.randperm(len(train_cells), generator=shuffle).to(model.device)
        for start in range(0, len(train_cells), batch_size):
            rows = permutation[start:start + batch_size]
            parts = model.loss({cell: t[rows] for cell, t in data.items()}, kl_weight=kl_weight, generator=generator)
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            optimizer.step()
            for key in totals:
                totals[key] += float(parts[key].detach()) * len(rows)
        last = {key: value / len(train_cells) for key, value in totals.items()}
        if progress is not None:
            progress({"epoch": epoch + 1, **last, "seconds": time.perf_counter() - started})
    seconds = time.perf_counter() - started
    model.eval()

    train_metrics = evaluate(model, train_cells)
    held_metrics = evaluate(model, holdout_cells)
    metrics = {f"train_{key}": value for key, value in train_metrics.items()}
    metrics.update({f"holdout_{key}": value for key, value in held_metrics.items()})
    metrics.update(prior_decodes(model, prior_samples, seed))
    metrics.update(last)
    metrics.update({"train_cells": len(train_cells), "holdout_cells": len(holdout_cells), "epochs": epochs,
                    "seconds": seconds})
    return model, metrics


# -- files ---------------------------------------------------------------------------------------------------
def save(model: ArchVGAE, path: Union[str, os.PathLike[str]]) -> None:
    """Write ``model`` (config and weights: plain dicts, strings, ints and tensors) to ``path`` atomically."""
    target = Path(path)
    payload = {"format": FILE_FORMAT, "version": FILE_VERSION, "config": model.config(),
               "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()}}
    torch_save_atomically(payload, target)


def load(path: Union[str, os.PathLike[str]], *, device: Union[str, torch.device] = "cpu") -> ArchVGAE:
    """The model :func:`save` wrote to ``path`` (read with ``weights_only=True``), in eval mode."""
    if not Path(path).is_file():
        raise ConfigError(f"E2NAS autoencoder file {str(path)!r} does not exist; write one with raynas.e2nas.save")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a file that is not a torch file
        raise ConfigError(f"{str(path)!r} is not a readable E2NAS autoencoder file: {error}".splitlines()[0]) from error
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise ConfigError(f"{str(path)!r} is not an E2NAS autoencoder file (format {FILE_FORMAT!r} expected)")
    if payload.get("version") != FILE_VERSION:
        raise ConfigError(f"{str(path)!r} has autoencoder file version {payload.get('version')!r}; "
                          f"this raynas reads version {FILE_VERSION}")
    config = payload.get("config")
    needed = ("space", "latent", "hidden", "layers")
    if not isinstance(config, dict) or any(key not in config for key in needed) or "state_dict" not in payload:
        raise ConfigError(f"{str(path)!r} lacks the autoencoder config ({', '.join(needed)}) or its weights")
    model = ArchVGAE(config["space"], latent=config["latent"], hidden=config["hidden"], layers=config["layers"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise ConfigError(f"{str(path)!r}: weights do not fit the saved config {config}: "
                          f"{str(error).splitlines()[0]}") from error
    return model.to(device).eval()
