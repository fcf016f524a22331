"""Experiment files: YAML -> a validated, frozen :class:`Experiment`.

Every malformed file gets one :class:`ConfigError` whose text names the file,
the key (or line) and what was expected, e.g.::

    experiments/x.yaml: strategy.params.generations: expected an integer, got 'ten'

Components are written ``{name: ..., params: {...}}``; their ``params`` are
checked against the component's own signature, so a plugin's parameters are
validated like the built-ins'. ``--set key=value`` overrides are applied to the
raw mapping (dotted keys, list indices as numbers) before validation.
"""

from __future__ import annotations

import dataclasses
import os
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
    "TOP_LEVEL_KEYS",
]


class ConfigError(ValueError):
    """A bad experiment file: ``file: key: what was expected``."""

    def __init__(self, file: str | os.PathLike | None, key: str | None, message: str) -> None:
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
    "constraints": "a list of limits such as 'params <= 100000'",
}


# -- reading -----------------------------------------------------------------------------------


def load_experiment(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> Experiment:
    """Read, override and validate an experiment file. Raises :class:`ConfigError`."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(path, None, "no such experiment file")
    if path.is_dir():
        raise ConfigError(path, None, "expected an experiment YAML file, got a folder")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot read the file ({exc})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(path, where, f"invalid YAML ({problem})") from None
    raw = {} if raw is None else raw
    raw = apply_overrides(raw, overrides, path)
    return parse_experiment(raw, source=str(path))


def apply_overrides(raw: Any, overrides: list[str] | tuple[str, ...], source: str | os.PathLike | None = None) -> Any:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a copy of ``raw``."""
    import copy

    raw = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(source, "--set", f"expected key=value, got '{item}'")
        dotted, _, text = item.partition("=")
        keys = [k for k in dotted.strip().split(".")]
        if not all(keys):
            raise ConfigError(source, "--set", f"expected a dotted key such as strategy.params.generations, got '{dotted}'")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        node = raw
        if not isinstance(node, dict):
            raise ConfigError(source, None, "expected a mapping at the top of the file")
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            where = ".".join(keys[: i + 1])
            if isinstance(node, list):
                if not key.isdigit() or int(key) >= len(node):
                    raise ConfigError(source, where, f"--set: expected a list index below {len(node)}")
                if last:
                    node[int(key)] = value
                else:
                    node = node[int(key)]
            elif isinstance(node, dict):
                if last:
                    node[key] = value
                else:
                    node = node.setdefault(key, {})
            else:
                raise ConfigError(source, where, "--set: cannot set a key inside a scalar value")
    return raw


# -- validation --------------------------------------------------------------------------------

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
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(source, str(key), f"unknown key; expected one of: {', '.join(TOP_LEVEL_KEYS)}")
    if "space" not in raw:
        raise ConfigError(source, "space", "missing; expected the search space, e.g. {name: chain}")

    def get(key: str) -> Any:
        return raw[key] if key in raw and raw[key] is not None else _DEFAULTS.get(key)

    name = get("name") or (Path(source).stem if source else "experiment")
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "/\\"):
        raise ConfigError(source, "name", f"expected a run name without slashes, got {name!r}")
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
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(source, "timeout", f"expected a number of seconds > 0, got {timeout!r}")
        timeout = float(timeout)
    backend = _component(get("backend"), source, "backend")
    cache = raw.get("cache", True)
    if not isinstance(cache, bool):
        raise ConfigError(source, "cache", f"expected true or false, got {_kind(cache)}")
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
        source=source,
        constraints=constraints,
    )


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: f"the string {value!r}", bool: f"{value!r}"}.get(
        type(value), f"{type(value).__name__} {value!r}"
    )


def _expect_int(value: Any, source: str | None, key: str, *, minimum: int | None = None, what: str | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        want = what or ("an integer" + (f" >= {minimum}" if minimum is not None else ""))
        raise ConfigError(source, key, f"expected {want}, got {_kind(value)}")


def _component(value: Any, source: str | None, key: str, extra: tuple[str, ...] = ()) -> Component:
    if isinstance(value, str):
        return Component(value, {})
    if not isinstance(value, dict):
        raise ConfigError(source, key, f"expected {{name: ..., params: {{...}}}} or a name, got {_kind(value)}")
    allowed = ("name", "params", *extra)
    for k in value:
        if k not in allowed:
            raise ConfigError(source, f"{key}.{k}", f"unknown key; expected one of: {', '.join(allowed)}")
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
                raise ConfigError(source, f"{where}.{k}", "unknown key; expected metric or direction")
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
