"""Sampling selection (random search with weight sharing, NA-RS): the scoring rule against hand-computed
scores, the neighbourhoods it draws, and the whole method (rs search + stage) through the search loop."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from raynas.config import config_from_dict, load_config
from raynas.errors import ConfigError, SpaceError
from raynas.results.writer import rows_from_report
from raynas.runtime import load_state, save_state
from raynas.search import Search
from raynas.selection import SELECTIONS, SamplingSelection, total_epochs
from raynas.selection.parallel import ParallelEvaluator
from raynas.selection.random_sampling import draw_samples, neighbor_at
from raynas.spaces import get_space
from raynas.supernet.projection import DROPPED

SMOKE = "search_configs/smoke/na_rs.yaml"


def supernet(space: str):
    torch.manual_seed(0)
    return get_space(space).build_supernet(channels=4, layers=2, num_classes=3, in_channels=1)


def table(space, seed: int = 0) -> dict[str, torch.Tensor]:
    """A fixed 'accuracy' per (cell, edge, op)."""
    generator = torch.Generator().manual_seed(seed)
    return {cell: torch.rand(*space.arch_shape(cell), generator=generator, dtype=torch.float64)
            for cell in space.cell_types}


def table_evaluate(space, values):
    """An Evaluate computing a known function of the candidate weights: acc = mean over the weights' non-zero
    entries of ``values``, loss = 1 - acc. Records the size of every call."""
    def evaluate(candidates):
        evaluate.calls.append(len(candidates))
        out = []
        for weights in candidates:
            total = sum(float((weights[c].double() * values[c]).sum()) for c in space.cell_types)
            count = sum(float(weights[c].sum()) for c in space.cell_types)
            out.append((1.0 - total / count, total / count))
        return out
    evaluate.calls = []
    return evaluate


def hand_acc(space, values, genotype) -> float:
    """The same function computed from the genotype's choices (no weight tensors involved)."""
    picks = [float(values[cell][edge, space.edge_ops(cell, edge).index(op)])
             for cell, edges in space.choices_from_genotype(genotype).items() for edge, op in edges.items()]
    return sum(picks) / len(picks)


def hamming(space, a, b) -> int:
    ca, cb = space.choices_from_genotype(a), space.choices_from_genotype(b)
    assert {c: set(e) for c, e in ca.items()} == {c: set(e) for c, e in cb.items()}  # same topology
    return sum(ca[c][e] != cb[c][e] for c in ca for e in ca[c])


def test_registered_one_stage_epoch_and_torch_free_to_plan():
    assert SELECTIONS.get("sampling") is SamplingSelection
    code = ("import sys; from raynas.config import load_config; from raynas.selection import total_epochs; "
            f"cfg = load_config({SMOKE!r}); print(total_epochs(cfg)); assert 'torch' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) == 3
    assert total_epochs(config_from_dict({"selection": {"name": "sampling"}, "search": {"epochs": 4}})) == 5
    assert not SamplingSelection().finetunes(0)


def test_from_config_takes_the_na_rule():
    plain = config_from_dict({"selection": {"name": "sampling", "samples": 7}})
    na = config_from_dict({"selection": {"name": "sampling"},
                           "objectives": {"na": {"neighbors": 3, "radius": 2, "aggregation": "max"}}})
    a = SamplingSelection.from_config(plain.selection, seed=4, objectives=plain.objectives)
    b = SamplingSelection.from_config(na.selection, seed=4, objectives=na.objectives)
    assert (a.samples, a.neighborhood_aware, a.seed) == (7, False, 4)
    assert (b.scoring.neighbors, b.scoring.radius, b.scoring.aggregation, b.samples) == (3, 2, "max", 100)


@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_na_winner_is_the_best_aggregate_of_hand_computed_accuracies(aggregation):
    net = supernet("nb201")
    space = net.space
    values = table(space)
    selection = SamplingSelection(samples=12, neighbors=3, aggregation=aggregation, seed=2)
    groups = selection.neighborhoods(space)
    accs = [[hand_acc(space, values, g) for g in group] for group in groups]
    scores = [sum(a) / len(a) if aggregation == "mean" else min(a) for a in accs]  # max: the worst member
    best = max(range(len(scores)), key=lambda k: (scores[k], -k))
    assert len(set(scores)) == len(scores)  # a real argmax, not a tie

    evaluate = table_evaluate(space, values)
    rows = selection.decide(net, 0, evaluate)
    winner = groups[best][0]
    assert selection.select(net, None, None) == winner
    assert net.projection.choices() == space.choices_from_genotype(winner)
    # one evaluate call, every distinct member once
    assert evaluate.calls == [len({g for group in groups for g in group})]
    score_rows = [i for i, kind in enumerate(rows["kind"]) if kind == "score"]
    assert [rows["acc"][i] for i in score_rows] == pytest.approx(scores)
    assert [rows["decision"][i] for i in score_rows] == ["keep" if k == best else None for k in range(12)]
    assert rows["op"][score_rows[best]] == str(winner)
    assert rows["kind"].count("sample") == 12 and rows["kind"].count("neighbor") == 36
    keys = list(zip(rows["round"], rows["cell"], rows["step"], rows["edge"], rows["op"]))
    assert len(set(keys)) == len(keys)  # one row per key of the decisions table
    assert selection.decide(net, 1, evaluate) is None and len(evaluate.calls) == 1


def test_plain_random_search_scores_each_sample_by_itself_and_ties_go_to_the_first():
    net = supernet("nb201")
    space = net.space
    values = table(space, seed=1)
    selection = SamplingSelection(samples=10, seed=3)
    samples = draw_samples(space, 10, 3)
    accs = [hand_acc(space, values, g) for g in samples]
    rows = selection.decide(net, 0, table_evaluate(space, values))
    assert selection.select(net, None, None) == samples[accs.index(max(accs))]
    assert rows["kind"] == ["sample"] * 10 and rows["op"] == [str(g) for g in samples]
    assert rows["decision"] == ["keep" if a == max(accs) else None for a in accs]

    flat = SamplingSelection(samples=10, neighbors=2, seed=3)
    net = supernet("nb201")
    flat.decide(net, 0, lambda candidates: [(1.0, 0.5)] * len(candidates))
    assert flat.select(net, None, None) == samples[0]  # the same samples with NA; ties: the first drawn


@pytest.mark.parametrize("space_name, radius", [("nb201", 1), ("nb201", 2), ("darts", 1), ("darts", 3)])
def test_neighbours_are_at_distance_radius_with_the_same_topology(space_name, radius):
    space = get_space(space_name)
    selection = SamplingSelection(samples=5, neighbors=4, radius=radius, seed=1)
    groups = selection.neighborhoods(space)
    assert [g[0] for g in groups] == draw_samples(space, 5, 1)  # the samples do not depend on NA
    for centre, *neighbours in groups:
        assert all(hamming(space, centre, n) == radius for n in neighbours)
        if space_name == "nb201":
            near = set(space.neighborhood(centre, radius - 1))
            assert all(n in space.neighborhood(centre, radius) and n not in near for n in neighbours)
    assert groups == SamplingSelection(samples=5, neighbors=4, radius=radius, seed=1).neighborhoods(space)
    assert groups != SamplingSelection(samples=5, neighbors=4, radius=radius, seed=2).neighborhoods(space)


def test_connected_samples_and_too_large_a_radius():
    space = get_space("nb201")
    assert all(space.is_connected(g) for g in draw_samples(space, 50, 0))
    import random

    with pytest.raises(SpaceError, match="lower objectives.na.radius"):
        neighbor_at(space, draw_samples(space, 1, 0)[0], 7, random.Random(0))


def test_darts_winner_drops_the_edges_it_does_not_keep():
    net = supernet("darts")
    space = net.space
    values = table(space)
    selection = SamplingSelection(samples=4, neighbors=1, seed=0)
    selection.decide(net, 0, table_evaluate(space, values))
    winner = selection.select(net, None, None)
    assert winner in [g[0] for g in selection.neighborhoods(space)]
    kept = space.choices_from_genotype(winner)
    for cell in space.cell_types:
        dropped = {e for e, k in net.projection.fixed[cell].items() if k == DROPPED}
        assert dropped == set(range(len(space.edges(cell)))) - set(kept[cell])
    assert net.projection.choices() == kept


@pytest.mark.parametrize("options, message", [
    ({"samples": 0}, "selection.sampling.samples"),
    ({"radius": 0}, "objectives.na.radius"),
    ({"aggregation": "median"}, "mean, max"),
])
def test_bad_options(options, message):
    with pytest.raises(ConfigError, match=message):
        SamplingSelection(**options)


def test_workers_are_allowed_with_sampling():
    load_config(SMOKE, ["selection.workers=2"])
    with pytest.raises(ConfigError, match="only perturbation and sampling"):
        load_config(SMOKE, ["selection.workers=2", "selection.name=magnitude"])


# -- the whole method through the search loop -------------------------------------------------------------
def run(search: Search) -> list[dict]:
    reports = []
    while not search.done:
        reports.append(search.run_epoch())
    return reports


@pytest.fixture(scope="module")
def straight():
    """The smoke NA-RS search, uninterrupted: (search, reports, alphas at the start)."""
    search = Search(load_config(SMOKE))
    start = {c: a.detach().clone() for c, a in search.model.alphas.items()}
    return search, run(search), start


def test_na_rs_search_trains_paths_then_keeps_the_best_scored_sample(straight):
    search, reports, start = straight
    assert [r["epoch"] for r in reports] == [1, 2, 3]
    assert all(torch.equal(start[c], a) for c, a in search.model.alphas.items())  # rs: alphas never move
    assert [r["arch_lr"] for r in reports] == [0.0] * 3
    assert math.isfinite(reports[0]["train_loss"]) and math.isnan(reports[-1]["train_loss"])  # no stage training
    assert "decisions" not in reports[1]
    rows = reports[-1]["decisions"]
    kept = [op for op, decision in zip(rows["op"], rows["decision"]) if decision == "keep"]
    scores = [acc for kind, acc in zip(rows["kind"], rows["acc"]) if kind == "score"]
    assert len(scores) == 6 and rows["kind"].count("neighbor") == 12
    assert kept == [rows["op"][rows["kind"].index("score") + 4 * scores.index(max(scores))]]
    assert reports[-1]["genotype"] == kept[0] == str(search.genotype)
    assert reports[-1]["decided_edges"] == 6
    assert rows_from_report("trial", reports[-1])["decisions"].num_rows == 24  # the rows fit the table


def test_resuming_before_the_stage_keeps_the_same_winner(tmp_path, straight):
    search, reports, _ = straight
    first = Search(load_config(SMOKE))
    first.run_epoch()
    first.run_epoch()
    path = str(tmp_path / "state.pt")
    save_state(first.get_state(), path)
    resumed = Search(load_config(SMOKE))
    resumed.set_state(load_state(path))
    last = run(resumed)
    assert len(last) == 1 and last[0]["decisions"] == reports[-1]["decisions"]
    assert str(resumed.genotype) == str(search.genotype)
    # and a state saved after the stage still holds the winner
    save_state(resumed.get_state(), path)
    again = Search(load_config(SMOKE))
    again.set_state(load_state(path))
    assert again.done and again.selection.select(again.model, None, None) == search.genotype


@pytest.mark.slow  # Ray tasks; the sequential path runs by default
def test_two_workers_decide_the_same_as_one(ray_local, straight):
    _, reports, _ = straight
    overrides = ["selection.workers=2", "resources.cpus_per_selection_worker=0.5", "search.threads=1"]
    search = Search(load_config(SMOKE, overrides))
    try:
        parallel = run(search)
    finally:
        search.close()
    assert isinstance(search.candidate_evaluator, ParallelEvaluator)  # the stage really ran on Ray workers
    assert parallel[-1]["decisions"] == reports[-1]["decisions"]
    assert parallel[-1]["genotype"] == reports[-1]["genotype"]
