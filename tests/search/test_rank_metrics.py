"""The extra in-search ranking metrics (raynas.ranking): real searches on the digits, real supernets.

They must leave the search's trajectory exactly as it is without them, be deterministic, be measured on the
epochs ``search.rank_metrics_every`` says (and the last), and each compute what its name says.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from raynas.config import config_from_dict
from raynas.ranking import RANK_METRIC_COLUMNS, RANK_METRICS, RANK_TIME_COLUMNS, TIME_COLUMNS
from raynas.ranking.metrics import finetune, neighborhood, recalibrate_batchnorm, used_parameters
from raynas.runtime import load_state, save_state
from raynas.search import Search
from raynas.spaces import get_space
from raynas.supernet import discrete_weights

ALL_KINDS = list(RANK_METRICS)
TINY = {
    "space": "nb201",
    "data": {"name": "digits", "noise_std": 0.5, "limit": 160},
    "supernet": {"channels": 4, "layers": 1},
    "search": {"epochs": 3, "batch_size": 32, "arch_lr": 0.01, "seed": 3, "threads": 1,
               "rank_finetune_steps": 6, "rank_bn_batches": 2},
}
TIMINGS = {"epoch_time_s", "reported_at", *TIME_COLUMNS}


def search(selection: dict | None = None, **options) -> Search:
    # no kind unless asked for: not even params, which the default tune.metric (derived_params) turns on
    config = {**TINY, "search": {"rank_metrics": [], **TINY["search"], **options},
              "tune": {"metric": "derived_val_acc"}}
    if selection:
        config["selection"] = selection
    return Search(config_from_dict(config))


def run(s: Search) -> list[dict]:
    reports = []
    while not s.done:
        reports.append({k: v for k, v in s.run_epoch().items() if k not in TIMINGS})
    return reports


@pytest.mark.parametrize("selection", [None, {"name": "perturbation", "proj_intv": 0}],
                         ids=["magnitude", "perturbation-stage"])
def test_the_metrics_leave_the_search_trajectory_unchanged(selection):
    plain, measured = search(selection), search(selection, rank_metrics=ALL_KINDS)
    plain_reports, measured_reports = run(plain), run(measured)
    assert len(plain_reports) == len(measured_reports) >= 3
    for a, b in zip(plain_reports, measured_reports):
        assert set(b) - set(a) == set(RANK_METRIC_COLUMNS)
        assert a == {k: v for k, v in b.items() if k in a}  # alphas, genotype, fingerprint, every metric
    state_a, state_b = plain.model.state_dict(), measured.model.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)  # weights and BatchNorm statistics


def test_the_global_rngs_are_where_the_search_left_them():
    def after(options: dict) -> tuple:
        search(**options).run_epoch()  # the search seeds the global RNGs itself
        return torch.rand(1).item(), float(np.random.rand()), random.random()

    assert after({}) == after({"rank_metrics": ALL_KINDS})


def test_the_metrics_are_deterministic_and_in_range():
    a = run(search(rank_metrics=ALL_KINDS))
    b = run(search(rank_metrics=ALL_KINDS))
    assert a == b
    for report in a:
        for column in ("derived_bn_val_acc", "derived_finetune_val_acc", "derived_neighborhood_val_acc"):
            assert 0.0 <= report[column] <= 1.0, column
        for column in ("derived_bn_val_loss", "derived_finetune_val_loss", "derived_neighborhood_val_loss"):
            assert report[column] > 0.0, column
        assert report["derived_params"] > 0 and float(report["derived_params"]).is_integer()


def test_only_the_kinds_asked_for_are_reported_with_their_seconds():
    s = search(rank_metrics=["params", "bn"])
    report = s.run_epoch()
    for column in ("derived_params", "derived_bn_val_acc", "derived_bn_val_loss", "derived_params_time_s",
                   "derived_bn_time_s", "val_time_s", "derived_val_time_s"):
        assert column in report and report[column] >= 0.0, column
    for column in (*RANK_METRICS["finetune"], *RANK_METRICS["neighborhood"], RANK_TIME_COLUMNS["finetune"]):
        assert column not in report
    assert "derived_params" not in search().run_epoch()


def test_every_n_epochs_and_always_the_last():
    s = search(rank_metrics=["neighborhood", "params"], rank_metrics_every=2, epochs=3)
    measured = [not math.isnan(s.run_epoch()["derived_neighborhood_val_acc"]) for _ in range(3)]
    assert measured == [False, True, True]  # epoch 2 (every 2) and epoch 3 (the last)


# -- what each metric computes -------------------------------------------------------------------------------
def _supernet_and_batches():
    s = search()
    s.run_epoch()
    batches = list(s.rank_loader.epoch(0))[:3]
    derived = discrete_weights(s.space, s.space.choices_from_genotype(s.genotype))
    return s, derived, batches


def test_batchnorm_statistics_become_the_average_over_the_batches():
    s, derived, batches = _supernet_and_batches()
    model = s.model
    stem_bn = model.stem[1]
    recalibrate_batchnorm(model, derived, batches, torch.device("cpu"))
    assert not model.training
    with torch.no_grad():  # the stem's BatchNorm sees the stem convolution's output of each batch
        means = [model.stem[0](x).mean(dim=(0, 2, 3)) for x, _ in batches]
    assert torch.allclose(stem_bn.running_mean, torch.stack(means).mean(0), atol=1e-6)
    assert int(stem_bn.num_batches_tracked) == len(batches)


def test_finetune_trains_only_the_derived_networks_weights():
    s, derived, batches = _supernet_and_batches()
    before = {name: p.detach().clone() for name, p in s.model.named_parameters()}
    taken = finetune(s.model, derived, iter(batches * 4), torch.device("cpu"), steps=5, lr=0.05, momentum=0.9,
                     weight_decay=3e-4, grad_clip=5.0)
    assert taken == 5
    changed = {name for name, p in s.model.named_parameters() if not torch.equal(p, before[name])}
    cell = derived["cell"]
    for e in range(cell.shape[0]):
        for k, op in enumerate(s.space.edge_ops("cell", e)):
            prefix = f"cells.0.mixed.{e}.ops.{k}."
            params = [name for name in before if name.startswith(prefix)]
            if cell[e, k] == 0:
                assert not any(name in changed for name in params), (e, op)  # unused ops never move
            elif params:
                assert all(name in changed for name in params), (e, op)
    assert not any(name.startswith("alphas.") for name in changed)
    assert "classifier.weight" in changed


def test_params_count_the_derived_networks_weights():
    s = search()
    space = s.space
    x, _ = next(iter(s.eval_loader.epoch(0)))
    ops = ["skip_connect"] * 6

    def count(edge0: str) -> int:
        choices = {"cell": {e: (edge0 if e == 0 else op) for e, op in enumerate(ops)}}
        return used_parameters(s.model, discrete_weights(space, choices), x)

    # one nor_conv_3x3 instead of a skip on edge 0: a 3x3 convolution of C, 2C and 4C channels (one cell per
    # stage, C = 4; the supernet's op BatchNorms have no affine parameters)
    assert count("nor_conv_3x3") - count("skip_connect") == 9 * (4 ** 2 + 8 ** 2 + 16 ** 2)
    assert count("avg_pool_3x3") == count("skip_connect")


def test_neighbours_differ_in_one_edge_and_repeat_with_the_seed():
    space = get_space("nb201")
    genotype = space.parse_genotype("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                                    "nor_conv_3x3~1|nor_conv_3x3~2|")
    first = neighborhood(space, genotype, 5, seed=1, epoch=4)
    assert first == neighborhood(space, genotype, 5, seed=1, epoch=4)
    assert first != neighborhood(space, genotype, 5, seed=1, epoch=5)
    center = space.choices_from_genotype(genotype)["cell"]
    for neighbour in first:
        ops = space.choices_from_genotype(neighbour)["cell"]
        assert sum(ops[e] != center[e] for e in center) == 1


def test_a_resumed_search_measures_the_same_values(tmp_path):
    straight = run(search(rank_metrics=ALL_KINDS))
    first = search(rank_metrics=ALL_KINDS)
    first.run_epoch()
    save_state(first.get_state(), str(tmp_path / "state.pt"))
    resumed = search(rank_metrics=ALL_KINDS)
    resumed.set_state(load_state(str(tmp_path / "state.pt")))
    assert run(resumed) == straight[1:]
