"""Magnitude selection (DARTS rule) on hand-built architecture weights."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from raynas.errors import ConfigError, SpaceError
from raynas.selection import SELECTIONS, MagnitudeSelection, Selection, magnitude_choices
from raynas.selection import magnitude as magnitude_module
from raynas.spaces import get_space

DARTS_OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5")
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def darts_matrix(rows: dict[int, dict[str, float]]) -> np.ndarray:
    """14 x 8 weights of 0.01 except the given ``{edge: {op: weight}}`` entries."""
    w = np.full((14, 8), 0.01)
    for edge, ops in rows.items():
        for op, value in ops.items():
            w[edge, DARTS_OPS.index(op)] = value
    return w


# edges: node 2 <- 0,1 (e0,e1); node 3 <- 0,1,2 (e2..e4); node 4 <- 0..3 (e5..e8); node 5 <- 0..4 (e9..e13)
NORMAL = darts_matrix({
    0: {"sep_conv_3x3": 0.6}, 1: {"skip_connect": 0.5},
    # e2's largest weight is 'none'; judged by its best real op (0.05) it loses to e3 and e4
    2: {"none": 0.9, "sep_conv_5x5": 0.05}, 3: {"dil_conv_3x3": 0.3},
    # e4's largest weight is 'none' too, but its best real op (0.15) keeps it, with that op
    4: {"none": 0.8, "max_pool_3x3": 0.15},
    5: {"avg_pool_3x3": 0.2}, 6: {"sep_conv_3x3": 0.4}, 7: {"sep_conv_5x5": 0.35}, 8: {"dil_conv_5x5": 0.1},
    # ties: e10..e12 all reach 0.4, the lower edge indices win; e10's op tie goes to the lower op index
    9: {"avg_pool_3x3": 0.25}, 10: {"sep_conv_3x3": 0.4, "sep_conv_5x5": 0.4}, 11: {"dil_conv_3x3": 0.4},
    12: {"max_pool_3x3": 0.4}, 13: {"none": 0.95},
})
NORMAL_EXPECTED = {0: "sep_conv_3x3", 1: "skip_connect", 3: "dil_conv_3x3", 4: "max_pool_3x3",
                   6: "sep_conv_3x3", 7: "sep_conv_5x5", 10: "sep_conv_3x3", 11: "dil_conv_3x3"}
REDUCE = darts_matrix({
    0: {"max_pool_3x3": 0.5}, 1: {"max_pool_3x3": 0.4},
    2: {"skip_connect": 0.3}, 3: {"none": 0.5}, 4: {"avg_pool_3x3": 0.2},
    5: {"dil_conv_5x5": 0.3}, 8: {"sep_conv_5x5": 0.35},
    11: {"max_pool_3x3": 0.3}, 13: {"skip_connect": 0.2},
})
REDUCE_EXPECTED = {0: "max_pool_3x3", 1: "max_pool_3x3", 2: "skip_connect", 4: "avg_pool_3x3",
                   5: "dil_conv_5x5", 8: "sep_conv_5x5", 11: "max_pool_3x3", 13: "skip_connect"}


def nb201_matrix(rows: list[list[float]]) -> np.ndarray:
    w = np.array(rows, dtype=np.float64)
    assert w.shape == (6, 5)
    return w


# edges: e0 (0,1), e1 (0,2), e2 (1,2), e3 (0,3), e4 (1,3), e5 (2,3); ops: none, skip, c1x1, c3x3, avg
NB201_CONNECTED = nb201_matrix([
    [0.1, 0.1, 0.1, 0.6, 0.1],
    [0.5, 0.2, 0.1, 0.1, 0.1],
    [0.1, 0.5, 0.2, 0.1, 0.1],
    [0.4, 0.3, 0.1, 0.1, 0.1],
    [0.1, 0.1, 0.1, 0.1, 0.6],
    [0.1, 0.1, 0.35, 0.35, 0.1],  # tie: the lower op index (nor_conv_1x1) wins
])
NB201_CONNECTED_EXPECTED = {0: "nor_conv_3x3", 1: "none", 2: "skip_connect", 3: "none", 4: "avg_pool_3x3",
                            5: "nor_conv_1x1"}
# argmax: node 2 is dead (e1, e2 'none'), node 3 is fed only by e5 from node 2 -> disconnected. The cheapest
# repair turns e4 (1,3) from 'none' (0.5) to its runner-up nor_conv_3x3 (0.44): log(0.5/0.44) ~ 0.13, while
# reviving node 2 or e3 costs log(0.9/0.025) ~ 3.6.
NB201_DISCONNECTED = nb201_matrix([
    [0.02, 0.02, 0.02, 0.9, 0.04],
    [0.9, 0.025, 0.025, 0.025, 0.025],
    [0.9, 0.025, 0.025, 0.025, 0.025],
    [0.9, 0.025, 0.025, 0.025, 0.025],
    [0.5, 0.02, 0.02, 0.44, 0.02],
    [0.1, 0.1, 0.6, 0.1, 0.1],
])
NB201_ARGMAX = {0: "nor_conv_3x3", 1: "none", 2: "none", 3: "none", 4: "none", 5: "nor_conv_1x1"}
NB201_REPAIRED = {**NB201_ARGMAX, 4: "nor_conv_3x3"}


def test_darts_keeps_two_strongest_real_edges_per_node() -> None:
    space = get_space("darts")
    choices = magnitude_choices(space, {"normal": NORMAL, "reduce": REDUCE})
    assert choices == {"normal": NORMAL_EXPECTED, "reduce": REDUCE_EXPECTED}
    genotype = space.genotype_from_choices(choices)
    assert space.is_connected(genotype)
    assert genotype.normal[2:4] == (("dil_conv_3x3", 1), ("max_pool_3x3", 2))


def test_nb201_takes_the_argmax_op_of_every_edge_none_included() -> None:
    space = get_space("nb201")
    choices = magnitude_choices(space, {"cell": NB201_CONNECTED})
    assert choices == {"cell": NB201_CONNECTED_EXPECTED}
    assert space.is_connected(space.genotype_from_choices(choices))


def test_nb201_disconnected_argmax_is_repaired_to_the_best_connected_choice() -> None:
    space = get_space("nb201")
    repaired = magnitude_choices(space, {"cell": NB201_DISCONNECTED})
    assert repaired == {"cell": NB201_REPAIRED}
    assert space.is_connected(space.genotype_from_choices(repaired))


def test_nb201_without_skip_disconnected_keeps_the_argmax() -> None:
    space = get_space("nb201")
    kept = magnitude_choices(space, {"cell": NB201_DISCONNECTED}, skip_disconnected=False)
    assert kept == {"cell": NB201_ARGMAX}
    assert not space.is_connected(space.genotype_from_choices(kept))


def test_repair_beyond_enumeration_limit_excludes_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(magnitude_module, "MAX_ENUMERATION", 100)
    repaired = magnitude_choices(get_space("nb201"), {"cell": NB201_DISCONNECTED})
    # strongest op other than 'none' per edge; ties go to the lower op index (skip_connect)
    assert repaired == {"cell": {0: "nor_conv_3x3", 1: "skip_connect", 2: "skip_connect", 3: "skip_connect",
                                 4: "nor_conv_3x3", 5: "nor_conv_1x1"}}


def test_magnitude_selection_reads_the_supernet_softmax() -> None:
    import torch

    space = get_space("nb201")
    torch.manual_seed(0)
    supernet = space.build_supernet(channels=2, layers=1, num_classes=3, in_channels=1)
    with torch.no_grad():  # rows sum to 1, so softmax(log w) = w
        supernet.alphas["cell"].copy_(torch.log(torch.from_numpy(NB201_DISCONNECTED)).float())
    selection = SELECTIONS.get("magnitude")()
    assert isinstance(selection, Selection)
    assert selection.select(supernet, None, None) == space.genotype_from_choices({"cell": NB201_REPAIRED})
    raw = MagnitudeSelection(skip_disconnected=False).select(supernet, None, None)
    assert raw == space.genotype_from_choices({"cell": NB201_ARGMAX})


def test_wrong_weights_and_unknown_selection_raise() -> None:
    with pytest.raises(SpaceError, match="shape"):
        magnitude_choices(get_space("nb201"), {"cell": np.ones((6, 4))})
    with pytest.raises(SpaceError, match="reduce"):
        magnitude_choices(get_space("darts"), {"normal": NORMAL})
    with pytest.raises(ConfigError, match="magnitude"):
        SELECTIONS.get("magnitud")


def test_importing_selection_registry_does_not_import_torch() -> None:
    code = ("import sys, raynas.selection as s; assert 'magnitude' in s.SELECTIONS; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
