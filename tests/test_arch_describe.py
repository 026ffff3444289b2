"""describe_architecture: the facts `raynas arch show` prints."""

from __future__ import annotations

import pytest

from raynas.arch import describe_architecture
from raynas.errors import GenotypeError, SpaceError

DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")


def test_describe_darts_v2_at_published_settings() -> None:
    messy = DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6)").replace(", (", ",\n (")
    info = describe_architecture("darts", messy, auxiliary=True)
    assert info == {
        "space": "darts", "genotype": DARTS_V2, "params": 3_349_342, "params_total": 3_825_768, "params_m": 3.35,
        "connected": True, "num_skip": 2, "channels": 36, "layers": 20, "num_classes": 10, "auxiliary": True,
    }


def test_describe_nb201_uses_space_defaults() -> None:
    text = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    info = describe_architecture("nb201", text)
    assert info["genotype"] == text
    assert (info["channels"], info["layers"]) == (16, 5)
    assert info["connected"] is True and info["num_skip"] == 1
    assert info["params"] == info["params_total"] == 73_306 + (16 * 16 * 9 + 32) * 5 + (
        32 * 32 * 9 + 64) * 5 + (64 * 64 * 9 + 128) * 5
    disconnected = describe_architecture("nb201", "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                         channels=4, layers=1, num_classes=3, in_channels=1)
    assert disconnected["connected"] is False and disconnected["num_classes"] == 3


def test_describe_rejects_bad_input() -> None:
    with pytest.raises(SpaceError, match="unknown search space 'dart'"):
        describe_architecture("dart", DARTS_V2)
    with pytest.raises(GenotypeError, match="space 'nb201' takes an NB201 arch string"):
        describe_architecture("nb201", DARTS_V2)
    with pytest.raises(SpaceError, match="imagenet"):
        describe_architecture("nb201", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", imagenet=True)
