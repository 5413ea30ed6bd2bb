"""One small generic registry, and the registries of sfm's extension points.

Every extension point (simulators, importers, number encodings, task formats, metrics, baselines, backbones)
is a :class:`Registry` filled by a decorator in the module that defines the entry. A registry knows which
modules hold its built-in entries and imports them the first time it is read, so ``sfm list`` and lookups
always see every built-in name, and importing :mod:`sfm` stays cheap.

Example:
    >>> from sfm.registry import Registry
    >>> SHAPES = Registry("shape")
    >>> @SHAPES.register("square", sides=4)
    ... def square(a):
    ...     return a * a
    >>> SHAPES.get("square")(3)
    9
    >>> SHAPES.meta("square")["sides"]
    4
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from sfm.errors import UnknownNameError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object mapping filled by decorators.

    Args:
        kind: What the entries are, for messages ("simulator", "metric", ...).
        modules: Modules whose import registers the built-in entries; imported on first read.
    """

    def __init__(self, kind: str, modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._modules = modules
        self._loaded = not modules
        self._entries: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator registering an object under ``name`` with optional metadata."""

        def deco(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            self._meta[name] = dict(meta)
            return obj

        return deco

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # set first: the imported modules call register() on this registry
            for module in self._modules:
                importlib.import_module(module)

    def get(self, name: str) -> T:
        """Return the entry called ``name``; an unknown name raises an error naming the closest ones."""
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, self._entries)}; "
                f"known: {', '.join(sorted(self._entries)) or 'none'}"
            ) from None

    def meta(self, name: str) -> dict[str, Any]:
        """Return the metadata given at registration for ``name``."""
        self.get(name)
        return self._meta[name]

    def names(self, *, private: bool = False) -> list[str]:
        """Registered names, sorted; names starting with ``_`` (test fixtures) only when ``private``."""
        self._load()
        return sorted(n for n in self._entries if private or not n.startswith("_"))

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, entry) pairs, sorted by name."""
        for name in self.names():
            yield name, self._entries[name]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"


# The extension points. The module lists are the only place a built-in module is named for discovery.
SIMULATORS: Registry = Registry("simulator", ("sfm.physics.simulators",))
IMPORTERS: Registry = Registry("importer", ("sfm.physics.io",))
ENCODINGS: Registry = Registry("number encoding", ("sfm.tokenize.numbers",))
TASK_FORMATS: Registry = Registry("task format", ("sfm.tasks",))
METRICS: Registry = Registry("metric", ("sfm.metrics",))
BASELINES: Registry = Registry(
    "baseline", ("sfm.harness.baselines", "sfm.harness.identification", "sfm.harness.symbolic")
)
BACKBONES: Registry = Registry("backbone", ("sfm.models.backbones",))
EVAL_TASKS: Registry = Registry("eval task", ("sfm.harness.tasks",))
FAMILIES: Registry = Registry(
    "eval family",
    (
        "sfm.harness.forecast",
        "sfm.harness.robustness",
        "sfm.harness.consistency",
        "sfm.harness.identification",
        "sfm.harness.symbolic",
    ),
)

ALL: dict[str, Registry] = {
    "simulators": SIMULATORS,
    "importers": IMPORTERS,
    "encodings": ENCODINGS,
    "task-formats": TASK_FORMATS,
    "metrics": METRICS,
    "baselines": BASELINES,
    "backbones": BACKBONES,
    "eval-tasks": EVAL_TASKS,
    "eval-families": FAMILIES,
}
