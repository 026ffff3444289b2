"""Bounds on config input: YAML nesting, duplicate keys, alias expansion, file size, and sizes of settings.

Each case was a traceback, a hang or silently accepted nonsense before; now each is a one-line ConfigError
that names the field (or the line), the value and the limit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from raynas.config import load_config, read_config_file
from raynas.config.limits import MAX_CHANNELS, MAX_EPOCHS, MAX_SEED, MAX_SEEDS, parse_seeds
from raynas.config.loader import MAX_CONFIG_BYTES
from raynas.config.yaml_input import MAX_YAML_DEPTH, MAX_YAML_NODES, load_yaml
from raynas.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_a_5000_deep_list_is_refused_at_the_depth_limit(tmp_path: Path) -> None:
    path = _write(tmp_path, "space: nb201\nx: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError) as err:
        read_config_file(path)
    assert _one_line(err) == (f"{path}: invalid YAML at line 2, column {MAX_YAML_DEPTH + 3}: nested deeper than "
                              f"{MAX_YAML_DEPTH} levels; at most {MAX_YAML_DEPTH} are allowed")


def test_nesting_up_to_the_limit_loads() -> None:
    lists = MAX_YAML_DEPTH - 2  # the top-level mapping and the innermost value are levels too
    value = load_yaml("x: " + "[" * lists + "1" + "]" * lists)["x"]
    for _ in range(lists - 1):
        value = value[0]
    assert value == [1]
    with pytest.raises(Exception, match="nested deeper than"):
        load_yaml("x: " + "[" * (lists + 1) + "1" + "]" * (lists + 1))


def test_a_key_written_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "space: nb201\nsearch:\n  epochs: 2\nsearch:\n  epochs: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert _one_line(err) == (f"{path}: invalid YAML at line 4, column 1: duplicate key 'search' (first at line 2); "
                              "each key may appear once in a mapping")


def test_a_nested_duplicate_key_is_refused_too() -> None:
    with pytest.raises(Exception, match=r"duplicate key 'epochs' \(first at line 2\)"):
        load_yaml("search:\n  epochs: 2\n  batch_size: 8\n  epochs: 3\n")


def test_merge_keys_may_still_be_overridden() -> None:
    data = load_yaml("base: &b {epochs: 2, batch_size: 8}\nsearch:\n  <<: *b\n  epochs: 3\n")
    assert data["search"] == {"epochs": 3, "batch_size": 8}


def _laughs(levels: int, width: int) -> str:
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    # 80 ** 6 = 2.6e11 values once expanded; measured without expanding, so the refusal is immediate.
    path = _write(tmp_path, "space: nb201\n" + _laughs(6, 80))
    with pytest.raises(ConfigError) as err:
        read_config_file(path)
    assert _one_line(err) == (f"{path}: invalid YAML at line 4, column 5: aliases expand the document to more "
                              f"than {MAX_YAML_NODES} values; at most {MAX_YAML_NODES} are allowed")


def test_a_few_aliases_are_fine() -> None:
    data = load_yaml(_laughs(2, 10))
    assert len(data["a1"]) == 10 and data["a1"][0] == ["x"] * 10


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(Exception, match="an alias refers to a node that contains it"):
        load_yaml("x: &a [1, *a]\n")


def test_a_chain_of_aliases_deeper_than_the_limit_is_refused(tmp_path: Path) -> None:
    lines = ["space: nb201", "a0: &a0 [1]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 5000)]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=f"aliases nest the document deeper than {MAX_YAML_DEPTH} levels"):
        read_config_file(path)


def test_an_oversized_or_endless_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as f:
        f.write("space: nb201\n# " + "x" * MAX_CONFIG_BYTES + "\n")
    with pytest.raises(ConfigError) as err:
        read_config_file(path)
    assert _one_line(err) == f"{path}: larger than 4 MiB; a config file may hold at most 4 MiB"
    with pytest.raises(ConfigError, match="larger than 4 MiB"):
        read_config_file("/dev/zero")


def test_a_value_yaml_cannot_build_is_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "space: nb201\nsearch:\n  epochs: " + "9" * 5000 + "\n")
    with pytest.raises(ConfigError) as err:
        read_config_file(path)
    assert _one_line(err).startswith(f"{path}: invalid YAML: a value cannot be read (Exceeds the limit")


@pytest.mark.parametrize(("text", "message"), [
    ("supernet:\n  channels: 100000000\n", f"supernet.channels = 100000000: must be >= 1 and <= {MAX_CHANNELS}"),
    ("search:\n  epochs: 100000000000000000000000000000\n",
     f"search.epochs = 100000000000000000000000000000: must be >= 1 and <= {MAX_EPOCHS}"),
    ("search:\n  seed: 4294967296\n", f"search.seed = 4294967296: must be >= 0 and <= {MAX_SEED}"),
    ("tune:\n  num_samples: 20000\n", "tune.num_samples = 20000: must be >= 1 and <= 10000"),
    ("data:\n  name: synthetic\n  num_samples: 1000000000000\n",
     "data.num_samples = 1000000000000: must be >= 10 and <= 10000000"),
])
def test_sizes_have_upper_limits(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, "space: nb201\n" + text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert _one_line(err) == f"{path}: {message}"


def test_limits_reach_grid_and_param_values(tmp_path: Path) -> None:
    from raynas.config import expand_trials

    path = _write(tmp_path, "space: nb201\ntune:\n  searcher: random\n  params:\n"
                            "    search.epochs: {randint: [1, 1000000000000]}\n")
    with pytest.raises(ConfigError, match=r"largest value \(high - 1\) 999999999999 makes the config invalid: "
                                          rf"search.epochs = 999999999999: must be >= 1 and <= {MAX_EPOCHS}"):
        expand_trials(load_config(path))


def test_a_deep_set_value_is_refused() -> None:
    with pytest.raises(ConfigError, match=f"nested deeper than {MAX_YAML_DEPTH} levels"):
        load_config("search_configs/quickstart.yaml", ["search.epochs=" + "[" * 200 + "]" * 200])


def test_a_huge_seed_range_fails_before_building_it() -> None:
    with pytest.raises(ConfigError) as err:
        parse_seeds("--seeds", "0-1000000000000")
    assert _one_line(err) == (f"--seeds = '0-1000000000000': seed 1000000000000 is out of range; seeds must be "
                              f">= 0 and <= {MAX_SEED}")
    with pytest.raises(ConfigError, match=f"'0-5000': 5001 seeds; at most {MAX_SEEDS} are allowed at once"):
        parse_seeds("--seeds", "0-5000")


def test_seed_lists_and_ranges_parse() -> None:
    assert parse_seeds("--seeds", "0-2,7") == [0, 1, 2, 7]
    assert parse_seeds("--seeds", f"{MAX_SEED}") == [MAX_SEED]
    with pytest.raises(ConfigError, match="the range 3-1 is empty"):
        parse_seeds("--seeds", "3-1")
    with pytest.raises(ConfigError, match="give seeds as 0,1,2 or 0-2"):
        parse_seeds("--seeds", "a")


def test_a_choice_of_more_values_than_the_limit_is_refused_before_validating_them(tmp_path: Path) -> None:
    from raynas.config import expand_trials
    from raynas.config.limits import MAX_CHOICES

    values = ", ".join(str(i) for i in range(MAX_CHOICES + 1))
    path = _write(tmp_path, "space: nb201\ntune:\n  searcher: random\n  params:\n"
                            f"    search.seed: {{choice: [{values}]}}\n")
    with pytest.raises(ConfigError) as err:
        expand_trials(load_config(path))
    assert _one_line(err) == (f"tune.params['search.seed']: choice of {MAX_CHOICES + 1} values; at most "
                              f"{MAX_CHOICES} are allowed")
