"""raynas.ray_address: an address where no Ray cluster answers is one line, within a bounded wait.

Real sockets: a closed port, a listener that is not Ray (it accepts and never answers), a real local Ray's
GCS (the ``ray_local`` fixture)."""

from __future__ import annotations

import socket

import pytest

from raynas.errors import ConfigError
from raynas.ray_address import TIMEOUT_ENV, check_reachable


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:port", ":6379", "127.0.0.1:0", "127.0.0.1:70000"])
def test_a_malformed_address_is_refused(address):
    with pytest.raises(ConfigError, match=r"^--address = .*: not a Ray address; give host:port"):
        check_reachable(address)


def test_a_closed_port_is_refused_naming_the_address():
    with pytest.raises(ConfigError) as refused:
        check_reachable("127.0.0.1:1")
    assert str(refused.value).startswith("--address = 127.0.0.1:1: no Ray cluster answers (Connection refused)")
    assert TIMEOUT_ENV in str(refused.value)


def test_a_listener_that_is_not_ray_is_refused_after_the_timeout(monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, "0.5")
    with socket.socket() as server:  # the kernel accepts connections; nobody ever answers
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        with pytest.raises(ConfigError) as refused:
            check_reachable(f"127.0.0.1:{port}", "ray.address")
    message = str(refused.value)
    assert message.startswith(f"ray.address = 127.0.0.1:{port}: something listens there but it is not a Ray cluster")
    assert "no answer within 0.5 s" in message


@pytest.mark.parametrize("value", ["0", "-1", "soon", "1e9", "nan"])
def test_a_bad_timeout_setting_is_one_line(monkeypatch, value):
    monkeypatch.setenv(TIMEOUT_ENV, value)
    with pytest.raises(ConfigError, match=rf"^{TIMEOUT_ENV} = '{value}': give seconds"):
        check_reachable("127.0.0.1:1")


def test_no_address_and_local_pass_without_a_probe():
    check_reachable(None)
    check_reachable("")
    check_reachable("local")


def test_a_running_ray_cluster_passes(ray_local):
    check_reachable(ray_local.get_runtime_context().gcs_address)
