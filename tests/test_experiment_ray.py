"""Which Ray addresses the driver treats as this machine's loopback-only cluster."""

from __future__ import annotations

import pytest

from raynas.experiment import is_loopback_address


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1:6379", True), ("localhost:6379", True), ("[::1]:6379", True), ("127.3.2.1:1", True),
    ("10.77.0.1:6379", False), ("192.0.2.2:6379", False), ("head.example:6379", False), ("auto", False),
])
def test_is_loopback_address(address, expected):
    assert is_loopback_address(address) is expected
