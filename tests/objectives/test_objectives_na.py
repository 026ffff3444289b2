"""The NA-DARTS neighbourhood loss: its representation, its aggregate and its place in the search loop."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from raynas.config import config_from_dict
from raynas.objectives.na import (aggregate, move_dominant_mass, neighbor_weights, neighborhood_loss,
                                  step_generator)
from raynas.search import Search
from raynas.spaces import get_space
from raynas.supernet.projection import Projection

TINY = {
    "space": "nb201",
    "data": {"name": "digits", "noise_std": 0.5, "limit": 96},
    "supernet": {"channels": 4, "layers": 1},
    "search": {"epochs": 2, "batch_size": 16, "arch_lr": 0.01, "seed": 3, "steps_per_epoch": 3,
               "eval_derived": False},
    "objectives": {"na": {}},
}


def tiny_supernet(seed: int = 0):
    torch.manual_seed(seed)
    space = get_space("nb201")
    model = space.build_supernet(channels=4, layers=1, num_classes=10, in_channels=1)
    x = torch.randn(8, 1, 8, 8)
    y = torch.arange(8) % 10
    return model, (x, y)


def test_dominant_mass_moves_to_the_other_ops_in_proportion():
    p = torch.tensor([[0.5, 0.2, 0.2, 0.1, 0.0], [0.1, 0.1, 0.1, 0.1, 0.6]])
    q = move_dominant_mass(p)
    assert torch.allclose(q[0], torch.tensor([0.0, 0.4, 0.4, 0.2, 0.0]))
    assert torch.allclose(q[1], torch.tensor([0.25, 0.25, 0.25, 0.25, 0.0]))
    one_hot = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0]])
    assert torch.equal(move_dominant_mass(one_hot), one_hot)  # nothing else to move the mass to


def test_na_loss_equals_the_hand_computed_aggregate():
    model, batch = tiny_supernet()
    x, y = batch
    with torch.no_grad():
        model.alphas["cell"][2] = torch.log(torch.tensor([0.5, 0.2, 0.2, 0.1, 1e-9]))
    # every edge but 2 is fixed, so every neighbour changes edge 2: the neighbourhood is known by hand
    projection = Projection(model.space)
    for edge in (0, 1, 3, 4, 5):
        projection.keep_op("cell", edge, 3)
    model.projection = projection
    center = model.arch_weights()["cell"]
    neighbour = center.clone()
    neighbour[2] = torch.tensor([0.0, 0.4, 0.4, 0.2, 0.0])
    loss_center = F.cross_entropy(model(x, {"cell": center}), y)
    loss_neighbour = F.cross_entropy(model(x, {"cell": neighbour}), y)
    gen = step_generator("na", 0, 0)
    assert neighborhood_loss(model, batch, gen, neighbors=4, radius=1).item() == pytest.approx(
        loss_neighbour.item(), rel=1e-5)
    mean = neighborhood_loss(model, batch, gen, neighbors=3, radius=1, include_center=True)
    assert mean.item() == pytest.approx((loss_center.item() + 3 * loss_neighbour.item()) / 4, rel=1e-5)
    worst = neighborhood_loss(model, batch, gen, neighbors=2, radius=1, include_center=True, aggregation="max")
    assert worst.item() == pytest.approx(max(loss_center.item(), loss_neighbour.item()), rel=1e-5)


def test_radius_changes_that_many_distinct_free_edges():
    model, _ = tiny_supernet()
    base = model.arch_weights()
    gen = step_generator("na", 1, 7)
    rows = [("cell", e) for e in range(6)]
    for radius in (1, 2, 4):
        picked = [rows[i] for i in torch.randperm(6, generator=gen)[:radius].tolist()]
        w = neighbor_weights(model, picked, "dominant", gen, base=base)["cell"]
        changed = [e for e in range(6) if not torch.allclose(w[e], base["cell"][e])]
        assert changed == sorted(e for _, e in picked)


def test_perturb_representation_stays_within_the_noise_on_the_changed_edge():
    model, _ = tiny_supernet()
    base = model.arch_weights()
    w = neighbor_weights(model, [("cell", 4)], "perturb", step_generator("na", 0, 1), noise=0.3, base=base)["cell"]
    assert torch.equal(w[:4], base["cell"][:4]) and torch.equal(w[5:], base["cell"][5:])
    shift = torch.log(w[4]) - model.alphas["cell"][4]  # softmax(alpha + u): log w = alpha + u - logsumexp
    spread = (shift - shift.mean()).abs().max().item()
    assert 0.0 < spread <= 0.6 + 1e-6


def test_na_loss_is_seeded_by_step_and_moves_the_alphas():
    model, batch = tiny_supernet()
    first = neighborhood_loss(model, batch, step_generator("na", 0, 5), neighbors=2, radius=1)
    again = neighborhood_loss(model, batch, step_generator("na", 0, 5), neighbors=2, radius=1)
    assert first.item() == again.item()
    others = {round(neighborhood_loss(model, batch, step_generator("na", 0, s), neighbors=1, radius=1).item(), 6)
              for s in range(8)}
    assert len(others) > 1  # other steps draw other neighbours
    grad, = torch.autograd.grad(first, [model.alphas["cell"]])
    assert grad.abs().sum() > 0


def test_aggregate_rules():
    losses = [torch.tensor(1.0), torch.tensor(3.0)]
    assert aggregate(losses, "mean").item() == 2.0 and aggregate(losses, "max").item() == 3.0
    with pytest.raises(ValueError, match="median"):
        aggregate(losses, "median")


@pytest.mark.parametrize("order", [1, 2])
def test_na_search_runs_both_orders_and_logs_its_loss(order):
    cfg = config_from_dict({**TINY, "search": {**TINY["search"], "order": order}})
    search = Search(cfg)
    assert search.objective.name == "na"
    report = search.run_epoch()
    assert math.isfinite(report["na_arch_loss"])
    plain = Search(config_from_dict({**TINY, "objectives": {}, "search": {**TINY["search"], "order": order}}))
    plain.run_epoch()
    # the same seed and batches: only the architecture loss differs, so the alphas move differently
    assert not torch.equal(search.model.alphas["cell"], plain.model.alphas["cell"])


def test_worst_neighbour_aggregation_is_refused_with_shards():
    from raynas.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^objectives\.na\.aggregation = 'max': must be 'mean' with resources"):
        config_from_dict({"objectives": {"na": {"aggregation": "max"}}, "resources": {"shards": 2}})
    assert config_from_dict({"objectives": {"na": {"aggregation": "max"}}}).objectives.na.aggregation == "max"
