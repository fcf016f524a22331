"""The ``function`` search space: a network written as one function that asks for its choices as it builds.

The user writes ``build(arch, input_shape, num_classes)`` and returns a ``torch.nn.Module``; every
decision is a call on ``arch`` (define-by-run, as Optuna's ``trial.suggest_*``)::

    def build(arch, input_shape, num_classes):
        depth = arch.int("depth", 1, 3)
        act = arch.choice("act", ["relu", "gelu"])
        layers, n_in = [nn.Flatten()], math.prod(input_shape)
        for i in range(depth):                        # width_i exists only for i < depth
            width = arch.choice(f"width_{i}", [16, 32, 64])
            layers += [nn.Linear(n_in, width), nn.ReLU() if act == "relu" else nn.GELU()]
            n_in = width
        layers += [nn.Dropout(arch.float("dropout", 0.0, 0.5)), nn.Linear(n_in, num_classes)]
        arch.float("lr", 1e-4, 1e-1, log=True)      # training hyperparameters are choices too
        arch.choice("optimizer", ["adam", "sgd"])
        return nn.Sequential(*layers)

and names it in the experiment, its module listed as a plug-in: ``plugins: [my_space.py]`` and ``space: {name:
function, params: {build: "my_space:build"}}``. The function is asked with the shape of one input of the run's
data and its number of classes (the engine binds them: :meth:`FunctionSpace.bind_input`; from Python, or with a
fitness that needs no data, give ``input_shape`` and ``num_classes`` as parameters).

- **Choices.** ``arch.choice(name, options)`` (strings, numbers, booleans or ``None``),
  ``arch.int(name, low, high, step=1, log=False)`` and ``arch.float(name, low, high, log=False)``
  (``suggest_categorical``, ``suggest_int`` and ``suggest_float`` are the same calls under Optuna's
  names). Asking a name again returns the same value; asking it with other options is an error. A
  function may raise :class:`~evonas.spaces.base.InvalidGenome` to refuse a combination of values.
- **The genome** (:class:`ArchGenome`) is the frozen, sorted mapping of the *active* choices: those the
  function asked for given the other values. A genome holding a choice the function did not ask for
  (``kernel_3`` when ``depth`` is 2) is invalid; :meth:`FunctionSpace.normalise` (used by the
  mutations, crossover and :meth:`FunctionSpace.from_dict`) replays the function to drop inactive
  choices and draw the newly active ones, so genomes that differ only in inactive choices never exist.
  Floats are drawn with 3 significant digits (as the layer-list spaces store learning rates).
- **Replays.** Sampling and validation run the function under ``torch.device("meta")``, so no weights
  are allocated (on CPU when a function needs real tensors, e.g. a forward pass to size a layer);
  :meth:`FunctionSpace.decode` runs it for real.
- **Training hyperparameters.** Choices named ``lr``, ``optimizer``, ``weight_decay``, ``batch_size``
  (and ``momentum``) are :meth:`FunctionSpace.hparams`, which the ``train`` fitness trains with.
- **Categorical view** (:mod:`evonas.spaces.encoding`): every choice the function can ask, found by a
  bounded, seeded exploration (replays forcing each option of each known choice, from the first-option
  genome and :data:`EXPLORE_SAMPLES` random ones), in the order met; a category keeps its options, an
  int range with at most :data:`ALL_INTS_UP_TO` values keeps all of them, larger int ranges and floats
  a grid of :data:`NUMBER_GRID_POINTS` points (log-spaced for ``log=True``). ``to_categorical`` maps a
  number to the nearest grid point (the only lossy step); the encoding appends each number's exact
  value scaled to [0, 1].
- **Enumeration** (``grid``): a space of categories and ints only lists every genome (:attr:`size`,
  :meth:`all_genomes`) up to :data:`ENUMERATION_LIMIT`; a float makes it infinite (``size`` is ``None``).

Example::

    space = make_space("function", {"build": "cnn_space:build", "input_shape": [1, 8, 8], "num_classes": 10})
    g = space.sample(rng=random.Random(0))
    space.describe(g)            # 'depth=2 act=relu width_0=32 ... lr=0.00316 optimizer=adam'
    net = space.decode(g, input_shape=(1, 8, 8), num_classes=10)
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import inspect
import math
import random
import sys
import time
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping, Sequence

from evonas.checks import check_int
from evonas.codehash import user_code
from evonas.spaces import SPACES, Genome, InvalidGenome, SearchSpace
from evonas.spaces.base import BUILD_FUNCTION
from evonas.spaces.encoding import Choice, check_values, one_hot

__all__ = [
    "ALL_INTS_UP_TO", "ENUMERATION_LIMIT", "EXPLORE_LIMIT", "EXPLORE_SAMPLES", "HPARAM_NAMES", "NUMBER_GRID_POINTS",
    "Arch", "ArchGenome", "Categorical", "ChoiceError", "FloatRange", "FunctionSpace", "IntRange",
    "describe_choices", "load_build_function",
]

#: choice names the ``train`` fitness reads as training hyperparameters (see :meth:`FunctionSpace.hparams`)
HPARAM_NAMES: tuple[str, ...] = ("lr", "optimizer", "weight_decay", "batch_size", "momentum")
#: grid points of a float (or a large int range) in the categorical view
NUMBER_GRID_POINTS = 8
#: an int range with at most this many values keeps all of them in the categorical view
ALL_INTS_UP_TO = 16
#: random genomes the categorical view's exploration starts from (besides the first-option genome)
EXPLORE_SAMPLES = 16
#: replays the exploration may spend; a view found within it is complete, else categorical() says so
EXPLORE_LIMIT = 4000
#: at most this many genomes are listed for ``grid`` (a larger space has no ``size``)
ENUMERATION_LIMIT = 100_000
#: seconds between the lines that say how far listing the genomes has got
ENUMERATION_NOTE_S = 10.0
#: random draws :meth:`FunctionSpace.sample` makes before giving up on a function that refuses them all
SAMPLE_TRIES = 100
#: standard deviation of a number's mutation step, as a share of its range (log range for ``log=True``)
STEP_SCALE = 0.15
#: replays remembered per space (validation and keys of the same genomes come up again and again)
_CACHE_SIZE = 20_000

_SCALARS = (str, int, float, bool, type(None))


def _sig3(x: float) -> float:
    """``x`` rounded to 3 significant digits (idempotent)."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    d = Decimal(repr(float(x)))
    return float(d.quantize(Decimal(1).scaleb(d.adjusted() - 2), rounding=ROUND_HALF_EVEN))


def _number_text(x: Any) -> str:
    if isinstance(x, float) and x != 0 and abs(x) < 1e-3:
        mant, exp = f"{x:.2e}".split("e")
        return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def _a(thing: object) -> str:
    """``a choice of [...]``, ``an int from 1 to 9``."""
    text = str(thing)
    return f"{'an' if text[:1] in 'aeiou' else 'a'} {text}"


def describe_choices(pairs: Iterable[tuple[str, Any]]) -> str:
    """``act=relu depth=3 lr=0.0041``: a genome's choices on one line (its description; no build function needed)."""
    return " ".join(f"{n}={_number_text(v)}" for n, v in pairs) or "(no choices)"


# -- distributions --------------------------------------------------------------------------------------
def _grid_points(low: float, high: float, log: bool) -> list[float]:
    """:data:`NUMBER_GRID_POINTS` points from ``low`` to ``high``, evenly spaced (on a log scale for ``log``)."""
    n = NUMBER_GRID_POINTS
    if log:
        return [low * (high / low) ** (i / (n - 1)) for i in range(n)]
    return [low + (high - low) * i / (n - 1) for i in range(n)]


class _Distribution:
    """What one choice may take: its values, a random draw, a mutation step and a grid for the categorical view."""

    kind: ClassVar[str] = ""

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed (``None`` if it is)."""
        raise NotImplementedError

    def draw(self, rng: random.Random) -> Any:
        raise NotImplementedError

    def mutate(self, value: Any, rng: random.Random) -> Any:
        """A value near ``value`` (numbers) or another option (categories); ``value`` itself if there is none."""
        raise NotImplementedError

    def varies(self) -> bool:
        """Whether the choice has more than one allowed value."""
        raise NotImplementedError

    def grid(self) -> tuple[Any, ...]:
        """The options of this choice in the categorical view."""
        raise NotImplementedError

    def nearest(self, value: Any) -> int:
        """The index of the grid point nearest ``value``."""
        grid = self.grid()
        return min(range(len(grid)), key=lambda i: abs(self._position(grid[i]) - self._position(value)))

    def values(self, limit: int) -> tuple[Any, ...] | None:
        """Every allowed value, or ``None`` if there are more than ``limit`` (or infinitely many)."""
        return None

    def scaled(self, value: Any) -> float:
        """``value`` in [0, 1] over the range (for the numeric encoding)."""
        return 0.0

    def coerce(self, value: Any) -> Any:
        """``value`` as read back from JSON (a float stored as ``0``)."""
        return value

    def _position(self, value: Any) -> float:
        return 0.0


@dataclasses.dataclass(frozen=True)
class Categorical(_Distribution):
    """One of ``options`` (plain values: strings, numbers, booleans, ``None``)."""

    options: tuple[Any, ...]
    kind: ClassVar[str] = "choice"

    def __str__(self) -> str:
        return f"choice of {list(self.options)}"

    def _index(self, value: Any) -> int | None:
        for i, option in enumerate(self.options):
            if type(option) is type(value) and option == value:
                return i
        return None

    def problem(self, value: Any) -> str | None:
        return None if self._index(value) is not None else f"is not one of {list(self.options)}"

    def draw(self, rng: random.Random) -> Any:
        return rng.choice(self.options)

    def mutate(self, value: Any, rng: random.Random) -> Any:
        others = [o for i, o in enumerate(self.options) if i != self._index(value)]
        return rng.choice(others) if others else value

    def varies(self) -> bool:
        return len(self.options) > 1

    def grid(self) -> tuple[Any, ...]:
        return self.options

    def nearest(self, value: Any) -> int:
        index = self._index(value)
        if index is None:
            raise ValueError(f"value {value!r} is not one of {list(self.options)}")
        return index

    def values(self, limit: int) -> tuple[Any, ...] | None:
        return self.options if len(self.options) <= limit else None

    def coerce(self, value: Any) -> Any:
        if type(value) is int and self._index(value) is None and self._index(float(value)) is not None:
            return float(value)
        return value


@dataclasses.dataclass(frozen=True)
class IntRange(_Distribution):
    """An integer from ``low`` to ``high`` in steps of ``step``, drawn uniformly (``log``: log-uniformly)."""

    low: int
    high: int
    step: int = 1
    log: bool = False
    kind: ClassVar[str] = "int"

    def __str__(self) -> str:
        extra = (f", step={self.step}" if self.step != 1 else "") + (", log" if self.log else "")
        return f"int from {self.low} to {self.high}{extra}"

    @property
    def count(self) -> int:
        return (self.high - self.low) // self.step + 1

    def _fit(self, x: float) -> int:
        """The allowed value nearest ``x``."""
        i = min(self.count - 1, max(0, round((x - self.low) / self.step)))
        return self.low + i * self.step

    def problem(self, value: Any) -> str | None:
        if type(value) is not int:
            return f"is not an integer ({type(value).__name__})"
        if not self.low <= value <= self.high or (value - self.low) % self.step:
            return f"is not an {self}"
        return None

    def draw(self, rng: random.Random) -> int:
        if self.log:
            return self._fit(math.exp(rng.uniform(math.log(self.low), math.log(self.high + 0.5))))
        return self.low + rng.randrange(self.count) * self.step

    def mutate(self, value: Any, rng: random.Random) -> int:
        if self.count == 1:
            return value
        if self.log:
            width = math.log(self.high) - math.log(self.low)
            new = self._fit(math.exp(math.log(value) + rng.gauss(0.0, STEP_SCALE * width)))
        else:
            new = self._fit(value + rng.gauss(0.0, max(1.0, STEP_SCALE * self.count)) * self.step)
        if new == value:  # a step too small to move: the next value up or down
            ups = [v for v in (value - self.step, value + self.step) if self.low <= v <= self.high]
            new = rng.choice(ups)
        return new

    def varies(self) -> bool:
        return self.count > 1

    def grid(self) -> tuple[int, ...]:
        if self.count <= ALL_INTS_UP_TO:
            return tuple(range(self.low, self.high + 1, self.step))
        return tuple(dict.fromkeys(self._fit(p) for p in _grid_points(self.low, self.high, self.log)))

    def values(self, limit: int) -> tuple[int, ...] | None:
        return tuple(range(self.low, self.high + 1, self.step)) if self.count <= limit else None

    def _position(self, value: Any) -> float:
        return math.log(value) if self.log else float(value)

    def scaled(self, value: Any) -> float:
        lo, hi = self._position(self.low), self._position(self.high)
        return 0.0 if hi <= lo else (self._position(value) - lo) / (hi - lo)


@dataclasses.dataclass(frozen=True)
class FloatRange(_Distribution):
    """A float from ``low`` to ``high``, drawn uniformly (``log``: log-uniformly) with 3 significant digits."""

    low: float
    high: float
    log: bool = False
    kind: ClassVar[str] = "float"

    def __str__(self) -> str:
        return f"float from {self.low!r} to {self.high!r}" + (", log" if self.log else "")

    def _fit(self, x: float) -> float:
        return min(self.high, max(self.low, _sig3(x)))

    def problem(self, value: Any) -> str | None:
        if type(value) is not float or not math.isfinite(value):
            return f"is not a finite float ({type(value).__name__})"
        if not self.low <= value <= self.high:
            return f"is outside [{self.low!r}, {self.high!r}]"
        return None

    def draw(self, rng: random.Random) -> float:
        if self.log:
            return self._fit(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return self._fit(rng.uniform(self.low, self.high))

    def mutate(self, value: Any, rng: random.Random) -> float:
        if self.low == self.high:
            return value
        lo, hi = self._position(self.low), self._position(self.high)
        x = min(hi, max(lo, self._position(value) + rng.gauss(0.0, STEP_SCALE * (hi - lo))))
        return self._fit(math.exp(x) if self.log else x)

    def varies(self) -> bool:
        return self.low < self.high

    def grid(self) -> tuple[float, ...]:
        return tuple(dict.fromkeys(self._fit(p) for p in _grid_points(self.low, self.high, self.log)))

    def coerce(self, value: Any) -> Any:
        """An int as a float, and a float in range with the 3 significant digits drawn values have (a plug-in
        operator's ``lr * 1.1``): genomes a digit apart past those share a key, as the space's own do."""
        value = float(value) if type(value) is int else value
        if type(value) is float and math.isfinite(value) and self.low <= value <= self.high:
            return self._fit(value)
        return value

    def _position(self, value: Any) -> float:
        return math.log(value) if self.log else float(value)

    def scaled(self, value: Any) -> float:
        lo, hi = self._position(self.low), self._position(self.high)
        return 0.0 if hi <= lo else (self._position(value) - lo) / (hi - lo)


@dataclasses.dataclass(frozen=True)
class FloatStep(_Distribution):
    """A float from ``low`` to ``high`` in steps of ``step`` (Optuna's ``suggest_float(..., step=)``), drawn
    uniformly from those values: an :class:`IntRange` over their indices, each index ``i`` standing for
    ``low + i * step``."""

    low: float
    high: float
    step: float
    kind: ClassVar[str] = "float"

    def __str__(self) -> str:
        return f"float from {self.low!r} to {self.high!r}, step={self.step!r}"

    @property
    def count(self) -> int:
        return int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1

    @property
    def _indices(self) -> IntRange:
        return IntRange(0, self.count - 1)

    def _at(self, i: int) -> float:
        """The ``i``-th value, rounded so that ``0.1 * 3`` is ``0.3``."""
        return float(round(self.low + i * self.step, 12))

    def _index(self, value: float) -> int:
        return min(self.count - 1, max(0, round((value - self.low) / self.step)))

    def problem(self, value: Any) -> str | None:
        if type(value) is not float or not math.isfinite(value):
            return f"is not a finite float ({type(value).__name__})"
        if not self.low <= value <= self.high or abs(value - self._at(self._index(value))) > 1e-9 * max(1.0, abs(value)):
            return f"is not a {self}"
        return None

    def draw(self, rng: random.Random) -> float:
        return self._at(self._indices.draw(rng))

    def mutate(self, value: Any, rng: random.Random) -> float:
        return self._at(self._indices.mutate(self._index(value), rng))

    def varies(self) -> bool:
        return self.count > 1

    def grid(self) -> tuple[float, ...]:
        return tuple(self._at(i) for i in self._indices.grid())

    def values(self, limit: int) -> tuple[float, ...] | None:
        indices = self._indices.values(limit)
        return None if indices is None else tuple(self._at(i) for i in indices)

    def coerce(self, value: Any) -> Any:
        return float(value) if type(value) is int else value

    def _position(self, value: Any) -> float:
        return float(value)

    def scaled(self, value: Any) -> float:
        return 0.0 if self.high <= self.low else (float(value) - self.low) / (self.high - self.low)


# -- the architecture object the function asks ----------------------------------------------------------
class ChoiceError(ValueError):
    """A build function asked for a choice wrongly (a bad name or options, one name with two sets of options)."""


#: decides a choice's value: ``decide(name, distribution)`` -> value (raises InvalidGenome to refuse)
Decide = Callable[[str, _Distribution], Any]


class Arch:
    """The object a build function asks for its choices (Optuna's ``trial``): ``arch.choice``, ``arch.int``,
    ``arch.float``. Each call returns the value of that choice in the architecture being built."""

    def __init__(self, decide: Decide) -> None:
        self._decide = decide
        #: the choices asked so far, in order: name -> (distribution, value)
        self.asked: dict[str, tuple[_Distribution, Any]] = {}

    def _ask(self, name: Any, dist: _Distribution) -> Any:
        seen = self.asked.get(name)
        if seen is not None:
            if seen[0] != dist:
                raise ChoiceError(
                    f"choice '{name}': asked as {_a(seen[0])}, then as {_a(dist)}; one name, one set of options"
                )
            return seen[1]
        value = self._decide(name, dist)
        self.asked[name] = (dist, value)
        return value

    @staticmethod
    def _name(name: Any, call: str) -> str:
        if not isinstance(name, str) or not name:
            raise ChoiceError(f"arch.{call}: the name must be a non-empty string, got {name!r}")
        return name

    def choice(self, name: str, options: Sequence[Any]) -> Any:
        """One of ``options`` (strings, numbers, booleans or ``None``, all distinct)."""
        name = self._name(name, "choice")
        if isinstance(options, (str, bytes)) or not isinstance(options, Sequence) or not options:
            raise ChoiceError(f"choice '{name}': options must be a non-empty list, got {options!r}")
        options = tuple(options)
        for option in options:
            bad = not isinstance(option, _SCALARS) or (isinstance(option, float) and not math.isfinite(option))
            if bad:
                raise ChoiceError(f"choice '{name}': option {option!r} is not a string, finite number, boolean or None")
        if len(set(options)) != len(options):
            raise ChoiceError(
                f"choice '{name}': options {list(options)} are not distinct (1, 1.0 and True count as equal)"
            )
        return self._ask(name, Categorical(options))

    def int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        """An integer from ``low`` to ``high`` (both included) in steps of ``step``; ``log``: log-uniform (step 1)."""
        name = self._name(name, "int")
        try:
            low = check_int(f"int '{name}': low", low)
            high = check_int(f"int '{name}': high", high, minimum=low)
            step = check_int(f"int '{name}': step", step, minimum=1)
        except ValueError as exc:
            raise ChoiceError(str(exc)) from None
        if not isinstance(log, bool):
            raise ChoiceError(f"int '{name}': log must be true or false, got {log!r}")
        if log and (low < 1 or step != 1):
            raise ChoiceError(f"int '{name}': log=True needs low >= 1 and step 1, got low={low}, step={step}")
        high = low + (high - low) // step * step
        return self._ask(name, IntRange(low, high, step, log))

    def float(self, name: str, low: float, high: float, log: bool = False, step: float | None = None) -> float:
        """A float from ``low`` to ``high``; ``log``: log-uniform (``low > 0``). Drawn with 3 significant digits, or
        (``step``) one of ``low``, ``low + step``, ... up to ``high`` (lowered to the last step that fits it)."""
        name = self._name(name, "float")
        values = []
        for which, v in (("low", low), ("high", high)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ChoiceError(f"float '{name}': {which} must be a finite number, got {v!r}")
            values.append(float(v))
        low, high = values
        if high < low:
            raise ChoiceError(f"float '{name}': high ({high!r}) must be >= low ({low!r})")
        if not isinstance(log, bool):
            raise ChoiceError(f"float '{name}': log must be true or false, got {log!r}")
        if log and low <= 0:
            raise ChoiceError(f"float '{name}': log=True needs low > 0, got {low!r}")
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 < step < math.inf:
                raise ChoiceError(f"float '{name}': step must be a finite number > 0 (or None), got {step!r}")
            if log:
                raise ChoiceError(f"float '{name}': step and log=True cannot be used together (as in Optuna)")
            dist = FloatStep(low, high, float(step))
            return self._ask(name, dataclasses.replace(dist, high=dist._at(dist.count - 1)))
        return self._ask(name, FloatRange(low, high, log))

    # Optuna's names for the same calls
    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self.choice(name, choices)

    def suggest_int(self, name: str, low: builtins.int, high: builtins.int, step: builtins.int = 1, log: bool = False) -> builtins.int:
        return self.int(name, low, high, step=step, log=log)

    def suggest_float(
        self, name: str, low: builtins.float, high: builtins.float, *, step: builtins.float | None = None, log: bool = False
    ) -> builtins.float:
        return self.float(name, low, high, log=log, step=step)


# -- the genome -----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ArchGenome(Genome):
    """The active choices of one architecture: ``(name, value)`` pairs sorted by name (a frozen mapping)."""

    choices: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> ArchGenome:
        return cls(tuple(sorted(values.items())))

    def as_dict(self) -> dict[str, Any]:
        return dict(self.choices)

    def __getitem__(self, name: str) -> Any:
        for n, v in self.choices:
            if n == name:
                return v
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(n == name for n, _ in self.choices)

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default

    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.choices)


@dataclasses.dataclass(frozen=True)
class _Replay:
    """What one run of the function asked: names in order with their distributions and values."""

    asked: tuple[tuple[str, _Distribution, Any], ...]

    def genome(self) -> ArchGenome:
        return ArchGenome.of({n: v for n, _, v in self.asked})

    def names(self) -> set[str]:
        return {n for n, _, _ in self.asked}


class _Infinite(Exception):
    """Enumeration met a float (or an int range too large to list)."""


class _NotInView(ValueError):
    """A genome of option indices asks a choice the categorical view does not hold."""


def load_build_function(spec: str | Callable[..., Any]) -> Callable[..., Any]:
    """The function ``spec`` names: ``module:function``, where the module is imported already (a plug-in the
    experiment lists under ``plugins:``, or a module the caller imported), or ``path/file.py:function`` for a
    plug-in file; a callable is returned as it is. Raises ValueError in one line.

    The space imports no code itself: the run, its workers and ``resume`` import the experiment's plug-ins, and
    the reading commands import them only when asked (``--plugins``, ``--trust``)."""
    if callable(spec):
        return spec
    where = "space 'function': parameter 'build'"
    module_name, _, attr = spec.rpartition(":") if isinstance(spec, str) else ("", "", "")
    if not module_name or not attr:
        raise ValueError(f"{where} must be 'module:function' or 'path/to/file.py:function', got {spec!r}")
    module = _imported(module_name)
    if module is None:
        stem = Path(module_name).stem if _is_path(module_name) else module_name
        listed = module_name if _is_path(module_name) else f"{module_name.replace('.', '/')}.py"
        raise ValueError(
            f"{where}: module '{stem}' is not imported: a run imports it when the experiment lists its file under "
            f"plugins: (plugins: [{listed}]; a path in build: does not import it), and the commands that read a run "
            f"folder (resume, report, export, ...) when given --plugins {listed} or --trust (from Python: "
            f"plugins=['{listed}'])"
        )
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part) and module_name == "__main__":
            raise ValueError(f"{where}: '{spec}' is a function of the script or notebook that started the run (given "
                             "to it as a Python function), which this process cannot import: resume, report or "
                             "export that run from the same script in Python, or move the function to a module file "
                             "and list it under plugins:")  # fmt: skip
        if not hasattr(obj, part):
            import difflib

            names = [n for n, v in vars(obj).items() if callable(v) and not n.startswith("_")] if hasattr(obj, "__dict__") \
                else []  # fmt: skip
            near = difflib.get_close_matches(part, names, n=1)
            mean = f"; did you mean '{near[0]}'?" if near else ""
            raise ValueError(f"{where}: '{module_name}' has no '{attr}'{mean}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{where}: '{spec}' is a {type(obj).__name__}, not a function")
    return obj


def _is_path(name: str) -> bool:
    return name.endswith(".py") or "/" in name or "\\" in name


def _imported(name: str) -> Any:
    """The module ``name`` (a dotted name, or a plug-in file imported under its stem) if it is imported."""
    if not _is_path(name):
        return sys.modules.get(name)
    module = sys.modules.get(Path(name).stem)
    found = getattr(module, "__file__", None)
    return module if found and Path(found).name == Path(name).name else None


def _error_line(exc: BaseException) -> str:
    """``ValueError: message at my_space.py:12``: the line of the user's file that raised (see describe_error)."""
    from evonas.operators.base import describe_error  # here: evonas.operators imports the spaces

    return describe_error(exc)


@dataclasses.dataclass(frozen=True)
class _View:
    """The categorical view: choices in the order met, their distributions, and a problem if there is one."""

    names: tuple[str, ...]
    dists: tuple[_Distribution, ...]
    problem: str | None

    @property
    def choices(self) -> tuple[Choice, ...]:
        return tuple(Choice(n, d.grid()) for n, d in zip(self.names, self.dists))


# -- the space ------------------------------------------------------------------------------------------
@SPACES.register("function")
class FunctionSpace(SearchSpace):
    """A space written as one function ``build(arch, input_shape, num_classes) -> nn.Module`` (see the module).

    ``build``: ``"module:function"`` (the module a plug-in the experiment lists under ``plugins:``, or one the
    caller imported), ``"path/to/file.py:function"`` for a plug-in file, or, from Python, the function itself.
    ``input_shape`` is the shape of one input the function is called with (``[1, 8, 8]`` for the digits; by
    default the run's data's, see :meth:`bind_input`). ``num_classes`` is the number of classes it is called
    with (by default the data's).
    """

    input_ranks = (1, 2, 3, 4)

    def __init__(
        self,
        *,
        build: str | Callable[..., Any],
        input_shape: list[int] | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(build=build, input_shape=input_shape, num_classes=num_classes)
        self._function = load_build_function(build)
        self.input_shape: tuple[int, ...] | None = None
        self.num_classes: int | None = None
        self._bind(input_shape, num_classes)
        self._device = "meta"
        self._replays: dict[ArchGenome, _Replay | str] = {}
        self._view: _View | None = None
        self._choices: tuple[Choice, ...] | None = None
        self._size: int | None | bool = False  # False: not counted yet
        self._from_values: dict[tuple[int, ...], _Replay] = {}
        #: why :meth:`all_genomes` cannot list the genomes (set when it found out)
        self._unlisted = ""
        #: calls of the build function in this process, those that raised what is not InvalidGenome, the first
        self._calls, self._failures = 0, 0
        self._first_error: str | None = None

    @property
    def build_name(self) -> str:
        """The build function as ``module:function`` (as ``build:`` names it)."""
        build = self.params["build"]
        return build if isinstance(build, str) else f"{getattr(build, '__module__', '?')}:{getattr(build, '__qualname__', '?')}"

    def faults(self) -> list[dict[str, Any]]:
        """The build function's calls here and those that raised anything but InvalidGenome (their genomes count as
        invalid): ``[{"kind": "build function", "name": "my_space:build", ...}]`` (the kind is :data:`BUILD_FUNCTION`), or
        none before the first call."""
        return [{"kind": BUILD_FUNCTION, "name": self.build_name, "calls": self._calls, "failures": self._failures,
                 "first_error": self._first_error}] if self._calls else []  # fmt: skip

    # -- the shape the function is called with ----------------------------------------------------------
    def bind_input(self, input_shape: tuple[int, ...], num_classes: int) -> dict[str, Any]:
        """The data's shape: the function is asked with it from now on (a value given as a parameter must agree).
        Returns the parameters taken from the data, which the engine writes into the run's ``space.params``."""
        taken: dict[str, Any] = {}
        if self.input_shape is None:
            taken["input_shape"] = [int(d) for d in input_shape]
        if self.num_classes is None:
            taken["num_classes"] = int(num_classes)
        self._bind(input_shape, num_classes)
        self.params.update(taken)
        return taken

    def _bind(self, input_shape: Sequence[int] | None, num_classes: int | None) -> None:
        """Set the shape of one input and the number of classes the function is asked with (the dataset's);
        a value already set must agree. ``None`` leaves a value as it is."""
        if input_shape is not None:
            ok = isinstance(input_shape, (list, tuple)) and len(input_shape) > 0 and all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in input_shape
            )
            if not ok:
                raise ValueError(
                    f"space 'function': parameter 'input_shape' must be a list of sizes >= 1, got {input_shape!r}"
                )
            shape = tuple(int(d) for d in input_shape)
            if self.input_shape is not None and shape != self.input_shape:
                raise ValueError(
                    f"space 'function': input_shape is {list(self.input_shape)}, the data's is {list(shape)}"
                )
            self.input_shape = shape
            self.example_input_shape = shape  # type: ignore[misc]  # this space's own, once bound to the data
        if num_classes is not None:
            classes = check_int("space 'function': parameter 'num_classes'", num_classes, minimum=1)
            if self.num_classes is not None and classes != self.num_classes:
                raise ValueError(f"space 'function': num_classes is {self.num_classes}, the data has {classes}")
            self.num_classes = classes

    def check_input(self, input_shape: tuple[int, ...]) -> str | None:
        if self.input_shape is not None and tuple(input_shape) != self.input_shape:
            return (
                f"space 'function': parameter input_shape is {list(self.input_shape)}, "
                f"but the data's inputs are {list(input_shape)}"
            )
        return None

    @property
    def build_function(self) -> Callable[..., Any]:
        """The function that builds a network from a genome's choices."""
        return self._function

    def fingerprint(self) -> str:
        """A hash of the build function's source file and the user modules it imports (of its code where no file
        can be read): results of an evaluation cache are for the function as it was written when they were
        computed."""
        fn = self._function
        digest, _ = user_code(fn)
        if digest is not None:
            return digest
        try:
            text = Path(inspect.getsourcefile(fn) or "").read_bytes()
        except (OSError, TypeError):
            code = getattr(fn, "__code__", None)
            text = code.co_code if code is not None else repr(fn).encode()
        return hashlib.sha256(text).hexdigest()[:16]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_replays"], state["_from_values"] = {}, {}
        if isinstance(self.params["build"], str):
            state["_function"] = None  # imported again where the space is unpickled
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._function is None:
            self._function = load_build_function(self.params["build"])

    # -- replays ----------------------------------------------------------------------------------------
    def _shape(self) -> tuple[tuple[int, ...], int]:
        if self.input_shape is None or self.num_classes is None:
            missing = "input_shape" if self.input_shape is None else "num_classes"
            raise ValueError(
                f"space 'function': parameter '{missing}' is not set; the function needs the shape of one input "
                "and the number of classes (e.g. input_shape: [1, 8, 8], num_classes: 10 for the digits)"
            )
        return self.input_shape, self.num_classes

    def _call(self, decide: Decide, shape: tuple[int, ...], classes: int, device: str | None) -> tuple[Arch, Any]:
        import torch  # torch: only when a genome is replayed (evonas list / status never do)

        arch = Arch(decide)
        if device is None:
            return arch, self._function(arch, tuple(shape), classes)
        with torch.device(device):
            return arch, self._function(arch, tuple(shape), classes)

    def _run(
        self, decide: Decide, *, shape: tuple[int, ...] | None = None, classes: int | None = None, real: bool = False
    ) -> tuple[_Replay, Any]:
        """Run the function with ``decide`` choosing values, on the meta device (``real``: for the network itself,
        on the default device). What the function raises, but for InvalidGenome and ChoiceError, becomes an
        InvalidGenome naming it."""
        import torch.nn as nn  # torch: as above

        if shape is None or classes is None:
            shape, classes = self._shape()
        memo: dict[str, Any] = {}

        def remembered(name: str, dist: _Distribution) -> Any:  # a rerun on the CPU takes the same values
            if name not in memo:
                memo[name] = decide(name, dist)
            return memo[name]

        device = None if real else self._device
        self._calls += 1
        try:
            arch, net = self._call(remembered, shape, classes, device)
        except ChoiceError as exc:
            raise _located(exc) from None
        except _PASSED:
            raise
        except Exception as exc:
            if device != "meta":
                raise self._fault(exc) from None
            try:  # the function needs real tensors (a forward pass to size a layer, .item()): on the CPU
                arch, net = self._call(remembered, shape, classes, "cpu")
            except ChoiceError as again:
                raise _located(again) from None
            except _PASSED:
                raise
            except Exception as again:
                raise self._fault(again) from None
            self._device = "cpu"
        if not isinstance(net, nn.Module):  # a fault of the build function, counted as what it raises is
            line = f"returned {type(net).__name__}, not a torch.nn.Module"
            self._count_fault(line)
            raise InvalidGenome(f"the build function {line}")
        return _Replay(tuple((n, d, v) for n, (d, v) in arch.asked.items())), net

    def _replay(self, values: Mapping[str, Any], rng: random.Random | None = None) -> _Replay:
        """The function run with ``values``: a value that is missing or not allowed is drawn from ``rng``, or
        (no ``rng``) refused with an InvalidGenome naming the choice. Values it does not ask are left out."""

        def decide(name: str, dist: _Distribution) -> Any:
            if name in values:
                value = dist.coerce(values[name])
                problem = dist.problem(value)
                if problem is None:
                    return value
                if rng is None:
                    raise InvalidGenome(f"{name}={values[name]!r} {problem}")
            elif rng is None:
                raise InvalidGenome(f"{name}: missing (the function asks for this {dist.kind} given the other choices)")
            return dist.draw(rng)

        return self._run(decide)[0]

    def _genome(self, replay: _Replay) -> ArchGenome:
        """The genome of a replay's values, which is valid (each value allowed, exactly the choices asked): its
        replay is remembered, so validating it runs nothing."""
        genome = replay.genome()
        if len(self._replays) >= _CACHE_SIZE:
            self._replays.clear()
        self._replays.setdefault(genome, replay)
        return genome

    def _checked(self, genome: Genome) -> _Replay:
        """The replay of a genome's own values (cached); InvalidGenome if a value is missing or not allowed."""
        if type(genome) is not ArchGenome:
            raise InvalidGenome(f"expected an ArchGenome, got {type(genome).__name__}")
        found = self._replays.get(genome)
        if found is None:
            pairs = genome.choices
            if not isinstance(pairs, tuple) or not all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
                raise InvalidGenome("choices: expected a tuple of (name, value) pairs")
            names = [p[0] for p in pairs]
            if not all(isinstance(n, str) for n in names) or names != sorted(set(names)):
                raise InvalidGenome("choices: expected pairs sorted by name, each name once (ArchGenome.of makes them)")
            try:
                found = self._replay(genome.as_dict())
            except InvalidGenome as exc:
                found = str(exc)
            if len(self._replays) >= _CACHE_SIZE:
                self._replays.clear()
            self._replays[genome] = found
        if isinstance(found, str):
            raise InvalidGenome(found)
        return found

    def _fault(self, exc: BaseException) -> InvalidGenome:
        """An exception the build function raised (counted: :meth:`faults`), as the reason its genome is invalid."""
        line = _error_line(exc)
        self._count_fault(line)
        return InvalidGenome(f"the build function raised {line}")

    def _count_fault(self, line: str) -> None:
        """One more call of the build function that failed (:meth:`faults`); ``line`` says how, if it is the first."""
        self._failures += 1
        self._first_error = self._first_error or line

    # -- the contract -----------------------------------------------------------------------------------
    def sample(self, *, rng: random.Random) -> ArchGenome:
        last = ""
        for _ in range(SAMPLE_TRIES):
            try:
                return self._genome(self._replay({}, rng))
            except InvalidGenome as exc:
                last = str(exc)
        raise ValueError(f"space 'function': no valid genome in {SAMPLE_TRIES} random draws (last: {last})")

    def normalise(self, values: Mapping[str, Any], *, rng: random.Random) -> ArchGenome:
        """The genome the function builds from ``values``: choices it does not ask are dropped, and those it asks
        that ``values`` lacks (or holds a value not allowed for) are drawn from ``rng``. What operators return."""
        return self._genome(self._replay(values, rng))

    def validate(self, genome: Genome) -> None:
        replay = self._checked(genome)
        extra = sorted(set(genome.names()) - replay.names())  # type: ignore[attr-defined]
        if extra:
            raise InvalidGenome(f"{extra[0]}: inactive (the function does not ask for it given the other choices)")

    def canonical(self, genome: Genome) -> Genome:
        """``genome`` without its inactive choices (an invalid genome is returned as it is)."""
        try:
            replay = self._checked(genome)
        except InvalidGenome:
            return genome
        return replay.genome()

    def from_dict(self, data: Mapping[str, Any]) -> ArchGenome:
        """The genome stored as ``{name: value}``; inactive choices the function can ask elsewhere are dropped."""
        if not isinstance(data, Mapping):
            raise InvalidGenome(f"genome: expected a mapping of choice names to values, got {type(data).__name__}")
        for name, value in data.items():
            if not isinstance(name, str):
                raise InvalidGenome(f"genome: choice names must be strings, got {name!r}")
            if not isinstance(value, _SCALARS) or isinstance(value, float) and not math.isfinite(value):
                raise InvalidGenome(f"{name}: expected a string, finite number, boolean or null, got {value!r}")
        try:
            replay = self._replay(dict(data))
        except InvalidGenome as exc:  # a choice missing: a name the function never asks is likely its misspelling
            unknown = self._never_asked(data)
            if unknown:
                raise InvalidGenome(f"{exc}; the genome's '{unknown[0]}' is not a choice of the function "
                                    "(misspelt?)") from None  # fmt: skip
            raise
        unknown = self._never_asked(sorted(set(data) - replay.names()))
        if unknown:
            raise InvalidGenome(f"{unknown[0]}: not a choice of the function (it never asks for it)")
        return self._genome(replay)

    def _never_asked(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` the function never asks (by its explored view; none where that view has a problem)."""
        names = list(names)
        if not names:
            return []
        view = self._explored()
        return [n for n in names if n not in view.names] if view.problem is None else []

    def to_dict(self, genome: Genome) -> dict[str, Any]:
        """``{name: value}`` in the order the function asks the choices (the journal and ``evonas show`` keep it;
        the key does not depend on it); in name order for a genome the function cannot replay here."""
        try:
            return {n: v for n, _, v in self._checked(genome).asked}
        except ValueError:  # InvalidGenome, or no input shape to replay with
            return genome.as_dict()  # type: ignore[attr-defined]

    def active_choices(self, genome: Genome) -> list[tuple[str, _Distribution, Any]]:
        """``(name, distribution, value)`` of each active choice of a valid genome, in the order the function asks."""
        self.validate(genome)
        return list(self._checked(genome).asked)

    def hparams(self, genome: Genome) -> dict[str, Any]:
        values = genome.as_dict()  # type: ignore[attr-defined]
        return {name: values[name] for name in HPARAM_NAMES if name in values}

    def describe(self, genome: Genome) -> str:
        return describe_choices(self.to_dict(genome).items())

    def decode(self, genome: Genome, *, input_shape: tuple[int, ...], num_classes: int) -> Any:
        """The network of ``genome`` for inputs of ``input_shape``: the function run for real with its values."""
        if type(genome) is not ArchGenome:
            raise InvalidGenome(f"expected an ArchGenome, got {type(genome).__name__}")
        values = genome.as_dict()  # type: ignore[attr-defined]
        replay, net = self._run(
            lambda name, dist: _strict(values, name, dist),
            shape=tuple(input_shape), classes=int(num_classes), real=True,
        )
        extra = sorted(set(values) - replay.names())
        if extra:
            raise InvalidGenome(f"{extra[0]}: inactive (the function does not ask for it given the other choices)")
        return net

    # -- enumeration (grid) -----------------------------------------------------------------------------
    def _enumerate(self, limit: int) -> list[ArchGenome] | None:
        """Every genome in the order the function's decisions branch (depth first), or ``None`` past ``limit``."""
        out: list[ArchGenome] = []
        path: list[int] = []
        start = said = time.monotonic()
        while True:
            if time.monotonic() - said > ENUMERATION_NOTE_S:  # each genome runs the build function: it may take long
                said = time.monotonic()
                print(f"evonas: space 'function': listing its genomes (each runs the build function): {len(out):,} so "
                      f"far in {said - start:.0f} s, at most {limit:,} are listed", file=sys.stderr, flush=True)  # fmt: skip
            sizes: list[int] = []

            def decide(name: str, dist: _Distribution) -> Any:
                options = dist.values(limit)
                if options is None:
                    raise _Infinite(name, "continuous" if isinstance(dist, FloatRange) else dist.kind)
                k = len(sizes)
                sizes.append(len(options))
                return options[path[k] if k < len(path) else 0]

            try:
                out.append(self._run(decide)[0].genome())
            except InvalidGenome:
                pass
            except _Infinite as exc:
                name, kind = exc.args
                if kind == "continuous":
                    what = ("is a float, so the space is infinite (ask it with arch.choice over a few values, or a "
                            "float with a step, to enumerate it)")
                else:
                    fix = "a larger step" if kind == "float" else "fewer values (arch.choice over a few, or a step)"
                    what = f"has more than {limit:,} values (ask it with {fix} to enumerate it)"
                self._unlisted = f"the choice '{name}' {what}"
                return None
            if len(out) > limit:
                self._unlisted = f"it has more than {limit:,} genomes"
                return None
            path = [path[k] if k < len(path) else 0 for k in range(len(sizes))]
            while path and path[-1] + 1 >= sizes[len(path) - 1]:
                path.pop()
            if not path:
                return out
            path[-1] += 1

    @property
    def size(self) -> int | None:
        """The number of genomes when every choice is a category or an int and there are at most
        :data:`ENUMERATION_LIMIT`; else ``None`` (a float makes the space infinite)."""
        if self._size is False:
            genomes = self._enumerate(ENUMERATION_LIMIT)
            self._size = None if genomes is None else len(genomes)
        return self._size  # type: ignore[return-value]

    def all_genomes(self) -> Iterator[ArchGenome]:
        genomes = self._enumerate(ENUMERATION_LIMIT)
        if genomes is None:
            raise NotImplementedError(f"space 'function' cannot list its genomes: {self._unlisted}")
        return iter(genomes)

    # -- categorical view -------------------------------------------------------------------------------
    def _explored(self) -> _View:
        """Every choice the function can ask, by a bounded, seeded exploration (see the module)."""
        if self._view is not None:
            return self._view
        rng = random.Random(0)
        dists: dict[str, _Distribution] = {}
        problem: str | None = None
        replays = 0

        def learn(replay: _Replay) -> bool:
            nonlocal problem
            new = False
            for name, dist, _ in replay.asked:
                if name not in dists:
                    dists[name] = dist
                    new = True
                elif dists[name] != dist and problem is None:
                    problem = (
                        f"space 'function': choice '{name}' is asked as {_a(dists[name])} and elsewhere as {_a(dist)}; "
                        "the categorical view needs one set of options per name"
                    )
            return new

        def first(name: str, dist: _Distribution) -> Any:
            return dist.grid()[0]

        bases: list[_Replay] = []
        for draw in [None] + [rng] * EXPLORE_SAMPLES:
            try:
                bases.append(self._run(first)[0] if draw is None else self._replay({}, draw))
            except InvalidGenome:
                pass
            replays += 1
        for base in bases:
            learn(base)
        queue = list(bases)
        while queue and replays < EXPLORE_LIMIT:
            base = queue.pop(0)
            values = {n: v for n, _, v in base.asked}
            for name, dist, value in base.asked:
                for option in dist.grid():
                    if replays >= EXPLORE_LIMIT:
                        break
                    if option == value:
                        continue
                    replays += 1
                    try:
                        replay = self._replay({**values, name: option}, rng)
                    except InvalidGenome:
                        continue
                    if learn(replay):
                        queue.append(replay)
        if queue and problem is None:
            problem = (
                f"space 'function': exploring the function's choices took more than {EXPLORE_LIMIT} replays; "
                "the categorical view may miss some"
            )
        self._view = _View(tuple(dists), tuple(dists.values()), problem)
        return self._view

    def _complete_view(self) -> _View:
        view = self._explored()
        if view.problem is not None:
            raise ValueError(view.problem)
        if self._choices is None:
            self._choices = view.choices
        return view

    def categorical(self) -> tuple[Choice, ...]:
        return self._complete_view().choices

    def to_categorical(self, genome: Genome) -> tuple[int, ...]:
        self.validate(genome)
        view = self._complete_view()
        values = genome.as_dict()  # type: ignore[attr-defined]
        missing = sorted(set(values) - set(view.names))
        if missing:
            raise ValueError(f"space 'function': choice '{missing[0]}' is not in the categorical view")
        return tuple(d.nearest(values[n]) if n in values else 0 for n, d in zip(view.names, view.dists))

    def _from_indices(self, values: Sequence[int]) -> _Replay:
        view = self._complete_view()
        choices = self._choices
        assert choices is not None  # set by _complete_view
        values = check_values(choices, values, self.name)
        found = self._from_values.get(values)
        if found is not None:
            return found
        where = {n: i for i, n in enumerate(view.names)}

        def decide(name: str, dist: _Distribution) -> Any:
            i = where.get(name)
            if i is None:
                raise _NotInView(f"space 'function': choice '{name}' is not in the categorical view")
            if view.dists[i] != dist:
                raise _NotInView(
                    f"space 'function': choice '{name}' is asked as {_a(dist)}, the view has {_a(view.dists[i])}"
                )
            return choices[i].options[values[i]]

        found = self._run(decide)[0]
        if len(self._from_values) >= _CACHE_SIZE:
            self._from_values.clear()
        self._from_values[values] = found
        return found

    def from_categorical(self, values: Sequence[int]) -> ArchGenome:
        return self._genome(self._from_indices(values))

    def categorical_active(self, values: Sequence[int]) -> tuple[bool, ...]:
        names = self._from_indices(values).names()
        return tuple(n in names for n in self._complete_view().names)

    def encode(self, genome: Genome) -> list[float]:
        """One-hot of the categorical view, then each number's exact value scaled to [0, 1] (0 when inactive)."""
        genome = self.canonical(genome)
        view = self._complete_view()
        values = genome.as_dict()  # type: ignore[attr-defined]
        exact = [
            d.scaled(values[n]) if n in values else 0.0
            for n, d in zip(view.names, view.dists)
            if not isinstance(d, Categorical)
        ]
        return one_hot(self, genome) + exact


#: what a replay lets through as it is (the others are the build function's own errors)
_PASSED = (InvalidGenome, ChoiceError, _Infinite, _NotInView)


def _located(exc: ChoiceError) -> ChoiceError:
    """``exc`` with the line of the build function that asked the choice wrongly (``at my_space.py:12``)."""
    from evonas.operators.base import raised_at  # (operators import the spaces)

    where = raised_at(exc)
    return ChoiceError(f"{exc} at {where}") if where and not str(exc).endswith(f" at {where}") else exc


def _strict(values: Mapping[str, Any], name: str, dist: _Distribution) -> Any:
    if name not in values:
        raise InvalidGenome(f"{name}: missing (the function asks for this {dist.kind} given the other choices)")
    problem = dist.problem(values[name])
    if problem is not None:
        raise InvalidGenome(f"{name}={values[name]!r} {problem}")
    return values[name]
