"""config_from_dict: types, metadata rules, registries and cross-field checks, each with its exact message."""

from __future__ import annotations

import pickle

import pytest

from raynas.config import ExperimentConfig, TrainConfig, config_from_dict, train_config_from_dict
from raynas.config.loader import show_value
from raynas.errors import ConfigError

TOP_KEYS = ("benchmark, data, e2nas, method, name, objectives, ray, resources, search, selection, space, supernet, "
            "tune, variant")


def error_of(data: dict, cls: type = ExperimentConfig) -> str:
    """The message of the ConfigError that ``data`` raises; every message must be a single line."""
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, cls)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("data, expected", [
    ({"serach": {}}, f"serach: unknown key; valid top-level keys: {TOP_KEYS} (did you mean 'search'?)"),
    ({"search": {"epochs": "five"}}, "search.epochs = 'five': must be an integer"),
    ({"search": {"epochs": True}}, "search.epochs = true: must be an integer"),
    ({"search": {"arch_lr": True}}, "search.arch_lr = true: must be a number"),
    ({"search": {"epochs": None}}, "search.epochs = null: must be an integer"),
    ({"search": {"arch_lr": -0.1}}, "search.arch_lr = -0.1: must be > 0"),
    ({"search": {"epochs": 0}}, "search.epochs = 0: must be >= 1"),
    ({"data": {"train_portion": 1.5}}, "data.train_portion = 1.5: must be > 0 and < 1"),
    ({"search": {"order": 3}}, "search.order = 3: must be one of 1, 2"),
    ({"search": {"device": "cdua"}}, "search.device = 'cdua': must be one of 'auto', 'cpu', 'cuda' "
                                     "(did you mean 'cuda'?)"),
    ({"space": "nb210"}, "space = 'nb210': unknown search space 'nb210'; valid: darts, darts-nonone, nb201, s1, s2, "
                         "s3, s4. Did you mean 'nb201'?"),
    ({"search": 5}, "search = 5: must be a mapping of search keys (write {} for the defaults)"),
    ({"name": 2024}, "name = 2024: must be a string (quote it in YAML: '2024')"),
    ({"name": "runs/../x"}, "name = 'runs/../x': must be a folder name: letters, digits, '.', '_' or '-', "
                            "starting with a letter or digit"),
    ({"search": {"arch_lr": float("nan")}}, "search.arch_lr = nan: must be a finite number"),
    ({"search": {"weight_lr": 0.01, "weight_lr_min": 0.1}},
     "search.weight_lr_min = 0.1: must be <= search.weight_lr (0.01)"),
    ({"search": {"epochs": 3, "warmup_epochs": 3}}, "search.warmup_epochs = 3: must be < search.epochs (3)"),
    ({"tune": {"grid": [1]}}, "tune.grid = [1]: must be a mapping"),
    ({"tune": {"grid": {"search.seed": 1}}},
     "tune.grid['search.seed'] = 1: must be a non-empty list of values, e.g. [0, 1, 2]"),
    ({"tune": {"grid": {"search.seed": []}}},
     "tune.grid['search.seed'] = []: must be a non-empty list of values, e.g. [0, 1, 2]"),
    ({"selection": {"name": "magnitudes"}}, "selection.name = 'magnitudes': unknown selection"),
])
def test_bad_config_message(data: dict, expected: str) -> None:
    assert error_of(data).startswith(expected)


def test_unknown_nested_key_lists_valid_keys_and_suggests() -> None:
    message = error_of({"search": {"arch_lrr": 0.1}})
    assert message.startswith("search.arch_lrr: unknown key; valid keys of search: arch_beta1, arch_beta2, arch_lr, ")
    assert message.endswith("(did you mean 'arch_lr'?)")


def test_unknown_data_set_names_valid_ones() -> None:
    message = error_of({"data": {"name": "mnits"}})
    assert message.startswith("data.name = 'mnits': unknown ")
    for name in ("cifar10", "cifar100", "digits", "imagefolder", "imagenet16", "synthetic"):
        assert name in message


def test_file_backed_data_needs_root() -> None:
    assert error_of({"data": {"name": "cifar10"}}) == (
        "data.root = null: required when data.name is 'cifar10': set it to the folder holding the files")


def test_data_root_must_exist_unless_cifar_downloads(tmp_path) -> None:
    missing = str(tmp_path / "nowhere")
    message = error_of({"data": {"name": "cifar100", "root": missing}})
    # the message shortens a long value (pytest's tmp path is longer under some runners), as show_value does
    assert message.startswith(f"data.root = {show_value(missing)}: not an existing folder")
    assert "data.download: true" in message
    cfg = config_from_dict({"data": {"name": "cifar100", "root": missing, "download": True}})
    assert cfg.data.download is True
    # imagefolder cannot download, so the folder must exist whatever download says
    assert "not an existing folder" in error_of({"data": {"name": "imagefolder", "root": missing,
                                                          "download": True}})
    assert config_from_dict({"data": {"name": "imagefolder", "root": str(tmp_path)}}).data.root == str(tmp_path)


def test_grid_keys_must_be_strings() -> None:
    assert error_of({"tune": {"grid": {1: [2]}}}) == "tune.grid[1]: keys must be strings"


def test_train_config_rules() -> None:
    assert error_of({"lr": 0.01, "lr_min": 0.1}, TrainConfig) == "lr_min = 0.1: must be <= lr (0.01)"
    assert error_of({"epoch": 3}, TrainConfig).endswith("(did you mean 'epochs'?)")
    cfg = train_config_from_dict({"space": "darts", "epochs": 2, "nesterov": None})
    assert isinstance(cfg, TrainConfig) and cfg.space == "darts" and cfg.epochs == 2


def test_defaults_from_empty_mapping() -> None:
    assert config_from_dict({}) == ExperimentConfig()
    assert train_config_from_dict({}) == TrainConfig()


def test_int_widens_to_float_and_exponent_text_is_a_number() -> None:
    cfg = config_from_dict({"search": {"weight_lr": 1, "arch_lr": "3e-4"}})
    assert isinstance(cfg.search.weight_lr, float) and cfg.search.weight_lr == 1.0
    assert cfg.search.arch_lr == pytest.approx(3e-4)
    assert "must be a number" in error_of({"search": {"arch_lr": "fast"}})


def test_optional_fields_accept_null() -> None:
    cfg = config_from_dict({"search": {"steps_per_epoch": None}, "ray": {"address": None}})
    assert cfg.search.steps_per_epoch is None and cfg.ray.address is None
    assert error_of({"search": {"steps_per_epoch": "x"}}) == "search.steps_per_epoch = 'x': must be an integer or null"


def test_grid_is_copied_not_aliased() -> None:
    grid = {"search.seed": (0, 1)}
    cfg = config_from_dict({"tune": {"grid": grid}})
    assert cfg.tune.grid == {"search.seed": [0, 1]}
    grid["search.arch_lr"] = [0.1]
    assert "search.arch_lr" not in cfg.tune.grid


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        config_from_dict([1, 2])  # type: ignore[arg-type]


def test_data_root_becomes_absolute(tmp_path, monkeypatch) -> None:
    (tmp_path / "images").mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = config_from_dict({"data": {"name": "imagefolder", "root": "images"}})
    assert cfg.data.root == str(tmp_path / "images")
    assert config_from_dict({"data": {"root": "~/x"}}).data.root.startswith("/")


def test_field_error_survives_pickling_as_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"search": {"epochs": 0}})
    copy = pickle.loads(pickle.dumps(info.value))
    assert isinstance(copy, ConfigError) and str(copy) == "search.epochs = 0: must be >= 1 and <= 100000"


def test_random_search_needs_a_selection_that_scores_architectures():
    with pytest.raises(ConfigError, match=r"^selection\.name = 'magnitude': must be one of 'perturbation', "
                                          r"'sampling' with method = 'rs'"):
        config_from_dict({"method": "rs"})
    assert config_from_dict({"method": "rs", "selection": {"name": "sampling"}}).method == "rs"
