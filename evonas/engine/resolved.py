"""A component's parameters as a run uses them: the given values plus the defaults its signature declares.

:func:`resolved_params` reads the same signatures the config checker (:func:`evonas.params.check_params`)
does; a run writes the result to ``config.yaml`` (:func:`evonas.engine.build.resolved_experiment`) and the
evaluation cache keys a dataset by it.
"""

from __future__ import annotations

import inspect
import os
import typing
from typing import Any

from evonas.params import _INTERNAL_PARAMS, _matches

__all__ = ["NOT_PLAIN", "plain", "resolved_params"]

#: what :func:`plain` returns for a value that is not plain data
NOT_PLAIN = object()


def plain(value: Any) -> Any:
    """``value`` as YAML-safe plain data (tuples as lists), else ``NOT_PLAIN``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else NOT_PLAIN
    if isinstance(value, (list, tuple)):
        out = [plain(v) for v in value]
        return NOT_PLAIN if any(v is NOT_PLAIN for v in out) else out
    if isinstance(value, dict):
        items = {k: plain(v) for k, v in value.items()}
        ok = all(isinstance(k, str) for k in items) and all(v is not NOT_PLAIN for v in items.values())
        return items if ok else NOT_PLAIN
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return NOT_PLAIN


def resolved_params(target: Any, params: Any, skip: Any = ()) -> dict[str, Any]:
    """``params`` with every parameter ``target``'s signature declares a default for filled in, in signature order.

    The same signature the config checker (:func:`evonas.params.check_params`) reads: named parameters the
    experiment may set (not the internal ``seed``, ``ctx``, ``individuals``, ``k`` ...) whose default is plain
    data the checker accepts again. Given values win; parameters without a default, or named in ``skip``, are
    left as given. Example: ``resolved_params(DATASETS.get("digits"), {"val_fraction": 0.1})`` ->
    ``{"val_fraction": 0.1, "test_fraction": 0.2}``.
    """
    given = dict(params or {})
    func = getattr(target, "__init__") if isinstance(target, type) else target
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return given
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable annotations: defaults are still filled, unchecked
        hints = {}
    out: dict[str, Any] = {}
    for name, p in sig.parameters.items():
        if name == "self" or name in _INTERNAL_PARAMS or name in skip:
            continue
        if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        if name in given:
            out[name] = given[name]
            continue
        if p.default is p.empty:
            continue
        value = plain(p.default)
        if value is NOT_PLAIN:
            continue
        hint = hints.get(name)
        try:
            if hint is not None and not _matches(value, hint):
                continue
        except Exception:  # an annotation the checker cannot read: it does not check it either
            pass
        out[name] = value
    out.update({k: v for k, v in given.items() if k not in out})  # **kwargs parameters, as given
    return out
