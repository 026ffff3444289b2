"""What ``import raynas`` offers: its names, its version, its cost, and the one-line errors of search/train
raised before anything is written (no Ray starts in these tests)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import raynas
from raynas.config.overrides import override_items, parse_override
from raynas.errors import ConfigError, RaynasError
from raynas.folder_trust import restricted_umask

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "search_configs" / "smoke" / "nb201.yaml"
API = ("Evaluation", "Experiment", "Trial", "load", "search", "train")


def run_python(code: str, **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, *kwargs.pop("flags", []), "-c", code], capture_output=True, text=True,
                         timeout=120, **kwargs)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_the_api_names():
    assert set(API) | {"__version__"} <= set(raynas.__all__) and set(raynas.__all__) <= set(dir(raynas))
    from raynas import api

    for name in API:
        assert getattr(raynas, name) is getattr(api, name)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        raynas.nope  # noqa: B018


def test_version_is_the_installed_distributions():
    assert raynas.__version__ == metadata.version("raynas")


def test_version_without_package_metadata(tmp_path):
    # raynas' __init__.py alone on the path, no site-packages (-S) and no egg-info beside it: no metadata
    (tmp_path / "raynas").mkdir()
    shutil.copy(ROOT / "raynas" / "__init__.py", tmp_path / "raynas" / "__init__.py")
    out = run_python("import raynas; print(raynas.__file__); print(raynas.__version__)", flags=["-S"],
                     env={"PYTHONPATH": str(tmp_path), "PATH": os.environ.get("PATH", "")}, cwd=tmp_path)
    where, version = out.stdout.split()
    assert where == str(tmp_path / "raynas" / "__init__.py") and version == "0+unknown"


def test_import_raynas_imports_neither_torch_nor_ray():
    code = ("import sys, json, raynas\n"
            "heavy = lambda: sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'ray', 'pandas', 'pyarrow', 'sklearn', 'numpy'))\n"
            "after_import = heavy()\n"
            f"for name in {API!r}: getattr(raynas, name)\n"
            "print(json.dumps([after_import, heavy()]))")
    after_import, after_names = json.loads(run_python(code, cwd=ROOT).stdout)
    assert after_import == [] and not [m for m in after_names if m.split(".")[0] in ("torch", "ray")]


def test_the_functions_outlive_the_modules_of_the_same_name():
    from raynas.search import Search  # noqa: F401  (raynas/search.py: the import binds it on the package)
    from raynas.train import ScratchTraining  # noqa: F401
    from raynas import api

    assert raynas.search is api.search and raynas.train is api.train
    assert type(sys.modules["raynas.search"]).__name__ == "module"
    from raynas import search

    assert search is api.search


@pytest.mark.parametrize("config, overrides, message", [
    ({"name": "x", "search": {"epochs": 0}}, (), "config dict: search.epochs = 0: must be >= 1"),
    ({"name": "x", "search": {"arch_lrr": 1}}, (), "config dict: search.arch_lrr: unknown key"),
    ({"name": "x"}, {"search.epochs": 0}, "--set 'search.epochs=0': search.epochs = 0: must be >= 1"),
    ({"name": "x"}, ["space=nb210"], "--set 'space=nb210': space = 'nb210'"),
    ({"name": "x"}, {"search..epochs": 1}, "overrides: key 'search..epochs' is not a dotted config key"),
    ({"name": "x"}, {"search.epochs": object()}, "overrides['search.epochs']: a value of type object"),
    (str(SMOKE), {"tune.metric": "accuracy"}, "--set 'tune.metric=accuracy': tune.metric = 'accuracy'"),
    ("missing.yaml", (), "missing.yaml: config file not found"),
    (["space: nb201"], (), "config: give a YAML file's path, a shipped config's name or a mapping of config keys, "
                           "not a list"),
    ("quickstart", {"search.epochs": 0}, "--set 'search.epochs=0': search.epochs = 0"),  # a shipped name
    ("nosuch", (), "CONFIG = 'nosuch': no such file and no shipped config of that name; shipped: "),
])
def test_search_refuses_bad_input_with_one_line_and_writes_nothing(tmp_path, config, overrides, message):
    before = json.dumps(config, default=str)
    with pytest.raises(ConfigError) as info:
        raynas.search(config, overrides, out=tmp_path / "out")
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()
    assert json.dumps(config, default=str) == before  # a config mapping is never changed


def test_search_refuses_an_existing_experiment_folder(tmp_path):
    (tmp_path / "smoke-nb201").mkdir()
    with pytest.raises(ConfigError, match="experiment folder .*smoke-nb201' already exists"):
        raynas.search(SMOKE, out=tmp_path)


@pytest.mark.parametrize("kwargs, message", [
    ({"sources": "|bogus~0|"}, "bogus"),
    ({"sources": 3.5}, "sources: a float is not a genotype"),
    ({"sources": "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
      "seeds": "0-x"}, "seeds"),
    ({"sources": "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
      "overrides": {"epochs": 0}}, "epochs = 0"),
])
def test_train_refuses_bad_input_with_one_line_and_writes_nothing(tmp_path, kwargs, message):
    with pytest.raises(RaynasError) as info:
        raynas.train(out=tmp_path / "out", **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_override_mappings_read_back_as_their_values():
    values = {"search.epochs": 3, "search.arch_lr": 3e-4, "data.noise_std": 0.5, "space": "nb201",
              "name": "3e-4", "tune.grid": {"search.seed": [0, 1]}, "ray.address": None, "search.order": 2,
              "supernet.channels_last": True, "name2": "a: b", "name3": "null", "name4": ""}
    items = override_items(values)
    assert [parse_override(item) for item in items] == list(values.items())
    assert override_items(["search.epochs=3"]) == ["search.epochs=3"] and override_items("a=1") == ["a=1"]


def test_restricted_umask_is_the_callers_afterwards(tmp_path):
    previous = os.umask(0o002)
    try:
        with restricted_umask():
            (tmp_path / "made").mkdir()
        (tmp_path / "after").mkdir()
        assert os.umask(0o002) == 0o002  # the caller's umask is back
    finally:
        os.umask(previous)
    assert not stat.S_IMODE((tmp_path / "made").stat().st_mode) & (stat.S_IWGRP | stat.S_IWOTH)
    assert stat.S_IMODE((tmp_path / "after").stat().st_mode) & stat.S_IWGRP
