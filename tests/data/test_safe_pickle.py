"""raynas.data.safe_pickle: numpy arrays and plain containers load; every other callable is refused unrun."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from raynas.data.safe_pickle import RefusedGlobal, load_data_pickle


def _load(obj, protocol: int):
    return load_data_pickle(io.BytesIO(pickle.dumps(obj, protocol=protocol)))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_arrays_scalars_and_containers_round_trip(protocol: int) -> None:
    obj = {"data": np.arange(24, dtype=np.uint8).reshape(4, 6), "mean": np.linspace(0, 1, 6),
           "labels": [1, 2, 3, 1000], "n": np.int64(7), "name": "batch", "raw": b"\x00\xff", "pair": (1.5, None),
           "fortran": np.asfortranarray(np.ones((2, 3), np.int32))}
    back = _load(obj, protocol)
    assert set(back) == set(obj)
    for key in ("data", "mean", "fortran"):
        assert back[key].dtype == obj[key].dtype and np.array_equal(back[key], obj[key])
    assert back["labels"] == [1, 2, 3, 1000] and back["n"] == 7 and back["raw"] == b"\x00\xff"
    assert back["name"] == "batch" and back["pair"] == (1.5, None)


class _Calls:
    """Pickles to a call of ``func(*args)``: what a malicious data file holds."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("make", [
    lambda marker: _Calls(os.mkdir, str(marker)),
    lambda marker: _Calls(exec, f"open({str(marker)!r}, 'w').close()"),
    lambda marker: _Calls(subprocess.call, ["touch", str(marker)]),
    lambda marker: _Calls(np.save, str(marker), np.zeros(1)),  # numpy, but not an array constructor
    lambda marker: {"ok": np.zeros(2), "bad": [_Calls(Path.touch, Path(marker))]},
])
@pytest.mark.parametrize("protocol", [2, 5])
def test_any_other_callable_is_refused_before_it_runs(tmp_path: Path, make, protocol: int) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(RefusedGlobal) as err:
        _load(make(marker), protocol)
    assert "the pickle asks for " in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists() and not Path(str(marker) + ".npy").exists()


def test_codecs_encode_runs_for_latin1_only() -> None:
    # protocol 2 writes bytes as _codecs.encode(text, 'latin1'); any other codec is refused
    stream = pickle.dumps(b"abc", protocol=2).replace(b"latin1", b"rot_13")
    assert b"rot_13" in stream
    with pytest.raises(RefusedGlobal, match="_codecs.encode"):
        load_data_pickle(io.BytesIO(stream))


def test_refusal_is_an_unpickling_error() -> None:
    assert issubclass(RefusedGlobal, pickle.UnpicklingError)


def test_arrays_pickled_under_numpy_1_names_load_without_a_deprecation_warning() -> None:
    # numpy 1.x wrote numpy.core.multiarray, numpy 2 writes numpy._core.multiarray: both resolve, and the old
    # name is not imported (numpy 2 warns when numpy.core is)
    code = ("import io, pickle, numpy as np; from raynas.data.safe_pickle import load_data_pickle; "
            "s = pickle.dumps(np.arange(5, dtype=np.uint8), protocol=2); "
            "old = s.replace(b'numpy._core.multiarray', b'numpy.core.multiarray'); assert old != s; "
            "print(load_data_pickle(io.BytesIO(old)).tolist())")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "[0, 1, 2, 3, 4]", out.stderr
