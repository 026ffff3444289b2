"""A small generic name -> object registry with lazy loading and helpful errors.

Spaces, objectives, selections and data sets are registered by name. An entry is either the object itself
or a zero-argument *loader* that imports and returns it on first use, so that registering a heavy backend
costs nothing at import time (the way Ray Tune's ``search/__init__.py`` maps names to import functions).
"""

from __future__ import annotations

import difflib
from contextlib import contextmanager
from typing import Callable, Generic, Iterator, TypeVar

from raynas.errors import RaynasError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects of one kind.

    ``kind`` is a human word used in messages ("search space", "data set"); ``error`` is the
    :class:`RaynasError` subclass raised for unknown names. Registering a name twice is an error: two
    implementations must not silently shadow each other. Not thread-safe; register at import time.
    """

    def __init__(self, kind: str, error: type[RaynasError] = RaynasError) -> None:
        self.kind = kind
        self.error = error
        self._entries: dict[str, T] = {}
        self._loaders: dict[str, Callable[[], T]] = {}
        self._order: list[str] = []  # names in registration order (a lazy entry keeps its place when loaded)

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator that registers its argument."""
        if obj is None:
            def decorator(target: T) -> T:
                self._add(name, target)
                return target
            return decorator
        self._add(name, obj)
        return obj

    def register_lazy(self, name: str, loader: Callable[[], T]) -> None:
        """Register ``name`` to be resolved by calling ``loader()`` the first time it is asked for."""
        self._check_new(name)
        self._loaders[name] = loader
        self._order.append(name)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (loaded or not); an unknown name raises with the valid ones. For plug-ins and
        tests that register an entry for a while: ``register`` then ``unregister`` leaves the registry as
        it was."""
        if name not in self:
            raise self.error(self.unknown_message(name))
        self._entries.pop(name, None)
        self._loaders.pop(name, None)
        self._order.remove(name)

    @contextmanager
    def temporarily(self, name: str, obj: T) -> Iterator[T]:
        """Register ``obj`` as ``name`` for the ``with`` block only (a plug-in tried out, a test's toy)."""
        self._add(name, obj)
        try:
            yield obj
        finally:
            self.unregister(name)

    def get(self, name: str) -> T:
        """Return the object registered as ``name``; an unknown name raises with the closest valid names."""
        if name in self._entries:
            return self._entries[name]
        if name in self._loaders:
            obj = self._loaders.pop(name)()
            self._entries[name] = obj
            return obj
        raise self.error(self.unknown_message(name))

    def unknown_message(self, name: object) -> str:
        """The one-line message for an unknown ``name``, listing close matches and every valid name."""
        names = self.names()
        close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}; valid: {', '.join(names)}.{hint}"

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted({*self._entries, *self._loaders})

    def in_order(self) -> list[str]:
        """All registered names in the order they were registered (where the first that fits wins, such as
        the search space a genotype text belongs to)."""
        return list(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._loaders

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _check_new(self, name: str) -> None:
        if name in self:
            raise self.error(f"{self.kind} {name!r} is already registered; choose another name")

    def _add(self, name: str, obj: T) -> None:
        self._check_new(name)
        self._entries[name] = obj
        self._order.append(name)
