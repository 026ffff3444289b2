"""load_config / dump_config: file errors, message prefixes, YAML round trips and atomic writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from raynas.config import (ExperimentConfig, TrainConfig, config_from_dict, config_to_dict, dump_config,
                           load_config, load_train_config)
from raynas.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    assert load_error(path) == f"{path}: config file not found"


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "space: nb201\nsearch:\n  epochs: [1, 2\n  seed: 0\n")
    message = load_error(path)
    assert message.startswith(f"{path}: invalid YAML at line ")
    assert "line 4" in message or "line 3" in message


def test_yaml_tab_indentation_error(tmp_path: Path) -> None:
    path = write(tmp_path, "search:\n\tepochs: 3\n")
    assert load_error(path).startswith(f"{path}: invalid YAML at line 2")


@pytest.mark.parametrize("text, expected", [
    ("- a\n- b\n", "the top level must be a mapping of config keys such as 'space: nb201', not ['a', 'b']"),
    ("", "the file is empty; expected a mapping of config keys such as 'space: nb201'"),
    ("just text\n", "the top level must be a mapping of config keys such as 'space: nb201', not 'just text'"),
])
def test_top_level_not_a_mapping(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    assert load_error(path) == f"{path}: {expected}"


def test_field_errors_are_prefixed_with_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "search:\n  arch_lr: -0.1\n")
    assert load_error(path) == f"{path}: search.arch_lr = -0.1: must be > 0"


def test_field_errors_set_by_an_override_name_the_override(tmp_path: Path) -> None:
    path = write(tmp_path, "search:\n  epochs: 3\n")
    assert load_error(path, ("search.epochs=abc",)) == (
        "--set 'search.epochs=abc': search.epochs = 'abc': must be an integer")
    assert load_error(path, ("search.arch_lrr=1",)).startswith("--set 'search.arch_lrr=1': search.arch_lrr: unknown")


def test_bad_override_syntax_through_load_config(tmp_path: Path) -> None:
    path = write(tmp_path, "space: nb201\n")
    assert load_error(path, ("x",)) == "--set 'x': expected KEY=VALUE, e.g. search.epochs=5"


def test_load_applies_overrides_and_yaml_exponents(tmp_path: Path) -> None:
    path = write(tmp_path, "space: darts\nsearch:\n  arch_lr: 3e-4\n  epochs: 10\n")
    cfg = load_config(path, ["search.epochs=2", "tune.grid.search.seed=[0, 1]"])
    assert cfg.space == "darts" and cfg.search.epochs == 2
    assert cfg.search.arch_lr == pytest.approx(3e-4) and isinstance(cfg.search.arch_lr, float)
    assert cfg.tune.grid == {"search.seed": [0, 1]}


def sample_config() -> ExperimentConfig:
    return config_from_dict({
        "name": "round-trip", "space": "darts",
        "data": {"name": "synthetic", "num_samples": 64, "image_size": 8},
        "search": {"epochs": 4, "order": 2, "arch_lr": 0.01, "steps_per_epoch": 3},
        "tune": {"grid": {"search.seed": (0, 1), "search.arch_lr": [0.1, 0.01]}, "num_samples": 2},
        "ray": {"address": "auto"},
    })


def test_dict_round_trip_is_plain_and_yaml_safe() -> None:
    cfg = sample_config()
    data = config_to_dict(cfg)
    assert data["tune"]["grid"]["search.seed"] == [0, 1]
    assert yaml.safe_load(yaml.safe_dump(data)) == data
    assert config_from_dict(data) == cfg
    assert config_from_dict(config_to_dict(ExperimentConfig())) == ExperimentConfig()


def test_dump_load_round_trip(tmp_path: Path) -> None:
    cfg = sample_config()
    path = tmp_path / "config.yaml"
    dump_config(cfg, path)
    assert load_config(path) == cfg
    dump_config(ExperimentConfig(), path)  # replaces the existing file
    assert load_config(path) == ExperimentConfig()
    assert sorted(os.listdir(tmp_path)) == ["config.yaml"]
    train = TrainConfig(space="darts", genotype="x", epochs=3)
    dump_config(train, tmp_path / "train.yaml")
    assert load_train_config(tmp_path / "train.yaml") == train


def test_failed_dump_leaves_the_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.yaml"
    dump_config(ExperimentConfig(), path)
    before = path.read_text()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        dump_config(sample_config(), path)
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["config.yaml"]


def test_config_package_imports_neither_torch_nor_ray() -> None:
    code = ("import sys; from raynas.config import load_config, config_from_dict, expand_trials; "
            "config_from_dict({'space': 'darts', 'data': {'name': 'synthetic'}, 'selection': {'name': 'magnitude'}}); "
            "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("path", sorted((REPO / "search_configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_search_configs_validate(path: Path, tmp_path: Path) -> None:
    from raynas.config import expand_trials

    raw = yaml.safe_load(path.read_text())
    # data sets read from disk get an existing (empty) folder: only the config is checked here
    overrides = (f"data.root={tmp_path}",) if raw.get("data", {}).get("root") else ()
    cfg = load_config(path, overrides)
    assert expand_trials(cfg)
