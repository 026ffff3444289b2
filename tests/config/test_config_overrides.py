"""--set KEY=VALUE overrides: YAML value parsing, path creation and syntax errors."""

from __future__ import annotations

import pytest

from raynas.config import apply_overrides, config_from_dict, set_path
from raynas.errors import ConfigError


@pytest.mark.parametrize("text, expected", [
    ("0.01", 0.01), ("5", 5), ("[1, 2]", [1, 2]), ("null", None), ("true", True), ("darts", "darts"),
    ("'5'", "5"), ("", None),
])
def test_values_are_parsed_as_yaml(text: str, expected: object) -> None:
    value = apply_overrides({}, [f"search.x={text}"])["search"]["x"]
    assert value == expected and type(value) is type(expected)


def test_new_dict_with_intermediate_mappings_and_input_untouched() -> None:
    data = {"search": {"epochs": 3}, "space": "nb201"}
    result = apply_overrides(data, ["search.arch_lr=0.01", "data.name=synthetic", "space=darts"])
    assert result == {"search": {"epochs": 3, "arch_lr": 0.01}, "space": "darts", "data": {"name": "synthetic"}}
    assert data == {"search": {"epochs": 3}, "space": "nb201"}
    result["search"]["epochs"] = 9
    assert data["search"]["epochs"] == 3


def test_later_override_wins_and_value_may_contain_equals() -> None:
    result = apply_overrides({}, ["name=a", "name=b=c", "name=final"])
    assert result["name"] == "final"
    assert apply_overrides({}, ["name=b=c"])["name"] == "b=c"


@pytest.mark.parametrize("item", ["search.epochs", "=5", " =5", "search..epochs=5", ".epochs=5"])
def test_bad_syntax(item: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides({}, [item])
    assert str(info.value) == f"--set '{item}': expected KEY=VALUE, e.g. search.epochs=5"


def test_invalid_yaml_value() -> None:
    with pytest.raises(ConfigError, match=r"^--set 'search.x=\[1, 2': the value is not valid YAML"):
        apply_overrides({}, ["search.x=[1, 2"])


def test_cannot_set_inside_a_single_value() -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides({"search": {"epochs": 3}}, ["search.epochs.x=1"])
    assert str(info.value) == ("--set 'search.epochs.x=1': search.epochs is a single value (3), not a section, "
                               "so search.epochs.x cannot be set")


def test_grid_entries_keep_their_dotted_key() -> None:
    result = apply_overrides({"tune": {"grid": {"search.seed": [0]}}}, ["tune.grid.search.arch_lr=[0.1, 0.01]"])
    assert result["tune"]["grid"] == {"search.seed": [0], "search.arch_lr": [0.1, 0.01]}
    assert config_from_dict(result).tune.grid["search.arch_lr"] == [0.1, 0.01]


def test_set_path_in_place_and_null_section_becomes_mapping() -> None:
    data: dict = {"search": None}
    set_path(data, "search.seed", 4)
    assert data == {"search": {"seed": 4}}


def test_overrides_must_be_a_sequence_of_strings() -> None:
    with pytest.raises(TypeError):
        apply_overrides({}, "search.epochs=5")  # type: ignore[arg-type]
