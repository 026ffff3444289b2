"""E2NAS with the released code's estimator (``e2nas.estimator: released``): softmax(z) reshaped to edges x
ops carries the gradient of a cell drawn from the decoder, the supernet runs one op per edge in both steps
(GDAS' forward), the latent steps after the weights, and the exploration term is 0 until the archive holds
``novelty_after`` cells (50 by default)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from raynas.config import config_from_dict, config_to_dict, load_config
from raynas.errors import ConfigError
from raynas.objectives import StepContext
from raynas.objectives.e2nas import exploration_eta
from raynas.objectives.na import step_generator
from raynas.runtime import load_state, save_state
from raynas.search import Search
from raynas.supernet.base import MixedOp

REPO = Path(__file__).resolve().parents[2]


def released_config(autoencoder: str, search: dict | None = None, **e2nas):
    data = config_to_dict(load_config(str(REPO / "search_configs/smoke/e2nas.yaml")))
    data["e2nas"].update({"autoencoder": autoencoder, "estimator": "released", **e2nas})
    data["search"].update(search or {})
    return config_from_dict(data)


def context(epoch: int = 0, epochs: int = 10, step: int = 0) -> StepContext:
    return StepContext(epoch=epoch, step=step, steps_per_epoch=4, epochs=epochs, weight_lr=0.025,
                       device=torch.device("cpu"), seed=0)


def digits_batch(search: Search) -> tuple[torch.Tensor, torch.Tensor]:
    return next(iter(search.eval_loader.epoch(0)))


def test_released_search_runs_on_digits_and_resumes_bit_for_bit(nb201_autoencoder, tmp_path):
    cfg = released_config(nb201_autoencoder)
    search = Search(cfg)
    model, term = search.model, search.objective.terms[0]
    assert model.single_path and term.released and term.novelty_after == 50 and term.arch_after_weights
    frozen = {k: v.clone() for k, v in model.latent.autoencoder.state_dict().items()}
    start = model.arch_parameters()[0].detach().clone()
    first = search.run_epoch()
    save_state(search.get_state(), str(tmp_path / "state.pt"))
    second = search.run_epoch()
    assert not torch.equal(model.arch_parameters()[0].detach(), start)  # the latent moves
    assert all(torch.equal(v, model.latent.autoencoder.state_dict()[k]) for k, v in frozen.items())
    for report in (first, second):
        assert math.isfinite(report["train_loss"]) and math.isfinite(report["val_loss"])
        assert report["discretization_gap"] == 0.0  # evaluation runs the decoded cell, the derived one
        assert report["e2nas_density"] == 0.0  # 8 steps archive 7 cells, below the 50 the novelty waits for
    assert second["genotype"] == str(model.latent.derived_genotype())
    steps = 2 * search.steps_per_epoch
    # a step's cell joins the archive after the step's architecture update: the last one is not in yet
    assert len(term.archive) == steps - 1
    assert second["e2nas_distinct"] >= 2  # the weight steps train cells drawn from the decoder

    resumed = Search(cfg)
    resumed.set_state(load_state(str(tmp_path / "state.pt")))
    again = resumed.run_epoch()
    for key in ("train_loss", "val_loss", "genotype", "e2nas_distinct", "e2nas_changes", "state_fingerprint"):
        assert again[key] == second[key], key
    assert [k for k, _ in resumed.objective.terms[0].archive] == [k for k, _ in term.archive]


@pytest.mark.parametrize("estimator, order", [("released", ["weights", "latent"]), ("ours", ["latent", "weights"])])
def test_the_released_estimator_steps_the_latent_after_the_weights(nb201_autoencoder, estimator, order):
    cfg = released_config(nb201_autoencoder, {"epochs": 1}, estimator=estimator)
    search = Search(cfg)
    calls: list[str] = []
    for name, optimizer in (("weights", search.weight_optimizer), ("latent", search.arch_optimizer)):
        optimizer.register_step_post_hook(lambda *args, _name=name: calls.append(_name))
    search.run_epoch()
    assert calls == order * search.steps_per_epoch


def ran_ops(model) -> tuple[list[list[int]], list]:
    """Forward hooks on every op of every mixed op: per edge, the op indices that ran (one list per edge)."""
    mixed = [m for m in model.modules() if isinstance(m, MixedOp)]
    runs: list[list[int]] = [[] for _ in mixed]
    handles = []
    for e, m in enumerate(mixed):
        for i, op in enumerate(m.ops):
            handles.append(op.register_forward_hook(lambda mod, inp, out, e=e, i=i: runs[e].append(i)))
    return runs, handles


def test_one_op_per_edge_runs_in_both_steps_and_the_gradient_reaches_z(nb201_autoencoder):
    search = Search(released_config(nb201_autoencoder, complement=0.0))
    model, term = search.model, search.objective.terms[0]
    x, y = digits_batch(search)
    ctx = context(epoch=5, step=3)
    z = model.arch_parameters()[0]
    ops = model.space.edge_ops("cell", 0)
    layers = search.cfg.supernet.layers * 3  # NB201: the cells of all three stages run the one cell type

    def expected(indices):  # per mixed op of the network (cells in order, edges in order), the op that runs
        return [[] if ops[k] == "none" else [k] for _ in range(layers) for k in indices["cell"].tolist()]

    runs, handles = ran_ops(model)
    try:
        with model.frozen_architecture():
            loss = search.objective.weight_loss(model, (x, y), ctx)
        assert runs == expected(term.step_indices(model, ctx))
        loss.backward()
        assert z.grad is None  # the weight step has no path to z
        for r in runs:
            r.clear()
        loss = search.objective.arch_loss(model, (x, y), ctx)
        drawn = model.latent.sample_indices(step_generator("e2nas.arch", ctx.seed, ctx.global_step))
        # only the drawn op, although the weights require grad (checked before the backward pass, which
        # recomputes pooling outputs: raynas.lean)
        assert runs == expected(drawn)
        (grad,) = torch.autograd.grad(loss, [z])
    finally:
        for handle in handles:
            handle.remove()
    assert float(grad.abs().sum()) > 0
    # the gradient is that of softmax(z) reshaped to edges x ops: a weights gradient G gives z.grad = J^T G
    weights = model.latent.released_weights(drawn)
    (g_weights,) = torch.autograd.grad(F.cross_entropy(model(x, weights), y) * (1 - exploration_eta(5, 10)),
                                       [weights["cell"]], retain_graph=True)
    p = F.softmax(z, dim=-1)
    assert torch.allclose(grad, p * (g_weights.reshape(-1) - (p * g_weights.reshape(-1)).sum()), atol=1e-7)


def test_gdas_forward_runs_the_chosen_op_and_passes_its_gradient_to_the_others():
    torch.manual_seed(0)
    ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    mixed = MixedOp(ops, 4, 1)
    x = torch.randn(2, 4, 5, 5)
    logits = torch.randn(5, requires_grad=True)
    p = F.softmax(logits, -1)
    w = F.one_hot(torch.tensor(3), 5).float() + (p - p.detach())
    runs, handles = ran_ops(torch.nn.Sequential(mixed))
    out = mixed(x, w, single_path=True)
    assert runs == [[3]] and torch.equal(out, mixed.ops[3](x))
    g_out = torch.randn_like(out)
    (g_w,) = torch.autograd.grad(out, [w], g_out)
    assert torch.allclose(g_w[3], (g_out * mixed.ops[3](x)).sum())
    for i in (0, 1, 2, 4):  # not run: the weight stands in for the output (GDAS)
        assert torch.allclose(g_w[i], g_out.sum())
    for r in runs:
        r.clear()
    everything = mixed(x, w)  # without single_path every op runs, for the weights' gradient
    assert runs == [[1, 2, 3, 4]] and torch.equal(everything, out)
    for handle in handles:
        handle.remove()


@pytest.mark.parametrize("exploration", ["density", "detached"])
def test_novelty_is_zero_until_the_archive_holds_novelty_after_cells(nb201_autoencoder, exploration):
    search = Search(released_config(nb201_autoencoder, exploration=exploration))
    model, term = search.model, search.objective.terms[0]
    z = model.arch_parameters()[0]
    x, y = digits_batch(search)
    ctx = context(epoch=5, epochs=10)
    eta = exploration_eta(5, 10)
    drawn = model.latent.sample_indices(step_generator("e2nas.arch", ctx.seed, ctx.global_step))
    (ce_grad,) = torch.autograd.grad(F.cross_entropy(model(x, model.latent.released_weights(drawn)), y), [z])
    torch.manual_seed(3)
    term.archive = [(k, (z.detach() + 0.3 * torch.randn(30)).clone()) for k in range(49)]

    def step():
        term._reset_metrics()
        loss = search.objective.arch_loss(model, (x, y), ctx)
        (grad,) = torch.autograd.grad(loss, [z])
        return float(loss.detach()), grad, term._metrics["density"]

    loss, grad, density = step()  # 49 archived: no novelty, only (1 - eta) L_val
    assert density == 0.0 and torch.allclose(grad, (1 - eta) * ce_grad, atol=1e-7)
    ce = F.cross_entropy(model(x, model.latent.released_weights(drawn)), y)
    assert loss == pytest.approx((1 - eta) * float(ce.detach()))
    term.archive.append((49, (z.detach() + 0.3 * torch.randn(30)).clone()))
    loss, grad, density = step()  # the 50th: the novelty counts
    assert density > 0.0
    if exploration == "density":
        assert not torch.allclose(grad, (1 - eta) * ce_grad, atol=1e-7)
    else:  # the released code's detached novelty only shifts the loss
        assert torch.allclose(grad, (1 - eta) * ce_grad, atol=1e-7)
        assert loss == pytest.approx((1 - eta) * float(ce.detach()) + eta * (1 - density))


def test_novelty_after_is_a_setting_and_ours_counts_from_the_first_cell(nb201_autoencoder):
    assert Search(released_config(nb201_autoencoder, novelty_after=2)).objective.terms[0].novelty_after == 2
    ours = Search(released_config(nb201_autoencoder, estimator="ours")).objective.terms[0]
    assert ours.novelty_after == 1 and not ours.released and not ours.arch_after_weights


def test_second_order_reaches_the_latent_with_the_released_estimator(nb201_autoencoder):
    search = Search(released_config(nb201_autoencoder, {"order": 2, "epochs": 1, "steps_per_epoch": 3}))
    start = search.model.arch_parameters()[0].detach().clone()
    report = search.run_epoch()
    assert math.isfinite(report["train_loss"])
    assert not torch.equal(search.model.arch_parameters()[0].detach(), start)


@pytest.mark.parametrize("extra, message", [
    ({"e2nas": {"estimator": "gdas"}}, r"^e2nas\.estimator = 'gdas': must be one of 'ours', 'released'"),
    ({"space": "darts", "e2nas": {"estimator": "released"}},
     r"^e2nas\.estimator = 'released': runs on NB201 cells only .* space 'darts' chooses each node's inputs"),
    ({"e2nas": {"novelty_after": 0}}, r"^e2nas\.novelty_after = 0: must be >= 1"),
    ({"e2nas": {"novelty_after": 60}}, r"^e2nas\.novelty_after = 60: must be at most e2nas\.archive = 50 "),
    ({"e2nas": {"estimator": "released", "archive": 20}},
     r"^e2nas\.archive = 20: must be at least 50, the released estimator's e2nas\.novelty_after "),
])
def test_bad_estimator_settings_are_one_line_errors(extra, message):
    with pytest.raises(ConfigError, match=message) as info:
        config_from_dict({"method": "e2nas", "space": "nb201", **extra})
    assert "\n" not in str(info.value)


def test_the_released_estimator_refuses_a_latent_that_is_not_edges_by_ops(tmp_path):
    from raynas.e2nas import pretrain, save
    from raynas.e2nas.prepare import prepare_autoencoder

    model, _ = pretrain("nb201", samples=200, epochs=1, latent=16, hidden=8, seed=0, prior_samples=2)
    save(model, tmp_path / "latent16.pt")
    cfg = released_config(str(tmp_path / "latent16.pt"))
    message = r"the latent needs 30 dimensions; the autoencoder has 16 \(pretrain with --latent 30\)"
    with pytest.raises(ConfigError, match=r"^e2nas\.autoencoder = .*'released', .*" + message) as info:
        prepare_autoencoder(cfg, tmp_path, echo=lambda line: None)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"^e2nas\.estimator = 'released': .*" + message):
        Search(cfg)
