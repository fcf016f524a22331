"""Layer-list spaces (``chain``, ``mlp``): a variable-length list of layer genes plus training hyperparameters.

A :class:`LayeredGenome` is a tuple of per-layer genes plus the four hyperparameter genes of
:mod:`evonas.spaces.hparams`. :class:`LayerListSpace` implements everything that does not depend on the
layer type once (parameters, sampling, validation, JSON parsing, the categorical view), so a concrete space
only says how to sample, check, mutate, describe and build one layer; the list edits built on these hooks
(add / remove / change a layer, one-point crossover) are in :mod:`evonas.operators.chain`.

Categorical view (:mod:`evonas.spaces.encoding`): ``depth`` (from ``min_layers`` to ``max_layers``), then for
every layer slot up to ``max_layers`` one choice per layer field (``layers[2].width``; the options of
``space.layer_options(())``), then ``lr`` on a log grid of :data:`LR_GRID_POINTS` storable values, then
``optimizer``, ``weight_decay`` and ``batch_size``. ``from_categorical`` builds the layers in order, and a
field value that does not fit next to the earlier layers (a third stride-2 layer where two are allowed)
takes the first option that does, so every index vector gives a valid genome. ``to_categorical`` maps a
learning rate to the nearest grid point (the only lossy step), and the encoding appends the exact
learning rate on a log scale in [0, 1].
"""

from __future__ import annotations

import dataclasses
import math
import random
from abc import abstractmethod
from typing import Any, ClassVar, Mapping, Sequence, cast

from evonas.spaces.base import Choice, Genome, InvalidGenome, SearchSpace, one_hot
from evonas.spaces.defaults import load_space_params
from evonas.spaces.encoding import check_values
from evonas.spaces.genes import parse_fields
from evonas.spaces.hparams import HPARAM_FIELDS, HParamSpec, round_lr
from evonas.spaces.parameters import ParamReader

__all__ = [
    "ACTIVATION_NAMES", "LR_GRID_POINTS", "LayerListSpace", "LayeredGenome", "layered", "layer_list_active",
    "layer_list_choices", "layer_list_encode", "layer_list_genome", "layer_list_values", "lr_grid",
]

#: the activations the ``activations`` parameter of the layer-list spaces may name (modules:
#: :data:`evonas.spaces.layers.ACTIVATIONS`)
ACTIVATION_NAMES: tuple[str, ...] = ("relu", "gelu", "silu", "tanh", "elu", "leaky_relu")
#: learning rates a layer-list genome's ``lr`` choice offers (log-spaced from ``lr_min`` to ``lr_max``).
LR_GRID_POINTS = 8


@dataclasses.dataclass(frozen=True)
class LayeredGenome(Genome):
    """A tuple of layer genes plus the four hyperparameter genes."""

    layers: tuple[Any, ...]
    lr: float
    optimizer: str
    weight_decay: float
    batch_size: int


def layered(genome: Genome) -> LayeredGenome:
    """``genome`` typed as the :class:`LayeredGenome` a layer-list space holds (no check: ``validate`` checks)."""
    return cast(LayeredGenome, genome)


class LayerListSpace(SearchSpace):
    """A space whose genomes are a variable-length layer list plus hyperparameters.

    Parameters come from ``genomes/<name>.yaml`` overridden by the keyword
    arguments: ``min_layers``, ``max_layers``, the :class:`HParamSpec` keys, and
    whatever :meth:`_read_layer_params` reads. Unknown or malformed parameters
    raise :class:`ValueError`.

    Parameters:
        min_layers: the fewest layers a genome has.
        max_layers: the most layers a genome has.
        widths: the widths (output channels or units) a layer may have.
        activations: the activations a layer may have (names in :data:`~evonas.spaces.layered.ACTIVATION_NAMES`).
        lr_min: the smallest learning rate (log-uniform between ``lr_min`` and ``lr_max``, 3 significant digits).
        lr_max: the largest learning rate.
        optimizers: the optimizers a genome may train with (``adam``, ``adamw``, ``sgd``).
        weight_decays: the weight decays a genome may train with.
        batch_sizes: the batch sizes a genome may train with.
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
        layers = layered(genome).layers
        if not isinstance(layers, tuple):
            raise InvalidGenome(f"layers: expected a tuple, got {type(layers).__name__}")
        if not self.min_layers <= len(layers) <= self.max_layers:
            raise InvalidGenome(f"layers: {len(layers)} layers, outside [{self.min_layers}, {self.max_layers}]")
        for i, layer in enumerate(layers):
            if type(layer) is not self.layer_type:
                raise InvalidGenome(f"layers[{i}]: expected a {self.layer_type.__name__}, got {type(layer).__name__}")
            self.validate_layer(layer, f"layers[{i}]")
        self.validate_layers(layers)
        self.hp.validate(layered(genome))

    def from_dict(self, data: Mapping[str, Any]) -> LayeredGenome:
        kwargs = parse_fields(self.genome_type, data, "", skip=("layers",))
        raw = data["layers"]
        if not isinstance(raw, (list, tuple)):
            raise InvalidGenome(f"layers: expected a list, got {type(raw).__name__}")
        kwargs["layers"] = tuple(
            self.layer_type(**parse_fields(self.layer_type, item, f"layers[{i}]")) for i, item in enumerate(raw)
        )
        genome = self.genome_type(**kwargs)
        self.validate(genome)
        return genome

    def hparams(self, genome: Genome) -> dict[str, Any]:
        return {name: getattr(genome, name) for name in HPARAM_FIELDS}

    def describe(self, genome: Genome) -> str:
        g = layered(genome)
        body = "-".join(self.describe_layer(layer) for layer in g.layers) or "(no layers)"
        return f"{body} | {self.hp.describe(g)}"

    # -- categorical view and encoding (see the module docstring) --------------
    def layer_options(self, others: Sequence[Any]) -> dict[str, tuple[Any, ...]]:
        """Allowed values of each layer field for a layer after ``others`` (``()``: every value)."""
        raise NotImplementedError(f"space '{self.name}' declares no layer_options()")

    def categorical(self) -> tuple[Choice, ...]:
        return layer_list_choices(self)

    def to_categorical(self, genome: Genome) -> tuple[int, ...]:
        return layer_list_values(self, genome)

    def from_categorical(self, values: Sequence[int]) -> LayeredGenome:
        return layer_list_genome(self, values)

    def categorical_active(self, values: Sequence[int]) -> tuple[bool, ...]:
        return layer_list_active(self, values)

    def encode(self, genome: Genome) -> list[float]:
        return layer_list_encode(self, genome)

    def layers_fit(self, layers: Sequence[Any]) -> bool:
        """Whether ``layers`` meet the depth bounds and :meth:`validate_layers` (used to pick crossover cuts)."""
        if not self.min_layers <= len(layers) <= self.max_layers:
            return False
        try:
            self.validate_layers(layers)
        except InvalidGenome:
            return False
        return True


# -- the categorical view -------------------------------------------------------------------------------
def lr_grid(space: LayerListSpace) -> tuple[float, ...]:
    """:data:`LR_GRID_POINTS` storable learning rates, log-spaced over the space's range (repeats merged)."""
    low, high = space.hp.lr_low, space.hp.lr_high
    n = LR_GRID_POINTS
    points = [low * (high / low) ** (i / (n - 1)) for i in range(n)]
    grid = []
    for p in points:
        lr = min(high, max(low, round_lr(p)))
        if lr not in grid:
            grid.append(lr)
    return tuple(grid)


def _fields(space: LayerListSpace) -> dict[str, tuple[Any, ...]]:
    return {name: tuple(options) for name, options in space.layer_options(()).items()}


def layer_list_choices(space: LayerListSpace) -> tuple[Choice, ...]:
    """The categorical view of a layer-list space (see the module docstring)."""
    fields = _fields(space)
    choices = [Choice("depth", tuple(range(space.min_layers, space.max_layers + 1)))]
    for i in range(space.max_layers):
        choices.extend(Choice(f"layers[{i}].{name}", options) for name, options in fields.items())
    choices.append(Choice("lr", lr_grid(space)))
    choices.append(Choice("optimizer", space.hp.optimizers))
    choices.append(Choice("weight_decay", space.hp.weight_decays))
    choices.append(Choice("batch_size", space.hp.batch_sizes))
    return tuple(choices)


def layer_list_values(space: LayerListSpace, genome: Genome) -> tuple[int, ...]:
    """The categorical values of a layer-list genome (empty slots 0, ``lr`` the nearest grid point)."""
    space.validate(genome)
    genome = layered(genome)
    fields = _fields(space)
    values = [len(genome.layers) - space.min_layers]
    for i in range(space.max_layers):
        layer = genome.layers[i] if i < len(genome.layers) else None
        for name, options in fields.items():
            values.append(options.index(getattr(layer, name)) if layer is not None else 0)
    grid = lr_grid(space)
    values.append(min(range(len(grid)), key=lambda j: abs(math.log(grid[j]) - math.log(genome.lr))))
    values.append(space.hp.optimizers.index(genome.optimizer))
    values.append(space.hp.weight_decays.index(genome.weight_decay))
    values.append(space.hp.batch_sizes.index(genome.batch_size))
    return tuple(values)


def layer_list_genome(space: LayerListSpace, values: Sequence[int]) -> LayeredGenome:
    """The layer-list genome of categorical ``values``; field values that do not fit the earlier layers are repaired."""
    choices = layer_list_choices(space)
    values = check_values(choices, values, space.name)
    fields = _fields(space)
    depth = choices[0].options[values[0]]
    layers: list[Any] = []
    pos = 1
    for i in range(space.max_layers):
        if i < depth:
            allowed = space.layer_options(tuple(layers))
            kwargs = {}
            for j, (name, options) in enumerate(fields.items()):
                value = options[values[pos + j]]
                kwargs[name] = value if value in allowed[name] else allowed[name][0]
            layers.append(space.layer_type(**kwargs))
        pos += len(fields)
    lr, opt, wd, bs = (choices[pos + j].options[values[pos + j]] for j in range(4))
    genome = space.genome_type(layers=tuple(layers), lr=lr, optimizer=opt, weight_decay=wd, batch_size=bs)
    space.validate(genome)
    return genome


def layer_list_active(space: LayerListSpace, values: Sequence[int]) -> tuple[bool, ...]:
    """Which choices a layer-list genome uses: all but the fields of the slots past its depth."""
    n_fields = len(_fields(space))
    depth = space.min_layers + int(values[0])
    active = [True]
    for i in range(space.max_layers):
        active.extend([i < depth] * n_fields)
    active.extend([True] * 4)
    return tuple(active)


def layer_list_encode(space: LayerListSpace, genome: Genome) -> list[float]:
    """One-hot of the categorical view plus the exact learning rate on a log scale in [0, 1]."""
    low, high = space.hp.lr_low, space.hp.lr_high
    genome = layered(genome)
    scaled = 0.0 if high <= low else (math.log(genome.lr) - math.log(low)) / (math.log(high) - math.log(low))
    return one_hot(space, genome) + [scaled]
