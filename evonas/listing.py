"""What ``evonas list`` prints: the registered components, and with ``--params`` each one's parameters.

Parameters are read from the same signatures (and ``Literal`` annotations) the experiment checker
(:func:`evonas.params.check_params`) reads, and each is described by the sentence of the component's
docstring that names it, so the listing and the checker cannot disagree.

Example::

    print(format_listing(["fitness"], params=True))
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from typing import Any, Sequence

from evonas.checks import one_line

__all__ = ["KINDS", "Param", "component_params", "format_listing", "registries"]

KINDS = (
    "spaces", "mutations", "crossovers", "strategies", "selections", "datasets", "fitness", "pruners", "loggers",
    "backends",
)  # fmt: skip

#: the singular of each kind (``evonas list strategy`` is ``evonas list strategies``), as experiment files name them
SINGULAR = {"space": "spaces", "mutation": "mutations", "crossover": "crossovers", "strategy": "strategies",
            "selection": "selections", "dataset": "datasets", "fitnesses": "fitness", "pruner": "pruners",
            "logger": "loggers", "backend": "backends"}  # fmt: skip


def kind_name(word: str) -> str:
    """``word`` as one of :data:`KINDS`: the singular too, any case."""
    word = word.strip().lower()
    return SINGULAR.get(word, word)


def registries() -> dict[str, Any]:
    """The registry of each kind of component, by the name ``evonas list`` uses."""
    from evonas.datasets import DATASETS
    from evonas.engine.backends import BACKENDS
    from evonas.evolution import SELECTIONS
    from evonas.fitness import FITNESSES
    from evonas.loggers import LOGGERS
    from evonas.operators import CROSSOVERS, MUTATIONS
    from evonas.pruners import PRUNERS
    from evonas.spaces import SPACES
    from evonas.strategies import STRATEGIES

    return {
        "spaces": SPACES, "mutations": MUTATIONS, "crossovers": CROSSOVERS, "strategies": STRATEGIES,
        "selections": SELECTIONS, "datasets": DATASETS, "fitness": FITNESSES, "pruners": PRUNERS, "loggers": LOGGERS,
        "backends": BACKENDS,
    }  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    #: the type as the checker describes it ("an integer", "one of 'auto', 'off'")
    type: str
    #: the default, as written in an experiment file ("" when the parameter is required)
    default: str
    #: the words a ``Literal`` parameter allows (empty for any value of its type)
    choices: tuple[str, ...]
    #: the docstring's sentence about it ("" when it has none)
    doc: str


def component_params(obj: Any) -> list[Param]:
    """The parameters an experiment file may give ``obj`` (a class or function), in signature order."""
    from evonas.params import _INTERNAL_PARAMS, _describe, _words, default_hint

    func = getattr(obj, "__init__") if isinstance(obj, type) else obj
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        hints = {}
    doc = inspect.getdoc(obj) or ""
    init = getattr(obj, "__init__", None) if isinstance(obj, type) else None
    if init is not None and init.__doc__ and init is not object.__init__:
        doc += "\n" + (inspect.getdoc(init) or "")
    bases = [b for b in obj.__mro__[1:] if b is not object] if isinstance(obj, type) else []
    inherited = "\n\n".join(b.__doc__ or "" for b in bases)  # for parameters a subclass forwards to its base
    out = []
    for name, p in sig.parameters.items():
        if name == "self" or name in _INTERNAL_PARAMS or p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        hint = hints.get(name) or default_hint(p)
        words = tuple(_words(hint) or ()) if hint is not None else ()
        out.append(
            Param(
                name=name,
                type=_describe(hint) if hint is not None else "any value",
                default="" if p.default is inspect.Parameter.empty else _yaml(p.default),
                choices=words,
                doc=_param_doc((doc, inherited), name),
            )
        )
    return out


def _space_params(name: str, obj: Any = None) -> list[Param]:
    """A space's parameters where its constructor takes ``**params``: the keys of its declaration file
    (``genomes/<name>.yaml``) with their values there as the defaults, described by the class ``obj``'s docstring
    (or a base class's)."""
    from evonas.spaces import load_space_params

    try:
        declared = load_space_params(name)
    except (OSError, ValueError):
        return []
    kinds = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list"}
    docs = [inspect.getdoc(c) or "" for c in (obj.__mro__ if isinstance(obj, type) else ()) if c is not object]
    return [Param(k, kinds.get(type(v), "any value"), _yaml(v), (), _param_doc(docs, k)) for k, v in declared.items()]


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def _entry(doc: str, name: str) -> str:
    """``name``'s own entry in ``doc``: its ``:param name:`` field, or its item of an ``Args:`` / ``Parameters:``
    section; ``""`` if it has none."""
    field = re.search(rf":param {re.escape(name)}:(.*?)(?=:param |:returns?:|:rtype:|$)", " ".join(doc.split()))
    if field:
        return one_line(field.group(1).strip(), 600)
    item = _section_item(doc, name)
    return one_line(item, 600) if item else ""


def _param_doc(docs: Sequence[str], name: str) -> str:
    """What ``docs`` (a class's docstring, then its bases') say about parameter ``name``: its own entry in any of them
    (:func:`_entry`) before a prose sentence that happens to name it (:func:`_sentence`)."""
    for find in (_entry, _sentence):
        for doc in docs:
            text = find(doc, name)
            if text:
                return _plain(text)
    return ""


def _plain(text: str) -> str:
    """Docstring markup as a terminal reads it: ``x`` and :role:`x` become `x` (:role:`~a.b` becomes `b`)."""
    def role(m: re.Match[str]) -> str:
        target = m.group(1)
        return f"`{target[1:].rsplit('.', 1)[-1]}`" if target.startswith("~") else f"`{target}`"

    return re.sub(r"``(.+?)``", r"`\1`", re.sub(r":[a-z]+:`([^`]+)`", role, text))


def _sentence(doc: str, name: str) -> str:
    """The first prose sentence of ``doc`` naming ``name`` (as ``name`` in backquotes, or ``name:``); examples
    (``::`` blocks) are left out."""
    prose = []
    code = False
    for para in re.split(r"\n\s*\n", doc):
        if code and para.startswith((" ", "\t")):
            continue
        code = para.rstrip().endswith("::")
        prose.append(para.rstrip().removesuffix("::") if not code else "")
    text = " ".join(" ".join(prose).split())
    for sentence in re.split(r"(?<=[.;])\s+(?=[A-Z`(])", text):
        if re.search(rf"``{re.escape(name)}``|\b{re.escape(name)}\b:", sentence):
            return one_line(sentence, 600)
    return ""


def _section_item(doc: str, name: str) -> str:
    """``name``'s entry in a Google-style ``Args:`` / ``Parameters:`` section (``name: text`` or ``name (type): text``,
    continued on more-indented lines), or ``""``."""
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if line.strip() not in ("Args:", "Arguments:", "Parameters:", "Params:"):
            continue
        head = len(line) - len(line.lstrip())
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > head):
            entry = re.match(rf"\s*\*{{0,2}}{re.escape(name)}\*{{0,2}}(?:\s*\([^)]*\))?:\s*(.*)", lines[j])
            if entry:
                indent = len(lines[j]) - len(lines[j].lstrip())
                text = [entry.group(1)]
                j += 1
                while j < len(lines) and lines[j].strip() and len(lines[j]) - len(lines[j].lstrip()) > indent:
                    text.append(lines[j].strip())
                    j += 1
                return " ".join(" ".join(text).split())
            j += 1
    return ""


def _origin(obj: Any) -> str:
    module = getattr(obj, "__module__", "") or ""
    return "" if module.split(".")[0] in ("evonas", "deap", "functools") else module


def format_listing(kinds: Sequence[str], pattern: str = "*", params: bool = False) -> str:
    """The text of ``evonas list``: one line per kind (names, the spaces an operator works on, ``[module]`` for
    plug-ins); with ``params``, one block per component with its parameters."""
    regs = registries()
    lines = []
    for kind in kinds:
        reg = regs[kind]
        entries = []
        for name in reg.list(pattern):
            obj = reg.get(name) if params else reg.peek(name)  # names alone import nothing (no torch)
            spaces = getattr(obj, "spaces", ())
            label = f"{name} ({', '.join(spaces)})" if spaces else name
            origin = _origin(obj)
            entries.append((name, obj, f"{label} [{origin}]" if origin else label))
        own = _own_selections() if kind == "selections" and pattern == "*" else []
        if not params:
            lines.append(f"{kind}: {', '.join([e[2] for e in entries] + own) or '-'}")
            continue
        lines.append(f"{kind}:")
        for name, obj, label in entries:
            lines.append(f"  {label}")
            told: set[str] = set()
            found = component_params(obj) or (_space_params(name, obj) if kind == "spaces" else [])
            for p in found:
                default = f" = {p.default}" if p.default else " (required)"
                lines.append(f"    {p.name}: {p.type}{default}")
                if p.doc and p.doc not in told:  # a sentence about several parameters is shown under the first
                    told.add(p.doc)
                    lines.append(f"        {p.doc}")
            if not found:
                lines.append("    (no parameters)")
        lines += [f"  {entry}\n    (a value of the strategy's parameter, not of the experiment's selection: key)" for entry in own]
    return "\n".join(lines)


def _own_selections() -> list[str]:
    """The selections of strategies that choose their own (``multi_objective``), by their ``selection`` parameter:
    ``nsga3 (strategy nsga2: params.selection)``, for each that the experiment's ``selection:`` does not offer."""
    from evonas.evolution import SELECTIONS
    from evonas.strategies import STRATEGIES

    out = []
    for name in STRATEGIES.list():
        cls = STRATEGIES.get(name)
        if not getattr(cls, "multi_objective", False):  # a Declared stand-in has no class attributes
            continue
        for p in component_params(cls):
            if p.name == "selection":
                out += [f"{w} (strategy {name}: params.selection)" for w in p.choices if w not in SELECTIONS]
    return out
