"""The shared Ray fixture itself listens on loopback only (tests must never open other addresses)."""

from __future__ import annotations

import os

import psutil


def test_ray_fixture_listens_on_loopback_only(ray_local):
    children = psutil.Process(os.getpid()).children(recursive=True)
    listening = {conn.laddr.ip for proc in children for conn in proc.net_connections(kind="inet")
                 if conn.status == psutil.CONN_LISTEN}
    assert listening, "the fixture's Ray processes were not found"
    assert listening <= {"127.0.0.1", "::1", "::ffff:127.0.0.1"}, listening
