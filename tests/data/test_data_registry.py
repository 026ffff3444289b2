"""raynas.data's registry: lazy (no heavy import), complete, with helpful errors for unknown names."""

from __future__ import annotations

import subprocess
import sys

import pytest

from raynas.config.schema import DataConfig
from raynas.data import DATASETS, load_data
from raynas.errors import DataError


def test_importing_raynas_data_imports_no_heavy_library() -> None:
    code = ("import sys, raynas.data as d; names = d.DATASETS.names(); "
            "heavy = [m for m in ('torch', 'torchvision', 'sklearn') if m in sys.modules]; "
            "print(','.join(names), '|', ','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "cifar10,cifar100,digits,imagefolder,imagenet16,synthetic |"


def test_every_name_resolves_to_a_builder() -> None:
    for name in DATASETS:
        assert callable(DATASETS.get(name))


def test_unknown_data_set_suggests_the_close_name() -> None:
    with pytest.raises(DataError, match=r"unknown data set 'digit'.*Did you mean 'digits'"):
        load_data(DataConfig(name="digit"))
