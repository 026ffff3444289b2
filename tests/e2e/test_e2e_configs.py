"""The shipped configs through the real CLI: ``raynas configs`` lists them, a name runs one (search, validate),
an unknown name is one line listing the names, and (slow) a wheel built from the repository carries them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli_helpers import ROOT, cli_env, raynas  # noqa: E402

from raynas.config.shipped import SHIPPED_DIR, describe, shipped_configs  # noqa: E402


def test_configs_lists_every_shipped_config_with_its_description():
    result = raynas("configs")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    shipped = shipped_configs()
    assert len(lines) == len(shipped) + 1
    for line, (name, path) in zip(lines, shipped.items()):
        assert line.split()[0] == name and line.endswith(f"  {describe(path)}"), line
    assert lines[-1] == f"{len(shipped)} config(s) in {SHIPPED_DIR}; run one: raynas search NAME"


def test_validate_and_search_take_a_name(tmp_path):
    """Run from a folder without the file: the name is the shipped config (search stops at its folder check,
    after the config was read: the folder <out>/quickstart is there already)."""
    valid = raynas("validate", "quickstart", cwd=tmp_path)
    assert valid.returncode == 0 and valid.stdout.startswith("ok: quickstart: 2 trial(s), space nb201"), valid
    (tmp_path / "out" / "quickstart").mkdir(parents=True)
    search = raynas("search", "quickstart", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert search.returncode == 2
    assert search.stderr.startswith(f"error: experiment folder '{tmp_path / 'out' / 'quickstart'}' already exists"), \
        search.stderr


@pytest.mark.parametrize("command", ["search", "validate"])
def test_an_unknown_name_is_one_line_listing_the_names_and_writes_nothing(command, tmp_path):
    args = (command, "quikstart") + (("--out", str(tmp_path / "out")) if command == "search" else ())
    result = raynas(*args, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: CONFIG = 'quikstart': no such file and no shipped config")
    assert ", ".join(shipped_configs()) in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_missing_path_is_still_a_missing_file(tmp_path):
    result = raynas("validate", str(tmp_path / "nosuch.yaml"))
    assert result.returncode == 2 and "config file not found" in result.stderr, result.stderr


@pytest.mark.slow
def test_the_wheel_carries_the_configs(tmp_path):
    """``pip wheel`` of a copy of the project (the repository's build/ stays untouched): every shipped
    config and the LICENSE are in the wheel, the repository-only smoke configs are not; installed from the
    wheel alone (``pip install --target``) and run from a folder without the repository, ``raynas configs``
    and ``raynas validate quickstart`` read the configs it installed."""
    import shutil

    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "smoke")
    shutil.copytree(ROOT / "raynas", source / "raynas", ignore=ignore)
    shutil.copytree(SHIPPED_DIR / "smoke", source / "raynas" / "configs" / "smoke")  # present, yet not shipped
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "wheel")], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "wheel").glob("raynas-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"raynas/configs/{name}.yaml" for name in shipped_configs()} <= names
    assert not [name for name in names if "/smoke/" in name]
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), sorted(names)[-10:]

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**cli_env(), "PYTHONPATH": str(site)}  # the installed copy first; its dependencies from this venv
    code = ("import sys, raynas; print(raynas.__file__); from raynas.cli import main; "
            "main(sys.argv[1:], prog_name='raynas')")
    for args, expected in ((["configs"], f"{len(shipped_configs())} config(s) in {site / 'raynas' / 'configs'}"),
                           (["validate", "quickstart"], "ok: quickstart: 2 trial(s)")):
        run = subprocess.run([sys.executable, "-c", code, *args], cwd=elsewhere, env=env, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith(str(site / "raynas" / "__init__.py")) and expected in run.stdout, run.stdout
