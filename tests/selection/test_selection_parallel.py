"""Parallel candidate evaluation (selection.workers > 1): Ray tasks give exactly the sequential numbers."""

from __future__ import annotations

import pytest
import torch

from raynas.config import load_config
from raynas.errors import RaynasError, SpaceError
from raynas.search import Search, build_supernet
from raynas.selection.parallel import TaskEvaluator, chunk_bounds

SMOKE = "search_configs/smoke/nb201.yaml"
BASE = ["search.epochs=1", "search.threads=1", "selection.name=perturbation", "selection.proj_intv=0",
        "selection.edge_order=fixed", "resources.cpus_per_selection_worker=0.5"]


def config(*overrides: str):
    return load_config(SMOKE, [*BASE, *overrides])


def trained(*overrides: str) -> Search:
    """A smoke search after its one supernet epoch (threads: 1, as the tasks run with 0.5 CPUs)."""
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


def evaluator(search: Search) -> TaskEvaluator:
    return TaskEvaluator(search.cfg, search.data.val, num_classes=search.data.num_classes,
                         in_channels=search.data.in_channels)


@pytest.mark.parametrize("parts, n, expected", [
    (2, 5, [(0, 3), (3, 5)]), (3, 2, [(0, 1), (1, 2)]), (1, 4, [(0, 4)]), (4, 8, [(0, 2), (2, 4), (4, 6), (6, 8)]),
    (2, 0, []),
])
def test_chunks_are_contiguous_and_never_more_than_candidates(parts, n, expected):
    assert chunk_bounds(n, parts) == expected


def test_tasks_equal_the_sequential_path_exactly(ray_local):
    search = trained("selection.workers=2")
    candidates = edge_candidates(search)
    expected = sequential(search, candidates)
    assert len(set(expected)) > 1  # the candidates really differ
    task_evaluator = evaluator(search)
    assert task_evaluator(search.model, candidates) == expected
    assert task_evaluator(search.model, candidates[1:]) == expected[1:]  # the split's ref is reused
    # Search.evaluate_candidates goes through the tasks with workers = 2
    assert search.evaluate_candidates(candidates) == expected
    assert isinstance(search.candidate_evaluator, TaskEvaluator)


def test_one_batch_with_running_statistics(ray_local):
    search = trained("selection.workers=3", "selection.eval_batches=1", "selection.batch_stats=false")
    candidates = edge_candidates(search, edge=2)
    expected = sequential(search, candidates)
    assert expected != sequential(search.__class__(search.cfg), candidates)  # trained weights matter
    assert evaluator(search)(search.model, candidates) == expected


@pytest.mark.slow  # moved from the default tier to keep it under 10 minutes; CI runs it
def test_a_whole_stage_decides_the_same_with_tasks(ray_local):
    reports = {}
    for workers in (1, 2):
        search = Search(config(f"selection.workers={workers}"))
        reports[workers] = []
        while not search.done:
            reports[workers].append(search.run_epoch())
    decisions = {w: [r.get("decisions") for r in reps] for w, reps in reports.items()}
    assert decisions[1] == decisions[2] and any(d for d in decisions[1])
    assert reports[1][-1]["genotype"] == reports[2][-1]["genotype"]


def test_tasks_run_in_the_trials_placement_group(ray_local):
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
        result = TaskEvaluator(cfg, val, num_classes=num_classes, in_channels=in_channels)(model, candidates)
        return result, ray.util.get_current_placement_group().id.hex()

    group = ray.util.placement_group([{"CPU": 0.5}] * 3, strategy="PACK")
    try:
        ray.get(group.ready(), timeout=60)
        strategy = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=0)
        result, group_id = ray.get(ray.remote(trial).options(num_cpus=0.5, scheduling_strategy=strategy)
                                   .remote(cfg, val, state, candidates), timeout=300)
    finally:
        ray.util.remove_placement_group(group)
    assert group_id == group.id.hex()
    assert result == expected


def test_too_small_a_placement_group_is_a_one_line_error(ray_local, monkeypatch):
    class Group:
        bundle_specs = [{"CPU": 1.0}, {"CPU": 1.0}]

    search = trained("selection.workers=2")
    monkeypatch.setattr(ray_local.util, "get_current_placement_group", lambda: Group())
    with pytest.raises(RaynasError) as info:
        evaluator(search)(search.model, edge_candidates(search))
    message = str(info.value)
    assert "2 selection workers need 3" in message and "trial_resources" in message and "\n" not in message


def test_a_raynas_error_inside_a_task_surfaces_as_itself(ray_local):
    search = trained("selection.workers=2")
    cell = search.space.cell_types[0]
    wrong = [{cell: torch.zeros(2, 2)}] * 2
    with pytest.raises(SpaceError, match="must have shape"):
        evaluator(search)(search.model, wrong)
