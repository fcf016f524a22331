"""Checking a component's ``params`` from an experiment file against the component's own signature.

Unknown names and values whose type does not match the annotation raise
:class:`evonas.config.ConfigError` naming ``key.param``, so a plugin's parameters
are checked like the built-ins'.

A parameter that takes one of several words is annotated ``Literal["off", "bf16", ...]``
(or a ``Union`` / list of such). YAML 1.1 reads an unquoted ``off``, ``no``, ``false`` as
``False`` and ``on``, ``yes``, ``true`` as ``True``; where a word is expected, such a boolean
is read back as the one word of its spelling group that the parameter allows
(``amp: off`` -> ``"off"``), and refused with a line that says to quote it when the
parameter allows none of them, or more than one.
"""

from __future__ import annotations

import collections.abc
import inspect
import typing
from typing import Any, Mapping, MutableMapping

from evonas.config import ConfigError, _kind

__all__ = ["check_params"]


def check_params(target: Any, params: Mapping[str, Any], source: str | None, key: str) -> dict[str, Any]:
    """Check ``params`` against the signature (and annotations) of a class or function.

    Unknown names and values of the wrong type raise :class:`ConfigError` naming ``key.param``.
    Returns the parameters to call ``target`` with: a YAML boolean where the annotation expects
    one of several words becomes that word (see the module); when ``params`` is a mutable mapping
    it is updated in place too, so the experiment (and the ``config.yaml`` written from it) holds
    the word.
    """
    out = dict(params)
    changed = False
    func = getattr(target, "__init__") if isinstance(target, type) else target
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return out
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
        hint = hints.get(name) or default_hint(accepted[name])
        if hint is None or _matches(value, hint):
            continue
        word = _word_for_bool(value, hint, source, f"{key}.{name}", name)
        if word is not _NO_WORD:
            out[name] = word
            changed = True
            continue
        raise ConfigError(source, f"{key}.{name}", f"expected {_describe(hint)}, got {_kind(value)}")
    if changed and isinstance(params, MutableMapping):
        params.update(out)
    return out


def default_hint(param: inspect.Parameter) -> Any:
    """The type an unannotated parameter's default implies (``lam=4``: an integer; ``rate=0.1``: a number;
    ``flag=False``: a boolean; ``name="x"``: a string), so a plug-in's values are checked like a built-in's;
    ``None`` when it has no default or one of another type (``None``: anything goes)."""
    if param.annotation is not inspect.Parameter.empty:
        return None  # annotated, though not resolvable: not guessed
    default = param.default
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, str):
        return str
    return None


_INTERNAL_PARAMS = {"seed", "ctx", "context", "individuals", "k"}
_SEQUENCES = (list, tuple, collections.abc.Sequence)

#: the words YAML 1.1 reads as each boolean (PyYAML's resolver, any case)
_BOOL_WORDS = {False: ("off", "no", "false"), True: ("on", "yes", "true")}
_NO_WORD = object()


def _words(hint: Any) -> list[str] | None:
    """The words a ``Literal`` (or a ``Union`` with one) allows; ``None`` where the hint takes any string."""
    origin = typing.get_origin(hint)
    if hint is str:
        return None
    if origin is typing.Literal:
        return [a for a in typing.get_args(hint) if isinstance(a, str)]
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        out: list[str] = []
        for h in typing.get_args(hint):
            sub = _words(h)
            if sub is None:
                return None
            out += sub
        return out
    return []


def _list_of(hint: Any) -> Any:
    """The element annotation of a list / tuple / sequence hint, else ``None``."""
    origin = typing.get_origin(hint)
    if origin in _SEQUENCES:
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return args[0] if args else None
    return None


def _word_for_bool(value: Any, hint: Any, source: str | None, where: str, name: str) -> Any:
    """The allowed word a YAML boolean ``value`` stands for under ``hint`` (also inside a list), else
    ``_NO_WORD`` when ``value`` is no such case; raises :class:`ConfigError` (quote it) when the hint
    expects a word but none, or several, of the boolean's spellings are allowed."""
    element = _list_of(hint)
    if element is not None and isinstance(value, (list, tuple)):
        if not any(isinstance(v, bool) for v in value):
            return _NO_WORD
        fixed = []
        for i, v in enumerate(value):
            if isinstance(v, bool) and not _matches(v, element):
                w = _word_for_bool(v, element, source, f"{where}[{i}]", name)
                if w is _NO_WORD:
                    return _NO_WORD
                v = w
            fixed.append(v)
        return fixed if _matches(fixed, hint) else _NO_WORD
    if not isinstance(value, bool):
        return _NO_WORD
    allowed = _words(hint)
    if allowed == []:  # the parameter takes no word at all: the plain type message says it
        return _NO_WORD
    spellings = _BOOL_WORDS[value]
    fits = [w for w in (allowed or []) if w.lower() in spellings]
    if len(fits) == 1:
        return fits[0]
    said = " / ".join(spellings)
    got = f"got {str(value).lower()} (YAML reads an unquoted {said} as a boolean)"
    if allowed is None:
        why = f"expected a string, {got}: if you meant a word, quote it, e.g. {name}: \"{spellings[0]}\""
    elif fits:
        why = (
            f"expected one of {', '.join(repr(a) for a in allowed)}, {got}, which could be any of "
            f"{', '.join(repr(w) for w in fits)}: quote the word you meant, e.g. {name}: \"{fits[0]}\""
        )
    else:
        why = (
            f"expected one of {', '.join(repr(a) for a in allowed)}, {got}, and none of those words is allowed: "
            f"write one of the allowed words, quoted, e.g. {name}: \"{allowed[0]}\""
        )
    raise ConfigError(source, where, why)


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
    if origin in _SEQUENCES or hint in (list, tuple):
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
        return " or ".join(_describe(h).removeprefix("one of ") for h in typing.get_args(hint))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    names = {float: "a number", int: "an integer", bool: "true or false", str: "a string", type(None): "null"}
    if hint in names:
        return names[hint]
    if origin in _SEQUENCES or hint in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if len(args) == 1 and typing.get_origin(args[0]) is typing.Literal:
            return "a list of " + ", ".join(repr(a) for a in typing.get_args(args[0]))
        plural = {float: "numbers", int: "integers", bool: "true or false", str: "strings"}
        if len(args) == 1 and args[0] in plural:  # list[str]: [1, 2] is a list, but not of these
            return f"a list of {plural[args[0]]}"
        return "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    return getattr(hint, "__name__", str(hint))
