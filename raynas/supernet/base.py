"""The weight-sharing supernet of a differentiable cell search (Liu et al., DARTS, ICLR 2019).

Every edge of a search cell holds all candidate ops of its space in a :class:`MixedOp`, whose output is the
sum of the ops' outputs weighted by the edge's row of the *architecture weights*. The architecture
parameters (``alphas``, one ``[edges, ops]`` matrix per cell type) are registered parameters of the
:class:`Supernet`, so a data-parallel wrapper all-reduces their gradients together with the weights'; the
search tells them apart with :meth:`Supernet.arch_parameters` and :meth:`Supernet.weight_parameters`.

A caller may pass its own architecture weights to ``forward``: a one-hot matrix from
:func:`discrete_weights` evaluates a discrete architecture with the inherited supernet weights, and ops whose
weight is exactly zero are then not run at all (see :class:`MixedOp`).
"""

from __future__ import annotations

import numbers
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, Optional, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from raynas.errors import ConfigError, SpaceError
from raynas import lean
from raynas.lean import LeanBatchNorm2d
from raynas.ops import POOLING_OPS, Zero, make_op

if TYPE_CHECKING:
    from raynas.spaces.base import Choices, SearchSpace
    from raynas.spaces.genotype import Genotype
    from raynas.supernet.projection import Projection

ArchWeights = Mapping[str, torch.Tensor]


class ArchParameterization(Protocol):
    """What a supernet needs of an architecture parameterisation that replaces its alphas (:meth:`Supernet.
    use_latent`; E2NAS' :class:`raynas.e2nas.latent.LatentArchitecture` is one). The supernet knows only this,
    so it does not depend on the method that brings the parameterisation."""

    #: run every mixed op single-path (GDAS' forward, :class:`MixedOp`)
    single_path: bool

    def parameters_in_order(self) -> list[nn.Parameter]:
        """The architecture parameters, in the order of the space's cell types."""
        ...

    def weights(self) -> dict[str, torch.Tensor]:
        """The architecture weights of each cell type (differentiable with respect to the parameters)."""
        ...

    def derived_genotype(self, *, skip_disconnected: bool = True) -> "Genotype":
        """The discrete cell the parameterisation stands for."""
        ...

    def probabilities(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per cell type, the op logits the parameterisation decodes and their softmax (the architecture
        table's ``alpha`` and ``weight``)."""
        ...

    #: what the parameterisation was built from (E2NAS: its autoencoder's hash), kept in a search's state
    autoencoder_hash: str

    def check_autoencoder(self, saved_hash: str) -> None:
        """Refuse a saved state built from another source than this parameterisation's."""
        ...


class MixedOp(nn.Module):
    """All candidate ops of one edge; ``forward(x, w)`` returns ``sum_i w[i] * op_i(x)``.

    ``pool_bn`` follows each pooling op with a non-affine BatchNorm, as the DARTS search network does (the
    NAS-Bench-201 one does not). An op whose weight is exactly zero is skipped only when skipping cannot
    change any gradient: autograd is off, or ``w`` does not require grad (the skipped term is ``0 * op(x)``,
    whose gradient with respect to the op's parameters is zero; such parameters then get no ``.grad``
    instead of a zero one, and their BatchNorm running statistics are not updated). The computed function
    is the same either way.

    Two savings that leave every value and gradient the same: ``none`` is never run (its term is zero and
    the gradient of its weight is exactly zero, which autograd gives the unused entry of ``w`` anyway), so
    neither its zeros nor their product are kept for the backward pass; and the ops that begin with a ReLU
    (separable, dilated and ReLU-Conv-BN convolutions) share one ``relu(x)`` instead of each keeping its own.
    A cell shares it further, over every edge leaving the same node (``relu_of``, :func:`run_cell_edges`).

    ``single_path`` is GDAS' forward (Dong & Yang, CVPR 2019), for straight-through weights whose values are
    one-hot: only the ops with a non-zero weight run, even when ``w`` requires grad, and every other op's
    term ``w[i] * op_i(x)`` is replaced by ``w[i]`` itself (zero in value, broadcast over the output), so
    that weight still gets a gradient, the sum of the output's gradient, without its op running.
    """

    def __init__(self, op_names: Sequence[str], C: int, stride: int, *, affine: bool = False,
                 pool_bn: bool = False) -> None:
        super().__init__()
        self.op_names = tuple(op_names)
        self.stride = stride
        ops = []
        for name in self.op_names:
            op = make_op(name, C, stride, affine)
            if pool_bn and name in POOLING_OPS:
                op = nn.Sequential(op, LeanBatchNorm2d(C, affine=False))
            ops.append(op)
        self.ops = nn.ModuleList(ops)
        #: per op: it contributes nothing (``none``), so even a training pass skips it
        self.always_zero = tuple(isinstance(op, Zero) for op in ops)
        #: per op: it starts with a ReLU and can take the shared ``relu(x)`` (:class:`raynas.ops.ReLUFirst`)
        self.relu_first = tuple(getattr(op, "takes_relu_input", False) for op in ops)
        #: per op: a pooling op without BatchNorm, recomputed from ``x`` in the backward pass (:mod:`raynas.lean`)
        self.cheap_output = tuple(isinstance(op, (nn.AvgPool2d, nn.MaxPool2d)) for op in ops)

    def forward(self, x: torch.Tensor, w: torch.Tensor, active: Optional[Sequence[bool]] = None,
                single_path: bool = False,
                relu_of: Optional[Callable[[], torch.Tensor]] = None) -> torch.Tensor:
        """Weighted sum of the ops on ``x`` with weights ``w`` (shape ``[ops]``); ``single_path``: GDAS'
        forward (class docstring).

        ``active`` (one flag per op) lets a caller that already knows which weights are non-zero spare the
        device synchronisation of looking them up; it is honoured only when skipping is allowed (always
        with ``single_path``). ``relu_of`` returns ``relu(x)`` computed once for every edge that reads
        ``x`` (called only if an op needs it); without it the edge computes its own.
        """
        if w.shape != (len(self.ops),):
            raise SpaceError(f"edge weights must have shape ({len(self.ops)},), got {tuple(w.shape)}")
        tracked = torch.is_grad_enabled() and w.requires_grad
        if tracked and not single_path:
            active = None
        elif active is None:
            active = (w != 0).tolist()
        out: Optional[torch.Tensor] = None
        relu_x: Optional[torch.Tensor] = None
        stand_ins: list[int] = []  # single path: ops whose weight stands in for their output
        for i, op in enumerate(self.ops):
            if single_path and tracked and active is not None and not active[i]:
                stand_ins.append(i)
                continue
            if self.always_zero[i] or (active is not None and not active[i]):
                continue
            if self.relu_first[i]:
                if relu_x is None:
                    relu_x = F.relu(x) if relu_of is None else relu_of()
                y = op(relu_x, relu_done=True)
            else:
                y = op(x)
            if self.cheap_output[i] and (lean.applies(y) or lean.applies(w)):  # keep x, not the pooled output
                with lean.recompute_saved(x, op, lambda t: t is y):  # noqa: B023 (used in this iteration only)
                    term = w[i] * y
            else:
                term = w[i] * y
            out = term if out is None else out + term
        if out is None:  # a dropped edge: zeros of the output shape (every op rounds odd sizes up)
            out = x[:, :, :: self.stride, :: self.stride].mul(0.0)
        if stand_ins:
            out = out + w[stand_ins].sum()
        return out


@contextmanager
def kept_batchnorm_statistics(module: nn.Module) -> Iterator[None]:
    """Restore the running statistics of ``module``'s BatchNorm layers on leaving the block."""
    saved = [(m, {k: v.clone() for k, v in m.named_buffers(recurse=False)})
             for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers in saved:
                for key, value in buffers.items():
                    getattr(m, key).copy_(value)


def run_cell_edges(edges: Sequence[tuple[int, int]], mixed: nn.ModuleList, states: dict[int, torch.Tensor],
                   w: torch.Tensor, active: Optional[list[list[bool]]] = None,
                   single_path: bool = False) -> dict[int, torch.Tensor]:
    """Evaluate a search cell: each node is the sum of its incoming mixed ops (``single_path``: GDAS'
    forward on every edge, see :class:`MixedOp`).

    ``states`` holds the input nodes; ``edges`` are ``(src, dst)`` pairs in node-major order, so every
    source node is complete before an edge reads it. Returns every node's tensor, inputs included.

    The edges leaving one node share its ``relu(x)``: computed, kept for the backward pass and
    differentiated once per node instead of once per edge (the same values; the gradients differ only in
    the order their sums are taken).
    """
    states = dict(states)
    sums: dict[int, torch.Tensor] = {}
    relus: dict[int, torch.Tensor] = {}

    def relu_of(node: int) -> torch.Tensor:
        if node not in relus:
            relus[node] = F.relu(states[node])
        return relus[node]

    for e, (src, dst) in enumerate(edges):
        if src not in states:
            states[src] = sums.pop(src)
        out = mixed[e](states[src], w[e], None if active is None else active[e], single_path,
                       relu_of=lambda node=src: relu_of(node))
        sums[dst] = out if dst not in sums else sums[dst] + out
    states.update(sums)
    return states


def check_size(**sizes: int) -> None:
    """Raise :class:`ConfigError` unless every given network size is a positive int."""
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"supernet {name} must be a positive integer, got {value!r}")


class Supernet(nn.Module):
    """Base class of the supernets: architecture parameters plus a network built by a subclass.

    ``alphas`` maps each cell type of ``space`` to a parameter of shape ``space.arch_shape(cell)``, drawn
    as ``1e-3 * randn`` from torch's global generator (the caller's ``torch.manual_seed`` decides).
    Subclasses build their layers and implement :meth:`features`; ``self.classifier`` maps features to
    logits.
    """

    classifier: nn.Module

    def __init__(self, space: "SearchSpace") -> None:
        super().__init__()
        self.space = space
        self.alphas = nn.ParameterDict({
            cell: nn.Parameter(1e-3 * torch.randn(*space.arch_shape(cell))) for cell in space.cell_types
        })
        #: rows fixed by a selection stage (:class:`raynas.supernet.projection.Projection`); None: none fixed
        self.projection: Optional["Projection"] = None
        #: E2NAS' latent parameterisation (:meth:`use_latent`); None: the alphas are the architecture parameters
        self.latent: Optional[ArchParameterization] = None
        #: every mixed op runs GDAS' forward (:class:`MixedOp`): one op per edge also when the architecture
        #: weights require grad (E2NAS' released estimator sets it through :meth:`use_latent`)
        self.single_path = False
        #: inside :meth:`frozen_architecture`: :meth:`arch_weights` are detached
        self.architecture_frozen = False
        #: activation checkpointing: the first this many blocks of ``cells`` recompute their activations in
        #: the backward pass instead of keeping them (:meth:`run_block`)
        self.checkpoint_cells = 0

    @contextmanager
    def frozen_architecture(self) -> Iterator[None]:
        """Within this block :meth:`arch_weights` returns detached weights: a weight step's forward then keeps
        no op output for the architecture gradient it would throw away and computes none of it (the loss
        and the weights' gradients are unchanged)."""
        previous, self.architecture_frozen = self.architecture_frozen, True
        try:
            yield
        finally:
            self.architecture_frozen = previous

    @contextmanager
    def frozen_weights(self) -> Iterator[None]:
        """Within this block the network's weights (:meth:`weight_parameters`) do not require grad: an
        architecture step's forward then keeps no tensor that only a weight gradient needs (a convolution's
        input, which :mod:`raynas.lean` would otherwise recompute in the backward pass) and records no graph
        for the layers before the first architecture weight. The loss and the architecture gradient are
        unchanged; the weights' ``.grad`` are left as they are."""
        frozen = [p for p in self.weight_parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in frozen:
                p.requires_grad_(True)

    def use_latent(self, latent: ArchParameterization) -> None:
        """Make ``latent`` (E2NAS' decoded latent vectors) the architecture parameterisation: from now on
        :meth:`arch_parameters` are its latents and :meth:`arch_weights` its decoded straight-through weights,
        run single-path when the latent's estimator asks for it (``latent.single_path``).
        The alphas stay registered (unused), so a state dict keeps its keys."""
        self.latent = latent
        self.single_path = bool(getattr(latent, "single_path", False))

    def network_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict without E2NAS' latent: what a plain supernet of the same space and size loads
        (teacher snapshots, selection workers); they run with architecture weights passed in."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("latent.")}

    def run_block(self, index: int, block: nn.Module, *args: object) -> torch.Tensor:
        """``block(*args)`` for the ``index``-th entry of ``cells``, checkpointed when ``index`` is below
        :attr:`checkpoint_cells` and autograd records the pass.

        A checkpointed block keeps only its inputs; the backward pass runs it again (with the same RNG state)
        to get the activations it needs, so values and gradients are those of the plain pass. Its BatchNorm
        running statistics are restored after that second forward so that they are updated once, as in the
        plain pass.
        """
        if index >= self.checkpoint_cells or not torch.is_grad_enabled():
            return block(*args)

        def plain_block(*inputs: object) -> torch.Tensor:
            with lean.disabled():  # the recomputation must save what the first pass saved
                return block(*inputs)

        return checkpoint(plain_block, *args, use_reentrant=False,
                          context_fn=lambda: (nullcontext(), kept_batchnorm_statistics(block)))

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters, in the order of ``space.cell_types`` (E2NAS: the latents)."""
        if self.latent is not None:
            return self.latent.parameters_in_order()
        return [self.alphas[cell] for cell in self.space.cell_types]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except the architecture parameters (and unused alphas), in registration order."""
        arch = {id(p) for p in self.alphas.values()} | {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def arch_weights(self) -> dict[str, torch.Tensor]:
        """Softmax of each cell's alphas over the op axis (differentiable with respect to the alphas), or the
        latent's decoded weights, with the rows fixed by :attr:`projection` (if any) replaced."""
        if self.latent is not None:
            weights = self.latent.weights()
        else:
            weights = {cell: F.softmax(self.alphas[cell], dim=-1) for cell in self.space.cell_types}
        weights = weights if self.projection is None else self.projection.apply(weights)
        if self.architecture_frozen:
            return {cell: w.detach() for cell, w in weights.items()}
        return weights

    def resolve_weights(self, weights: Optional[ArchWeights]) -> dict[str, torch.Tensor]:
        """``weights`` checked against the space, or :meth:`arch_weights` when ``weights`` is None."""
        if weights is None:
            return self.arch_weights()
        missing = [cell for cell in self.space.cell_types if cell not in weights]
        if missing:
            raise SpaceError(f"architecture weights lack cell(s) {', '.join(missing)}; "
                             f"need {', '.join(self.space.cell_types)}")
        out = {}
        for cell in self.space.cell_types:
            shape = tuple(self.space.arch_shape(cell))
            if tuple(weights[cell].shape) != shape:
                raise SpaceError(f"architecture weights of cell {cell!r} must have shape {shape}, "
                                 f"got {tuple(weights[cell].shape)}")
            out[cell] = weights[cell]
        return out

    def active_ops(self, w: torch.Tensor) -> Optional[list[list[bool]]]:
        """Per edge and op whether its weight is non-zero, when zero-weight ops may be skipped (always with
        :attr:`single_path`); else None.

        One device-to-host copy per cell instead of one per edge.
        """
        if torch.is_grad_enabled() and w.requires_grad and not self.single_path:
            return None
        return (w != 0).tolist()

    def features(self, x: torch.Tensor, weights: Optional[ArchWeights] = None) -> torch.Tensor:
        """Penultimate features ``[batch, channels]`` after global pooling."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, weights: Optional[ArchWeights] = None) -> torch.Tensor:
        """Logits for ``x``; ``weights`` maps cell -> ``[edges, ops]`` (None: :meth:`arch_weights`)."""
        return self.classifier(self.features(x, weights))


def discrete_weights(space: "SearchSpace", choices: "Choices", device: Optional[torch.device] = None,
                     dtype: Optional[torch.dtype] = None) -> dict[str, torch.Tensor]:
    """One-hot architecture weights of a discrete choice ``{cell: {edge_index: op_name}}``.

    The row of a chosen edge is one-hot at its op; the row of an edge absent from the choice is all zeros
    (the edge is dropped). Every cell type of the space must be present.
    """
    out = {}
    for cell in space.cell_types:
        if cell not in choices:
            raise SpaceError(f"choices lack cell {cell!r}; need {', '.join(space.cell_types)}")
        n_edges, n_ops = space.arch_shape(cell)
        w = torch.zeros(n_edges, n_ops, device=device, dtype=dtype)
        for edge, op in choices[cell].items():
            if isinstance(edge, bool) or not isinstance(edge, numbers.Integral) or not 0 <= edge < n_edges:
                raise SpaceError(f"cell {cell!r} has no edge {edge!r}; valid: 0..{n_edges - 1}")
            names = space.edge_ops(cell, edge)
            if op not in names:
                raise SpaceError(f"edge {edge} of cell {cell!r} has no op {op!r}; valid: {', '.join(names)}")
            w[int(edge), names.index(op)] = 1.0
        out[cell] = w
    unknown = sorted(set(choices) - set(space.cell_types))
    if unknown:
        raise SpaceError(f"choices name unknown cell(s) {', '.join(unknown)}; valid: {', '.join(space.cell_types)}")
    return out
