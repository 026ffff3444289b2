"""Parallel candidate evaluation (selection.workers > 1): worker actors give exactly the sequential numbers."""

from __future__ import annotations

import time

import pytest
import torch

from raynas.config import load_config
from raynas.errors import RaynasError, SpaceError
from raynas.search import Search
from raynas.supernet.build import build_supernet
from raynas.supernet.evaluation import evaluation_sums
from raynas.selection.parallel import (ParallelEvaluator, SelectionWorker, assign, combine, pack_state,
                                       unpack_state)

SMOKE = "search_configs/smoke/nb201.yaml"  # 5 ops per edge: an odd candidate count; 4 batches of 32
BASE = ["search.epochs=1", "search.threads=1", "selection.name=perturbation", "selection.proj_intv=0",
        "selection.edge_order=fixed", "resources.cpus_per_selection_worker=0.5"]


def config(*overrides: str):
    return load_config(SMOKE, [*BASE, *overrides])


def trained(*overrides: str) -> Search:
    """A smoke search after its one supernet epoch (threads: 1, as the workers run with 0.5 CPUs)."""
    search = Search(config(*overrides))
    search.run_epoch()
    return search


def edge_candidates(search: Search, edge: int = 0) -> list[dict[str, torch.Tensor]]:
    """The projected architecture weights with one op of ``edge`` zeroed, one candidate per op."""
    with torch.no_grad():
        base = {c: w.detach().clone() for c, w in search.model.arch_weights().items()}
    cell = search.space.cell_types[0]
    out = []
    for k in range(base[cell].shape[1]):
        weights = dict(base)
        weights[cell] = base[cell].clone()
        weights[cell][edge, k] = 0.0
        out.append(weights)
    return out


def sequential(search: Search, candidates) -> list[tuple[float, float]]:
    sel = search.cfg.selection
    return [search.evaluate(search.eval_loader, w, batch_stats=sel.batch_stats, max_batches=sel.eval_batches)
            for w in candidates]


@pytest.fixture
def evaluators():
    """Builds evaluators for a search and kills their workers after the test (they hold the CPUs)."""
    made = []

    def make(search: Search) -> ParallelEvaluator:
        made.append(ParallelEvaluator(search.cfg, search.data.val, num_classes=search.data.num_classes,
                                      in_channels=search.data.in_channels))
        return made[-1]
    yield make
    for evaluator in made:
        evaluator.close()


# ------------------------------------------------------------------------------------------ without Ray
@pytest.mark.parametrize("units, workers, expected", [
    (5, 2, [[0, 2, 4], [1, 3]]), (2, 3, [[0], [1]]), (4, 1, [[0, 1, 2, 3]]), (0, 2, []),
])
def test_units_go_round_robin_and_never_to_more_workers_than_units(units, workers, expected):
    assert assign(list(range(units)), workers) == expected


def test_every_worker_gets_half_of_each_candidates_batches():
    units = [(c, b) for c in range(5) for b in range(4)]
    for share in assign(units, 2):
        assert sorted({c for c, _ in share}) == list(range(5))
        assert all(sum(c == k for c, _ in share) == 2 for k in range(5))


def test_pack_state_round_trips_every_dtype_and_layout():
    torch.manual_seed(0)
    model = build_supernet(config("supernet.channels_last=true"), 10, 1)
    state = model.state_dict()
    assert {v.dtype for v in state.values()} == {torch.float32, torch.int64}
    packed = pack_state(state)
    assert len(packed.flat) == 2
    restored = unpack_state(packed)
    assert list(restored) == list(state)
    assert all(torch.equal(restored[k], v) and restored[k].shape == v.shape for k, v in state.items())
    assert pack_state(state).equals(packed)


def test_a_changed_or_nan_state_is_not_equal():
    state = build_supernet(config(), 10, 1).state_dict()
    packed = pack_state(state)
    assert not packed.equals(None)
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key].add_(1e-6)
    assert not pack_state(state).equals(packed)  # packing copies: the earlier pack kept the old values
    state[key].fill_(float("nan"))
    assert not pack_state(state).equals(pack_state(state))


@pytest.mark.parametrize("batch_stats", [True, False])
def test_worker_units_combine_to_the_sequential_sums_bit_for_bit(batch_stats):
    """An odd candidate count (5) and an odd batch count (3): 15 units in any split add up exactly."""
    search = trained("selection.eval_batches=3", f"selection.batch_stats={str(batch_stats).lower()}")
    candidates = edge_candidates(search, edge=1)
    expected = sequential(search, candidates)
    assert len(set(expected)) > 1  # the candidates really differ
    worker = SelectionWorker(search.cfg, search.data.num_classes, search.data.in_channels, search.data.val)
    worker.load(pack_state(search.model.network_state_dict()))
    units = [(c, b) for c in range(5) for b in range(3)]
    shares = assign(units, 2)
    sums = {}
    for share in shares:
        sums.update(zip(share, worker.evaluate(dict(enumerate(candidates)), share)))
    assert combine([sums[u] for u in units], 5, 3) == expected
    batches = list(search.eval_loader.epoch(0))[:3]
    assert sums[(2, 0)] == evaluation_sums(search.model, batches[:1], candidates[2], search.device,
                                           batch_stats=batch_stats)


# --------------------------------------------------------------------------------------------- with Ray
def test_workers_equal_the_sequential_path_exactly(ray_local, evaluators):
    search = trained("selection.workers=2")
    candidates = edge_candidates(search)
    expected = sequential(search, candidates)
    assert len(candidates) == 5 and len(set(expected)) > 1
    evaluator = evaluators(search)
    assert evaluator(search.model, candidates) == expected
    assert evaluator(search.model, candidates[1:]) == expected[1:]  # the same workers, weights not resent
    assert evaluator(search.model, candidates[:1]) == expected[:1]


def test_workers_take_new_weights_after_fine_tuning(ray_local, evaluators):
    search = trained("selection.workers=2")
    candidates = edge_candidates(search, edge=1)
    evaluator = evaluators(search)
    before = evaluator(search.model, candidates)
    torch.manual_seed(1)
    with torch.no_grad():  # stands in for the stage's fine-tuning between two rounds
        for p in search.model.weight_parameters():
            p.add_(0.05 * torch.randn_like(p))
    after = sequential(search, candidates)
    assert after != before
    assert evaluator(search.model, candidates) == after


def test_search_uses_the_workers_and_close_frees_their_cpus(ray_local):
    search = trained("selection.workers=2")
    candidates = edge_candidates(search)
    try:
        assert search.evaluate_candidates(candidates) == sequential(search, candidates)
        assert isinstance(search.candidate_evaluator, ParallelEvaluator)
    finally:
        search.close()
    deadline = time.monotonic() + 30
    while ray_local.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray_local.available_resources().get("CPU", 0) == 2
    search.close()  # idempotent


def test_three_workers_one_batch_with_running_statistics(ray_local, evaluators):
    search = trained("selection.workers=3", "selection.eval_batches=1", "selection.batch_stats=false")
    candidates = edge_candidates(search, edge=2)
    expected = sequential(search, candidates)
    assert expected != sequential(search.__class__(search.cfg), candidates)  # trained weights matter
    evaluator = evaluators(search)
    assert evaluator(search.model, candidates) == expected
    assert evaluator(search.model, candidates[:2]) == expected[:2]  # 2 units: one worker idles


@pytest.mark.slow  # moved from the default tier to keep it under 10 minutes; make test-all runs it
def test_a_whole_stage_decides_the_same_with_workers(ray_local):
    reports = {}
    for workers in (1, 2):
        search = Search(config(f"selection.workers={workers}"))
        reports[workers] = []
        try:
            while not search.done:
                reports[workers].append(search.run_epoch())
        finally:
            search.close()
    decisions = {w: [r.get("decisions") for r in reps] for w, reps in reports.items()}
    assert decisions[1] == decisions[2] and any(d for d in decisions[1])
    assert reports[1][-1]["genotype"] == reports[2][-1]["genotype"]


def test_workers_run_in_the_trials_placement_group(ray_local):
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    ray = ray_local
    search = trained("selection.workers=2")
    candidates = edge_candidates(search)
    expected = sequential(search, candidates)
    cfg, val = search.cfg, search.data.val
    num_classes, in_channels = search.data.num_classes, search.data.in_channels
    state = {k: v.detach().cpu() for k, v in search.model.state_dict().items()}

    def trial(cfg, val, state, candidates):  # stands in for a Tune trial in bundle 0
        model = build_supernet(cfg, num_classes, in_channels)
        model.load_state_dict(state)
        evaluator = ParallelEvaluator(cfg, val, num_classes=num_classes, in_channels=in_channels)
        try:
            result = evaluator(model, candidates)
            groups = ray.get([worker.__ray_call__.remote(
                lambda self: ray.get_runtime_context().get_placement_group_id()) for worker in evaluator.start()])
        finally:
            evaluator.close()
        return result, ray.util.get_current_placement_group().id.hex(), groups

    group = ray.util.placement_group([{"CPU": 0.5}] * 3, strategy="PACK")
    try:
        ray.get(group.ready(), timeout=60)
        strategy = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=0)
        result, group_id, worker_groups = ray.get(ray.remote(trial).options(
            num_cpus=0.5, scheduling_strategy=strategy).remote(cfg, val, state, candidates), timeout=300)
    finally:
        ray.util.remove_placement_group(group)
    assert group_id == group.id.hex() and worker_groups == [group_id, group_id]
    assert result == expected


def test_too_small_a_placement_group_is_a_one_line_error(ray_local, monkeypatch, evaluators):
    class Group:
        bundle_specs = [{"CPU": 1.0}, {"CPU": 1.0}]

    search = trained("selection.workers=2")
    monkeypatch.setattr(ray_local.util, "get_current_placement_group", lambda: Group())
    with pytest.raises(RaynasError) as info:
        evaluators(search)(search.model, edge_candidates(search))
    message = str(info.value)
    assert "2 selection workers need 3" in message and "trial_resources" in message and "\n" not in message


def test_a_raynas_error_inside_a_worker_surfaces_as_itself(ray_local, evaluators):
    search = trained("selection.workers=2")
    cell = search.space.cell_types[0]
    wrong = [{cell: torch.zeros(2, 2)}] * 2
    evaluator = evaluators(search)
    with pytest.raises(SpaceError, match="must have shape"):
        evaluator(search.model, wrong)
    candidates = edge_candidates(search)
    assert evaluator(search.model, candidates) == sequential(search, candidates)  # the workers live on
