"""The shared Ray fixture itself: loopback only (tests must never open other addresses), workers not niced."""

from __future__ import annotations

import os

import psutil


def test_ray_fixture_listens_on_loopback_only(ray_local):
    children = psutil.Process(os.getpid()).children(recursive=True)
    listening = {conn.laddr.ip for proc in children for conn in proc.net_connections(kind="inet")
                 if conn.status == psutil.CONN_LISTEN}
    assert listening, "the fixture's Ray processes were not found"
    assert listening <= {"127.0.0.1", "::1", "::ffff:127.0.0.1"}, listening


def test_ray_fixture_workers_run_at_the_default_niceness(ray_local):
    # Ray's own default is 15, which starves the suite's trials on a busy machine (see conftest.py).
    niceness = ray_local.get(ray_local.remote(lambda: os.nice(0)).remote(), timeout=120)
    assert niceness == os.nice(0) == 0
