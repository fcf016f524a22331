"""Genes shared by the layer-list spaces (``chain``, ``mlp``): training hyperparameters and the layer list.

A :class:`LayeredGenome` is a tuple of per-layer genes plus four hyperparameter
genes (``lr``, ``optimizer``, ``weight_decay``, ``batch_size``) whose ranges an
:class:`HParamSpec` holds. :class:`LayerListSpace` implements everything that
does not depend on the layer type once (parameters, sampling, validation, JSON
parsing), so a concrete space only says how to sample, check, mutate, describe
and build one layer; the list edits built on these hooks (add / remove / change
a layer, one-point crossover) are in :mod:`evonas.operators.chain`.

The learning rate is sampled on a log scale and stored rounded to 3
significant digits, so equal-looking genomes share a key.
"""

from __future__ import annotations

import dataclasses
import math
import random
from abc import abstractmethod
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any, Callable, ClassVar, Mapping, Sequence

from evonas.spaces import encoding
from evonas.spaces.base import Genome, InvalidGenome, SearchSpace
from evonas.spaces.defaults import load_space_params
from evonas.spaces.encoding import Choice

__all__ = [
    "ACTIVATION_NAMES", "HPARAM_FIELDS", "LR_LOG_STEP", "OPTIMIZERS", "HParamSpec", "LayerListSpace",
    "LayeredGenome", "ParamReader", "change_one", "check_choice", "format_number", "round_lr",
]

#: the activations the ``activations`` parameter of the layer-list spaces may name (modules:
#: :data:`evonas.spaces.layers.ACTIVATIONS`)
ACTIVATION_NAMES: tuple[str, ...] = ("relu", "gelu", "silu", "tanh", "elu", "leaky_relu")
#: optimizer names a genome may carry (the trainer maps them to ``torch.optim`` classes).
OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd")
#: the hyperparameter genes, in genome order.
HPARAM_FIELDS: tuple[str, ...] = ("lr", "optimizer", "weight_decay", "batch_size")
#: standard deviation of the log-normal learning-rate mutation step (natural log).
LR_LOG_STEP = 0.5


# -- small helpers -----------------------------------------------------------
def _sig3(x: float, rounding: str) -> float:
    d = Decimal(repr(float(x)))
    return float(d.quantize(Decimal(1).scaleb(d.adjusted() - 2), rounding=rounding))


def round_lr(x: float) -> float:
    """``x`` rounded to 3 significant digits (idempotent), the form learning rates are stored in."""
    return _sig3(x, ROUND_HALF_EVEN)


def format_number(x: float) -> str:
    """Compact text for a small number: ``0.003``, ``1e-4``, ``2.5e-5``, ``0``."""
    if x == 0:
        return "0"
    if abs(x) < 1e-3:
        mant, exp = f"{x:.2e}".split("e")
        mant = mant.rstrip("0").rstrip(".")
        return f"{mant}e{int(exp)}"
    return f"{x:.3g}"


def check_choice(value: Any, choices: Sequence[Any], where: str, param: str) -> None:
    """Raise :class:`InvalidGenome` unless ``value`` is one of ``choices`` (of the same type: ``True`` is not ``1``)."""
    kind = type(choices[0])
    if type(value) is not kind:
        raise InvalidGenome(f"{where}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    if value not in choices:
        raise InvalidGenome(f"{where}={value!r} is not in {param} {list(choices)}")


def change_one(obj: Any, options: Mapping[str, Sequence[Any]], *, rng: random.Random) -> Any:
    """A copy of dataclass ``obj`` with one field (among those with an alternative) set to another allowed value.

    Returns ``obj`` itself when no field has an alternative.
    """
    movable = [name for name, values in options.items() if any(v != getattr(obj, name) for v in values)]
    if not movable:
        return obj
    name = rng.choice(movable)
    value = rng.choice([v for v in options[name] if v != getattr(obj, name)])
    return dataclasses.replace(obj, **{name: value})


_SCALARS: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}


def _parse_fields(cls: type, data: Any, where: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Keyword arguments for dataclass ``cls`` from JSON ``data``, checking names and scalar types."""
    prefix = f"{where}." if where else ""
    if not isinstance(data, Mapping):
        raise InvalidGenome(f"{where or 'genome'}: expected a mapping, got {type(data).__name__}")
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    unknown = sorted(str(k) for k in data if k not in names)
    if unknown:
        raise InvalidGenome(f"{prefix}{unknown[0]}: unknown field (expected {sorted(names)})")
    out: dict[str, Any] = {}
    for f in fields:
        if f.name not in data:
            raise InvalidGenome(f"{prefix}{f.name}: missing")
        if f.name in skip:
            continue
        kind = _SCALARS[f.type if isinstance(f.type, str) else f.type.__name__]
        value = data[f.name]
        if kind is float and type(value) is int:
            value = float(value)  # some JSON writers store 0.0 as 0
        if type(value) is not kind or (kind is float and not math.isfinite(value)):
            raise InvalidGenome(f"{prefix}{f.name}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
        out[f.name] = value
    return out


# -- space parameters --------------------------------------------------------
class ParamReader:
    """Reads and checks a space's keyword parameters; every problem is a :class:`ValueError` naming the parameter."""

    def __init__(self, space: str, params: Mapping[str, Any]) -> None:
        self.space = space
        self._params = dict(params)
        self._used: set[str] = set()

    def error(self, key: str, message: str) -> ValueError:
        return ValueError(f"space '{self.space}': parameter '{key}' {message}")

    def _get(self, key: str) -> Any:
        if key not in self._params:
            raise ValueError(f"space '{self.space}': missing parameter '{key}'")
        self._used.add(key)
        return self._params[key]

    def integer(self, key: str, *, minimum: int = 0) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"must be an integer >= {minimum}, got {value!r}")
        return value

    def number(self, key: str, *, minimum: float = 0.0, exclusive: bool = False) -> float:
        """A finite number (YAML's ``1e-4``, read as a string, is accepted) ``>= minimum`` (``>`` if ``exclusive``)."""
        value = _coerce(self._get(key), float)
        if value is None or value < minimum or (exclusive and value == minimum):
            op = ">" if exclusive else ">="
            raise self.error(key, f"must be a finite number {op} {minimum}, got {self._params[key]!r}")
        return value

    def choices(
        self, key: str, kind: type, *, allowed: Sequence[Any] | None = None, check: Callable[[Any], bool] | None = None,
        what: str = "",
    ) -> tuple[Any, ...]:
        """A non-empty list of distinct ``kind`` values, each in ``allowed`` and passing ``check``."""
        raw = self._get(key)
        if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence) or not raw:
            raise self.error(key, f"must be a non-empty list, got {raw!r}")
        out = []
        for item in raw:
            value = _coerce(item, kind)
            if value is None or (allowed is not None and value not in allowed) or (check and not check(value)):
                want = f"one of {list(allowed)}" if allowed is not None else (what or kind.__name__)
                raise self.error(key, f"has a bad entry {item!r}: expected {want}")
            if value in out:
                raise self.error(key, f"lists {item!r} twice")
            out.append(value)
        return tuple(out)

    def finish(self) -> None:
        """Raise for parameters nobody read (typos)."""
        unknown = sorted(set(self._params) - self._used)
        if unknown:
            known = ", ".join(sorted(self._used))
            raise ValueError(f"space '{self.space}': unknown parameter '{unknown[0]}'; expected one of: {known}")


def _coerce(value: Any, kind: type) -> Any:
    """``value`` as ``kind``, or ``None`` if it is not one (bools are never numbers; floats are finite)."""
    if isinstance(value, bool):
        return value if kind is bool else None
    if kind is float and isinstance(value, (int, float, str)):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return value if type(value) is kind else None


# -- hyperparameter genes ----------------------------------------------------
@dataclasses.dataclass(frozen=True)
class HParamSpec:
    """The allowed values of the four hyperparameter genes, read from a space's parameters."""

    lr_min: float
    lr_max: float
    optimizers: tuple[str, ...]
    weight_decays: tuple[float, ...]
    batch_sizes: tuple[int, ...]

    @classmethod
    def read(cls, reader: ParamReader) -> HParamSpec:
        """Parse ``lr_min``, ``lr_max``, ``optimizers``, ``weight_decays``, ``batch_sizes``."""
        lr_min = reader.number("lr_min", exclusive=True)
        lr_max = reader.number("lr_max", exclusive=True)
        if lr_max < lr_min:
            raise reader.error("lr_max", f"({lr_max}) must be >= lr_min ({lr_min})")
        if _sig3(lr_min, ROUND_CEILING) > _sig3(lr_max, ROUND_FLOOR):
            raise reader.error("lr_max", f"leaves no 3-significant-digit learning rate in [{lr_min}, {lr_max}]")
        return cls(
            lr_min=lr_min,
            lr_max=lr_max,
            optimizers=reader.choices("optimizers", str, allowed=OPTIMIZERS),
            weight_decays=reader.choices("weight_decays", float, check=lambda v: v >= 0, what="numbers >= 0"),
            batch_sizes=reader.choices("batch_sizes", int, check=lambda v: v >= 1, what="integers >= 1"),
        )

    @property
    def lr_low(self) -> float:
        """Smallest storable learning rate (``lr_min`` rounded up to 3 significant digits)."""
        return _sig3(self.lr_min, ROUND_CEILING)

    @property
    def lr_high(self) -> float:
        """Largest storable learning rate (``lr_max`` rounded down to 3 significant digits)."""
        return _sig3(self.lr_max, ROUND_FLOOR)

    def _fit_lr(self, lr: float) -> float:
        return min(self.lr_high, max(self.lr_low, round_lr(lr)))

    def sample(self, *, rng: random.Random) -> dict[str, Any]:
        """Random hyperparameter genes: ``lr`` log-uniform, the others uniform over their sets."""
        lr = math.exp(rng.uniform(math.log(self.lr_low), math.log(self.lr_high)))
        return {
            "lr": self._fit_lr(lr),
            "optimizer": rng.choice(self.optimizers),
            "weight_decay": rng.choice(self.weight_decays),
            "batch_size": rng.choice(self.batch_sizes),
        }

    def mutate_one(self, genome: Genome, *, rng: random.Random) -> dict[str, Any]:
        """The change of one gene: ``lr`` by a clipped log-normal step, or a categorical gene resampled.

        Returns ``{}`` when no gene has an alternative value.
        """
        options: dict[str, Sequence[Any]] = {
            "optimizer": self.optimizers, "weight_decay": self.weight_decays, "batch_size": self.batch_sizes,
        }
        movable = [n for n, vals in options.items() if any(v != getattr(genome, n) for v in vals)]
        if self.lr_low < self.lr_high:
            movable.insert(0, "lr")
        if not movable:
            return {}
        name = rng.choice(movable)
        if name == "lr":
            return {"lr": self._fit_lr(genome.lr * math.exp(rng.gauss(0.0, LR_LOG_STEP)))}
        return {name: rng.choice([v for v in options[name] if v != getattr(genome, name)])}

    def validate(self, genome: Genome) -> None:
        """Raise :class:`InvalidGenome` naming the first hyperparameter gene outside this spec."""
        lr = genome.lr
        if type(lr) is not float or not math.isfinite(lr):
            raise InvalidGenome(f"lr: expected a finite float, got {lr!r}")
        if not self.lr_low <= lr <= self.lr_high:
            raise InvalidGenome(f"lr={lr!r} is outside [{self.lr_low}, {self.lr_high}]")
        if lr != round_lr(lr):
            raise InvalidGenome(f"lr={lr!r} has more than 3 significant digits")
        check_choice(genome.optimizer, self.optimizers, "optimizer", "optimizers")
        check_choice(genome.weight_decay, self.weight_decays, "weight_decay", "weight_decays")
        check_choice(genome.batch_size, self.batch_sizes, "batch_size", "batch_sizes")

    @staticmethod
    def describe(genome: Genome) -> str:
        return (
            f"{genome.optimizer} lr={format_number(genome.lr)} "
            f"wd={format_number(genome.weight_decay)} bs={genome.batch_size}"
        )


# -- the layer-list space ----------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LayeredGenome(Genome):
    """A tuple of layer genes plus the four hyperparameter genes."""

    layers: tuple[Any, ...]
    lr: float
    optimizer: str
    weight_decay: float
    batch_size: int


class LayerListSpace(SearchSpace):
    """A space whose genomes are a variable-length layer list plus hyperparameters.

    Parameters come from ``genomes/<name>.yaml`` overridden by the keyword
    arguments: ``min_layers``, ``max_layers``, the :class:`HParamSpec` keys, and
    whatever :meth:`_read_layer_params` reads. Unknown or malformed parameters
    raise :class:`ValueError`.
    """

    genome_type: ClassVar[type[LayeredGenome]] = LayeredGenome
    layer_type: ClassVar[type] = object

    def __init__(self, **params: Any) -> None:
        merged = {**load_space_params(self.name), **params}
        super().__init__(**merged)
        reader = ParamReader(self.name, merged)
        self.min_layers = reader.integer("min_layers", minimum=0)
        self.max_layers = reader.integer("max_layers", minimum=max(1, self.min_layers))
        self.hp = HParamSpec.read(reader)
        self._read_layer_params(reader)
        reader.finish()

    # -- per-layer hooks ---------------------------------------------------
    @abstractmethod
    def _read_layer_params(self, reader: ParamReader) -> None:
        """Read and store the layer-gene parameters."""

    @abstractmethod
    def sample_layer(self, *, rng: random.Random, others: Sequence[Any]) -> Any:
        """A random layer gene that can join the layers ``others``."""

    @abstractmethod
    def validate_layer(self, layer: Any, where: str) -> None:
        """Raise :class:`InvalidGenome` (prefixed by ``where``) if ``layer`` is not allowed."""

    def validate_layers(self, layers: Sequence[Any]) -> None:
        """Constraints across layers; none by default."""

    @abstractmethod
    def mutate_layer(self, layer: Any, *, rng: random.Random, others: Sequence[Any]) -> Any:
        """``layer`` with one field changed, fitting next to ``others`` (``layer`` itself if nothing can change)."""

    @abstractmethod
    def describe_layer(self, layer: Any) -> str:
        """A few characters for :meth:`describe`."""

    # -- the contract ------------------------------------------------------
    def sample(self, *, rng: random.Random) -> LayeredGenome:
        layers: list[Any] = []
        for _ in range(rng.randint(self.min_layers, self.max_layers)):
            layers.append(self.sample_layer(rng=rng, others=tuple(layers)))
        return self.genome_type(layers=tuple(layers), **self.hp.sample(rng=rng))

    def validate(self, genome: Genome) -> None:
        if type(genome) is not self.genome_type:
            raise InvalidGenome(f"expected a {self.genome_type.__name__}, got {type(genome).__name__}")
        layers = genome.layers
        if not isinstance(layers, tuple):
            raise InvalidGenome(f"layers: expected a tuple, got {type(layers).__name__}")
        if not self.min_layers <= len(layers) <= self.max_layers:
            raise InvalidGenome(f"layers: {len(layers)} layers, outside [{self.min_layers}, {self.max_layers}]")
        for i, layer in enumerate(layers):
            if type(layer) is not self.layer_type:
                raise InvalidGenome(f"layers[{i}]: expected a {self.layer_type.__name__}, got {type(layer).__name__}")
            self.validate_layer(layer, f"layers[{i}]")
        self.validate_layers(layers)
        self.hp.validate(genome)

    def from_dict(self, data: Mapping[str, Any]) -> LayeredGenome:
        kwargs = _parse_fields(self.genome_type, data, "", skip=("layers",))
        raw = data["layers"]
        if not isinstance(raw, (list, tuple)):
            raise InvalidGenome(f"layers: expected a list, got {type(raw).__name__}")
        kwargs["layers"] = tuple(
            self.layer_type(**_parse_fields(self.layer_type, item, f"layers[{i}]")) for i, item in enumerate(raw)
        )
        genome = self.genome_type(**kwargs)
        self.validate(genome)
        return genome

    def hparams(self, genome: Genome) -> dict[str, Any]:
        return {name: getattr(genome, name) for name in HPARAM_FIELDS}

    def describe(self, genome: Genome) -> str:
        body = "-".join(self.describe_layer(layer) for layer in genome.layers) or "(no layers)"
        return f"{body} | {self.hp.describe(genome)}"

    # -- categorical view and encoding (see evonas.spaces.encoding) -------------
    def layer_options(self, others: Sequence[Any]) -> dict[str, tuple[Any, ...]]:
        """Allowed values of each layer field for a layer after ``others`` (``()``: every value)."""
        raise NotImplementedError(f"space '{self.name}' declares no layer_options()")

    def categorical(self) -> tuple[Choice, ...]:
        return encoding.layer_list_choices(self)

    def to_categorical(self, genome: Genome) -> tuple[int, ...]:
        return encoding.layer_list_values(self, genome)

    def from_categorical(self, values: Sequence[int]) -> LayeredGenome:
        return encoding.layer_list_genome(self, values)

    def categorical_active(self, values: Sequence[int]) -> tuple[bool, ...]:
        return encoding.layer_list_active(self, values)

    def encode(self, genome: Genome) -> list[float]:
        return encoding.layer_list_encode(self, genome)

    def layers_fit(self, layers: Sequence[Any]) -> bool:
        """Whether ``layers`` meet the depth bounds and :meth:`validate_layers` (used to pick crossover cuts)."""
        if not self.min_layers <= len(layers) <= self.max_layers:
            return False
        try:
            self.validate_layers(layers)
        except InvalidGenome:
            return False
        return True
