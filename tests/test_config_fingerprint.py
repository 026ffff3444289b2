"""raynas.config_fingerprint and raynas.resume_guard: a settings file changed since the run started is
refused on resume, naming the keys; an explicit acceptance is recorded in the folder and its events table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from raynas.config_fingerprint import (FINGERPRINT_FILE, accept_change, check_config, record_fingerprint)
from raynas.errors import ConfigError
from raynas.folder_lock import LOCK_FILE
from raynas.results import load_table
from raynas.resume_guard import resume_guard

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "search_configs" / "smoke" / "nb201.yaml"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    exp = tmp_path / "exp"
    exp.mkdir()
    shutil.copy(SMOKE, exp / "config.yaml")
    record_fingerprint(exp, "config.yaml")
    return exp


def edit(folder: Path, *replacements: tuple[str, str]) -> None:
    text = (folder / "config.yaml").read_text()
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    (folder / "config.yaml").write_text(text)


def test_comments_and_layout_are_not_a_change(folder):
    edit(folder, ("name: smoke-nb201", "# a note\nname:    smoke-nb201   # same value"))
    assert check_config(folder, "config.yaml") == (False, None)


def test_a_change_names_each_key_with_its_old_and_new_value(folder):
    edit(folder, ("arch_lr: 0.01", "arch_lr: 0.3"), ("noise_std: 0.5", "noise_std: 0.0"),
         ("  limit: 256\n", ""))
    recorded_now, change = check_config(folder, "config.yaml")
    assert not recorded_now
    assert change.changed == {"data.limit": (256, "(absent)"), "data.noise_std": (0.5, 0.0),
                              "search.arch_lr": (0.01, 0.3)}
    assert change.summary() == "data.limit 256 -> (absent), data.noise_std 0.5 -> 0.0, search.arch_lr 0.01 -> 0.3"
    assert change.old_sha256 != change.new_sha256


def test_a_long_change_list_is_cut_with_a_count(tmp_path):
    (tmp_path / "config.yaml").write_text("a: 1\n")
    record_fingerprint(tmp_path, "config.yaml")
    (tmp_path / "config.yaml").write_text("".join(f"k{i}: {i}\n" for i in range(8)))
    _, change = check_config(tmp_path, "config.yaml")
    assert len(change.changed) == 9  # a removed, k0..k7 added
    assert change.summary() == "a 1 -> (absent), k0 (absent) -> 0, k1 (absent) -> 1, k2 (absent) -> 2, " \
                               "k3 (absent) -> 3, k4 (absent) -> 4 and 3 more key(s)"


def test_a_resume_refuses_a_changed_config_and_writes_nothing(folder):
    edit(folder, ("arch_lr: 0.01", "arch_lr: 0.3"))
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != LOCK_FILE}
    with pytest.raises(ConfigError) as refused:
        with resume_guard(folder, source="config.yaml", experiment="smoke-nb201", what=f"experiment '{folder}'",
                          accept_config_change=False):
            pytest.fail("went on with a changed config")
    message = str(refused.value)
    assert "\n" not in message
    assert "its config.yaml changed since the run started (search.arch_lr 0.01 -> 0.3)" in message
    assert "--accept-config-change" in message
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name != LOCK_FILE} == before
    assert (folder / LOCK_FILE).read_text() == ""  # released


def test_an_accepted_change_is_recorded_in_the_folder_and_the_events_table(folder):
    edit(folder, ("arch_lr: 0.01", "arch_lr: 0.3"), ("noise_std: 0.5", "noise_std: 0.0"))
    said: list[str] = []
    with resume_guard(folder, source="config.yaml", experiment="smoke-nb201", what="experiment 'x'",
                      accept_config_change=True, echo=said.append) as change:
        assert change is not None and set(change.changed) == {"data.noise_std", "search.arch_lr"}
    assert said == ["raynas: going on with the changed config.yaml (--accept-config-change): data.noise_std 0.5 -> "
                    "0.0, search.arch_lr 0.01 -> 0.3; recorded in config_fingerprint.json and tables/events.parquet"]
    stored = json.loads((folder / FINGERPRINT_FILE).read_text())
    assert stored["values"]["search"]["arch_lr"] == 0.3 and len(stored["accepted_changes"]) == 1
    assert stored["accepted_changes"][0]["changed"] == {"data.noise_std": [0.5, 0.0], "search.arch_lr": [0.01, 0.3]}
    events = load_table(folder, "events").to_pylist()
    assert [(e["experiment"], e["kind"]) for e in events] == [("smoke-nb201", "config_change")]
    assert json.loads(events[0]["detail_json"])["changed"]["search.arch_lr"] == [0.01, 0.3]
    assert check_config(folder, "config.yaml") == (False, None)  # the accepted settings are the fingerprint now
    edit(folder, ("arch_lr: 0.3", "arch_lr: 0.1"))
    _, again = check_config(folder, "config.yaml")
    accept_change(folder, again)
    assert len(json.loads((folder / FINGERPRINT_FILE).read_text())["accepted_changes"]) == 2  # a history


def test_a_folder_without_a_fingerprint_gets_one_now(folder):
    (folder / FINGERPRINT_FILE).unlink()  # a folder from before fingerprints
    said: list[str] = []
    with resume_guard(folder, source="config.yaml", experiment="e", what="experiment 'x'",
                      accept_config_change=False, echo=said.append) as change:
        assert change is None
    assert len(said) == 1 and "has no config_fingerprint.json" in said[0] and "recorded now" in said[0]
    edit(folder, ("arch_lr: 0.01", "arch_lr: 0.3"))
    assert check_config(folder, "config.yaml")[1].changed == {"search.arch_lr": (0.01, 0.3)}


def test_a_damaged_fingerprint_is_one_line(folder):
    (folder / FINGERPRINT_FILE).write_text('{"sha256": "ab')
    with pytest.raises(ConfigError) as refused:
        check_config(folder, "config.yaml")
    assert "\n" not in str(refused.value) and f"{folder / FINGERPRINT_FILE} cannot be read" in str(refused.value)
