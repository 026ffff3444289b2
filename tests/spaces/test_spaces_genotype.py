"""Genotype text formats: exact round trips of published genotypes and one-line errors for bad text."""

from __future__ import annotations

import re

import pytest

from raynas.errors import GenotypeError
from raynas.spaces import DartsGenotype, NB201Genotype, get_space, parse_genotype

DARTS_V1 = ("Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
            "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])")
DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
NB201_STRINGS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
]


@pytest.mark.parametrize("text", [DARTS_V1, DARTS_V2])
def test_darts_published_genotypes_round_trip(text: str) -> None:
    genotype = parse_genotype(text)
    assert isinstance(genotype, DartsGenotype)
    assert str(genotype) == text
    assert get_space("darts").parse_genotype(text) == genotype


def test_darts_v2_fields_and_counts() -> None:
    genotype = DartsGenotype.parse(DARTS_V2)
    assert genotype.normal[7] == ("dil_conv_3x3", 2)
    assert genotype.reduce_concat == (2, 3, 4, 5)
    assert genotype.count("skip_connect", "normal") == 2
    assert genotype.count("skip_connect", "reduce") == 3
    assert genotype.count("skip_connect") == 5
    assert genotype.count("max_pool_3x3") == 5
    with pytest.raises(GenotypeError, match="no cell 'cell'; valid: normal, reduce"):
        genotype.count("skip_connect", "cell")


def test_darts_parse_tolerates_layout_name_and_range() -> None:
    expected = DartsGenotype.parse(DARTS_V2)
    loose = DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6)").replace(", (", ",\n   (")
    assert DartsGenotype.parse("\n  " + loose + "  \n") == expected
    assert DartsGenotype.parse(DARTS_V2[len("Genotype"):]) == expected  # "(normal=..., ...)"
    assert DartsGenotype.parse(DARTS_V2[len("Genotype("):-1]) == expected  # "normal=..., ..."
    assert DartsGenotype.parse("genotypes." + DARTS_V2) == expected
    positional = DARTS_V2.replace("normal=", "").replace("normal_concat=", "").replace("reduce=", "").replace(
        "reduce_concat=", "")
    assert DartsGenotype.parse(positional) == expected


def test_darts_parse_never_evaluates_code() -> None:
    with pytest.raises(GenotypeError, match="normal must be a literal list"):
        DartsGenotype.parse("Genotype(normal=__import__('os').getcwd(), normal_concat=[2], reduce=[], "
                            "reduce_concat=[2])")


@pytest.mark.parametrize("text", NB201_STRINGS)
def test_nb201_strings_round_trip(text: str) -> None:
    genotype = parse_genotype(text)
    assert isinstance(genotype, NB201Genotype)
    assert str(genotype) == text
    assert get_space("nb201").parse_genotype(text) == genotype


def test_nb201_structure_and_count() -> None:
    genotype = NB201Genotype.parse(" " + NB201_STRINGS[0].replace("+", " +\n ") + "\n")
    assert str(genotype) == NB201_STRINGS[0]
    assert genotype.nodes[2] == (("skip_connect", 0), ("nor_conv_3x3", 1), ("nor_conv_3x3", 2))
    assert genotype.count("nor_conv_3x3") == 5
    assert genotype.count("skip_connect", "cell") == 1
    with pytest.raises(GenotypeError, match="no cell 'normal'"):
        genotype.count("skip_connect", "normal")


def _replace_entry(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize("text, message", [
    (_replace_entry(DARTS_V2, "('dil_conv_3x3', 2)", "('conv_9x9', 2)"),
     r"normal cell entry 7 \('conv_9x9', 2\) into node 5: unknown op 'conv_9x9' .*allowed: max_pool_3x3, "),
    (_replace_entry(DARTS_V2, "('dil_conv_3x3', 2)], normal_concat", "('dil_conv_3x3', 2), ('skip_connect', 0)], "
                                                                       "normal_concat"),
     r"normal cell has 9 \(op, src\) entries; expected 8"),
    (_replace_entry(DARTS_V2, "('skip_connect', 2), ('max_pool_3x3', 1)", "('skip_connect', 3), ('max_pool_3x3', 1)"),
     r"reduce cell entry 2 \('skip_connect', 3\) into node 3: source 3 out of range; allowed: 0..2"),
    (_replace_entry(DARTS_V2, "('max_pool_3x3', 0), ('max_pool_3x3', 1), ", ""),
     r"reduce cell has 6 \(op, src\) entries; expected 8 \(2 per intermediate node 2..5\)"),
    (DARTS_V2.replace("[('sep_conv_3x3', 0), ('sep_conv_3x3', 1),", "[('sep_conv_3x3', 0), ('sep_conv_3x3', 0),", 1),
     r"normal cell entry 1 \('sep_conv_3x3', 0\) into node 2: source 0 used twice"),
    (_replace_entry(DARTS_V2, "('dil_conv_3x3', 2)", "('none', 2)"),
     r"normal cell entry 7 \('none', 2\) into node 5: 'none' is not allowed in a derived genotype"),
    (DARTS_V2.replace("reduce_concat=[2, 3, 4, 5]", "reduce_concat=[2, 6]"),
     r"reduce_concat \[2, 6\] is invalid; allowed: distinct nodes from \[2, 3, 4, 5\]"),
])
def test_darts_space_rejects_invalid_genotypes(text: str, message: str) -> None:
    with pytest.raises(GenotypeError, match=message) as info:
        get_space("darts").parse_genotype(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, message", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|conv_7x7~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
     r"NB201 edge 1->2 has unknown op 'conv_7x7'; allowed: none, skip_connect, nor_conv_1x1"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|",
     r"has 2 nodes; expected 3"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~3|",
     r"NB201 node 3 has sources \[0, 1, 3\]; expected \[0, 1, 2\]"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
     r"NB201 node 2 has sources \[0, 0\]; expected \[0, 1\]"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|",
     r"NB201 node 3 has sources \[0, 1\]; expected \[0, 1, 2\]"),
])
def test_nb201_space_rejects_invalid_genotypes(text: str, message: str) -> None:
    with pytest.raises(GenotypeError, match=message):
        get_space("nb201").parse_genotype(text)


@pytest.mark.parametrize("text, message", [
    ("Genotype(normal=[('sep_conv_3x3', 0)", "malformed DARTS genotype: not valid syntax"),
    ("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2])", "missing field\\(s\\) reduce, reduce_concat"),
    ("Genotype(normal=[('sep_conv_3x3', '0')], normal_concat=[2], reduce=[], reduce_concat=[2])",
     r"normal\[0\] = \('sep_conv_3x3', '0'\) is not an \(op name, source node >= 0\) pair"),
    ("Genotype(normal=[], normal_concat=range('a'), reduce=[], reduce_concat=[2])",
     "normal_concat = range\\('a'\\) is not range\\(start, stop\\) with integers"),
    ("Genotype(normal=[], normal_concat=[2], reduce=[], reduce_concat=[2], extra=1)", "unknown field 'extra'"),
    ("Genotype(normal=[], normal_concat=[2], reduce=[], reduce_concat=[2]) + 1", "not a Genotype\\(...\\) call"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3|", "node 2 entry 'nor_conv_3x3' is not op~src"),
    ("|nor_conv_3x3~0|+nor_conv_3x3~0|", "node 2 'nor_conv_3x3~0\\|' must be written \\|op~src\\|...\\|"),
    ("|nor_conv_3x3~x|", "node 1 entry 'nor_conv_3x3~x' is not op~src"),
    ("resnet18", "unrecognised genotype text 'resnet18'"),
])
def test_malformed_text_raises_one_line_error_with_format(text: str, message: str) -> None:
    with pytest.raises(GenotypeError) as info:
        parse_genotype(text)
    error = str(info.value)
    assert re.search(message, error), error
    assert "\n" not in error
    assert "expected" in error and ("Genotype(normal=" in error or "|nor_conv_3x3~0|" in error)


def test_space_rejects_the_other_format() -> None:
    with pytest.raises(GenotypeError, match="space 'darts' takes a DARTS genotype"):
        get_space("darts").parse_genotype(NB201_STRINGS[0])
    with pytest.raises(GenotypeError, match="space 'nb201' takes an NB201 arch string"):
        get_space("nb201").parse_genotype(DARTS_V2)
    with pytest.raises(GenotypeError, match="space 'darts' takes a DARTS genotype"):
        get_space("darts").validate_genotype(NB201Genotype.parse(NB201_STRINGS[0]))


def test_genotypes_are_hashable_values() -> None:
    a = DartsGenotype(normal=[("skip_connect", 0)], normal_concat=[2], reduce=[], reduce_concat=range(2, 3))
    b = DartsGenotype(normal=(("skip_connect", 0),), normal_concat=(2,), reduce=(), reduce_concat=(2,))
    assert a == b and hash(a) == hash(b)
    assert len({NB201Genotype.parse(t) for t in NB201_STRINGS + NB201_STRINGS}) == len(NB201_STRINGS)
