"""One selection decision's candidate evaluations on long-lived Ray actors (``selection.workers`` > 1).

A perturbation decision (:mod:`raynas.selection.perturbation`; sampling's one decision too) evaluates the
supernet on the architecture split once per candidate architecture weights, with the supernet's weights
frozen. :class:`ParallelEvaluator` (an ``Evaluate``) splits that work over ``selection.workers``
:class:`SelectionWorker` actors and returns ``(mean loss, accuracy)`` per candidate, in candidate order.

**Units.** The work of one call is the grid of units ``(candidate, batch)``: C candidates times the B
batches that ``Search.eval_loader`` gives (the split in order, ``search.batch_size`` a batch, capped at
``selection.eval_batches``). Units are independent because no statistic crosses a batch: BatchNorm uses
each batch's own statistics with running statistics untouched (``selection.batch_stats``, the default), or
the running statistics (eval mode). A unit's result is its batch's ``(summed loss, correct, samples)``
(:func:`raynas.supernet.evaluation.batch_sums`, the loop body of
:func:`raynas.supernet.evaluation.evaluation_sums`), and :func:`combine` adds them up per candidate in batch
order from 0.0, as that function does. So the results equal the sequential path's (``Search.evaluate`` in
the trial's process), on the CPU bit for bit when the workers' torch thread count
(``resources.cpus_per_selection_worker``, at least 1) matches the trial's.

**Balance.** Worker ``i`` gets units ``i, i + W, ...`` of the candidate-major list (:func:`assign`): shares
differ by at most one unit and hold an even part of every candidate's batches. Splitting candidates
instead left workers idle (5 candidates on 2 workers: 3 + 2) and so did contiguous unit chunks, because
candidates differ in cost (an op whose weight is zero is skipped, and masking a convolution saves more than
masking a pooling op). One call per worker and decision keeps the per-call cost (entering evaluation mode
clones every BatchNorm buffer) out of the units.

**Long-lived workers.** :class:`ParallelEvaluator` starts its workers on its first call and keeps them until
:meth:`ParallelEvaluator.close` (``Search.close``). Each builds the supernet once and keeps the split's
evaluation batches on its device (the split is put in the object store once). The supernet's weights travel
only when they changed since the last call (fine-tuning between rounds; never between the calls of one
round), packed into one flat tensor per dtype (:func:`pack_state`: a DARTS supernet's state has over 1,600
tensors, whose one-by-one serialisation took about a second per call here); the candidates' architecture
weights, a few hundred numbers each, go with every call. The trial's process only packs, splits and
combines.

**Placement.** Inside a Tune trial whose resources come from :func:`raynas.tune.resources.trial_resources`,
worker ``i`` runs in bundle ``1 + i`` of the trial's placement group (bundle 0 is the trial's own process)
and holds it for its lifetime; elsewhere (tests, tools) a worker asks Ray for ``cpus_per_selection_worker``
CPUs and ``gpus_per_selection_worker`` GPUs directly, also for its lifetime. Like :mod:`raynas.actors` for
its actors, this module is the only code that calls ``.remote()`` on :class:`SelectionWorker`. Importing it
imports torch, not Ray.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, NamedTuple, Optional, Sequence

import torch
from torch.utils.data import Dataset

from raynas.config.schema import ExperimentConfig
from raynas.errors import RaynasError
from raynas.supernet.base import Supernet
from raynas.supernet.evaluation import batch_sums, evaluation_mode

__all__ = ["PackedState", "ParallelEvaluator", "SelectionWorker", "assign", "combine",
           "pack_state", "unpack_state"]

Unit = tuple[int, int]  #: (candidate index, batch index)
Sums = tuple[float, float, float]  #: (summed loss, correct, samples) of one batch


def assign(units: Sequence[Unit], workers: int) -> list[list[Unit]]:
    """Worker ``i``'s share of ``units``: units ``i, i + workers, ...``, round robin so that every worker gets
    an even part of every candidate's batches (fewer shares than workers when units are few)."""
    return [list(units[i::workers]) for i in range(min(workers, len(units)))]


def eval_batch_count(cfg: ExperimentConfig, val: Dataset) -> int:
    """How many batches one evaluation pass over ``val`` runs (``Search.eval_loader``, capped)."""
    from raynas.data import EpochLoader

    batches = len(EpochLoader(val, cfg.search.batch_size, shuffle=False, seed=0))
    cap = cfg.selection.eval_batches
    return batches if cap is None else min(batches, int(cap))


def combine(sums: Sequence[Sums], candidates: int, batches: int) -> list[tuple[float, float]]:
    """``(mean loss, accuracy)`` per candidate from the candidate-major units' ``sums``.

    Adds in batch order from 0.0, as :func:`raynas.supernet.evaluation.evaluation_sums` does: the same floats.
    """
    results = []
    for c in range(candidates):
        loss_sum = correct = seen = 0.0
        for loss, right, n in sums[c * batches:(c + 1) * batches]:
            loss_sum += loss
            correct += right
            seen += n
        results.append((loss_sum / max(seen, 1), correct / max(seen, 1)))
    return results


class PackedState(NamedTuple):
    """A state dict as one flat CPU tensor per dtype and its layout (key, dtype, shape), in key order."""

    layout: list[tuple[str, torch.dtype, tuple[int, ...]]]
    flat: dict[str, torch.Tensor]

    def equals(self, other: Optional["PackedState"]) -> bool:
        """Whether ``other`` holds the same keys, shapes and values (NaN never equals: such a state is resent)."""
        return (other is not None and self.layout == other.layout and self.flat.keys() == other.flat.keys()
                and all(torch.equal(v, other.flat[k]) for k, v in self.flat.items()))


def pack_state(state: dict[str, torch.Tensor]) -> PackedState:
    """``state``'s tensors concatenated per dtype (copies, on the CPU).

    One object to serialise instead of every small tensor of a supernet (a DARTS one has over 1,600): putting
    and getting the plain dict took about half a second each way here, the packed one a few milliseconds
    (packing about 30 ms).
    """
    layout = [(key, value.dtype, tuple(value.shape)) for key, value in state.items()]
    flat = {}
    for dtype in dict.fromkeys(dtype for _, dtype, _ in layout):
        parts = [value.detach().reshape(-1) for value in state.values() if value.dtype == dtype]
        flat[str(dtype)] = torch.cat(parts).cpu()
    return PackedState(layout, flat)


def unpack_state(packed: PackedState) -> dict[str, torch.Tensor]:
    """The state dict of :func:`pack_state`'s result (views into its flat tensors)."""
    offsets = dict.fromkeys(packed.flat, 0)
    state = {}
    for key, dtype, shape in packed.layout:
        name, size = str(dtype), math.prod(shape)
        state[key] = packed.flat[name][offsets[name]:offsets[name] + size].view(shape)
        offsets[name] += size
    return state


class SelectionWorker:
    """A supernet replica in a Ray actor that evaluates units with the weights it was last sent.

    Built from the trial's config: torch threads ``resources.cpus_per_selection_worker`` (at least 1), device
    ``pick_device(search.device)``, the ``val`` split's evaluation batches kept on that device.
    """

    def __init__(self, cfg: ExperimentConfig, num_classes: int, in_channels: int, val: Dataset) -> None:
        from raynas.data import EpochLoader
        from raynas.runtime import pick_device
        from raynas.supernet.build import build_supernet

        torch.set_num_threads(max(1, int(cfg.resources.cpus_per_selection_worker)))
        self.device = pick_device(cfg.search.device)
        self.batch_stats = cfg.selection.batch_stats
        self.model = build_supernet(cfg, num_classes, in_channels).to(self.device)
        loader = EpochLoader(val, cfg.search.batch_size, shuffle=False, seed=0)
        self.batches = [(x.to(self.device), y.to(self.device))
                        for x, y in itertools.islice(loader.epoch(0), cfg.selection.eval_batches)]

    def load(self, state: PackedState) -> None:
        """Take the supernet weights ``state`` (a packed network ``state_dict``)."""
        self.model.load_state_dict(unpack_state(state))

    def evaluate(self, candidates: dict[int, dict[str, torch.Tensor]], units: Sequence[Unit]) -> list[Sums]:
        """``(summed loss, correct, samples)`` of each unit; ``candidates`` maps the units' candidate indices
        to architecture weights."""
        on_device = {c: {cell: w.to(self.device) for cell, w in weights.items()} for c, weights in candidates.items()}
        with evaluation_mode(self.model, batch_stats=self.batch_stats):
            return [batch_sums(self.model, *self.batches[b], on_device[c]) for c, b in units]


class ParallelEvaluator:
    """Evaluates one decision's candidates on ``cfg.selection.workers`` :class:`SelectionWorker` actors (an
    ``Evaluate``).

    ``val`` is the architecture split (``Search.data.val``); ``num_classes`` and ``in_channels`` size the
    supernet. Needs an initialised Ray (a Tune trial has one) from the first call on; :meth:`close` kills the
    workers (idempotent; a later call starts new ones).
    """

    def __init__(self, cfg: ExperimentConfig, val: Dataset, *, num_classes: int, in_channels: int) -> None:
        self.cfg = cfg
        self.val = val
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        self.workers = int(cfg.selection.workers)
        self.num_batches = eval_batch_count(cfg, val)
        self._actors: list[Any] = []
        self._loaded: Optional[PackedState] = None  #: what every worker holds

    def __call__(self, model: Supernet, candidates: Sequence[dict[str, torch.Tensor]]
                 ) -> list[tuple[float, float]]:
        """``(mean loss, accuracy)`` of ``model`` with each of ``candidates``' weights, in candidate order."""
        from raynas.actors.calls import gather

        if not candidates or not self.num_batches:
            return [(0.0, 0.0)] * len(candidates)
        actors = self.start()
        with torch.no_grad():
            state = pack_state(model.network_state_dict())
            on_cpu = [{cell: w.detach().cpu() for cell, w in weights.items()} for weights in candidates]
        loads = self._send(state)
        units = [(c, b) for c in range(len(on_cpu)) for b in range(self.num_batches)]
        shares = assign(units, len(actors))
        calls = [actor.evaluate.remote({c: on_cpu[c] for c, _ in share}, share) for actor, share in zip(actors, shares)]
        parts = gather([*loads, *calls])[len(loads):]
        self._loaded = state
        sums = dict(zip(itertools.chain(*shares), itertools.chain(*parts)))
        return combine([sums[unit] for unit in units], len(on_cpu), self.num_batches)

    def _send(self, state: PackedState) -> list[Any]:
        """Have every worker load ``state`` unless it holds it already (fine-tuning changes the weights between
        rounds, not between a round's calls); the refs of those calls."""
        import ray

        if state.equals(self._loaded):
            return []
        state_ref = ray.put(state)
        return [actor.load.remote(state_ref) for actor in self._actors]  # an actor runs our calls in order

    def start(self) -> list[Any]:
        """The worker actors, started (and the split put in the object store) on the first call."""
        if self._actors:
            return self._actors
        import ray

        from raynas.actors.calls import spawn_in_bundles
        from raynas.tune.resources import selection_worker_bundles

        if not ray.is_initialized():
            raise RaynasError(f"selection.workers = {self.workers} runs Ray actors but Ray is not initialised: "
                              "call ray.init first, or set selection.workers = 1")
        res = self.cfg.resources
        val_ref = ray.put(self.val)
        self._actors = spawn_in_bundles(
            SelectionWorker, [(self.cfg, self.num_classes, self.in_channels, val_ref)] * self.workers,
            num_cpus=res.cpus_per_selection_worker, num_gpus=res.gpus_per_selection_worker,
            bundles=selection_worker_bundles(self.cfg),
            needs=f"{self.workers} selection workers need {self.workers + 1} (one per worker after the trial's own)")
        return self._actors

    def close(self) -> None:
        """Kill the workers (they hold their CPUs, or their placement-group bundles, until then)."""
        from raynas.actors.calls import kill_actors

        actors, self._actors, self._loaded = self._actors, [], None
        kill_actors(actors)
