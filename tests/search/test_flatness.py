"""Flatness metrics: the discretization gap in every report and the architecture-loss sharpness estimate."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from raynas.config import config_from_dict
from raynas.flatness import _frozen_statistics, arch_hessian_eigenvalue, discretization_gap
from raynas.search import Search
from raynas.spaces import get_space


def test_discretization_gap():
    assert discretization_gap(0.9, 0.6) == pytest.approx(0.3)
    assert math.isnan(discretization_gap(0.9, math.nan))


def tiny_supernet_and_batch():
    torch.manual_seed(0)
    net = get_space("nb201").build_supernet(channels=2, layers=1, num_classes=3, in_channels=1)
    with torch.no_grad():
        net.alphas["cell"].normal_(0.0, 0.5)
    x = torch.randn(6, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    return net, (x, y)


def test_power_iteration_finds_the_dominant_eigenvalue_of_the_exact_hessian():
    net, (x, y) = tiny_supernet_and_batch()
    alphas = net.alphas["cell"].detach().clone()

    def loss_of(flat):
        return F.cross_entropy(net(x, {"cell": torch.softmax(flat.view_as(alphas), -1)}), y)

    with _frozen_statistics(net):
        hessian = torch.autograd.functional.hessian(loss_of, alphas.flatten())
    eigenvalues = torch.linalg.eigvalsh(0.5 * (hessian + hessian.T))
    dominant = float(eigenvalues[eigenvalues.abs().argmax()])
    estimate = arch_hessian_eigenvalue(net, (x, y), iters=40)  # converged to 1e-6 by 30 here
    assert estimate == pytest.approx(dominant, rel=1e-3)


def test_estimate_leaves_the_model_and_rng_as_they_were():
    net, batch = tiny_supernet_and_batch()
    buffers = {k: v.clone() for k, v in net.named_buffers()}
    rng = torch.get_rng_state()
    arch_hessian_eigenvalue(net, batch, iters=3)
    assert all(torch.equal(v, dict(net.named_buffers())[k]) for k, v in buffers.items())
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(p.grad is None for p in net.parameters())


def test_reports_carry_the_gap_and_the_sharpness_every_n_epochs():
    cfg = config_from_dict({
        "space": "nb201", "data": {"name": "digits", "noise_std": 0.5, "limit": 96},
        "supernet": {"channels": 4, "layers": 1},
        "search": {"epochs": 2, "batch_size": 32, "arch_lr": 0.01, "seed": 1, "sharpness_every": 2,
                   "sharpness_iters": 5},
    })
    search = Search(cfg)
    first, second = search.run_epoch(), search.run_epoch()
    assert first["discretization_gap"] == pytest.approx(first["val_acc"] - first["derived_val_acc"])
    assert "arch_sharpness" not in first and math.isfinite(second["arch_sharpness"])
    plain = Search(config_from_dict({**cfg_dict(cfg), "search": {**cfg_dict(cfg)["search"], "sharpness_every": 0}}))
    plain.run_epoch()
    again = plain.run_epoch()
    assert again["alphas"] == second["alphas"]  # measuring does not change the search


def cfg_dict(cfg):
    from raynas.config import config_to_dict

    return config_to_dict(cfg)


def test_sharpness_is_refused_on_sharded_searches():
    from raynas.errors import ConfigError

    with pytest.raises(ConfigError, match=r"search.sharpness_every = 2: must be 0 with resources.shards = 2"):
        config_from_dict({"search": {"sharpness_every": 2}, "resources": {"shards": 2}})
