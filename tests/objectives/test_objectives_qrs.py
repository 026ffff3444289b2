"""The QRS loss of TA-DARTS: hand-computed values, invariances, sampling and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from raynas.objectives.qrs import pair_similarities, qrs_loss, relative_similarities

# 3 samples, 2 features. Pairs in order (0,1), (0,2), (1,2).
MAIN = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # cosines 0, 1/sqrt2, 1/sqrt2
AUX = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])   # cosines 1, 0, 0
R1 = [-1 / math.sqrt(2), -1 / math.sqrt(2), 0.0]           # pairs of pairs (01,02), (01,12), (02,12)
R2 = [1.0, 1.0, 0.0]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_pair_and_relative_similarities_by_hand():
    assert pair_similarities(MAIN).tolist() == pytest.approx([0.0, 1 / math.sqrt(2), 1 / math.sqrt(2)])
    assert relative_similarities(pair_similarities(MAIN)).tolist() == pytest.approx(R1)
    assert relative_similarities(pair_similarities(AUX)).tolist() == pytest.approx(R2)


def test_bce_matching_equals_the_hand_computed_value():
    tau = 0.1
    terms = []
    for r1, r2 in zip(R1, R2):
        t, x = sigmoid(r1 / tau), r2 / tau
        terms.append(-(t * math.log(sigmoid(x)) + (1 - t) * math.log(1 - sigmoid(x))))
    assert qrs_loss(MAIN, AUX, tau=tau).item() == pytest.approx(sum(terms) / 3, rel=1e-5)
    assert sum(terms) / 3 == pytest.approx(6.8921, abs=1e-3)


def test_mse_and_hinge_matchings_by_hand():
    mse = sum((b - a) ** 2 for a, b in zip(R1, R2)) / 3
    assert qrs_loss(MAIN, AUX, matching="mse").item() == pytest.approx(mse, rel=1e-6)
    # sign(r1) * r2: -1, -1, 0 -> relu(0.5 - .) = 1.5, 1.5, 0.5
    assert qrs_loss(MAIN, AUX, matching="hinge", margin=0.5).item() == pytest.approx(3.5 / 3, rel=1e-6)


def test_invariant_to_positive_rescaling_of_samples_and_to_rotations():
    gen = torch.Generator().manual_seed(0)
    main, aux = torch.randn(10, 6, generator=gen), torch.randn(10, 4, generator=gen)
    base = qrs_loss(main, aux)
    scales = torch.rand(10, 1, generator=gen) * 5 + 0.1
    rotation, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen))
    assert qrs_loss(main * scales, aux).item() == pytest.approx(base.item(), rel=1e-5)
    assert qrs_loss(main, aux * scales.flip(0)).item() == pytest.approx(base.item(), rel=1e-5)
    assert qrs_loss(main @ rotation, aux).item() == pytest.approx(base.item(), rel=1e-5)
    assert qrs_loss(main, -aux).item() == pytest.approx(base.item(), rel=1e-5)  # a reflection is orthogonal too
    assert qrs_loss(main, aux + 1.0).item() != pytest.approx(base.item(), rel=1e-3)  # a shift is not


def test_matching_features_are_a_minimum():
    gen = torch.Generator().manual_seed(1)
    main = torch.randn(8, 5, generator=gen)
    aux = (main * 3.0).clone().requires_grad_(True)
    for matching in ("mse", "hinge"):
        assert qrs_loss(main, aux, matching=matching).item() == pytest.approx(0.0, abs=1e-7)
    grad, = torch.autograd.grad(qrs_loss(main, aux), [aux])  # bce: sigma(x) - sigma(x) = 0
    assert grad.abs().max().item() < 1e-6
    other = torch.randn(8, 5, generator=gen)
    assert qrs_loss(main, other).item() > qrs_loss(main, main).item()


def test_sampled_quadruples_are_seeded_and_estimate_the_exhaustive_loss():
    gen = torch.Generator().manual_seed(2)
    main, aux = torch.randn(24, 8, generator=gen), torch.randn(24, 8, generator=gen)
    exhaustive = qrs_loss(main, aux).item()
    draw = lambda seed: qrs_loss(main, aux, count=20000, generator=torch.Generator().manual_seed(seed)).item()  # noqa: E731
    assert draw(5) == draw(5) and draw(5) != draw(6)
    assert draw(5) == pytest.approx(exhaustive, rel=0.05)
    sim = torch.arange(10, dtype=torch.float32)
    diffs = relative_similarities(sim, count=5000, generator=torch.Generator().manual_seed(0))
    assert (diffs != 0).all()  # never a pair against itself


def test_gradients_reach_both_models_features_and_large_batches_stay_vectorised():
    gen = torch.Generator().manual_seed(3)
    main = torch.randn(64, 16, generator=gen, requires_grad=True)
    aux = torch.randn(64, 16, generator=gen, requires_grad=True)
    loss = qrs_loss(main, aux)  # 2016 pairs, about 2 million quadruples, one matrix
    g_main, g_aux = torch.autograd.grad(loss, [main, aux])
    assert g_main.abs().sum() > 0 and g_aux.abs().sum() > 0


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="same batch"):
        qrs_loss(MAIN, AUX[:2])
    with pytest.raises(ValueError, match="at least 3 samples"):
        qrs_loss(MAIN[:2], AUX[:2])
    with pytest.raises(ValueError, match="matching 'l1'"):
        qrs_loss(MAIN, AUX, matching="l1")
