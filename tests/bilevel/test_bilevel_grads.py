"""First- and second-order DARTS architecture gradients against autograd ground truth."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from raynas.bilevel import arch_gradient_first_order, arch_gradient_second_order
from raynas.objectives.base import Batch, Objective, StepContext
from raynas.spaces import get_space
from raynas.supernet import Supernet

MOMENTUM, WEIGHT_DECAY, XI = 0.9, 0.05, 0.5


def tiny_model(dtype: torch.dtype = torch.float64) -> Supernet:
    torch.manual_seed(0)
    model = get_space("nb201").build_supernet(channels=2, layers=1, num_classes=3, in_channels=1).to(dtype)
    with torch.no_grad():  # alphas far from uniform, so the architecture gradient is not tiny
        for alpha in model.arch_parameters():
            alpha.normal_(0.0, 0.5)
    return model


def batches(dtype: torch.dtype = torch.float64) -> tuple[Batch, Batch]:
    gen = torch.Generator().manual_seed(1)

    def make() -> Batch:
        return torch.randn(4, 1, 8, 8, generator=gen, dtype=dtype), torch.randint(0, 3, (4,), generator=gen)

    return make(), make()


def context(weight_lr: float = XI) -> StepContext:
    return StepContext(epoch=0, step=0, steps_per_epoch=1, epochs=1, weight_lr=weight_lr, device=torch.device("cpu"))


def optimizer_after_one_step(model: Supernet, train: Batch) -> torch.optim.SGD:
    """An SGD optimizer whose momentum buffers are populated, as in the middle of a search."""
    opt = torch.optim.SGD(model.weight_parameters(), lr=XI, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    F.cross_entropy(model(train[0]), train[1]).backward()
    opt.step()
    opt.zero_grad(set_to_none=False)
    return opt


def mark_weight_grads(model: Supernet) -> dict[str, torch.Tensor]:
    sentinel = {}
    for name, p in model.named_parameters():
        if not name.startswith("alphas."):
            p.grad = torch.full_like(p, 7.0)
            sentinel[name] = p.grad.clone()
    return sentinel


def assert_weights_untouched(model: Supernet, before: dict[str, torch.Tensor],
                             grads: dict[str, torch.Tensor]) -> None:
    for name, p in model.named_parameters():
        if name in before:
            assert torch.equal(p.detach(), before[name]), name
            assert torch.equal(p.grad, grads[name]), name


def test_first_order_gradient_is_autograd_of_arch_loss() -> None:
    model = tiny_model()
    _, val = batches()
    objective, ctx = Objective(), context()
    expected_loss = objective.arch_loss(model, val, ctx)
    expected = torch.autograd.grad(expected_loss, model.arch_parameters())
    before = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith("alphas.")}
    grads = mark_weight_grads(model)

    loss = arch_gradient_first_order(model, objective, val, ctx)

    assert loss == pytest.approx(float(expected_loss.detach()), rel=1e-12)
    for alpha, g in zip(model.arch_parameters(), expected):
        torch.testing.assert_close(alpha.grad, g, rtol=1e-10, atol=1e-12)
        assert alpha.grad.abs().max() > 1e-3
    assert_weights_untouched(model, before, grads)


def exact_unrolled_gradient(model: Supernet, opt: torch.optim.SGD, train: Batch, val: Batch,
                            xi: float) -> tuple[list[torch.Tensor], float]:
    """d/d alpha of L_val(w - xi * (momentum * buf + grad_w L_train + wd * w), alpha), by double backward."""
    params = dict(model.named_parameters())
    weight_names = [n for n in params if not n.startswith("alphas.")]
    arch_names = [n for n in params if n.startswith("alphas.")]
    train_loss = F.cross_entropy(functional_call(model, params, (train[0],)), train[1])
    grads = torch.autograd.grad(train_loss, [params[n] for n in weight_names], create_graph=True)
    moved = {n: params[n] - xi * (MOMENTUM * opt.state[params[n]]["momentum_buffer"] + g + WEIGHT_DECAY * params[n])
             for n, g in zip(weight_names, grads)}
    moved.update({n: params[n] for n in arch_names})
    val_loss = F.cross_entropy(functional_call(model, moved, (val[0],)), val[1])
    exact = torch.autograd.grad(val_loss, [params[n] for n in arch_names])
    return list(exact), float(val_loss.detach())


def test_second_order_gradient_matches_exact_unrolled_gradient() -> None:
    model = tiny_model()
    train, val = batches()
    opt = optimizer_after_one_step(model, train)
    exact, exact_loss = exact_unrolled_gradient(model, opt, train, val, XI)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith("alphas.")}
    grads = mark_weight_grads(model)

    # float64 and a small eps keep the central difference's O(r^2) error and ReLU-kink crossings negligible;
    # the Hessian term and the momentum term each change the result by more than 0.1 here
    loss = arch_gradient_second_order(model, Objective(), train, val, opt, context(), eps=1e-5)

    assert loss == pytest.approx(exact_loss, rel=1e-10)
    for alpha, g in zip(model.arch_parameters(), exact):
        torch.testing.assert_close(alpha.grad, g, rtol=0.0, atol=1e-6)
    assert_weights_untouched(model, before, grads)


def test_second_order_differs_from_gradient_at_virtual_weights_by_the_hessian_term() -> None:
    model = tiny_model()
    train, val = batches()
    opt = optimizer_after_one_step(model, train)
    arch_gradient_second_order(model, Objective(), train, val, opt, context(), eps=1e-5)
    second = [a.grad.clone() for a in model.arch_parameters()]
    # xi = 0 makes w' = w and drops the Hessian term: the result must be the first-order gradient
    arch_gradient_second_order(model, Objective(), train, val, opt, context(weight_lr=0.0), eps=1e-5)
    zero_lr = [a.grad.clone() for a in model.arch_parameters()]
    arch_gradient_first_order(model, Objective(), val, context())
    for z, f, s in zip(zero_lr, [a.grad for a in model.arch_parameters()], second):
        torch.testing.assert_close(z, f, rtol=1e-10, atol=1e-12)
        assert (s - f).abs().max() > 1e-2


class FailingArchLoss(Objective):
    """An objective whose architecture loss raises, to check that the weights are restored anyway."""

    def arch_loss(self, model, batch, ctx):
        raise RuntimeError("arch loss failed")


def test_second_order_restores_weights_when_a_loss_raises() -> None:
    model = tiny_model(torch.float32)
    train, val = batches(torch.float32)
    opt = optimizer_after_one_step(model, train)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith("alphas.")}
    grads = mark_weight_grads(model)
    with pytest.raises(RuntimeError, match="arch loss failed"):
        arch_gradient_second_order(model, FailingArchLoss(), train, val, opt, context())
    assert_weights_untouched(model, before, grads)


def test_second_order_default_eps_in_float32_without_momentum_state() -> None:
    model = tiny_model(torch.float32)
    train, val = batches(torch.float32)
    opt = torch.optim.SGD(model.weight_parameters(), lr=0.025, momentum=0.9)  # no step yet: no buffers
    before = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith("alphas.")}
    loss = arch_gradient_second_order(model, Objective(), train, val, opt, context(0.025))
    assert torch.isfinite(torch.tensor(loss))
    assert all(a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().max() > 0
               for a in model.arch_parameters())
    assert all(torch.equal(p.detach(), before[n]) for n, p in model.named_parameters() if n in before)
