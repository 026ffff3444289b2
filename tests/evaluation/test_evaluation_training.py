"""raynas.train.ScratchTraining: epoch reports with the history, bit-for-bit resume, size figures."""

from __future__ import annotations

import pytest
import torch

from raynas.config import DataConfig, TrainConfig
from raynas.networks import count_flops
from raynas.runtime import load_state, save_state
from raynas.spaces import get_space
from raynas.train import ScratchTraining, resolve_protocol

CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")


def small(genotype: str = CONV, space: str = "nb201", **changes) -> TrainConfig:
    settings = dict(space=space, genotype=genotype, data=DataConfig(name="digits", limit=200, cutout=2), epochs=3,
                    batch_size=32, channels=4, layers=1, seed=5, device="cpu", threads=1)
    settings.update(changes)
    return TrainConfig(**settings)


def test_reports_carry_the_history_and_the_size():
    training = ScratchTraining(small())
    reports = [training.run_epoch() for _ in range(3)]
    assert training.done and [r["epoch"] for r in reports] == [1, 2, 3]
    last = reports[-1]
    assert last["epoch_test_acc"] == [r["test_acc"] for r in reports]
    assert last["epoch_train_loss"] == [r["train_loss"] for r in reports]
    assert last["flops"] == 2 * last["macs"] > 0 and last["params"] > 0 and last["seed"] == 5
    assert last["train_loss"] < reports[0]["train_loss"]  # it learns


def test_resume_from_a_saved_state_is_bit_for_bit(tmp_path):
    straight = ScratchTraining(small(space="darts", genotype=DARTS_V2, auxiliary=True, drop_path_prob=0.2))
    for _ in range(3):
        expected = straight.run_epoch()
    first = ScratchTraining(small(space="darts", genotype=DARTS_V2, auxiliary=True, drop_path_prob=0.2))
    first.run_epoch()
    save_state(first.get_state(), str(tmp_path / "state.pt"))
    torch.manual_seed(1234)  # a fresh process's RNG: the state must bring its own
    resumed = ScratchTraining(small(space="darts", genotype=DARTS_V2, auxiliary=True, drop_path_prob=0.2))
    resumed.set_state(load_state(str(tmp_path / "state.pt")))
    assert resumed.epoch == 1
    while not resumed.done:
        report = resumed.run_epoch()
    for name in ("epoch_train_loss", "epoch_test_acc", "epoch_test_loss"):
        assert report[name] == expected[name], name
    for (key, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), key


def test_state_of_another_genotype_is_refused():
    state = ScratchTraining(small(epochs=1)).get_state()
    other = ScratchTraining(small(genotype=ALL_CONV, epochs=1))
    with pytest.raises(Exception, match="checkpoint holds genotype"):
        other.set_state(state)


@pytest.mark.parametrize("space, genotype, macs_m", [
    ("nb201", ALL_CONV, 220.11968),  # NAS-Bench-201's largest CIFAR-10 cell: 220.11 MFLOPs in its tables
    ("darts", DARTS_V2, 528.35904),  # DARTS_V2 at C=36, 20 cells: ~528M multiply-adds
])
def test_multiply_adds_of_published_architectures(space, genotype, macs_m):
    sp = get_space(space)
    cfg = resolve_protocol(TrainConfig(space=space, genotype=genotype))
    model = sp.build_network(sp.parse_genotype(genotype), channels=cfg.channels, layers=cfg.layers, num_classes=10,
                             in_channels=3, auxiliary=bool(cfg.auxiliary), drop_path_prob=0.2)
    assert count_flops(model, (3, 32, 32)) / 2 / 1e6 == pytest.approx(macs_m, abs=1e-5)
    assert model.training  # the count leaves the model's mode alone


@pytest.mark.parametrize("space, genotype, cutout, expected", [
    ("darts", DARTS_V2, None, 4),  # the DARTS protocol: half the side of digits' 8x8 images (16 on CIFAR)
    ("darts", DARTS_V2, 0, 0),  # 0 turns it off
    ("nb201", CONV, None, 0),  # NB201's protocol has none
    ("nb201", CONV, 2, 2),
])
def test_cutout_follows_the_protocol_unless_set(space, genotype, cutout, expected):
    training = ScratchTraining(small(space=space, genotype=genotype, epochs=1,
                                     data=DataConfig(name="digits", limit=100, cutout=cutout)))
    augmentation = getattr(training.train_loader.dataset, "augmentation", None)
    assert (augmentation.cutout if augmentation is not None else 0) == expected
