"""Experiment files: YAML -> a validated, frozen :class:`Experiment`.

Every malformed file gets one :class:`ConfigError` whose text names the file,
the key (or line) and what was expected, e.g.::

    experiments/x.yaml: strategy.params.generations: expected an integer, got 'ten'

Components are written ``{name: ..., params: {...}}``; their ``params`` are
checked against the component's own signature, so a plugin's parameters are
validated like the built-ins'. Each top-level key is declared once, as a field of
:class:`Experiment` (:data:`EXPERIMENT_KEYS`). ``--set key=value`` overrides are applied to the
raw mapping (dotted keys, list indices as numbers) before validation.

Every YAML text evonas reads goes through :func:`safe_load_yaml`: ``yaml.SafeLoader`` (no
``!!python`` tags) with limits on the size of the text, the nesting depth, the number of aliases
and the number of values the document expands to, so a hostile file (a "billion laughs" of nested
aliases, ten thousand ``[``) gets one :class:`ConfigError` line instead of a hang or a traceback.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import yaml

from evonas.checks import check_int, one_line
from evonas.constraints import Constraint, parse_constraints

__all__ = [
    "ConfigError",
    "Component",
    "OperatorSpec",
    "Objective",
    "Experiment",
    "ExperimentKey",
    "StopRule",
    "EXPERIMENT_KEYS",
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
        key = one_line(key, 200) if key else key
        message = one_line(message, 2000)
        self.file, self.key, self.message = (str(file) if file else None), key, message
        parts = [p for p in (self.file, key) if p]
        super().__init__(": ".join([*parts, message]))


def params_error(file: str | os.PathLike | None, key: str, params: Any, message: str) -> ConfigError:
    """A component's refusal of its ``params`` (under ``key``, e.g. ``fitness.params``): a message that begins with one
    of them (``epochs: expected ...``) is that parameter's key's, as a wrong type of it is."""
    name, sep, rest = message.partition(": ")
    if sep and rest and isinstance(params, Mapping) and name in params:
        return ConfigError(file, f"{key}.{name}", rest)
    return ConfigError(file, key, message)


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


# -- the experiment keys -------------------------------------------------------------------------
#
# Each top-level key of an experiment file is declared once, as a field of :class:`Experiment` made by
# :func:`_key`: its type (the annotation), its default, one line saying what it holds, how it is read and how
# it is written back to ``config.yaml``. :func:`parse_experiment`, the unknown-key message,
# :data:`TOP_LEVEL_KEYS` and :meth:`Experiment.to_dict` all read these declarations.

_OMIT: Any = object()  # what a writer returns to leave its key out of config.yaml


@dataclasses.dataclass(frozen=True)
class Inheritance:
    """Weight inheritance (``inherit:``): a child of a mutation or crossover starts from its parent's trained
    weights wherever a tensor's name and shape are unchanged, and trains ``fidelity`` of the full training. The
    run folder keeps each evaluation's trained weights (``weights/``, safetensors) up to ``max_mb`` MiB, the oldest
    dropped first. After the search the ``confirm`` best genomes known only from inherited evaluations are trained
    from scratch in full: ``best.json``, the hall of fame and export use such complete evaluations only."""

    fidelity: float = 1 / 3
    max_mb: float = 1024.0
    confirm: int = 3

    @property
    def max_bytes(self) -> int:
        """The weight store's bound in bytes."""
        return int(self.max_mb * 2**20)


#: the keys of ``inherit:`` as a mapping, with what each expects
_INHERIT_KEYS = {
    "fidelity": "a share of the full training in (0, 1]",
    "max_mb": "a number of MiB > 0",
    "confirm": "an integer >= 0",
}


@dataclasses.dataclass(frozen=True)
class ExperimentKey:
    """How one field of :class:`Experiment` is read from an experiment file and written to ``config.yaml``."""

    #: the top-level key of the file
    name: str
    #: the :class:`Experiment` field it fills (the key's name, except for a field read from inside a key)
    field: str
    #: the field's type, as annotated
    type: str
    #: one line saying what the key holds
    description: str
    #: ``read(value, source, key) -> field value``: checks the file's value (the default filled in), raises ConfigError
    read: Callable[[Any, str | None, str], Any]
    #: ``write(field value) -> plain data`` for ``config.yaml`` (:data:`_OMIT`: the key is left out)
    write: Callable[[Any], Any]
    #: the value a missing key stands for, as written in a file
    default: Any = None
    #: a key given as null stands for the default (else ``read`` gets ``None`` and says what was expected)
    null_is_default: bool = True
    #: what the message of a missing key says is expected (``None``: the key may be left out)
    required: str | None = None
    #: the sub-key of ``name``'s mapping the field is read from (``file`` of ``space``); ``None``: the key itself
    within: str | None = None

    def given_in(self, raw: Mapping[str, Any]) -> bool:
        """Whether ``raw`` sets the key to something of its own: not missing, not null standing for the default,
        not the default as written (a run's ``config.yaml`` writes every default in: it names none of them)."""
        if self.name not in raw or (raw[self.name] is None and self.null_is_default):
            return False
        return raw[self.name] != self.default

    def value_in(self, raw: Mapping[str, Any], source: str | None) -> Any:
        """The field's value read from ``raw``, the top-level mapping of an experiment file."""
        value = raw.get(self.name, self.default)
        if value is None and self.null_is_default:
            value = self.default
        if self.within is None:
            return self.read(value, source, self.name)
        value = value.get(self.within) if isinstance(value, dict) else None
        return self.read(value, source, f"{self.name}.{self.within}")


def _key(
    description: str,
    read: Callable[[Any, str | None, str], Any],
    write: Callable[[Any], Any] | None = None,
    *,
    default: Any = None,
    null_is_default: bool = True,
    required: str | None = None,
    key: str | None = None,
    within: str | None = None,
    field_default: Any = dataclasses.MISSING,
    field_factory: Any = dataclasses.MISSING,
) -> Any:
    """An :class:`Experiment` field read from the experiment key of its name (or ``key``; from the sub-key
    ``within`` of its mapping when given). ``default`` is the file's value of a missing key; ``field_default`` /
    ``field_factory`` the dataclass default of an :class:`Experiment` made in code. See :class:`ExperimentKey`."""
    spec = ExperimentKey(
        key or "", "", "", description, read, write or _plain_data, default, null_is_default, required, within
    )  # fmt: skip
    return dataclasses.field(default=field_default, default_factory=field_factory, metadata={"key": spec})


def _plain_data(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _read_name(value: Any, source: str | None, key: str) -> str:
    if value is None or value == "":
        return _default_name(source)
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ConfigError(source, key, f"{_NAME_EXPECTED}, got {_kind(value)}")
    return value


def _read_int(minimum: int, what: str | None = None) -> Callable[[Any, str | None, str], int]:
    def read(value: Any, source: str | None, key: str) -> int:
        return _expect_int(value, source, key, minimum=minimum, what=what)

    return read


def _optional(read: Callable[[Any, str | None, str], Any]) -> Callable[[Any, str | None, str], Any]:
    """``read`` of a key whose value may be null (then ``None``)."""

    def read_optional(value: Any, source: str | None, key: str) -> Any:
        return None if value is None else read(value, source, key)

    return read_optional


def _read_workers(value: Any, source: str | None, key: str) -> int | str:
    return value if value == "auto" else _expect_int(value, source, key, minimum=0, what="'auto' or an integer >= 0")


def check_workers(value: Any, key: str = "workers") -> int | str:
    """``value`` as a number of workers (``'auto'`` or an int >= 0) for the Python API's ``workers=``; raises
    :class:`ConfigError` (a ``ValueError``) in one line."""
    return _read_workers(value, None, key)


def _read_timeout(value: Any, source: str | None, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(source, key, f"expected a number of seconds > 0, got {_kind(value, bare=True)}")
    if not value <= _MAX_TIMEOUT:
        raise ConfigError(
            source, key, f"expected a finite number of seconds up to {_MAX_TIMEOUT:g}, got {_kind(value, bare=True)}"
        )
    return float(value)


def _read_bool(value: Any, source: str | None, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(source, key, f"expected true or false, got {_kind(value)}")
    return value


def _read_inherit(value: Any, source: str | None, key: str) -> Inheritance | None:
    if value is False or value is None:
        return None
    if value is True:
        return Inheritance()
    if not isinstance(value, dict):
        raise ConfigError(source, key, f"expected true, false or {{fidelity, max_mb, confirm}}, got {_kind(value)}")
    for k in value:
        if k not in _INHERIT_KEYS:
            raise ConfigError(source, f"{key}.{_key_text(k)}", f"unknown key; expected one of: {', '.join(_INHERIT_KEYS)}")
    out = Inheritance()
    fidelity = value.get("fidelity", out.fidelity)
    if isinstance(fidelity, bool) or not isinstance(fidelity, (int, float)) or not 0 < fidelity <= 1:
        raise ConfigError(source, f"{key}.fidelity", f"expected {_INHERIT_KEYS['fidelity']}, got {_kind(fidelity)}")
    max_mb = value.get("max_mb", out.max_mb)
    if isinstance(max_mb, bool) or not isinstance(max_mb, (int, float)) or not 0 < max_mb < 1e12:
        raise ConfigError(source, f"{key}.max_mb", f"expected {_INHERIT_KEYS['max_mb']}, got {_kind(max_mb)}")
    confirm = _expect_int(value.get("confirm", out.confirm), source, f"{key}.confirm", minimum=0)
    return Inheritance(float(fidelity), float(max_mb), confirm)


def _write_inherit(value: Inheritance | None) -> Any:
    return False if value is None else dataclasses.asdict(value)


@dataclasses.dataclass(frozen=True)
class StopRule:
    """When a search ends before its strategy's plan (``stop:``), as Ray Tune's ``stop`` and ``time_budget_s``:

    - ``targets``: ``(metric, value)`` of objectives; the first complete evaluation that reaches one (``>=`` for an
      objective maximised, ``<=`` for one minimised) ends the search.
    - ``patience``: this many complete evaluations in a row without a better best of the first objective.
    - ``time_budget_s``: seconds of searching, summed over the run's sessions (a resume goes on with what is left).
    - ``failures``: this many failed evaluations (``1``: Ray Tune's ``fail_fast``; a fitness that fails every
      genome ends the search at once instead of spending the budget on failures).

    The evaluations running then finish; the run ends as finished, with the reason as its summary's
    ``ended_early``. Reached targets and patience are met again at the same evaluation by a resume's replay."""

    targets: tuple[tuple[str, float], ...] = ()
    patience: int | None = None
    time_budget_s: float | None = None
    failures: int | None = None


_STOP_KEYS = {"patience": "an integer >= 1", "time_budget_s": "a number of seconds > 0", "failures": "an integer >= 1"}


def _read_stop(value: Any, source: str | None, key: str) -> StopRule | None:
    if value is None:
        return None
    expected = "{METRIC: TARGET, patience: N, time_budget_s: SECONDS, failures: N}"
    if not isinstance(value, dict) or not value:
        raise ConfigError(source, key, f"expected a mapping such as {expected}, got {_kind(value)}")
    targets = []
    for k, v in value.items():
        if not isinstance(k, str) or not k:
            raise ConfigError(source, f"{key}.{_key_text(k)}", "expected an objective's metric name, patience, "
                                                               "time_budget_s or failures")  # fmt: skip
        if k not in _STOP_KEYS and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise ConfigError(source, f"{key}.{_key_text(k)}", f"expected the metric's target (a number), got {_kind(v)}")
        if k not in _STOP_KEYS:
            targets.append((k, float(v)))
    patience = value.get("patience")
    if patience is not None:
        patience = _expect_int(patience, source, f"{key}.patience", minimum=1)
    budget = value.get("time_budget_s")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget < _MAX_TIMEOUT):
        raise ConfigError(source, f"{key}.time_budget_s", f"expected {_STOP_KEYS['time_budget_s']}, got {_kind(budget)}")
    failures = value.get("failures")
    if failures is not None:
        failures = _expect_int(failures, source, f"{key}.failures", minimum=1)
    return StopRule(tuple(targets), patience, None if budget is None else float(budget), failures)


def _write_stop(value: StopRule | None) -> Any:
    if value is None:
        return _OMIT
    out: dict[str, Any] = dict(value.targets)
    if value.patience is not None:
        out["patience"] = value.patience
    if value.time_budget_s is not None:
        out["time_budget_s"] = value.time_budget_s
    if value.failures is not None:
        out["failures"] = value.failures
    return out


def _read_space_file(value: Any, source: str | None, key: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(source, key, f"expected a path to a space declaration file, got {_kind(value)}")
    return value


def _read_component(value: Any, source: str | None, key: str, extra: tuple[str, ...] = ()) -> Component:
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


def _read_space(value: Any, source: str | None, key: str) -> Component:
    return _read_component(value, source, key, extra=("file",))


def _write_component(c: Component) -> dict[str, Any]:
    return {"name": c.name, "params": dict(c.params)}


def _entries(
    items: list[Any], source: str | None, key: str, shorthand: str, shape: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(key[i], mapping)`` for each entry of a list of mappings; a bare string stands for ``{shorthand: it}``."""
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if isinstance(item, str):
            item = {shorthand: item}
        if not isinstance(item, dict):
            raise ConfigError(source, where, f"expected {shape}, got {_kind(item)}")
        yield where, item


def _read_operators(value: Any, source: str | None, key: str) -> tuple[OperatorSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(source, key, f"expected a list of {{name, prob, params}}, got {_kind(value)}")
    out = []
    for where, item in _entries(value, source, key, "name", "{name, prob, params}"):
        prob = item.get("prob", 1.0)
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1e9:
            raise ConfigError(source, f"{where}.prob", f"expected a number >= 0, got {_kind(prob)}")
        comp = _read_component({k: v for k, v in item.items() if k != "prob"}, source, where)
        out.append(OperatorSpec(comp.name, comp.params, float(prob)))
    if out and sum(o.prob for o in out) <= 0:
        raise ConfigError(source, key, "expected at least one operator with prob > 0")
    return tuple(out)


def _read_loggers(value: Any, source: str | None, key: str) -> tuple[Component, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(source, key, f"expected a list of logger names or {{name, params}}, got {_kind(value)}")
    out = [_read_component(item, source, where) for where, item in _entries(value, source, key, "name", "{name, params}")]
    names = [c.name for c in out]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(source, f"{key}[{i}].name", f"logger '{name}' is listed twice")
    return tuple(out)


def _write_loggers(loggers: tuple[Component, ...]) -> list[dict[str, Any]]:
    return [_write_component(c) for c in loggers]


def _write_operators(ops: tuple[OperatorSpec, ...]) -> list[dict[str, Any]]:
    return [{"name": o.name, "prob": o.prob, "params": dict(o.params)} for o in ops]


def _read_objectives(value: Any, source: str | None, key: str) -> tuple[Objective, ...]:
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(source, key, f"expected a non-empty list of {{metric, direction}}, got {_kind(value)}")
    out: list[Objective] = []
    for where, item in _entries(value, source, key, "metric", "{metric, direction}"):
        for k in item:
            if k not in ("metric", "direction"):
                raise ConfigError(source, f"{where}.{_key_text(k)}", "unknown key; expected metric or direction")
        metric = item.get("metric")
        if not isinstance(metric, str) or not metric:
            raise ConfigError(source, f"{where}.metric", f"expected a metric name such as val_acc, got {_kind(metric)}")
        direction = item.get("direction", "max")
        if direction not in ("max", "min"):
            raise ConfigError(source, f"{where}.direction", f"expected 'max' or 'min', got {_kind(direction)}")
        if any(o.metric == metric for o in out):
            raise ConfigError(source, f"{where}.metric", f"'{metric}' is an objective already; each metric is one "
                                                         "objective, with one direction")  # fmt: skip
        out.append(Objective(metric, direction))
    return tuple(out)


def _write_objectives(objectives: tuple[Objective, ...]) -> list[dict[str, Any]]:
    return [{"metric": o.metric, "direction": o.direction} for o in objectives]


def _read_str_list(value: Any, source: str | None, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(source, key, f"expected a list of strings, got {_kind(value)}")
    return tuple(value)


def _read_initial_population(value: Any, source: str | None, key: str) -> tuple[str | dict[str, Any], ...]:
    """Saved genome files (paths) and genomes written inline (mappings, as ``best.json``'s ``genome``)."""
    if value is None:
        return ()
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(source, key, f"expected a list of genome files or genomes (mappings), got {_kind(value)}")
    for i, v in enumerate(value):
        if not (isinstance(v, str) and v) and not (isinstance(v, dict) and v and all(isinstance(k, str) for k in v)):
            raise ConfigError(source, f"{key}[{i}]", f"expected a genome file or a genome (a mapping of its "
                              f"genes, as in best.json's genome), got {_kind(v)}")  # fmt: skip
    return tuple(copy.deepcopy(v) for v in value)


def _write_initial_population(value: tuple[str | dict[str, Any], ...]) -> Any:
    return [copy.deepcopy(v) for v in value] if value else _OMIT


def _read_constraints(value: Any, source: str | None, key: str) -> tuple[Constraint, ...]:
    try:
        return parse_constraints(value)
    except ValueError as exc:
        index, sep, message = str(exc).partition("]: ")
        where = f"{key}{index}]" if sep and index.startswith("[") else key
        raise ConfigError(source, where, message if sep else str(exc)) from None


def _write_constraints(constraints: tuple[Constraint, ...]) -> Any:
    return [str(c) for c in constraints] if constraints else _OMIT


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A whole experiment, validated. ``source`` is the file it came from (for messages).

    Each field made by :func:`_key` is a top-level key of the experiment file (see :data:`EXPERIMENT_KEYS`).
    """

    name: str = _key("a run name (string)", _read_name)
    seed: int = _key("the run's integer seed", _read_int(0), default=0, null_is_default=False)
    space: Component = _key(
        "the search space {name, params, file}", _read_space, _write_component,
        required="expected the search space, e.g. {name: chain}",
    )  # fmt: skip
    space_file: str | None = _key(
        "a space declaration file", _read_space_file, lambda file: file or _OMIT, key="space", within="file"
    )
    dataset: Component = _key(
        "the dataset {name, params}", _read_component, _write_component, default={"name": "digits"}
    )
    fitness: Component = _key(
        "the fitness function {name, params}", _read_component, _write_component, default={"name": "train"}
    )
    strategy: Component = _key(
        "the search strategy {name, params}", _read_component, _write_component, default={"name": "ga"}
    )
    selection: Component = _key(
        "DEAP selection {name, params}", _read_component, _write_component,
        default={"name": "tournament", "params": {"tournsize": 3}},
    )  # fmt: skip
    mutations: tuple[OperatorSpec, ...] = _key("a list of {name, prob, params}", _read_operators, _write_operators)
    crossovers: tuple[OperatorSpec, ...] = _key("a list of {name, prob, params}", _read_operators, _write_operators)
    objectives: tuple[Objective, ...] = _key(
        "a list of {metric, direction}", _read_objectives, _write_objectives,
        default=[{"metric": "val_acc", "direction": "max"}],
    )  # fmt: skip
    initial_population: tuple[str | dict[str, Any], ...] = _key(
        "a list of saved genome files or genomes", _read_initial_population, _write_initial_population, field_default=()
    )  # fmt: skip
    plugins: tuple[str, ...] = _key("a list of module names to import first", _read_str_list, field_default=())
    budget: int | None = _key("the most evaluations to run", _optional(_read_int(1)), field_default=None)
    workers: int | str = _key(
        "'auto' or a number of worker processes (0: in-process)", _read_workers, default="auto", field_default="auto"
    )
    timeout: float | None = _key("seconds one evaluation may take", _optional(_read_timeout), field_default=None)
    backend: Component = _key(
        "where evaluations run {name: local | ray, params}", _read_component, _write_component,
        default={"name": "local"}, field_factory=lambda: Component("local", {}),
    )  # fmt: skip
    cache: bool = _key(
        "reuse evaluations done in earlier runs (true or false)", _read_bool,
        default=True, null_is_default=False, field_default=True,
    )  # fmt: skip
    pruner: Component = _key(
        "stops evaluations early from their learning curves {name: none | median | percentile | asha, params}",
        _read_component, _write_component, default={"name": "none"}, field_factory=lambda: Component("none", {}),
    )  # fmt: skip
    inherit: Inheritance | None = _key(
        "children start from their parent's trained weights (true, false or {fidelity, max_mb, confirm})",
        _read_inherit, _write_inherit, default=False, null_is_default=False, field_default=None,
    )  # fmt: skip
    loggers: tuple[Component, ...] = _key(
        "where each evaluation is logged as it finishes: a list of tensorboard, mlflow, optuna or {name, params}",
        _read_loggers, _write_loggers, field_default=(),
    )  # fmt: skip
    stop: StopRule | None = _key(
        "ends the search early {METRIC: TARGET, patience: N, time_budget_s: SECONDS, failures: N}", _read_stop, _write_stop,
        field_default=None,
    )  # fmt: skip
    #: the first fault of a variation operator (it raised, or gave no valid genome) stops the run
    strict: bool = _key(
        "stop at the first fault of a mutation or crossover operator (true or false; default false: the "
        "child is made by another operator and the fault is counted and reported)", _read_bool,
        default=False, null_is_default=False, field_default=False,
    )  # fmt: skip
    source: str | None = None
    #: the top-level keys the file sets to something other than their default (:meth:`ExperimentKey.given_in`);
    #: empty for an experiment made in code (a strategy that chooses its own selection refuses a given ``selection``)
    given: frozenset[str] = dataclasses.field(default=frozenset(), compare=False, repr=False)
    #: hard limits on metrics (see :mod:`evonas.constraints`)
    constraints: tuple[Constraint, ...] = _key(
        "a list of limits such as 'params <= 100000'", _read_constraints, _write_constraints, field_default=()
    )

    def to_dict(self) -> dict[str, Any]:
        """The resolved experiment as plain data (written to ``config.yaml`` in the run folder)."""
        out: dict[str, Any] = {}
        for key in EXPERIMENT_KEYS:
            value = key.write(getattr(self, key.field))
            if value is _OMIT:
                continue
            if value == [] and key.name in ("mutations", "crossovers") and key.name not in self.given:
                continue  # none named: the space's own (an empty list the file gives means none: kept)
            if key.within is None:
                out[key.name] = value
            else:
                out[key.name][key.within] = value
        return out

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(o.weight for o in self.objectives)

    @property
    def metrics(self) -> list[str]:
        """The objectives' metric names, in order."""
        return [o.metric for o in self.objectives]


def _declared_keys() -> tuple[ExperimentKey, ...]:
    return tuple(
        dataclasses.replace(f.metadata["key"], name=f.metadata["key"].name or f.name, field=f.name, type=str(f.type))
        for f in dataclasses.fields(Experiment)
        if "key" in f.metadata
    )


#: every field of :class:`Experiment` read from an experiment file, in the order they are read and written
EXPERIMENT_KEYS: tuple[ExperimentKey, ...] = _declared_keys()

#: the top-level keys of an experiment file -> what each holds, in the order of ``config.yaml``
TOP_LEVEL_KEYS: dict[str, str] = {k.name: k.description for k in EXPERIMENT_KEYS if k.within is None}

#: the top-level keys that name a component (``{name, params}``, or the bare name)
_COMPONENT_KEYS = tuple(k.name for k in EXPERIMENT_KEYS if k.within is None and k.type == "Component")
#: the name of each component key's default component (what a file that leaves the key out gets)
_DEFAULT_NAMES = {
    k.name: k.default["name"] for k in EXPERIMENT_KEYS if k.name in _COMPONENT_KEYS and isinstance(k.default, dict)
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
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"load_experiment: expected the path of an experiment file, got {type(path).__name__}"
                        + (" (parse_experiment reads a mapping)" if isinstance(path, dict) else ""))  # fmt: skip
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
    try:
        return parse_experiment(raw, source=str(path))
    except ConfigError as exc:
        raise from_override(exc, overrides) from None


def from_override(exc: ConfigError, overrides: list[str] | tuple[str, ...]) -> ConfigError:
    """``exc`` naming the ``--set`` override whose key holds the bad value (``fitness.params.amp (from --set
    fitness.params.amp)``): the file does not hold that value. ``exc`` itself when no override gave it."""
    given = [o.partition("=")[0].strip() for o in overrides if isinstance(o, str)]
    key = exc.key or ""
    # the most specific override that holds the key (strategy.params.x over strategy), the last given of equals
    holding = [g for g in given if key == g or key.startswith((g + ".", g + "["))]
    inside = [g for g in given if g.startswith(key + ".")]  # a sub-key of the one refused (its mapping is wrong)
    hit = max(reversed(holding), key=len) if holding else (inside[-1] if inside else None)
    if hit is None or not key or "(from --set " in key:  # (named already: load_experiment, then the command)
        return exc
    return ConfigError(exc.file, f"{key} (from --set {hit})", exc.message)


def apply_overrides(raw: Any, overrides: list[str] | tuple[str, ...], source: str | os.PathLike | None = None) -> Any:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a copy of ``raw``.

    A value that is not valid YAML is kept as the string; one that breaks a limit of
    :func:`safe_load_yaml` raises :class:`ConfigError` naming ``--set key``.
    """
    if isinstance(overrides, (str, bytes)) or not isinstance(overrides, (list, tuple)):
        raise ConfigError(source, "overrides", f"expected a list of 'key=value' strings such as ['seed=1'], got "
                                               f"{_kind(overrides)}")  # fmt: skip
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
                    nxt = keys[i + 1]
                    if node.get(key) is None and nxt.isascii() and nxt.isdigit():  # an index into a list not there
                        raise ConfigError(source, where, f"--set: the experiment has no {key} list to index (set the "
                                                         f"whole list: --set '{key}=[...]', or write it in the file)")  # fmt: skip
                    if node.get(key) is None:  # `strategy:` left empty: --set strategy.name=ga fills it
                        # a component the file leaves out is its default one: --set selection.params.tournsize=5
                        default = _DEFAULT_NAMES.get(key) if i == 0 else None
                        node[key] = {"name": default} if default else {}
                    elif i == 0 and key in _COMPONENT_KEYS and isinstance(node[key], str):
                        node[key] = {"name": node[key]}  # `space: mlp`: --set space.params.x=1 reaches inside
                    node = node[key]
            else:
                raise ConfigError(source, where, "--set: cannot set a key inside a scalar value")
    return raw


# -- validation --------------------------------------------------------------------------------

def parse_experiment(raw: Any, source: str | None = None) -> Experiment:
    """Validate the shape and types of an experiment mapping (component names are checked by the builder)."""
    if not isinstance(raw, dict):
        raise ConfigError(source, None, f"expected a mapping of experiment keys at the top level, got {_kind(raw)}")
    _check_tree(raw, source)
    raw = _named_build(_python_scalars(raw), source)
    for name in raw:
        if name not in TOP_LEVEL_KEYS:
            import difflib

            near = difflib.get_close_matches(str(name), list(TOP_LEVEL_KEYS), n=1, cutoff=0.75)
            mean = f"did you mean '{near[0]}'? " if near else ""
            if str(name).rstrip("s") in _STRATEGY_WORDS:  # a strategy's run length written at the top level
                mean = f"a strategy's parameter goes under strategy: params: {{{name}: ...}}; "
            raise ConfigError(source, _key_text(name), f"unknown key; {mean}expected one of: {', '.join(TOP_LEVEL_KEYS)}")
    for key in EXPERIMENT_KEYS:
        if key.required and key.name not in raw:
            raise ConfigError(source, key.name, f"missing; {key.required}")
    fields = {key.field: key.value_in(raw, source) for key in EXPERIMENT_KEYS}  # read in order: the first error wins
    given = frozenset(key.name for key in EXPERIMENT_KEYS if key.within is None and key.given_in(raw))
    return Experiment(**fields, source=source, given=given)


#: the built-in strategies' parameters a file may write at its top level by mistake (``generations: 10``)
_STRATEGY_WORDS = frozenset({"generation", "population_size", "offspring", "sample", "cycle", "cxpb", "mutpb",
                             "elitism"})  # fmt: skip

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


def _short_repr(value: Any, limit: int = 60) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of {int(value.bit_length() * 0.30103) + 1} digits"
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a value of any type, from any file
        text = f"<{type(value).__name__}>"
    return one_line(text, limit)


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
        return "a mapping" if value else "an empty mapping"
    if type(value) is list:
        return "a list" if value else "an empty list"
    if isinstance(value, str):
        return f"the string {_short_repr(value)}"
    if isinstance(value, int) and value.bit_length() > 200:
        return _short_repr(value)
    return _short_repr(value) if bare else f"{type(value).__name__} {_short_repr(value)}"


def _expect_int(value: Any, source: str | None, key: str, *, minimum: int | None = None, what: str | None = None) -> int:
    """``value`` if it is a Python ``int`` from ``minimum`` to :data:`_MAX_INT` (:func:`check_int` decides), else
    :class:`ConfigError` saying what the file holds (``what``: the expected value in other words)."""
    if isinstance(value, int):  # Python's: a YAML file holds no numpy integers
        try:
            return check_int(key, value, minimum, _MAX_INT)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        want = what or ("an integer" + (f" >= {minimum}" if minimum is not None else ""))
        raise ConfigError(source, key, f"expected {want}, got {_kind(value)}")
    raise ConfigError(source, key, f"expected an integer up to {_MAX_INT} (2**63 - 1), got {_kind(value)}")


def _named_build(raw: dict, source: str | None) -> dict:
    """``raw`` with a function given as ``space.params.build`` (from Python) named ``"module:function"``, as the run's
    config.yaml, its workers and resume name it; one that cannot be imported by its name (a lambda, a function
    defined inside another) is refused in one line."""
    space = raw.get("space")
    if not isinstance(space, dict) or not isinstance(space.get("params"), dict):
        return raw
    params = space["params"]
    fn = params.get("build")
    if fn is None or isinstance(fn, str) or not callable(fn):
        return raw
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    found: Any = sys.modules.get(module) if isinstance(module, str) else None
    for part in (qualname or "<unnamed>").split("."):
        found = getattr(found, part, None)
    if found is not fn:
        what = "a lambda" if getattr(fn, "__name__", "") == "<lambda>" else f"{type(fn).__name__} {qualname or fn!r}"
        raise ConfigError(source, "space.params.build", f"{what} cannot be imported by its name, which the run's "
                                                        "config.yaml and worker processes need: define the build "
                                                        "function at the top level of a module (or name it as "
                                                        "'module:function')")  # fmt: skip
    return {**raw, "space": {**space, "params": {**params, "build": f"{module}:{qualname}"}}}


def _python_scalars(value: Any) -> Any:
    """``value`` with numpy scalars (``np.int64(3)`` from a sweep's ``np.arange``) as the Python numbers they hold;
    containers are copied only where one changes (depth bounded by :func:`_check_tree`)."""
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        return value.item()
    if isinstance(value, dict):
        out = {k: _python_scalars(v) for k, v in value.items()}
        return value if all(out[k] is v for k, v in value.items()) else out
    if isinstance(value, (list, tuple)):
        items = [_python_scalars(v) for v in value]
        return value if all(a is b for a, b in zip(items, value)) else type(value)(items)
    return value


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
