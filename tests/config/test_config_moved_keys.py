"""Keys that moved to a selection's subsection (raynas.config.moved_keys): a config that names them the old way
(every experiment stored before the move) reads as the same config, wherever a key is read, and what raynas
writes names the new places only."""

from __future__ import annotations

from pathlib import Path

import pytest

from raynas.config import (config_from_dict, config_to_dict, expand_trials, load_config, read_config_file,
                           with_overrides)
from raynas.config.moved_keys import MOVED_KEYS, current_key
from raynas.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

OLD = {"selection": {"name": "perturbation", "criterion": "loss", "proj_intv": 2, "edge_order": "fixed",
                     "topology": False, "finetune_lr_factor": 0.2, "finetune_lr_schedule": "cosine",
                     "topology_drop": "immediate", "samples": 7, "workers": 1}}
NEW = {"selection": {"name": "perturbation", "workers": 1, "sampling": {"samples": 7},
                     "perturbation": {"criterion": "loss", "proj_intv": 2, "edge_order": "fixed", "topology": False,
                                      "finetune_lr_factor": 0.2, "finetune_lr_schedule": "cosine",
                                      "topology_drop": "immediate"}}}


def error(data: dict, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        expand_trials(load_config(data, list(overrides)))
    assert "\n" not in str(info.value)
    return str(info.value)


def test_every_old_key_reads_as_its_new_place_and_writes_there() -> None:
    old, new = config_from_dict(OLD), config_from_dict(NEW)
    assert old == new and old.selection.perturbation.finetune_lr_schedule == "cosine"
    assert old.selection.sampling.samples == 7
    written = config_to_dict(old)["selection"]
    assert not set(written) & {key.split(".")[1] for key in MOVED_KEYS}  # nothing under an old name
    assert written["perturbation"]["proj_intv"] == 2 and written["sampling"] == {"samples": 7}
    assert config_from_dict(config_to_dict(old)) == old


def test_a_stored_experiment_of_before_the_move_loads() -> None:
    stored = read_config_file(ROOT / "benchmarks" / "spaces_pt" / "s0" / "config.yaml")
    assert "proj_intv" in stored["selection"]  # written with the old, flat keys
    cfg = config_from_dict(stored)
    assert cfg.selection.perturbation.proj_intv == stored["selection"]["proj_intv"]
    assert cfg.selection.sampling.samples == stored["selection"]["samples"]


@pytest.mark.parametrize("base, key", [(NEW, "selection.proj_intv"), (OLD, "selection.perturbation.proj_intv"),
                                       (OLD, "selection.proj_intv")])
def test_an_override_replaces_the_setting_under_either_name(base: dict, key: str) -> None:
    assert load_config(base, [f"{key}=9"]).selection.perturbation.proj_intv == 9
    assert config_from_dict(with_overrides(base, {key: 4})).selection.perturbation.proj_intv == 4


def test_grid_params_and_variants_take_old_names() -> None:
    grid = {**NEW, "tune": {"grid": {"selection.proj_intv": [0, 3], "selection.samples": [5]}}}
    specs = expand_trials(config_from_dict(grid))
    assert [(s.config.selection.perturbation.proj_intv, s.config.selection.sampling.samples) for s in specs] == [
        (0, 5), (3, 5)]
    assert [s.overrides for s in specs][0] == {"selection.proj_intv": 0, "selection.samples": 5}  # as written
    variants = {**NEW, "tune": {"grid": {"variant": ["quick"]},
                                "variants": {"quick": {"selection.proj_intv": 0}}}}
    assert expand_trials(config_from_dict(variants))[0].config.selection.perturbation.proj_intv == 0
    params = {**NEW, "tune": {"searcher": "random", "num_samples": 2,
                              "params": {"selection.finetune_lr_factor": {"uniform": [0.05, 0.5]}}}}
    assert len(expand_trials(config_from_dict(params))) == 2


def test_one_setting_under_both_names_is_an_error() -> None:
    both = {"selection": {"proj_intv": 1, "perturbation": {"proj_intv": 2}}}
    assert error(both) == ("config dict: selection.proj_intv = 1: is also given as selection.perturbation.proj_intv, "
                           "its new name; give it once")
    clash = {**NEW, "tune": {"grid": {"selection.proj_intv": [0], "variant": ["quick"]},
                             "variants": {"quick": {"selection.perturbation.proj_intv": 1}}}}
    assert "sets selection.perturbation.proj_intv, which tune.grid or tune.params varies too" in error(clash)


def test_messages_name_the_key_as_it_was_written() -> None:
    assert error({"selection": {"topology_drop": "later"}}).startswith(
        "config dict: selection.topology_drop = 'later': must be one of")
    assert error({"selection": {"perturbation": {"topology_drop": "later"}}}).startswith(
        "config dict: selection.perturbation.topology_drop = 'later': must be one of")
    assert error(NEW, ("selection.samples=0",)).startswith(
        "--set 'selection.samples=0': selection.sampling.samples = 0: must be >= 1")
    assert error({"tune": {"grid": {"selection.proj_intv": [1, -1]}}}).startswith(
        "tune.grid['selection.proj_intv'] = -1: selection.perturbation.proj_intv = -1: must be >= 0")
    assert error({"selection": {"proj_intv": 1, "perturbation": 3}}).startswith(
        "config dict: selection.perturbation = 3: must be a mapping")


def test_current_key() -> None:
    assert current_key("selection.samples") == "selection.sampling.samples"
    assert current_key("selection.perturbation.proj_intv") == "selection.perturbation.proj_intv"
    assert current_key("selection.workers") == "selection.workers"
    assert current_key("tune.grid.selection.samples") == "tune.grid.selection.samples"
