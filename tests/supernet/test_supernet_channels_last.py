"""supernet.channels_last: NHWC weights compute the same search step (losses and gradients) as NCHW ones."""

from __future__ import annotations

import pytest
import torch

from raynas.bilevel import arch_gradient_first_order
from raynas.config import load_config
from raynas.objectives.base import Objective, StepContext
from raynas.search import Search
from raynas.supernet.build import build_supernet


def one_step(space: str, channels_last: bool) -> tuple[float, list[torch.Tensor], list[torch.Tensor], torch.nn.Module]:
    """Loss, architecture and weight gradients of one first-order step of a small supernet (seeded)."""
    cfg = load_config("search_configs/smoke/nb201.yaml" if space == "nb201" else "search_configs/smoke/darts.yaml",
                      [f"supernet.channels_last={str(channels_last).lower()}", "supernet.channels=8"])
    torch.manual_seed(0)
    model = build_supernet(cfg, num_classes=10, in_channels=3)
    ctx = StepContext(epoch=0, step=0, steps_per_epoch=1, epochs=1, weight_lr=0.025, device=torch.device("cpu"))
    gen = torch.Generator().manual_seed(1)
    batch = (torch.randn(8, 3, 16, 16, generator=gen), torch.randint(0, 10, (8,), generator=gen))
    loss = arch_gradient_first_order(model, Objective(), batch, ctx)
    Objective().weight_loss(model, batch, ctx).backward()
    return (loss, [p.grad.clone() for p in model.arch_parameters()],
            [p.grad.clone() for p in model.weight_parameters()], model)


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_channels_last_step_equals_the_plain_one(space):
    loss, arch, weights, plain = one_step(space, False)
    loss_cl, arch_cl, weights_cl, model = one_step(space, True)
    convs = [p for p in model.weight_parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not all(p.is_contiguous(memory_format=torch.channels_last) for p in plain.weight_parameters()
                   if p.dim() == 4 and p.shape[2] > 1)
    assert loss_cl == pytest.approx(loss, rel=1e-5)
    for a, b in zip(arch, arch_cl):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
    for a, b in zip(weights, weights_cl):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_a_channels_last_search_epoch_matches_and_resumes_from_a_plain_checkpoint():
    overrides = ["search.epochs=1", "search.steps_per_epoch=2", "data.limit=64", "search.threads=1"]
    plain = Search(load_config("search_configs/smoke/nb201.yaml", overrides))
    fast = Search(load_config("search_configs/smoke/nb201.yaml", [*overrides, "supernet.channels_last=true"]))
    a, b = plain.run_epoch(), fast.run_epoch()
    assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
    assert b["genotype"] == a["genotype"]
    fast.set_state(plain.get_state())  # a state dict does not depend on the memory format
    assert fast.fingerprint() == plain.fingerprint()
