"""The off-by-default run control (raynas.tune.hold): a trial held at an epoch boundary until a file releases it."""

from __future__ import annotations

import threading
import time

import pytest

from raynas.tune.hold import (HOLD_DIR_ENV, HOLD_EPOCH_ENV, RELEASE_FILE, held_marker, held_trials, hold_env,
                              hold_point)


@pytest.fixture
def hold(tmp_path, monkeypatch):
    folder = tmp_path / "hold"
    monkeypatch.setenv(HOLD_DIR_ENV, str(folder))
    monkeypatch.setenv(HOLD_EPOCH_ENV, "3")
    return folder


def test_off_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv(HOLD_DIR_ENV, raising=False)
    monkeypatch.delenv(HOLD_EPOCH_ENV, raising=False)
    hold_point("t0", 3, done=False)  # returns at once: would block for ever otherwise
    assert hold_env() == {}


def test_other_epochs_a_finished_trial_and_a_released_folder_pass(hold):
    hold_point("t0", 2, done=False)
    hold_point("t0", 3, done=True)  # no epochs left: a short trial of a grid ends normally
    assert not hold.exists()
    hold.mkdir()
    (hold / RELEASE_FILE).touch()
    hold_point("t0", 3, done=False)
    assert not held_marker(hold, "t0").exists()


def test_a_trial_waits_at_its_epoch_until_released(hold):
    passed = threading.Event()

    def trial():
        hold_point("t1", 3, done=False)
        passed.set()

    thread = threading.Thread(target=trial, daemon=True)
    thread.start()
    marker = held_marker(hold, "t1")
    deadline = time.monotonic() + 60
    while not marker.exists():  # the marker stays once written: waiting for it cannot miss it
        assert time.monotonic() < deadline, "the trial never reached its hold point"
        thread.join(timeout=0.05)
    assert marker.read_text() == "3\n" and held_trials(hold) == {"t1": 3}
    assert not passed.is_set()  # nothing but the release file lets it past the hold point
    (hold / RELEASE_FILE).touch()
    thread.join(timeout=60)
    assert passed.is_set()


def test_the_variables_travel_to_the_jobs_workers(hold):
    assert hold_env() == {HOLD_DIR_ENV: str(hold), HOLD_EPOCH_ENV: "3"}


def test_a_bad_epoch_is_a_clear_error(hold, monkeypatch):
    monkeypatch.setenv(HOLD_EPOCH_ENV, "four")
    with pytest.raises(ValueError, match="RAYNAS_HOLD_EPOCH: 'four' is not an epoch"):
        hold_point("t0", 4, done=False)
