"""Experiment files: YAML -> a validated, frozen :class:`Experiment`.

Every malformed file gets one :class:`ConfigError` whose text names the file,
the key (or line) and what was expected, e.g.::

    experiments/x.yaml: strategy.params.generations: expected an integer, got 'ten'

Components are written ``{name: ..., params: {...}}``; their ``params`` are
checked against the component's own signature, so a plugin's parameters are
validated like the built-ins'. ``--set key=value`` overrides are applied to the
raw mapping (dotted keys, list indices as numbers) before validation.

Every YAML text evonas reads goes through :func:`safe_load_yaml`: ``yaml.SafeLoader`` (no
``!!python`` tags) with limits on the size of the text, the nesting depth, the number of aliases
and the number of values the document expands to, so a hostile file (a "billion laughs" of nested
aliases, ten thousand ``[``) gets one :class:`ConfigError` line instead of a hang or a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from evonas.constraints import Constraint, parse_constraints

__all__ = [
    "ConfigError",
    "Component",
    "OperatorSpec",
    "Objective",
    "Experiment",
    "load_experiment",
    "parse_experiment",
    "apply_overrides",
    "safe_load_yaml",
    "TOP_LEVEL_KEYS",
    "YAML_MAX_BYTES",
    "YAML_MAX_DEPTH",
    "YAML_MAX_ALIASES",
    "YAML_MAX_NODES",
    "NAME_MAX_CHARS",
]


class ConfigError(ValueError):
    """A bad experiment file: ``file: key: what was expected``."""

    def __init__(self, file: str | os.PathLike | None, key: str | None, message: str) -> None:
        # one line, of a readable length, whatever a hostile file put into a key or a value
        key = _one_line(key, 200) if key else key
        message = _one_line(message, 2000)
        self.file, self.key, self.message = (str(file) if file else None), key, message
        parts = [p for p in (self.file, key) if p]
        super().__init__(": ".join([*parts, message]))


@dataclasses.dataclass(frozen=True)
class Component:
    """A registered component by ``name`` with keyword ``params``."""

    name: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class OperatorSpec(Component):
    """A variation operator and its relative probability of being picked."""

    prob: float = 1.0


@dataclasses.dataclass(frozen=True)
class Objective:
    """A metric to optimise; ``direction`` is ``max`` or ``min`` (DEAP weight +1 / -1)."""

    metric: str
    direction: str = "max"

    @property
    def weight(self) -> float:
        return 1.0 if self.direction == "max" else -1.0


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A whole experiment, validated. ``source`` is the file it came from (for messages)."""

    name: str
    seed: int
    space: Component
    space_file: str | None
    dataset: Component
    fitness: Component
    strategy: Component
    selection: Component
    mutations: tuple[OperatorSpec, ...]
    crossovers: tuple[OperatorSpec, ...]
    objectives: tuple[Objective, ...]
    initial_population: tuple[str, ...] = ()
    plugins: tuple[str, ...] = ()
    budget: int | None = None
    workers: int | str = "auto"
    timeout: float | None = None
    backend: Component = dataclasses.field(default_factory=lambda: Component("local", {}))
    cache: bool = True
    #: the first fault of a variation operator (it raised, or gave no valid genome) stops the run
    strict: bool = False
    source: str | None = None
    #: hard limits on metrics (see :mod:`evonas.constraints`)
    constraints: tuple[Constraint, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The resolved experiment as plain data (written to ``config.yaml`` in the run folder)."""

        def comp(c: Component) -> dict[str, Any]:
            return {"name": c.name, "params": dict(c.params)}

        def op(o: OperatorSpec) -> dict[str, Any]:
            return {"name": o.name, "prob": o.prob, "params": dict(o.params)}

        space = comp(self.space)
        if self.space_file:
            space["file"] = self.space_file
        return {
            "name": self.name,
            "seed": self.seed,
            "space": space,
            "dataset": comp(self.dataset),
            "fitness": comp(self.fitness),
            "strategy": comp(self.strategy),
            "selection": comp(self.selection),
            "mutations": [op(o) for o in self.mutations],
            "crossovers": [op(o) for o in self.crossovers],
            "objectives": [{"metric": o.metric, "direction": o.direction} for o in self.objectives],
            "initial_population": list(self.initial_population),
            "plugins": list(self.plugins),
            "budget": self.budget,
            "workers": self.workers,
            "timeout": self.timeout,
            "backend": comp(self.backend),
            "cache": self.cache,
            "strict": self.strict,
            **({"constraints": [str(c) for c in self.constraints]} if self.constraints else {}),
        }

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(o.weight for o in self.objectives)


TOP_LEVEL_KEYS = {
    "name": "a run name (string)",
    "seed": "the run's integer seed",
    "space": "the search space {name, params, file}",
    "dataset": "the dataset {name, params}",
    "fitness": "the fitness function {name, params}",
    "strategy": "the search strategy {name, params}",
    "selection": "DEAP selection {name, params}",
    "mutations": "a list of {name, prob, params}",
    "crossovers": "a list of {name, prob, params}",
    "objectives": "a list of {metric, direction}",
    "initial_population": "a list of saved genome files",
    "plugins": "a list of module names to import first",
    "budget": "the most evaluations to run",
    "workers": "'auto' or a number of worker processes (0: in-process)",
    "timeout": "seconds one evaluation may take",
    "backend": "where evaluations run {name: local | ray, params}",
    "cache": "reuse evaluations done in earlier runs (true or false)",
    "strict": "stop at the first fault of a mutation or crossover operator (true or false; default false: the "
    "child is made by another operator and the fault is counted and reported)",
    "constraints": "a list of limits such as 'params <= 100000'",
}


# -- bounded YAML --------------------------------------------------------------------------------

#: the longest YAML text read (bytes, UTF-8); experiment files are a few kilobytes
YAML_MAX_BYTES = 1_000_000
#: the deepest nesting of lists and mappings
YAML_MAX_DEPTH = 50
#: the most aliases (``*name``) in one text
YAML_MAX_ALIASES = 100
#: the most values one text may expand to, an alias counting as a copy of what it refers to
YAML_MAX_NODES = 100_000
#: the longest run name (it names the run folder ``runs/<name>-<time>``)
NAME_MAX_CHARS = 100


class _YAMLLimitError(yaml.MarkedYAMLError):
    """A limit of :func:`safe_load_yaml` was reached (raised inside the scanner, composer or constructor)."""

    def __init__(self, message: str, mark: Any = None) -> None:
        super().__init__(problem=message, problem_mark=mark)


class _LimitConfigError(ConfigError):
    """The :class:`ConfigError` of a reached limit (``--set`` falls back to a string only on invalid YAML)."""


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that counts while it composes: depth, aliases and the expanded size.

    The composer returns the same node for every alias of an anchor, so the document stays small
    in memory, but everything that walks the loaded data (copying, validating, writing
    ``config.yaml``) visits the anchored value once per alias: an alias counts as the size of its
    anchored value, computed once per anchor.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._aliases = 0
        self._sizes: dict[str, int | None] = {}  # anchor -> expanded size; None while being composed

    def _count(self, n: int, mark: Any, alias: str | None = None) -> None:
        self._nodes += n
        if self._nodes > YAML_MAX_NODES:
            if alias:
                raise _YAMLLimitError(
                    f"alias *{alias} expands to {n:,} values, the document to more than {YAML_MAX_NODES:,} "
                    "(node limit; an alias counts as a copy of its value)", mark
                )
            raise _YAMLLimitError(f"more than {YAML_MAX_NODES:,} values (node limit)", mark)

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        # the scanner keeps a possible key per open '[' / '{': bound them before the composer sees them
        if self.flow_level >= YAML_MAX_DEPTH:
            raise _YAMLLimitError(f"nested more than {YAML_MAX_DEPTH} levels deep (depth limit)", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            anchor = event.anchor
            self._aliases += 1
            if self._aliases > YAML_MAX_ALIASES:
                raise _YAMLLimitError(f"more than {YAML_MAX_ALIASES} aliases (alias limit; at *{anchor})", event.start_mark)
            if anchor in self._sizes:
                size = self._sizes[anchor]
                if size is None:
                    raise _YAMLLimitError(f"alias *{anchor} is inside the value it refers to (recursive alias)", event.start_mark)
                self._count(size, event.start_mark, alias=anchor)
            return super().compose_node(parent, index)  # an undefined alias: the composer's own error
        event = self.peek_event()
        collection = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if collection:
            self._depth += 1
            if self._depth > YAML_MAX_DEPTH:
                raise _YAMLLimitError(f"nested more than {YAML_MAX_DEPTH} levels deep (depth limit)", event.start_mark)
        anchor = event.anchor
        if anchor is not None and anchor not in self._sizes:
            self._sizes[anchor] = None
        self._count(1, event.start_mark)
        before = self._nodes
        node = super().compose_node(parent, index)
        if anchor is not None and self._sizes.get(anchor) is None:
            self._sizes[anchor] = self._nodes - before + 1
        if collection:
            self._depth -= 1
        return node

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        # int('1' * 5000) (Python's digit limit), a timestamp such as 2001-13-45: ValueError, not YAMLError
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as exc:
            problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "integer string conversion" in problem:
                problem = "an integer of more than 4300 digits"
            raise yaml.constructor.ConstructorError(None, None, f"cannot read the value: {problem}", node.start_mark) from None


def safe_load_yaml(text: str, source: str | os.PathLike | None, key: str | None = None) -> Any:
    """Parse one YAML document with ``yaml.SafeLoader`` and limits; raises :class:`ConfigError`.

    Limits: :data:`YAML_MAX_BYTES` of text, :data:`YAML_MAX_DEPTH` levels of nesting,
    :data:`YAML_MAX_ALIASES` aliases and :data:`YAML_MAX_NODES` values once aliases are expanded.
    The error names ``source`` and ``key`` (default: the line and column) and, for a limit, which.
    ``!!python`` tags are refused like any tag SafeLoader does not know.
    """
    if not isinstance(text, str):
        raise ConfigError(source, key, f"expected YAML text, got {type(text).__name__}")
    size = len(text.encode("utf-8", "surrogatepass")) if len(text) * 4 > YAML_MAX_BYTES else len(text)
    if size > YAML_MAX_BYTES:
        raise _LimitConfigError(source, key, f"{size:,} bytes of YAML, more than {YAML_MAX_BYTES:,} (size limit)")
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _YAMLLimitError as exc:
        raise _LimitConfigError(source, key or _where(exc), exc.problem) from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(source, key or _where(exc), f"invalid YAML ({problem})") from None
    except RecursionError:  # not expected below the depth limit; never a traceback all the same
        raise _LimitConfigError(source, key, f"nested too deeply to read (depth limit {YAML_MAX_DEPTH})") from None
    finally:
        loader.dispose()


def _where(exc: BaseException) -> str | None:
    mark = getattr(exc, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else None


# -- reading -----------------------------------------------------------------------------------


def load_experiment(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> Experiment:
    """Read, override and validate an experiment file. Raises :class:`ConfigError`."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(path, None, "no such experiment file")
    if path.is_dir():
        raise ConfigError(path, None, "expected an experiment YAML file, got a folder")
    try:
        with open(path, "rb") as f:  # never more than the limit: a huge file (or /dev/zero) is not read whole
            data = f.read(YAML_MAX_BYTES + 1)
            size = max(len(data), os.fstat(f.fileno()).st_size)
        if len(data) > YAML_MAX_BYTES:
            raise _LimitConfigError(path, None, f"{size:,} bytes of YAML, more than {YAML_MAX_BYTES:,} (size limit)")
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot read the file ({exc})") from None
    raw = safe_load_yaml(text, path)
    raw = {} if raw is None else raw
    raw = apply_overrides(raw, overrides, path)
    return parse_experiment(raw, source=str(path))


def apply_overrides(raw: Any, overrides: list[str] | tuple[str, ...], source: str | os.PathLike | None = None) -> Any:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a copy of ``raw``.

    A value that is not valid YAML is kept as the string; one that breaks a limit of
    :func:`safe_load_yaml` raises :class:`ConfigError` naming ``--set key``.
    """
    import copy

    _check_tree(raw, source)  # deepcopy recurses: refuse a self-containing or too deep mapping first
    raw = copy.deepcopy(raw)
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(source, "--set", f"expected key=value, got {_kind(item)}")
        dotted, _, text = item.partition("=")
        keys = [k.strip() for k in dotted.strip().split(".")]
        if not all(keys):
            raise ConfigError(source, "--set", f"expected a dotted key such as strategy.params.generations, got {dotted!r}")
        if len(keys) > YAML_MAX_DEPTH:
            raise ConfigError(
                source, "--set", f"expected a dotted key of at most {YAML_MAX_DEPTH} parts (depth limit), got {len(keys)}"
            )
        try:
            value = safe_load_yaml(text, source, key=f"--set {dotted.strip()}") if text.strip() else None
        except _LimitConfigError:
            raise
        except ConfigError:  # not YAML: the text itself (e.g. --set name=a:b)
            value = text
        node = raw
        if not isinstance(node, dict):
            raise ConfigError(source, None, f"expected a mapping of experiment keys at the top level, got {_kind(node)}")
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            where = ".".join(keys[: i + 1])
            if isinstance(node, list):
                index = int(key) if key.isascii() and key.isdigit() and len(key) < 10 else None
                if index is None or index >= len(node):
                    raise ConfigError(source, where, f"--set: expected a list index below {len(node)}")
                if last:
                    node[index] = value
                else:
                    node = node[index]
            elif isinstance(node, dict):
                if last:
                    node[key] = value
                else:
                    if node.get(key) is None:  # `strategy:` left empty: --set strategy.name=ga fills it
                        node[key] = {}
                    elif i == 0 and key in _COMPONENT_KEYS and isinstance(node[key], str):
                        node[key] = {"name": node[key]}  # `space: mlp`: --set space.params.x=1 reaches inside
                    node = node[key]
            else:
                raise ConfigError(source, where, "--set: cannot set a key inside a scalar value")
    return raw


# -- validation --------------------------------------------------------------------------------

#: the top-level keys that name a component (``{name, params}``, or the bare name)
_COMPONENT_KEYS = ("space", "dataset", "fitness", "strategy", "selection", "backend")

_DEFAULTS: dict[str, Any] = {
    "dataset": {"name": "digits"},
    "fitness": {"name": "train"},
    "strategy": {"name": "ga"},
    "selection": {"name": "tournament", "params": {"tournsize": 3}},
    "objectives": [{"metric": "val_acc", "direction": "max"}],
    "backend": {"name": "local"},
}


def parse_experiment(raw: Any, source: str | None = None) -> Experiment:
    """Validate the shape and types of an experiment mapping (component names are checked by the builder)."""
    if not isinstance(raw, dict):
        raise ConfigError(source, None, f"expected a mapping of experiment keys at the top level, got {_kind(raw)}")
    _check_tree(raw, source)
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(source, _key_text(key), f"unknown key; expected one of: {', '.join(TOP_LEVEL_KEYS)}")
    if "space" not in raw:
        raise ConfigError(source, "space", "missing; expected the search space, e.g. {name: chain}")

    def get(key: str) -> Any:
        return raw[key] if key in raw and raw[key] is not None else _DEFAULTS.get(key)

    name = raw.get("name")
    if name is None or name == "":
        name = _default_name(source)
    elif not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(source, "name", f"{_NAME_EXPECTED}, got {_kind(name)}")
    seed = get("seed") if "seed" in raw else 0
    _expect_int(seed, source, "seed", minimum=0)

    space = _component(get("space"), source, "space", extra=("file",))
    space_file = get("space").get("file") if isinstance(get("space"), dict) else None
    if space_file is not None and not isinstance(space_file, str):
        raise ConfigError(source, "space.file", f"expected a path to a space declaration file, got {_kind(space_file)}")
    dataset = _component(get("dataset"), source, "dataset")
    fitness = _component(get("fitness"), source, "fitness")
    strategy = _component(get("strategy"), source, "strategy")
    selection = _component(get("selection"), source, "selection")
    mutations = _operators(raw.get("mutations"), source, "mutations")
    crossovers = _operators(raw.get("crossovers"), source, "crossovers")
    objectives = _objectives(get("objectives"), source)
    initial = _str_list(raw.get("initial_population"), source, "initial_population")
    plugins = _str_list(raw.get("plugins"), source, "plugins")
    budget = raw.get("budget")
    if budget is not None:
        _expect_int(budget, source, "budget", minimum=1)
    workers = raw.get("workers", "auto")
    workers = "auto" if workers is None else workers
    if workers != "auto":
        _expect_int(workers, source, "workers", minimum=0, what="'auto' or an integer >= 0")
    timeout = raw.get("timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigError(source, "timeout", f"expected a number of seconds > 0, got {_kind(timeout, bare=True)}")
        if not timeout <= _MAX_TIMEOUT:
            raise ConfigError(
                source, "timeout", f"expected a finite number of seconds up to {_MAX_TIMEOUT:g}, got {_kind(timeout, bare=True)}"
            )
        timeout = float(timeout)
    backend = _component(get("backend"), source, "backend")
    cache = raw.get("cache", True)
    if not isinstance(cache, bool):
        raise ConfigError(source, "cache", f"expected true or false, got {_kind(cache)}")
    strict = raw.get("strict", False)
    if not isinstance(strict, bool):
        raise ConfigError(source, "strict", f"expected true or false, got {_kind(strict)}")
    try:
        constraints = parse_constraints(raw.get("constraints"))
    except ValueError as exc:
        index, sep, message = str(exc).partition("]: ")
        key = f"constraints{index}]" if sep and index.startswith("[") else "constraints"
        raise ConfigError(source, key, message if sep else str(exc)) from None
    return Experiment(
        name=name,
        seed=int(seed),
        space=space,
        space_file=space_file,
        dataset=dataset,
        fitness=fitness,
        strategy=strategy,
        selection=selection,
        mutations=mutations,
        crossovers=crossovers,
        objectives=objectives,
        initial_population=initial,
        plugins=plugins,
        budget=budget,
        workers=workers,
        timeout=timeout,
        backend=backend,
        cache=cache,
        strict=strict,
        source=source,
        constraints=constraints,
    )


_MAX_INT = 2**63 - 1  # seed, budget, workers: what SQLite and the random generators take
_MAX_TIMEOUT = 1e9  # seconds (about 31 years); threading refuses much more
_MAX_NUMBER_BITS = 1024  # an integer anywhere in the file: within the range of a float (about 1.8e308)

_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,%d}" % (NAME_MAX_CHARS - 1))
_NAME_EXPECTED = (
    f"expected a run name without slashes: 1 to {NAME_MAX_CHARS} letters, digits, '-', '_' or '.', "
    "not starting with '.' (it names the run folder)"
)


def _default_name(source: str | None) -> str:
    """The run name of a file without ``name:``: its stem, made safe for a folder name."""
    stem = Path(source).stem if source else ""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).lstrip(".")[:NAME_MAX_CHARS] or "experiment"


def _one_line(text: Any, limit: int) -> str:
    text = " ".join(str(text).splitlines())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short_repr(value: Any, limit: int = 60) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of {int(value.bit_length() * 0.30103) + 1} digits"
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a value of any type, from any file
        text = f"<{type(value).__name__}>"
    return _one_line(text, limit)


def _key_text(key: Any) -> str:
    """A mapping key as it is printed in messages (``a.b``): plain names as they are, anything else as repr."""
    if isinstance(key, str) and key and key.isprintable() and len(key) <= 60:
        return key
    return _short_repr(key)


def _kind(value: Any, bare: bool = False) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return repr(value)
    if type(value) is dict:
        return "a mapping"
    if type(value) is list:
        return "a list"
    if isinstance(value, str):
        return f"the string {_short_repr(value)}"
    if isinstance(value, int) and value.bit_length() > 200:
        return _short_repr(value)
    return _short_repr(value) if bare else f"{type(value).__name__} {_short_repr(value)}"


def _expect_int(value: Any, source: str | None, key: str, *, minimum: int | None = None, what: str | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        want = what or ("an integer" + (f" >= {minimum}" if minimum is not None else ""))
        raise ConfigError(source, key, f"expected {want}, got {_kind(value)}")
    if value > _MAX_INT:
        raise ConfigError(source, key, f"expected an integer up to {_MAX_INT} (2**63 - 1), got {_kind(value)}")


def _check_tree(raw: Any, source: str | os.PathLike | None) -> None:
    """Refuse data no experiment needs and that would crash or hang what walks it later.

    The limits of :func:`safe_load_yaml` (nesting depth, values counting shared ones once per
    place, so a mapping that contains itself is too deep) and integers within a float's range;
    walked without recursion.
    """
    count = 1
    stack: list[tuple[Any, int, Any, Any]] = [(raw, 1, None, None)]  # value, depth, parent entry, key

    def path(entry: Any) -> str | None:
        parts = []
        while entry is not None and entry[2] is not None:
            key = entry[3]
            parts.append(f"[{key}]" if isinstance(key, int) and isinstance(entry[2][0], (list, tuple)) else f".{_key_text(key)}")
            entry = entry[2]
        return "".join(reversed(parts)).lstrip(".") or None

    while stack:
        entry = stack.pop()
        value, depth = entry[0], entry[1]
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _MAX_NUMBER_BITS:
            raise ConfigError(source, path(entry), f"expected a number within the range of a float (1.8e308), got {_kind(value)}")
        if isinstance(value, (dict, list, tuple, set, frozenset)):
            if depth > YAML_MAX_DEPTH:
                raise _LimitConfigError(
                    source, path(entry), f"nested more than {YAML_MAX_DEPTH} levels deep (depth limit; or it contains itself)"
                )
            count += len(value)  # counted before they are pushed: a long list costs nothing
            if count > YAML_MAX_NODES:
                raise _LimitConfigError(
                    source, path(entry), f"more than {YAML_MAX_NODES:,} values in the experiment (node limit)"
                )
            if isinstance(value, dict):
                for k, v in value.items():
                    if isinstance(k, int) and not isinstance(k, bool) and k.bit_length() > _MAX_NUMBER_BITS:
                        raise ConfigError(
                            source, path(entry), f"expected keys within the range of a float (1.8e308), got {_kind(k)}"
                        )
                    stack.append((v, depth + 1, entry, k))
            else:
                stack.extend([(v, depth + 1, entry, i) for i, v in enumerate(value)])


def _component(value: Any, source: str | None, key: str, extra: tuple[str, ...] = ()) -> Component:
    if isinstance(value, str):
        return Component(value, {})
    if not isinstance(value, dict):
        raise ConfigError(source, key, f"expected {{name: ..., params: {{...}}}} or a name, got {_kind(value)}")
    allowed = ("name", "params", *extra)
    for k in value:
        if k not in allowed:
            raise ConfigError(source, f"{key}.{_key_text(k)}", f"unknown key; expected one of: {', '.join(allowed)}")
    name = value.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(source, f"{key}.name", f"expected a component name, got {_kind(name)}")
    params = value.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(source, f"{key}.params", f"expected a mapping of parameters, got {_kind(params)}")
    return Component(name, dict(params))


def _operators(value: Any, source: str | None, key: str) -> tuple[OperatorSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(source, key, f"expected a list of {{name, prob, params}}, got {_kind(value)}")
    out = []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            raise ConfigError(source, where, f"expected {{name, prob, params}}, got {_kind(item)}")
        prob = item.get("prob", 1.0)
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1e9:
            raise ConfigError(source, f"{where}.prob", f"expected a number >= 0, got {_kind(prob)}")
        comp = _component({k: v for k, v in item.items() if k != "prob"}, source, where)
        out.append(OperatorSpec(comp.name, comp.params, float(prob)))
    if out and sum(o.prob for o in out) <= 0:
        raise ConfigError(source, key, "expected at least one operator with prob > 0")
    return tuple(out)


def _objectives(value: Any, source: str | None) -> tuple[Objective, ...]:
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(source, "objectives", f"expected a non-empty list of {{metric, direction}}, got {_kind(value)}")
    out = []
    for i, item in enumerate(value):
        where = f"objectives[{i}]"
        if isinstance(item, str):
            item = {"metric": item}
        if not isinstance(item, dict):
            raise ConfigError(source, where, f"expected {{metric, direction}}, got {_kind(item)}")
        for k in item:
            if k not in ("metric", "direction"):
                raise ConfigError(source, f"{where}.{_key_text(k)}", "unknown key; expected metric or direction")
        metric = item.get("metric")
        if not isinstance(metric, str) or not metric:
            raise ConfigError(source, f"{where}.metric", f"expected a metric name such as val_acc, got {_kind(metric)}")
        direction = item.get("direction", "max")
        if direction not in ("max", "min"):
            raise ConfigError(source, f"{where}.direction", f"expected 'max' or 'min', got {_kind(direction)}")
        out.append(Objective(metric, direction))
    return tuple(out)


def _str_list(value: Any, source: str | None, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(source, key, f"expected a list of strings, got {_kind(value)}")
    return tuple(value)
