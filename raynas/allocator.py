"""The memory allocator of the processes that train supernets: mimalloc, preloaded, or the system's malloc.

A supernet step allocates and frees thousands of activation-sized tensors, and glibc's malloc keeps part of
the freed heap between them, fragmented. mimalloc (Microsoft's allocator, shipped as a shared library by the
``cmeel-mimalloc`` wheel) reuses freed blocks better: a supernet step peaks lower and runs faster on it
(measured with ``tools/bench_supernet.py --allocator``; the figures are in ``docs/performance.md``), provided
it keeps the pages it has (``MIMALLOC_PURGE_DELAY=-1``): returning them to the system after every free makes
the next allocations fault them in again.

An allocator can only be chosen when a process starts (``LD_PRELOAD``), so raynas applies it to the Ray
worker processes it starts, never to the driver: :func:`worker_env` gives the environment variables and
:func:`raynas.experiment.start_ray` passes them to Ray's workers. This module imports neither torch nor Ray.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Optional

from raynas.errors import ConfigError

#: the allocators ``ray.allocator`` accepts
ALLOCATORS = ("mimalloc", "system")
#: the distribution that ships ``libmimalloc.so``
MIMALLOC_DISTRIBUTION = "cmeel-mimalloc"
#: mimalloc settings: keep freed pages for reuse instead of returning them to the system, and let the kernel
#: back its arenas with transparent huge pages where it can (fewer page faults)
MIMALLOC_OPTIONS = {"MIMALLOC_PURGE_DELAY": "-1", "MIMALLOC_ALLOW_LARGE_OS_PAGES": "1"}


@lru_cache(maxsize=1)
def mimalloc_library() -> Optional[Path]:
    """The path of the installed ``libmimalloc.so`` (Linux), or None where it is not installed."""
    if not sys.platform.startswith("linux"):
        return None
    from importlib import metadata  # only here: the config schema imports this module

    try:
        files = metadata.files(MIMALLOC_DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == "libmimalloc.so":
            path = Path(str(file.locate())).resolve()
            if path.is_file():
                return path
    return None


def worker_env(allocator: str) -> dict[str, str]:
    """Environment variables that make a process started with them use ``allocator``.

    ``system`` needs none. ``mimalloc`` preloads the installed library with :data:`MIMALLOC_OPTIONS`; where
    it is not installed (not Linux, or the wheel is missing) the processes keep the system allocator and
    this returns no variables. An unknown name raises :class:`ConfigError`.
    """
    if allocator not in ALLOCATORS:
        raise ConfigError(f"ray.allocator: {allocator!r} is not an allocator; valid: {', '.join(ALLOCATORS)}")
    if allocator == "system":
        return {}
    library = mimalloc_library()
    if library is None:
        return {}
    return {"LD_PRELOAD": str(library), **MIMALLOC_OPTIONS}


def process_allocator(maps: str = "/proc/self/maps") -> str:
    """Which allocator the calling process runs on: ``mimalloc`` when its library is mapped, else ``system``."""
    try:
        text = Path(maps).read_text()
    except OSError:
        return "system"
    return "mimalloc" if "libmimalloc" in text else "system"
