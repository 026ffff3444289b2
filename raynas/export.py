"""Export a derived network as a standalone PyTorch program (``.pt2``) and as ONNX, and check the copies.

``export_network`` traces the network once with :func:`torch.export.export` in eval mode (so drop-path
is off, BatchNorm uses its running statistics and the DARTS auxiliary head is not part of the graph),
then writes

==========  ===========================================================================================
``pt2``     ``torch.export.save`` of that program: graph and weights in one file, loadable with
            ``torch.export.load(path).module()`` by anyone with torch, without raynas installed.
``onnx``    the same program through the torch.export-based ONNX exporter (``torch.onnx.export(...,
            dynamo=True)``, the one torch recommends since 2.9; it needs ``onnx`` and ``onnxscript``),
            one self-contained file with input ``input`` and output ``logits``.
==========  ===========================================================================================

The batch dimension is dynamic (named ``batch`` in the ONNX file) unless ``dynamic_batch=False``.
Files are written all-or-nothing (:func:`raynas.files.replace_together`): each goes to a fresh temp file in
the target folder, and only when every requested format has been written are they moved into place,
readable as the umask allows.

ONNX opsets: the exporter's operator library is written in opset 18 and it converts upwards; asked for
less it silently keeps 18, so ``MIN_OPSET`` is 18 and ``MAX_OPSET`` is torch's highest ONNX opset (23).
The written file's opset is checked after export all the same.

Importing this module imports neither torch nor onnx; each function imports what it uses.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterator, Mapping, Sequence, Union

from raynas.errors import ConfigError, RaynasError
from raynas.files import replace_together

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

__all__ = ["DEFAULT_ATOL", "DEFAULT_OPSET", "DEFAULT_RTOL", "EXPORT_FORMATS", "MAX_OPSET", "MIN_OPSET",
           "ExportError", "check_export_options", "export_network", "load_exported", "onnx_outputs",
           "verify_export"]

PathLike = Union[str, "os.PathLike[str]"]

#: the formats ``export_network`` writes, in the order it writes them
EXPORT_FORMATS: tuple[str, ...] = ("pt2", "onnx")
#: the default ONNX opset: the one the exporter's operator library is written in (no conversion)
DEFAULT_OPSET = 18
#: the lowest opset the installed exporter (torch 2.14, torch.export-based) really writes
MIN_OPSET = 18
#: the highest opset torch 2.14's ONNX exporter supports
MAX_OPSET = 23
#: float32 tolerances for ``verify_export``: |exported - model| <= atol + rtol * |model|, elementwise
DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-4

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"
_ONNX_PACKAGES = ("onnx", "onnxscript")


class ExportError(RaynasError, RuntimeError):
    """An export failed, lacks an optional dependency, or a re-imported file disagrees with the model."""


def check_export_options(formats: Sequence[str], opset: int, name: str = "network") -> tuple[str, ...]:
    """Validate the options of :func:`export_network` and return the formats without duplicates.

    Raises :class:`ConfigError` naming ``--format``, ``--opset`` or ``--name``, the value and what is allowed.
    """
    if isinstance(formats, str):
        formats = (formats,)
    allowed = ", ".join(EXPORT_FORMATS)
    unique: list[str] = []
    for fmt in formats:
        if fmt not in EXPORT_FORMATS:
            raise ConfigError(f"--format = {fmt!r}: unknown export format; use one of {allowed}")
        if fmt not in unique:
            unique.append(fmt)
    if not unique:
        raise ConfigError(f"--format = (): no format given; use one or more of {allowed}")
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ConfigError(f"--opset = {opset!r}: not supported by the installed ONNX exporter; "
                          f"use an integer from {MIN_OPSET} to {MAX_OPSET}")
    if not isinstance(name, str) or not name or name in (".", "..") or Path(name).name != name or "\\" in name:
        raise ConfigError(f"--name = {name!r}: must be a plain file name without a folder, e.g. 'network'")
    return tuple(unique)


def export_network(model: "nn.Module", example_input: "torch.Tensor", out_dir: PathLike, *,
                   formats: Sequence[str] = EXPORT_FORMATS, opset: int = DEFAULT_OPSET, name: str = "network",
                   dynamic_batch: bool = True) -> dict[str, Path]:
    """Write ``model`` as ``<out_dir>/<name>.pt2`` and/or ``<out_dir>/<name>.onnx``; return format -> path.

    The model is traced in eval mode on ``example_input`` (a batch) and put back in the modes its modules
    had. With ``dynamic_batch`` the files accept any batch size. Nothing is left in ``out_dir`` when any
    format fails: a previous file of the same name stays as it was.
    """
    fmts = check_export_options(formats, opset, name)
    if "onnx" in fmts:
        _require(_ONNX_PACKAGES, "--format = 'onnx'")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir = {str(out)!r}: is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)

    targets = {fmt: out / f"{name}.{fmt}" for fmt in EXPORT_FORMATS if fmt in fmts}
    # every format is written before any file is renamed into place (raynas.files.replace_together)
    with replace_together(list(targets.values())) as temps, _eval_mode(model):
        staged = dict(zip(targets, temps))
        program, trace_input = _trace(model, example_input, dynamic_batch)
        if "pt2" in staged:
            with open(staged["pt2"], "wb") as handle:
                _save_program(program, handle)
        if "onnx" in staged:
            staged["onnx"].write_bytes(_onnx_bytes(program, trace_input, opset))
    return targets


def load_exported(path: PathLike) -> "nn.Module":
    """The module of a ``.pt2`` file written by :func:`export_network` (``torch.export.load(path).module()``).

    Like ``torch.export.load``, which may unpickle tensor subclasses, load only files you trust.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"path = {str(file)!r}: no such file; give a .pt2 file written by export_network")
    import torch

    return torch.export.load(file).module()


def onnx_outputs(path: PathLike, inputs: "np.ndarray") -> "np.ndarray":
    """Run the ONNX file ``path`` on the batch ``inputs`` with onnxruntime (CPU) and return its first output."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"path = {str(file)!r}: no such file; give an .onnx file written by export_network")
    _require(("onnxruntime",), "running an ONNX file")
    import numpy as np
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(str(file), sess_options=options, providers=["CPUExecutionProvider"])
    feeds = session.get_inputs()
    if len(feeds) != 1:
        raise ExportError(f"path = {str(file)!r}: the ONNX graph has {len(feeds)} inputs; expected one batch input")
    array = np.asarray(inputs)
    if feeds[0].type == "tensor(float)":
        array = array.astype(np.float32, copy=False)
    return session.run(None, {feeds[0].name: np.ascontiguousarray(array)})[0]


def verify_export(paths: Mapping[str, PathLike], model: "nn.Module", example_input: "torch.Tensor", *,
                  atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL) -> dict[str, float]:
    """Max absolute difference, per format, between each exported file's outputs and ``model``'s (eval mode).

    ``paths`` maps a format of :data:`EXPORT_FORMATS` to its file (the result of :func:`export_network`).
    Raises :class:`ExportError` when a shape differs or any output lies outside
    ``|exported - model| <= atol + rtol * |model|``.
    """
    import numpy as np
    import torch

    with _eval_mode(model), torch.no_grad():
        expected = model(example_input).detach().cpu().numpy()
    diffs: dict[str, float] = {}
    failures: list[str] = []
    for fmt, path in paths.items():
        if fmt == "pt2":
            with torch.no_grad():
                got = load_exported(path)(example_input).detach().cpu().numpy()
        elif fmt == "onnx":
            got = onnx_outputs(path, example_input.detach().cpu().numpy())
        else:
            raise ConfigError(f"--format = {fmt!r}: unknown export format; use one of {', '.join(EXPORT_FORMATS)}")
        if got.shape != expected.shape:
            raise ExportError(f"{fmt} = {str(path)!r}: outputs of shape {tuple(got.shape)}; "
                              f"the model gives {tuple(expected.shape)}")
        diff = float(np.max(np.abs(got.astype(np.float64) - expected))) if got.size else 0.0
        diffs[fmt] = diff
        if not np.allclose(got, expected, rtol=rtol, atol=atol):
            failures.append(f"{fmt} = {str(path)!r} differs by up to {diff:.3g}")
    if failures:
        raise ExportError(f"{'; '.join(failures)}: exported outputs must match the model's within "
                          f"atol = {atol:g} + rtol = {rtol:g} x |output|")
    return diffs


@contextlib.contextmanager
def _eval_mode(model: "nn.Module") -> Iterator[None]:
    """Put every module of ``model`` in eval mode, then restore each one's own previous mode."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _trace(model: "nn.Module", example_input: "torch.Tensor",
           dynamic_batch: bool) -> tuple["torch.export.ExportedProgram", "torch.Tensor"]:
    """``torch.export.export`` of ``model`` with the batch dimension dynamic if asked; returns the program
    and the input it was traced on.

    torch.export specialises a dimension of size 1, so a one-sample example is traced as two copies of itself.
    """
    import torch

    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 1:
        raise ConfigError(f"example_input = {type(example_input).__name__}: must be a batch tensor "
                          "(first dimension = batch)")
    trace_input = example_input.detach()
    dynamic_shapes = None
    if dynamic_batch:
        if trace_input.shape[0] == 1:
            trace_input = torch.cat([trace_input, trace_input])
        dynamic_shapes = ({0: torch.export.Dim(BATCH_DIM, min=1)},)
    try:
        program = torch.export.export(_without_auxiliary_head(model), (trace_input,), dynamic_shapes=dynamic_shapes)
    except Exception as exc:  # torch's messages span many lines; keep the first, chain the rest
        raise ExportError(f"model = {type(model).__name__}: torch.export failed: {_first_line(exc)}") from exc
    return program, trace_input


def _without_auxiliary_head(model: "nn.Module") -> "nn.Module":
    """``model``, or for a network with an ``auxiliary_head`` module (DARTS) a shallow copy without it.

    The head is used only in training, so the eval-mode graph never calls it; but torch.export keeps every
    parameter of the traced module in the program, so without this the ``.pt2`` would carry its weights.
    The copy shares all other submodules, parameters and buffers with ``model``; ``model`` is not changed.
    """
    from torch import nn

    if not isinstance(getattr(model, "auxiliary_head", None), nn.Module):
        return model
    view = copy.copy(model)
    view.__dict__["_modules"] = {**model._modules, "auxiliary_head": None}
    return view


def _save_program(program: "torch.export.ExportedProgram", handle: BinaryIO) -> None:
    import torch

    torch.export.save(program, handle)


def _onnx_bytes(program: "torch.export.ExportedProgram", trace_input: "torch.Tensor", opset: int) -> bytes:
    """The serialised ONNX model of ``program`` at ``opset``, with inputs/outputs named and the batch
    dimension named :data:`BATCH_DIM`; raises :class:`ExportError` if the exporter wrote another opset."""
    import torch

    try:
        onnx_program = torch.onnx.export(program, (trace_input,), dynamo=True, opset_version=opset,
                                         input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], verbose=False)
    except Exception as exc:
        raise ExportError(f"--format = 'onnx': torch.onnx.export failed: {_first_line(exc)}") from exc
    assert onnx_program is not None  # dynamo=True always returns the program (None is the legacy exporter's)
    proto = onnx_program.model_proto
    written = {entry.domain: entry.version for entry in proto.opset_import}
    got = written.get("", written.get("ai.onnx"))
    if got != opset:
        raise ExportError(f"--opset = {opset}: the exporter wrote opset {got}; "
                          f"use an integer from {MIN_OPSET} to {MAX_OPSET}")
    _name_batch_dim(proto)
    return proto.SerializeToString()


def _name_batch_dim(proto: object) -> None:
    """Rename the symbolic first dimension of the graph input (e.g. ``s77``) to :data:`BATCH_DIM` everywhere."""
    graph = proto.graph  # type: ignore[attr-defined]
    dims = graph.input[0].type.tensor_type.shape.dim if graph.input else []
    symbol = dims[0].dim_param if dims else ""
    if not symbol:
        return
    for value in (*graph.input, *graph.output, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param == symbol:
                dim.dim_param = BATCH_DIM


def _require(packages: Sequence[str], what: str) -> None:
    """Raise :class:`ExportError` naming the missing optional packages ``what`` needs."""
    missing = [package for package in packages if importlib.util.find_spec(package) is None]
    if missing:
        raise ExportError(f"{what}: needs {', '.join(missing)} (not installed); "
                          "install them with: pip install 'raynas[export]'")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
