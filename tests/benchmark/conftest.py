"""Shared set-up of the benchmark tests: a tiny protocol (1 epoch, C=4, N=1 on the digits with noise 1.0,
half held out) under which a cell trains in well under a second, so tables can be built for real in a test."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_PROTOCOL = """\
data: {name: digits, noise_std: 1.0, test_fraction: 0.5}
epochs: 1
batch_size: 256
lr: 0.05
channels: 4
layers: 1
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny protocol as a YAML file."""
    path = tmp_path_factory.mktemp("protocol") / "tiny.yaml"
    path.write_text(TINY_PROTOCOL)
    return path
