"""Genotype texts are bounded: a huge range, a huge text or a digit int() cannot read is a one-line GenotypeError."""

from __future__ import annotations

import pytest

from raynas.errors import GenotypeError
from raynas.spaces import get_space
from raynas.spaces.genotype import MAX_CONCAT_NODES, MAX_GENOTYPE_CHARS, parse_genotype

EDGES = ("[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
         "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)]")
NB201 = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~{}|"


def _darts(normal_concat: str) -> str:
    return f"Genotype(normal={EDGES}, normal_concat={normal_concat}, reduce={EDGES}, reduce_concat=[2, 3, 4, 5])"


def test_a_huge_concat_range_is_refused_unbuilt() -> None:
    with pytest.raises(GenotypeError, match=r"normal_concat = range\(0, 1000000000000\) has 1000000000000 nodes; "
                                            rf"a concat may have at most {MAX_CONCAT_NODES}"):
        parse_genotype(_darts("range(0, 1000000000000)"))


def test_a_concat_range_within_the_bound_still_parses() -> None:
    assert get_space("darts").parse_genotype(_darts("range(2, 6)")).normal_concat == (2, 3, 4, 5)


def test_a_long_concat_list_is_refused() -> None:
    nodes = ", ".join(["2"] * (MAX_CONCAT_NODES + 1))
    with pytest.raises(GenotypeError, match=f"normal_concat has {MAX_CONCAT_NODES + 1} nodes"):
        parse_genotype(_darts(f"[{nodes}]"))


@pytest.mark.parametrize("text", [_darts("[2, 3, 4, 5]") + " " * MAX_GENOTYPE_CHARS, "|" + "x~0|" * MAX_GENOTYPE_CHARS])
def test_a_text_longer_than_any_genotype_is_refused(text: str) -> None:
    with pytest.raises(GenotypeError, match=f"{len(text)} characters; a genotype text may have at most "
                                            f"{MAX_GENOTYPE_CHARS}"):
        parse_genotype(text)


@pytest.mark.parametrize("source", ["\u00b2", "9" * 5000])
def test_an_nb201_source_int_cannot_read_is_a_genotype_error(source: str) -> None:
    with pytest.raises(GenotypeError) as err:
        get_space("nb201").parse_genotype(NB201.format(source))
    assert "is not op~src with a source node number (at most 6 digits)" in str(err.value)
    assert "\n" not in str(err.value) and len(str(err.value)) < 400
