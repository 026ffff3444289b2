"""Reading the official NAS-Bench-201 and NATS-Bench topology files: each arch string's test accuracy after
the benchmark's 200-epoch training, on each of its data sets.

Three layouts, told apart by what the path is:

- a NAS-Bench-201 file (``NAS-Bench-201-v1_0-e61699.pth``, ``NAS-Bench-201-v1_1-096897.pth``): a
  ``torch.save``'d dict ``{"meta_archs": [arch string, ...], "arch2infos": {index: {"less": ..., "full":
  ...}}, "evaluated_indexes": ...}`` whose ``"full"`` entry is the 200-epoch training (NATS-Bench calls it
  ``hp="200"``);
- a NATS-Bench topology folder in fast mode (``NATS-tss-v1_0-3ffb9-simple/``): ``meta.pickle.pbz2`` (a
  bz2-compressed pickle of ``{"meta_archs": [...]}``) and one ``<index>.pickle.pbz2`` per arch (``000123``
  or ``123``), each ``{"12": ..., "200": ...}``;
- the single-file NATS-Bench topology archive (``NATS-tss-v1_0-3ffb9.pickle.pbz2``): the NAS-Bench-201
  dict with NATS-Bench's ``"12"``/``"200"`` keys, bz2-compressed.

Each per-arch entry is the state dict of the ``nats_bench`` package's ``ArchResults``; the accuracies are
read by that class (``ArchResults.create_from_state_dict(...).get_metrics(dataset, test set,
is_random=False)``: the mean over the benchmark's seeds after the last epoch), which is what
``nats_bench``'s ``get_more_info(index, dataset, hp="200", is_random=False)["test-accuracy"]`` returns.

The files are loaded without running code from them: the pickles (the ``.pth``'s too, through
``torch.load``'s ``pickle_module``) with an unpickler that admits only containers, numbers, NumPy scalars
and arrays (and tensors in the ``.pth``). Anything else, or any other deviation from the layout, is a
one-line :class:`ConfigError` naming the path and what was expected. Imports torch (``.pth`` only) and
``nats_bench`` when a file is read.
"""

from __future__ import annotations

import bz2
import os
import pickle
import types
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import pyarrow as pa

from raynas.errors import ConfigError, GenotypeError

#: the benchmark's data-set keys, with the split ``get_more_info``'s ``test-accuracy`` reads for each
TEST_SETS = {"cifar10-valid": "ori-test", "cifar10": "ori-test", "cifar100": "x-test", "ImageNet16-120": "x-test"}
#: the per-arch keys of the 200-epoch results: NATS-Bench's ``hp`` and NAS-Bench-201's older name
FULL_KEYS = ("200", "full")
#: the extension of NATS-Bench's compressed pickles
PICKLE_EXT = ".pickle.pbz2"
META_FILE = "meta" + PICKLE_EXT
#: what a path may be, said in every error
EXPECTED = ("a NAS-Bench-201 .pth file (NAS-Bench-201-v1_1-096897.pth) or a NATS-Bench topology folder in fast "
            "mode (NATS-tss-v1_0-3ffb9-simple/)")
NB201, NATS_FOLDER, NATS_FILE = "NAS-Bench-201", "NATS-Bench topology (fast-mode folder)", "NATS-Bench topology"


def official_kind(path: str | os.PathLike) -> str:
    """Which layout ``path`` has (:data:`NB201`, :data:`NATS_FOLDER` or :data:`NATS_FILE`); a one-line
    ConfigError when it is none of them or does not exist."""
    path = Path(path)
    if path.is_dir():
        if not (path / META_FILE).is_file():
            raise ConfigError(f"benchmark.official: '{path}' is a folder without {META_FILE}; expected {EXPECTED}")
        return NATS_FOLDER
    if path.is_file():
        return NATS_FILE if path.name.endswith(PICKLE_EXT) else NB201
    raise ConfigError(f"benchmark.official: '{path}' is not an existing file or folder; expected {EXPECTED}")


def read_official(path: str | os.PathLike) -> pa.Table:
    """Every arch string of the official file or folder at ``path`` with its 200-epoch test accuracy (percent)
    on each data set of :data:`TEST_SETS` (null where the file has none).

    Columns: ``arch_index`` (the file's index), ``arch`` (the arch string as raynas writes it) and one
    float column per data-set key. A malformed file raises a one-line ConfigError.
    """
    path = Path(path)
    kind = official_kind(path)
    if kind == NATS_FOLDER:
        meta = _unpickle_bz2(path / META_FILE, path)
        archs = _meta_archs(meta, path / META_FILE)
        entries = _folder_entries(path, len(archs))
    else:
        root = _load_nb201(path) if kind == NB201 else _unpickle_bz2(path, path)
        archs = _meta_archs(root, path)
        entries = _dict_entries(root, path, len(archs))
    columns: dict[str, list[Optional[float]]] = {key: [None] * len(archs) for key in TEST_SETS}
    for index, (where, per_hp) in entries:
        for key, accuracy in _test_accuracies(per_hp, f"{where} (arch {index})").items():
            columns[key][index] = accuracy
    return pa.table({"arch_index": pa.array(range(len(archs)), pa.int32()), "arch": pa.array(archs, pa.string()),
                     **{key: pa.array(values, pa.float64()) for key, values in columns.items()}})


def _meta_archs(root: Any, where: Path) -> list[str]:
    """The file's arch strings, each parsed and written as raynas writes NB201 arch strings."""
    from raynas.spaces.genotype import NB201Genotype

    if not isinstance(root, Mapping) or not isinstance(root.get("meta_archs"), (list, tuple)):
        raise ConfigError(f"benchmark.official: '{where}' holds no 'meta_archs' list of arch strings; expected "
                          f"{EXPECTED}")
    archs = []
    for index, arch in enumerate(root["meta_archs"]):
        try:
            archs.append(str(NB201Genotype.parse(arch)))
        except (GenotypeError, TypeError, ValueError, AttributeError):
            raise ConfigError(f"benchmark.official: '{where}': meta_archs[{index}] = {str(arch)[:80]!r} is not an "
                              "NB201 arch string") from None
    if len(set(archs)) != len(archs):
        raise ConfigError(f"benchmark.official: '{where}': meta_archs names an arch string twice")
    return archs


def _dict_entries(root: Mapping, where: Path, count: int) -> Iterator[tuple[int, tuple[Path, Any]]]:
    """``(index, (where, per-hp results))`` of a whole-file benchmark's ``arch2infos``, emptied as it is read
    (the real files hold gigabytes)."""
    infos = root.get("arch2infos")
    if not isinstance(infos, dict):
        raise ConfigError(f"benchmark.official: '{where}' holds no 'arch2infos' dict; expected {EXPECTED}")
    bad = next((key for key in infos if not isinstance(key, int) or not 0 <= key < count), None)
    if bad is not None:
        raise ConfigError(f"benchmark.official: '{where}': arch2infos has the key {bad!r}, not an index of "
                          f"meta_archs (0-{count - 1})")
    for index in sorted(infos):
        yield index, (where, infos.pop(index))


def _folder_entries(folder: Path, count: int) -> Iterator[tuple[int, tuple[Path, Any]]]:
    """``(index, (file, per-hp results))`` of every arch file in a fast-mode folder (``000123`` or ``123``,
    as ``nats_bench`` looks them up); an arch without a file is absent (a complete folder has them all)."""
    names = {entry.name for entry in os.scandir(folder)}
    for index in range(count):
        for name in (f"{index:06d}{PICKLE_EXT}", f"{index}{PICKLE_EXT}"):
            if name in names:
                yield index, (folder / name, _unpickle_bz2(folder / name, folder))
                break


def _test_accuracies(per_hp: Any, where: str) -> dict[str, float]:
    """The 200-epoch test accuracy (percent, mean over seeds) of one arch on each data set it was trained on,
    read by ``nats_bench``'s ``ArchResults``."""
    ArchResults = _nats_bench().api_utils.ArchResults
    state = None
    if isinstance(per_hp, Mapping):
        state = next((per_hp[key] for key in FULL_KEYS if key in per_hp), None)
    if not isinstance(state, dict):
        raise ConfigError(f"benchmark.official: {where} has no 200-epoch results (a dict with key "
                          f"{' or '.join(map(repr, FULL_KEYS))} of ArchResults state dicts)")
    try:
        results = ArchResults.create_from_state_dict(state)
        found = {key: float(results.get_metrics(key, split, iepoch=None, is_random=False)["accuracy"])
                 for key, split in TEST_SETS.items() if key in results.get_dataset_names()}
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ZeroDivisionError) as exc:
        raise ConfigError(f"benchmark.official: {where}: malformed 200-epoch results ({type(exc).__name__}: "
                          f"{str(exc)[:120]}); expected nats_bench ArchResults state dicts") from None
    if not found:
        raise ConfigError(f"benchmark.official: {where}: its 200-epoch results name none of the data sets "
                          f"{', '.join(TEST_SETS)}")
    return found


def _nats_bench() -> Any:
    """The ``nats_bench`` package, or a one-line ConfigError saying how to install it."""
    try:
        import nats_bench.api_utils  # noqa: F401 - the submodule the readers use
    except ImportError:
        raise ConfigError("benchmark.official needs the nats_bench package: pip install 'raynas[benchmarks]' "
                          "(or pip install nats_bench)") from None
    import nats_bench

    return nats_bench


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of a loader's error, with its kind."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"


#: (module, name) pairs the pickle reader admits: constructors of plain data, nothing that runs code
_SAFE_NAMES = {("collections", "OrderedDict"), ("collections", "defaultdict"), ("numpy", "dtype"),
               ("numpy", "ndarray")} | {
    ("builtins", name) for name in ("list", "dict", "set", "frozenset", "tuple", "int", "float", "str", "bytes",
                                    "bool", "complex", "bytearray")} | {
    (module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")  # NumPy 1's and 2's names
    for name in ("scalar", "_reconstruct")}


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol 2 pickles of ``bytes`` call it, for latin-1 only (no other codec)."""
    if not isinstance(text, str) or encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"it encodes with {encoding!r}, which a results file does not")
    return text.encode("latin1")


class _DataUnpickler(pickle.Unpickler):
    """A pickle reader that builds plain data only (:data:`_SAFE_NAMES`, NumPy dtype classes): every other
    global is refused before it is imported or called."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):  # how protocol 2 pickles bytes
            return _latin1_encode
        if (module, name) in _SAFE_NAMES or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it references {module}.{name}, which a results file does not hold")


class _TorchDataUnpickler(_DataUnpickler):
    """:class:`_DataUnpickler` plus torch's tensor rebuilders (which ``torch.load(weights_only=True)`` admits
    too); torch's own wrapper resolves storages before asking."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return pickle.Unpickler.find_class(self, module, name)
        return super().find_class(module, name)


#: what ``torch.load(pickle_module=...)`` needs of a pickle module
_TORCH_PICKLE_MODULE = types.SimpleNamespace(Unpickler=_TorchDataUnpickler, __name__="raynas_data_pickle",
                                             load=lambda handle, **kw: _TorchDataUnpickler(handle, **kw).load())


def _load_nb201(path: Path) -> Any:
    """A NAS-Bench-201 ``.pth`` loaded by ``torch.load`` through :class:`_TorchDataUnpickler`: what
    ``weights_only=True`` guarantees for a file of plain data, at the C unpickler's speed (torch's
    weights-only reader is pure Python, about five times slower: many minutes for the 4.7 GB v1_1 file)."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_TORCH_PICKLE_MODULE)
    except MemoryError:
        raise
    except Exception as exc:  # torch raises several kinds for a file it cannot read; each is one line here
        raise ConfigError(f"benchmark.official: '{path}' cannot be read as a NAS-Bench-201 file "
                          f"({_first_line(exc)}); expected {EXPECTED}") from None


def _unpickle_bz2(path: Path, named: Path) -> Any:
    """A bz2-compressed pickle read with :class:`_DataUnpickler`; ``named`` is the path the error names
    first (the folder or file of the config)."""
    where = f"'{path}'" if path == named else f"'{named}': {path.name}"
    try:
        with bz2.open(path, "rb") as handle:
            return _DataUnpickler(handle).load()
    except MemoryError:
        raise
    except Exception as exc:  # bz2, pickle and I/O errors alike: the file is not what it should be
        raise ConfigError(f"benchmark.official: {where} cannot be read as a bz2-compressed pickle "
                          f"({_first_line(exc)}); expected {EXPECTED}") from None
