"""Named components: search spaces, operators, strategies, datasets, fitness functions.

A :class:`Registry` maps a name to a component. Registering a name twice is an
error (two plugins silently shadowing each other is the bug this prevents), and
names can be listed by shell-style pattern, as in ``timm.list_models('res*')``.

Example::

    SPACES = Registry("search space")

    @SPACES.register("chain")
    class ChainSpace(SearchSpace): ...

    SPACES.get("chain")        # -> ChainSpace
    SPACES.list("ch*")         # -> ["chain"]

A built-in whose module is heavy to import (PyTorch) is declared with :meth:`Registry.lazy`: its name
is listed at once and its module imported on first :meth:`Registry.get`, so commands that train
nothing (``evonas list``, ``status``, ``best``) never import torch.
"""

from __future__ import annotations

import builtins
import fnmatch
import importlib
from typing import Any, Callable, Generic, Iterator, TypeVar

__all__ = ["Registry", "RegistryError", "Declared", "is_plugin"]

T = TypeVar("T")


class RegistryError(KeyError):
    """An unknown or repeated component name."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text.
        return str(self.args[0]) if self.args else ""


class Declared:
    """A component declared by name and module, not imported yet (see :meth:`Registry.lazy`); it carries the
    attributes listing needs (``spaces`` of an operator) and the module that will register it."""

    def __init__(self, name: str, module: str, info: dict[str, Any]) -> None:
        self.name, self.__module__ = name, module
        for key, value in info.items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        return f"<declared {self.name} in {self.__module__}>"


class Registry(Generic[T]):
    """A name -> component mapping that refuses repeated names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name`` (default: its ``name`` attribute)."""

        def decorator(obj: T) -> T:
            key = name or getattr(obj, "name", None) or getattr(obj, "__name__")
            self.add(key, obj)
            return obj

        return decorator

    def lazy(self, name: str, module: str, **info: Any) -> None:
        """Declare ``name``, registered by importing ``module`` when first needed; ``info``: attributes that
        listing reads without importing (e.g. ``spaces=("chain",)``)."""
        if name not in self._items:
            self._items[name] = Declared(name, module, info)  # type: ignore[assignment]

    def add(self, name: str, obj: T) -> None:
        if not isinstance(name, str) or not name:
            raise RegistryError(f"a {self.kind} needs a non-empty string name, got {name!r}")
        declared = self._items.get(name)
        if isinstance(declared, Declared) and getattr(obj, "__module__", None) != declared.__module__:
            # another module takes a declared built-in's name: the built-in registers first, so this is refused below
            try:
                importlib.import_module(declared.__module__)
            except Exception as exc:
                raise RegistryError(f"{self.kind} '{name}' is the name of a built-in ({declared.__module__}, which "
                                    f"failed to import: {type(exc).__name__}: {exc})") from None  # fmt: skip
        if isinstance(self._items.get(name), Declared):  # the declared module registers the real one
            del self._items[name]
        if name in self._items and self._items[name] is not obj and not _redefined(self._items[name], obj):
            raise RegistryError(f"{self.kind} '{name}' is already registered (by {_origin(self._items[name])})")
        self._items[name] = obj
        if hasattr(obj, "__dict__") and isinstance(obj, type):
            # Components know their own registry name: a subclass of a registered class registered under a name of
            # its own is that component (its space's keys, best.json, messages), not its parent
            if obj.__dict__.get("name") in (None, ""):
                obj.name = name  # type: ignore[attr-defined]

    def get(self, name: str) -> T:
        try:
            obj = self._items[name]
        except KeyError:
            raise RegistryError(
                f"unknown {self.kind} '{name}'; expected one of: {', '.join(sorted(self._items)) or '(none registered)'}"
            ) from None
        if isinstance(obj, Declared):
            importlib.import_module(obj.__module__)
            obj = self._items[name]
            if isinstance(obj, Declared):
                raise RegistryError(f"{self.kind} '{name}': importing {obj.__module__} did not register it")
        return obj

    def peek(self, name: str) -> Any:
        """The component, or its :class:`Declared` stand-in if its module is not imported yet (no import)."""
        return self._items[name]

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a shell-style ``pattern``."""
        return sorted(n for n in self._items if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> builtins.list[tuple[str, T]]:
        return [(name, self.get(name)) for name in sorted(self._items)]


def _redefined(old: object, new: object) -> bool:
    """Whether ``new`` is ``old`` defined again: a plug-in class or function of the same module and name (a notebook
    cell run again, a module reloaded), which takes the name over as Python's own names are rebound."""
    same_kind = callable(old) and callable(new) and isinstance(old, type) == isinstance(new, type)
    return same_kind and is_plugin(new) and _origin(old) == _origin(new)


def _origin(obj: object) -> str:
    mod = getattr(obj, "__module__", "?")
    qual = getattr(obj, "__qualname__", type(obj).__name__)
    return f"{mod}.{qual}"


def is_plugin(target: Any) -> bool:
    """Whether a component (class or function) is defined outside evonas: a plug-in's."""
    module = getattr(target, "__module__", "") or ""
    return module != "evonas" and not module.startswith("evonas.")
