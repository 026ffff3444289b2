"""One selection decision's candidate evaluations as parallel Ray tasks (``selection.workers`` > 1).

A perturbation decision (:mod:`raynas.selection.perturbation`) evaluates the supernet on the architecture
split once per candidate architecture weights, with the supernet's weights frozen: the evaluations are
independent of each other. :class:`TaskEvaluator` runs them as ``selection.workers`` Ray tasks, each over a
contiguous chunk of the candidates, and returns ``(mean loss, accuracy)`` per candidate in candidate order.

Why tasks and not actors: a task needs nothing from an earlier decision. Each call puts the supernet's
weights (its CPU ``state_dict``) and the candidates' weights in the object store once, and every task of
that call reads them from there; the validation split is put once per evaluator. A task rebuilds the
supernet the way :class:`raynas.search.Search` does, loads the weights and runs
:func:`raynas.search.evaluation_sums` over the same batches as ``Search.eval_loader`` (the split in order,
``search.batch_size`` a batch, capped at ``selection.eval_batches``), so the results equal those of the
sequential path (``Search.evaluate`` in the trial's process): on the CPU bit for bit when the task's torch
thread count (``resources.cpus_per_selection_worker``, at least 1) matches the trial's.

Inside a Tune trial whose resources come from :func:`raynas.tune.resources.trial_resources`, chunk ``i``'s
task runs in bundle ``1 + i % workers`` of the trial's placement group (bundle 0 is the trial's own
process); elsewhere (tests, tools) the tasks ask Ray for ``cpus_per_selection_worker`` CPUs and
``gpus_per_selection_worker`` GPUs directly. Importing this module imports torch, not Ray.
"""

from __future__ import annotations

import itertools
from typing import Any, Optional, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from raynas.config import ExperimentConfig
from raynas.errors import RaynasError

__all__ = ["TaskEvaluator", "chunk_bounds", "evaluate_chunk"]


def chunk_bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of at most ``parts`` contiguous, non-empty chunks covering ``range(n)``, sizes within one."""
    parts = max(1, min(int(parts), n))
    if n <= 0:
        return []
    size, extra = divmod(n, parts)
    bounds, start = [], 0
    for i in range(parts):
        stop = start + size + (i < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def evaluate_chunk(cfg: ExperimentConfig, num_classes: int, in_channels: int, val: Dataset,
                   state: dict[str, torch.Tensor], candidates: Sequence[dict[str, torch.Tensor]],
                   start: int, stop: int) -> list[tuple[float, float]]:
    """``(mean loss, accuracy)`` of the supernet with weights ``state`` for ``candidates[start:stop]``.

    The body of one task (callable in-process too). Sets torch's thread count to
    ``resources.cpus_per_selection_worker`` (at least 1) and runs on ``pick_device(search.device)``.
    """
    from raynas.data import EpochLoader
    from raynas.search import build_supernet, evaluation_sums, pick_device

    torch.set_num_threads(max(1, int(cfg.resources.cpus_per_selection_worker)))
    device = pick_device(cfg.search.device)
    model = build_supernet(cfg, num_classes, in_channels)
    model.load_state_dict(state)
    model.to(device)
    loader = EpochLoader(val, cfg.search.batch_size, shuffle=False, seed=0)
    sel = cfg.selection
    results = []
    for weights in candidates[start:stop]:
        on_device = {cell: w.to(device) for cell, w in weights.items()}
        batches = itertools.islice(loader.epoch(0), sel.eval_batches)
        loss_sum, correct, seen = evaluation_sums(model, batches, on_device, device, batch_stats=sel.batch_stats)
        results.append((loss_sum / max(seen, 1), correct / max(seen, 1)))
    return results


class TaskEvaluator:
    """Evaluates one decision's candidates as ``cfg.selection.workers`` Ray tasks (an ``Evaluate``).

    ``val`` is the architecture split (``Search.data.val``); ``num_classes`` and ``in_channels`` size the
    supernet. The split goes into the object store on the first call and stays there for this evaluator's
    lifetime. Needs an initialised Ray (a Tune trial has one).
    """

    def __init__(self, cfg: ExperimentConfig, val: Dataset, *, num_classes: int, in_channels: int) -> None:
        self.cfg = cfg
        self.val = val
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        self.workers = int(cfg.selection.workers)
        self._val_ref: Optional[Any] = None
        self._remote: Optional[Any] = None

    def __call__(self, model: nn.Module, candidates: Sequence[dict[str, torch.Tensor]]
                 ) -> list[tuple[float, float]]:
        """``(mean loss, accuracy)`` of ``model`` with each of ``candidates``' weights, in candidate order."""
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        from raynas.actors import _gather

        if not candidates:
            return []
        if not ray.is_initialized():
            raise RaynasError(f"selection.workers = {self.workers} runs Ray tasks but Ray is not initialised: "
                              "call ray.init first, or set selection.workers = 1")
        group = ray.util.get_current_placement_group()
        if group is not None and len(group.bundle_specs) < self.workers + 1:
            raise RaynasError(f"the trial's placement group has {len(group.bundle_specs)} bundle(s); "
                              f"{self.workers} selection workers need {self.workers + 1} (one per worker after "
                              "the trial's own): build them with raynas.tune.resources.trial_resources")
        if self._val_ref is None:
            self._val_ref = ray.put(self.val)
        if self._remote is None:
            self._remote = ray.remote(evaluate_chunk)
        with torch.no_grad():
            state = {k: v.detach().cpu() for k, v in model.network_state_dict().items()}
            on_cpu = [{cell: w.detach().cpu() for cell, w in weights.items()} for weights in candidates]
        state_ref, candidates_ref = ray.put(state), ray.put(on_cpu)
        res = self.cfg.resources
        refs = []
        for i, (start, stop) in enumerate(chunk_bounds(len(on_cpu), self.workers)):
            options: dict[str, Any] = {"num_cpus": res.cpus_per_selection_worker,
                                       "num_gpus": res.gpus_per_selection_worker}
            if group is not None:
                options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                    group, placement_group_bundle_index=1 + i % self.workers)
            refs.append(self._remote.options(**options).remote(
                self.cfg, self.num_classes, self.in_channels, self._val_ref, state_ref, candidates_ref,
                start, stop))
        return [result for chunk in _gather(refs) for result in chunk]
