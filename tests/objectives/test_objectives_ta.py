"""TA-DARTS: the nested hypergradient against exact double-backward unrolling, the transfer step, the gamma
factor, the auxiliary models, resume and the shipped configs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from raynas.config import config_from_dict, config_to_dict
from raynas.errors import ConfigError
from raynas.networks import CifarResNet, count_parameters
from raynas.objectives.base import StepContext
from raynas.objectives.qrs import qrs_loss
from raynas.objectives.ta import build_aux_model, classifier_features
from raynas.objectives.ta_hypergradient import TransferProblem, transfer_hypergradient
from raynas.runtime import load_state, save_state
from raynas.search import Search
from raynas.spaces import get_space

XI1, XI2, LAMBDA, MOMENTUM, WD = 0.4, 0.3, 2.0, 0.9, 0.05


def tiny_models():
    torch.manual_seed(0)
    main = get_space("nb201").build_supernet(channels=2, layers=1, num_classes=3, in_channels=1).double()
    with torch.no_grad():
        for alpha in main.arch_parameters():
            alpha.normal_(0.0, 0.5)
    aux = CifarResNet(depth=8, C=2, num_classes=3, in_channels=1).double()
    return main, aux


def tiny_batches():
    gen = torch.Generator().manual_seed(1)

    def make():
        return torch.randn(6, 1, 8, 8, generator=gen, dtype=torch.float64), torch.randint(0, 3, (6,), generator=gen)

    return make(), make()


def stepped_optimizer(params, loss_fn) -> torch.optim.SGD:
    """SGD with populated momentum buffers, as in the middle of a search."""
    opt = torch.optim.SGD(params, lr=0.1, momentum=MOMENTUM, weight_decay=WD)
    loss_fn().backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return opt


def qrs(main: torch.Tensor, aux: torch.Tensor) -> torch.Tensor:
    return qrs_loss(main, aux, tau=0.5, count=None)  # every quadruple: deterministic


def captured_features(module, params, x):
    """Penultimate features of ``module`` run functionally with ``params`` (the classifier's input)."""
    seen = []
    handle = module.classifier.register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0]))
    try:
        logits = functional_call(module, params, (x,))
    finally:
        handle.remove()
    return seen[0], logits


def exact_hypergradient(main, aux, opt1, opt2, train, val):
    """d/dA L_val(W2'(W1'(A), A)) by double backward through both unrolled SGD steps."""
    p1 = dict(main.named_parameters())
    weights1 = [n for n in p1 if not n.startswith("alphas.")]
    arch = [n for n in p1 if n.startswith("alphas.")]
    p2 = dict(aux.named_parameters())

    def sgd(params, names, grads, opt, lr):
        return {n: params[n] - lr * (MOMENTUM * opt.state[params[n]]["momentum_buffer"] + g + WD * params[n])
                for n, g in zip(names, grads)}

    loss1 = F.cross_entropy(functional_call(main, p1, (train[0],)), train[1])
    moved1 = sgd(p1, weights1, torch.autograd.grad(loss1, [p1[n] for n in weights1], create_graph=True), opt1, XI1)
    moved1.update({n: p1[n] for n in arch})
    f1, _ = captured_features(main, moved1, train[0])
    f2, logits2 = captured_features(aux, p2, train[0])
    loss2 = F.cross_entropy(logits2, train[1]) + LAMBDA * qrs(f1, f2)
    moved2 = sgd(p2, list(p2), torch.autograd.grad(loss2, list(p2.values()), create_graph=True), opt2, XI2)
    val_loss = F.cross_entropy(functional_call(aux, moved2, (val[0],)), val[1])
    return list(torch.autograd.grad(val_loss, [p1[n] for n in arch])), float(val_loss.detach())


def problem_of(main, aux, opt1, opt2, *, main_lr=XI1, aux_lr=XI2, transfer_weight=LAMBDA) -> TransferProblem:
    return TransferProblem(main=main, aux=aux, main_features=lambda x: main.features(x),
                           aux_features=lambda x: classifier_features(aux, x), aux_logits=aux.classifier,
                           qrs=qrs, transfer_weight=transfer_weight, main_optimizer=opt1, aux_optimizer=opt2,
                           main_lr=main_lr, aux_lr=aux_lr)


def context() -> StepContext:
    return StepContext(epoch=0, step=0, steps_per_epoch=1, epochs=1, weight_lr=XI1, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def setting():
    main, aux = tiny_models()
    train, val = tiny_batches()
    opt1 = stepped_optimizer(main.weight_parameters(), lambda: F.cross_entropy(main(train[0]), train[1]))
    opt2 = stepped_optimizer(aux.parameters(), lambda: F.cross_entropy(aux(train[0]), train[1]))
    return main, aux, opt1, opt2, train, val


def test_nested_hypergradient_matches_exact_double_backward(setting):
    main, aux, opt1, opt2, train, val = setting
    exact, exact_loss = exact_hypergradient(main, aux, opt1, opt2, train, val)
    before = [p.detach().clone() for p in [*main.parameters(), *aux.parameters()]]
    # float64 and a small eps keep the two central differences' O(r^2) error negligible
    grads, loss = transfer_hypergradient(problem_of(main, aux, opt1, opt2), train, val, context(), eps=1e-5)
    assert loss == pytest.approx(exact_loss, rel=1e-9)
    for g, e in zip(grads, exact):
        assert e.abs().max() > 1e-4  # the auxiliary path does reach alpha
        torch.testing.assert_close(g, e, rtol=0.0, atol=1e-6 * float(e.abs().max()) + 1e-9)
    after = [p.detach() for p in [*main.parameters(), *aux.parameters()]]
    assert all(torch.equal(a, b) for a, b in zip(after, before))  # both models restored bit for bit
    assert all(p.grad is None for p in aux.parameters())


def test_both_paths_of_the_hypergradient_matter(setting):
    """The direct path (features depend on A) and the path through W1' are both in the exact gradient:
    dropping the main model's virtual step (xi1 = 0) changes the result by more than the tolerance."""
    main, aux, opt1, opt2, train, val = setting
    full, _ = transfer_hypergradient(problem_of(main, aux, opt1, opt2), train, val, context(), eps=1e-5)
    direct, _ = transfer_hypergradient(problem_of(main, aux, opt1, opt2, main_lr=0.0), train, val, context(),
                                       eps=1e-5)
    assert max(float((a - b).abs().max()) for a, b in zip(full, direct)) > 1e-4
    assert max(float(d.abs().max()) for d in direct) > 1e-4
    none, _ = transfer_hypergradient(problem_of(main, aux, opt1, opt2, transfer_weight=0.0), train, val,
                                     context(), eps=1e-5)
    assert all(float(n.abs().max()) == 0.0 for n in none)  # without transfer the auxiliary loss ignores A


def test_classifier_features_of_derived_networks_and_resnet():
    x = torch.randn(4, 1, 8, 8)
    for net in (CifarResNet(8, 4, 3, 1),
                get_space("nb201").build_network("|skip_connect~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|"
                                                 "nor_conv_3x3~1|avg_pool_3x3~2|", channels=4, layers=1,
                                                 num_classes=3, in_channels=1)):
        net.eval()
        features = classifier_features(net, x)
        assert features.shape == (4, net.classifier.in_features)
        torch.testing.assert_close(net.classifier(features), net(x))


def test_resnet20_has_the_published_size():
    assert round(count_parameters(CifarResNet(20, 16, 10, 3)) / 1e6, 2) == 0.27
    with pytest.raises(ValueError, match="6n \\+ 2"):
        CifarResNet(depth=10)


def ta_config(**ta):
    return config_from_dict({
        "space": "nb201", "data": {"name": "digits", "noise_std": 0.5, "limit": 128},
        "supernet": {"channels": 4, "layers": 1},
        "search": {"epochs": 3, "batch_size": 32, "arch_lr": 0.01, "seed": 2},
        "objectives": {"ta": {"aux_depth": 8, "aux_channels": 4, **ta}},
    })


def test_a_genotype_aux_model_is_its_derived_network():
    arch = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    cfg = ta_config(aux="genotype", aux_genotype=arch, aux_layers=2)
    aux = build_aux_model(cfg.objectives.ta, cfg.space, cfg.supernet.layers, 10, 1)
    expected = get_space("nb201").build_network(arch, channels=4, layers=2, num_classes=10, in_channels=1)
    assert count_parameters(aux) == count_parameters(expected)
    report = Search(cfg).run_epoch()
    assert math.isfinite(report["ta_qrs"]) and math.isfinite(report["ta_aux_val_loss"])


@pytest.mark.parametrize("ta, field", [
    ({"aux": "genotype"}, "objectives.ta.aux_genotype"),
    ({"aux": "genotype", "aux_genotype": "|bogus~0|"}, "objectives.ta.aux_genotype"),
    ({"aux_depth": 8, "matching": "l1"}, "objectives.ta.matching"),
])
def test_bad_ta_settings_name_the_field(ta, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        ta_config(**ta)


def test_random_search_refuses_ta():
    base = config_to_dict(ta_config())
    with pytest.raises(ConfigError, match="method"):
        config_from_dict({**base, "method": "rs", "selection": {"name": "sampling"}})


def first_arch_gradient(**ta) -> list[torch.Tensor]:
    """The architecture gradient of the first step of a fresh search of ``ta_config(**ta)``."""
    search = Search(ta_config(**ta))
    train = search._to_device(next(iter(search.train_loader.epoch(0))))
    val = search._to_device(next(iter(search.val_loader.epoch(0))))
    ctx = StepContext(epoch=0, step=0, steps_per_epoch=search.steps_per_epoch, epochs=3, weight_lr=0.025,
                      device=search.device, seed=2)
    search._arch_step(train, val, ctx)
    return [p.grad.clone() for p in search.model.arch_parameters()]


def test_val_weight_scales_the_darts_gradient_and_the_nested_term_adds_to_it():
    plain = first_arch_gradient(hypergradient="none")
    doubled = first_arch_gradient(hypergradient="none", val_weight=2.0)
    nested = first_arch_gradient()
    nested_doubled = first_arch_gradient(val_weight=2.0)
    for p, d, n, nd in zip(plain, doubled, nested, nested_doubled):
        torch.testing.assert_close(d, 2 * p, rtol=1e-6, atol=0.0)
        assert float((n - p).abs().max()) > 1e-6  # the auxiliary path adds a gradient
        torch.testing.assert_close(nd - n, p, rtol=1e-4, atol=1e-7)  # gamma acts on the DARTS part alone


def test_resume_restores_the_auxiliary_model_bit_for_bit(tmp_path):
    cfg = ta_config(quadruples=64)
    first = Search(cfg)
    first.run_epoch()
    save_state(first.get_state(), str(tmp_path / "state.pt"))  # as the trainable's checkpoint does
    state = load_state(str(tmp_path / "state.pt"))
    aux_after_one = {k: v.clone() for k, v in state["objective"]["ta"]["aux"].items()}
    expected = first.run_epoch()
    resumed = Search(cfg)
    resumed.set_state(state)
    for key, value in resumed.objective.terms[0].aux.state_dict().items():
        assert torch.equal(value, aux_after_one[key]), key
    again = resumed.run_epoch()
    for key in ("alphas", "train_loss", "val_loss", "ta_qrs", "ta_aux_loss", "ta_aux_val_loss", "genotype"):
        assert again[key] == expected[key], key
    for (key, a), b in zip(first.objective.terms[0].aux.state_dict().items(),
                           resumed.objective.terms[0].aux.state_dict().values()):
        assert torch.equal(a, b), key
    # a fresh search differs: the restored auxiliary model is what made the epochs equal
    fresh = Search(cfg)
    fresh.set_state({**state, "objective": {}})
    assert fresh.run_epoch()["ta_aux_loss"] != expected["ta_aux_loss"]
