"""NB201's isomorphism reduction: 15,625 arch strings, 6,466 unique cells, equivalent strings share an id."""

from __future__ import annotations

import pytest

from raynas.benchmark.cells import canonical_string, unique_cells
from raynas.spaces.nb201 import NB201

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"

EQUIVALENT = [
    # node 1 is the input itself, so a skip from node 1 or from node 0 into node 2 is the same
    ("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
     "|skip_connect~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|"),
    # node 1 is zero: whatever op leaves it contributes zero
    ("|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
     "|none~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_3x3~2|"),
    # node 1 is the input itself, so a conv from node 1 or from node 0 into node 3 is the same term
    ("|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
     "|skip_connect~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|"),
]

DIFFERENT = [
    (BEST, BEST.replace("skip_connect~0", "nor_conv_1x1~0")),
    ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|",
     "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|"),  # zero terms count, as in NB201
]


def test_the_space_has_6466_unique_cells_and_12751_without_the_zero_rule():
    cells = unique_cells()
    assert len(cells.arch_strings) == 15_625 and len(cells) == 6_466
    assert sum(cells.members) == 15_625
    coarse = {canonical_string(g, fold_zeros=False) for g in NB201.enumerate_genotypes()}
    assert len(coarse) == 12_751


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_equivalent_arch_strings_map_to_one_cell(a, b):
    assert a != b
    cells = unique_cells()
    assert canonical_string(a) == canonical_string(b)
    assert cells.cell_id(a) == cells.cell_id(b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_cells_keep_their_own_ids(a, b):
    assert unique_cells().cell_id(a) != unique_cells().cell_id(b)


def test_ids_follow_the_enumeration_and_representatives_are_members():
    cells = unique_cells()
    assert cells.cell_of[0] == 0 and cells.representatives[0] == cells.arch_strings[0]
    first_seen = []
    for cell in cells.cell_of:
        if cell == len(first_seen):
            first_seen.append(cell)
        assert cell < len(first_seen)  # a new id is always the next one
    for cell, arch in enumerate(cells.representatives):
        assert cells.cell_id(arch) == cell
    assert cells.members[cells.cell_id(BEST)] == 1  # no other string computes NB201's best cell
    assert cells.cell_id(" " + BEST.replace("|+|", "| + |")) == cells.cell_id(BEST)  # spacing does not matter


def test_an_arch_string_outside_the_space_is_a_key_error():
    with pytest.raises(KeyError):
        unique_cells().cell_id("|sep_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
