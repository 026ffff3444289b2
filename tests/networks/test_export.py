"""raynas.export: .pt2 and ONNX files of derived networks give the network's outputs, standalone and at any batch.

The default tier exports NB201 in both formats (opset 20) and DARTS as .pt2; the DARTS ONNX export (opset 18)
and the fresh-interpreter load of a .pt2 (about 10 s of imports) are in the slow tier.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from raynas.errors import ConfigError, RaynasError
from raynas.export import (DEFAULT_OPSET, EXPORT_FORMATS, MAX_OPSET, MIN_OPSET, ExportError, export_network,
                           load_exported, onnx_outputs, verify_export)
from raynas.spaces import get_space

NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
DARTS_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
ATOL = RTOL = 1e-4
NB201_OPSET = 20  # the DARTS ONNX file has the default opset (18)
EXAMPLE_BATCH, OTHER_BATCH = 2, 5  # traced on one batch size, checked on another (dynamic batch)


def _digits_like(batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def _with_running_stats(model: nn.Module) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics, so eval mode and train mode differ clearly."""
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.5)
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
    return model.train()  # exported from train mode on purpose: export must switch to eval and back


def _eval_logits(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(x).numpy()
    model.train(was_training)
    return out


@dataclass
class Exported:
    """A network, its files and (loaded once) the module of its .pt2 file."""

    model: nn.Module
    paths: dict[str, Path]

    @functools.cached_property
    def pt2_module(self) -> nn.Module:
        return load_exported(self.paths["pt2"])


def _export(model: nn.Module, folder: Path, **kwargs: object) -> Exported:
    return Exported(model, export_network(model, _digits_like(EXAMPLE_BATCH, 0), folder, **kwargs))


def _darts_network() -> nn.Module:
    torch.manual_seed(0)
    return _with_running_stats(get_space("darts").build_network(
        DARTS_V2, channels=4, layers=3, num_classes=10, in_channels=1, auxiliary=True, drop_path_prob=0.3))


@pytest.fixture(scope="module")
def nb201(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """NB201 in both formats at an opset other than the default."""
    torch.manual_seed(0)
    model = _with_running_stats(get_space("nb201").build_network(
        NB201, channels=4, layers=1, num_classes=10, in_channels=1))
    return _export(model, tmp_path_factory.mktemp("nb201"), opset=NB201_OPSET)


@pytest.fixture(scope="module")
def darts(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """DARTS with an auxiliary head and drop-path, as .pt2 only (its ONNX export is the slow tier's)."""
    return _export(_darts_network(), tmp_path_factory.mktemp("darts"), formats=("pt2",))


@pytest.fixture(scope="module")
def darts_onnx(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """The same DARTS network as ONNX only, at the default opset."""
    return _export(_darts_network(), tmp_path_factory.mktemp("darts_onnx"), formats=("onnx",))


def _fixture(name: str, slow: bool = False) -> object:
    return pytest.param(name, id=name, marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("network, formats", [("nb201", ["onnx", "pt2"]), ("darts", ["pt2"]),
                                              pytest.param("darts_onnx", ["onnx"], marks=pytest.mark.slow)])
def test_export_writes_only_the_files_and_restores_train_mode(request: pytest.FixtureRequest, network: str,
                                                              formats: list[str]) -> None:
    exported: Exported = request.getfixturevalue(network)
    assert sorted(exported.paths) == formats
    folder = next(iter(exported.paths.values())).parent
    assert sorted(p.name for p in folder.iterdir()) == [f"network.{fmt}" for fmt in formats]  # no temp files
    assert all(path.stat().st_size > 0 for path in exported.paths.values())
    assert all(module.training for module in exported.model.modules())


@pytest.mark.parametrize("network", ["nb201", "darts"])
def test_pt2_matches_model_at_another_batch_size(request: pytest.FixtureRequest, network: str) -> None:
    exported: Exported = request.getfixturevalue(network)
    x = _digits_like(OTHER_BATCH, 7)
    with torch.no_grad():
        got = exported.pt2_module(x)
    assert isinstance(got, torch.Tensor) and got.shape == (OTHER_BATCH, 10)  # logits only, no auxiliary output
    np.testing.assert_allclose(got.numpy(), _eval_logits(exported.model, x), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("network", [_fixture("nb201"), _fixture("darts_onnx", slow=True)])
def test_onnx_matches_model_at_another_batch_size(request: pytest.FixtureRequest, network: str) -> None:
    exported: Exported = request.getfixturevalue(network)
    x = _digits_like(OTHER_BATCH, 8)
    got = onnx_outputs(exported.paths["onnx"], x.numpy())
    assert got.shape == (OTHER_BATCH, 10)
    np.testing.assert_allclose(got, _eval_logits(exported.model, x), atol=ATOL, rtol=RTOL)
    graph = onnx.load(exported.paths["onnx"]).graph
    assert [value.name for value in graph.input] == ["input"] and [value.name for value in graph.output] == ["logits"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize("network, opset", [("nb201", NB201_OPSET),
                                            pytest.param("darts_onnx", DEFAULT_OPSET, marks=pytest.mark.slow)])
def test_onnx_file_has_the_requested_opset(request: pytest.FixtureRequest, network: str, opset: int) -> None:
    assert DEFAULT_OPSET == 18 != NB201_OPSET
    exported: Exported = request.getfixturevalue(network)
    opsets = {entry.domain: entry.version for entry in onnx.load(exported.paths["onnx"]).opset_import}
    assert opsets.get("", opsets.get("ai.onnx")) == opset


def test_darts_pt2_is_eval_mode_without_auxiliary_head(darts: Exported) -> None:
    model = darts.model
    assert model.auxiliary_head is not None and model.drop_path_prob > 0
    x = _digits_like(OTHER_BATCH, 9)
    with torch.no_grad():  # on a copy: a train-mode forward updates BatchNorm running statistics
        train_mode_logits = copy.deepcopy(model).train()(x).numpy()  # drop-path, batch statistics
    assert not np.allclose(train_mode_logits, _eval_logits(model, x), atol=1e-2)  # so the pt2 test above tells
    exported_keys = list(darts.pt2_module.state_dict())
    assert "classifier.weight" in exported_keys and not any("auxiliary_head" in key for key in exported_keys)
    assert any("auxiliary_head" in key for key in model.state_dict())


@pytest.mark.slow
def test_darts_onnx_has_no_auxiliary_head(darts_onnx: Exported) -> None:
    initializers = [init.name for init in onnx.load(darts_onnx.paths["onnx"]).graph.initializer]
    assert initializers and not any("auxiliary_head" in name for name in initializers)


def test_verify_export_reports_small_differences(nb201: Exported) -> None:
    diffs = verify_export(nb201.paths, nb201.model, _digits_like(OTHER_BATCH, 10))
    assert set(diffs) == set(EXPORT_FORMATS)
    assert all(0.0 <= diff <= ATOL for diff in diffs.values())
    assert all(module.training for module in nb201.model.modules())


def test_verify_export_catches_a_changed_model(nb201: Exported) -> None:
    model = copy.deepcopy(nb201.model)
    with torch.no_grad():
        model.classifier.bias[0] += 0.01
    with pytest.raises(ExportError, match=r"pt2 = .* differs by up to 0\.01.*onnx = .*atol = 0\.0001") as info:
        verify_export(nb201.paths, model, _digits_like(3, 11))
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_pt2_loads_without_raynas(darts: Exported, tmp_path: Path) -> None:
    x = _digits_like(OTHER_BATCH, 13)
    np.save(tmp_path / "x.npy", x.numpy())
    script = (
        "import json, sys\n"
        "import numpy, torch\n"
        "torch.set_num_threads(1)\n"
        "module = torch.export.load(sys.argv[1]).module()\n"
        "x = torch.from_numpy(numpy.load(sys.argv[2]))\n"
        "with torch.no_grad():\n"
        "    out = module(x)\n"
        "print(json.dumps({'raynas_imported': any(m.split('.')[0] == 'raynas' for m in sys.modules),"
        " 'logits': out.tolist()}))\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-I", "-c", script, str(darts.paths["pt2"]), str(tmp_path / "x.npy")],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["raynas_imported"] is False
    np.testing.assert_allclose(np.array(report["logits"], dtype=np.float32), _eval_logits(darts.model, x),
                               atol=ATOL, rtol=RTOL)


def _tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(72, 3))


@pytest.mark.parametrize("kwargs, message", [
    ({"formats": ("tflite",)}, r"^--format = 'tflite': unknown export format; use one of pt2, onnx$"),
    ({"formats": ()}, r"^--format = \(\): .*use one or more of pt2, onnx$"),
    ({"opset": MIN_OPSET - 1}, rf"^--opset = {MIN_OPSET - 1}: .*use an integer from {MIN_OPSET} to {MAX_OPSET}$"),
    ({"opset": MAX_OPSET + 1}, rf"^--opset = {MAX_OPSET + 1}: .*from {MIN_OPSET} to {MAX_OPSET}$"),
    ({"opset": "18"}, r"^--opset = '18': "),
    ({"name": "../network"}, r"^--name = '\.\./network': must be a plain file name"),
])
def test_bad_options_give_one_line_error_and_write_nothing(tmp_path: Path, kwargs: dict, message: str) -> None:
    model = _tiny().train()
    with pytest.raises(ConfigError, match=message) as info:
        export_network(model, torch.randn(2, 1, 8, 8), tmp_path / "out", **kwargs)
    assert isinstance(info.value, RaynasError) and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert model.training


def test_failing_onnx_export_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "network.onnx").write_bytes(b"previous")  # an earlier export stays untouched

    def broken_export(*args: object, **kwargs: object) -> None:
        raise RuntimeError("exporter broke\nwith a long trace")

    monkeypatch.setattr(torch.onnx, "export", broken_export)
    model = _tiny().train()
    with pytest.raises(ExportError, match=r"^--format = 'onnx': torch.onnx.export failed: exporter broke$"):
        export_network(model, torch.randn(1, 1, 8, 8), tmp_path)  # batch 1 example: traced as 2 copies
    assert sorted(p.name for p in tmp_path.iterdir()) == ["network.onnx"]  # the .pt2 was staged, then removed
    assert (tmp_path / "network.onnx").read_bytes() == b"previous"
    assert model.training


def test_half_written_pt2_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(program: object, handle: object) -> None:
        handle.write(b"half a file")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(torch.export, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        export_network(_tiny(), torch.randn(2, 1, 8, 8), tmp_path, formats=("pt2",))
    assert list(tmp_path.iterdir()) == []


def test_importing_raynas_export_imports_no_heavy_library() -> None:
    code = ("import sys, raynas.export\n"
            "heavy = sorted({'torch', 'onnx', 'onnxruntime', 'onnxscript', 'numpy'} & set(sys.modules))\n"
            "print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
