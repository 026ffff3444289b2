"""The configs shipped in the package (raynas.config.shipped): names, descriptions, CONFIG as a path or a name."""

from __future__ import annotations

from pathlib import Path

import pytest

from raynas.config import load_config
from raynas.config.shipped import SHIPPED_DIR, describe, resolve_config, shipped_configs
from raynas.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_every_yaml_of_the_package_folder_is_a_shipped_config() -> None:
    shipped = shipped_configs()
    assert set(shipped) == {path.stem for path in SHIPPED_DIR.glob("*.yaml")}
    assert {"quickstart", "darts_cifar10", "league"} <= set(shipped)
    assert "smoke" not in shipped and not any(name.startswith("smoke") for name in shipped)


@pytest.mark.parametrize("name", sorted(shipped_configs()))
def test_each_config_opens_with_a_one_line_description(name: str) -> None:
    """``raynas configs`` shows the first line: a whole sentence, short enough for one line."""
    text = describe(shipped_configs()[name])
    assert text and text[-1] in ".?" and len(text) <= 110, text


def test_the_repository_folder_is_the_package_folder_not_a_copy() -> None:
    """search_configs (the documented path) links to raynas/configs: one copy of each config."""
    link = REPO / "search_configs"
    assert link.is_symlink() and link.resolve() == SHIPPED_DIR


def test_a_name_resolves_to_the_shipped_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no file of that name here
    assert resolve_config("quickstart") == SHIPPED_DIR / "quickstart.yaml"
    assert resolve_config("quickstart.yaml") == SHIPPED_DIR / "quickstart.yaml"
    assert load_config(resolve_config("quickstart")).name == "quickstart"


def test_an_existing_file_wins_over_a_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart.yaml").write_text("name: mine\n")
    assert resolve_config("quickstart.yaml") == Path("quickstart.yaml")
    assert resolve_config("quickstart") == SHIPPED_DIR / "quickstart.yaml"  # no such file: the name


def test_a_path_is_never_taken_for_a_name(tmp_path: Path) -> None:
    missing = tmp_path / "quickstart.yaml"
    assert resolve_config(missing) == missing  # the loader reports the missing file
    assert resolve_config("configs/nosuch") == Path("configs/nosuch")


@pytest.mark.parametrize("text", ["nosuch", "quick start", "a\x00b", "x" * 5000])
def test_an_unknown_name_is_one_line_listing_the_names(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config(text)
    message = str(info.value)
    assert "\n" not in message and "no shipped config of that name" in message
    assert ", ".join(shipped_configs()) in message
