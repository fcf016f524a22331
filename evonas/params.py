"""Checking a component's ``params`` from an experiment file against the component's own signature.

Unknown names and values whose type does not match the annotation raise
:class:`evonas.config.ConfigError` naming ``key.param``, so a plugin's parameters
are checked like the built-ins'.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any, Mapping

from evonas.config import ConfigError, _kind

__all__ = ["check_params"]


def check_params(target: Any, params: Mapping[str, Any], source: str | None, key: str) -> None:
    """Check ``params`` against the signature (and annotations) of a class or function.

    Unknown names and values of the wrong type raise :class:`ConfigError` naming ``key.param``.
    """
    func = target.__init__ if isinstance(target, type) else target
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable annotations: skip the type check, keep the name check
        hints = {}
    accepted = {
        n: p
        for n, p in sig.parameters.items()
        if n != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }
    has_var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    for name, value in params.items():
        if name not in accepted or name in _INTERNAL_PARAMS:
            if has_var_kw and name not in _INTERNAL_PARAMS:
                continue
            names = ", ".join(n for n in accepted if n not in _INTERNAL_PARAMS) or "(none)"
            raise ConfigError(source, f"{key}.{name}", f"unknown parameter; expected one of: {names}")
        hint = hints.get(name)
        if hint is not None and not _matches(value, hint):
            raise ConfigError(source, f"{key}.{name}", f"expected {_describe(hint)}, got {_kind(value)}")


_INTERNAL_PARAMS = {"seed", "ctx", "context", "individuals", "k"}


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is bool:
        return isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, typing.Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return not args or all(_matches(v, args[0]) for v in value)
    if origin in (dict, typing.Mapping) or hint is dict:
        return isinstance(value, dict)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    names = {float: "a number", int: "an integer", bool: "true or false", str: "a string", type(None): "null"}
    if hint in names:
        return names[hint]
    if origin in (list, tuple) or hint in (list, tuple):
        return "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    return getattr(hint, "__name__", str(hint))
