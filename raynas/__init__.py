"""raynas: Ray-based orchestrator for differentiable NAS (the DARTS family).

The Python API (README, section Python)::

    import raynas
    experiment = raynas.search("search_configs/quickstart.yaml", overrides={"search.epochs": 5})
    experiment.leaderboard()            # a DataFrame, best trial first
    experiment.best().genotype
    raynas.train(experiment, seeds=[0, 1], epochs=10)
    raynas.load("raynas_results/quickstart")

``import raynas`` stays cheap: these names are imported on first use, and neither torch nor Ray is imported
until something runs. ``raynas.search`` and ``raynas.train`` are the functions above; the modules of the same
names (the search loop, training from scratch) are imported with ``from raynas.search import ...``.
"""

import sys  # no other import: `import raynas` stays cheap (no __future__, typing or types either)

__all__ = ["Evaluation", "Experiment", "Trial", "__version__", "load", "search", "train"]

_API = frozenset({"Evaluation", "Experiment", "Trial", "load", "search", "train"})
_UNKNOWN_VERSION = "0+unknown"  # PEP 440; sorts below every release
# types.ModuleType without importing types; the type checker (which takes any name TYPE_CHECKING as true) reads
# the import, which never runs
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType as _ModuleType
else:
    _ModuleType = type(sys)
del TYPE_CHECKING  # not a name of the package


def _version() -> str:
    """The installed distribution's version (importlib.metadata), or 0+unknown for sources not installed."""
    from importlib import metadata

    try:
        return metadata.version("raynas")
    except metadata.PackageNotFoundError:
        return _UNKNOWN_VERSION


def __getattr__(name: str) -> object:
    """The API's names, imported on first use (PEP 562)."""
    if name == "__version__":
        value = globals()["__version__"] = _version()
        return value
    if name in _API:
        from raynas import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names with the API's, which are imported on first use."""
    return sorted(set(globals()) | set(__all__))


class _Package(_ModuleType):
    """The ``raynas`` module: importing the submodule ``raynas.search`` or ``raynas.train`` must not replace the
    API function of the same name (the import system sets a loaded submodule as its package's attribute);
    the submodule stays in ``sys.modules`` for ``from raynas.search import ...``."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in _API and isinstance(value, _ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
