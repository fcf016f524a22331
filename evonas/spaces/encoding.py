"""Space-level views of genomes for model-based and policy-based strategies.

Two views, implemented by every built-in space (as :class:`~evonas.spaces.base.SearchSpace` methods):

- **Categorical view**: a fixed list of :class:`Choice` (a name and its options); a genome is one option
  index per choice. ``space.categorical()`` lists the choices, ``space.to_categorical(genome)`` gives the
  indices, ``space.from_categorical(values)`` builds the genome back, and
  ``space.categorical_active(values)`` says which choices the genome actually uses (the layer slots past
  the depth of a layer-list genome do not). ``to_categorical(from_categorical(v))`` equals ``v`` on the
  active choices whenever ``v`` is consistent (see the layer-list notes below), and
  ``from_categorical(to_categorical(g)) == g`` for every genome of a purely categorical space (``nb201``).
- **Numeric encoding**: ``space.encode(genome)``, a fixed-length list of floats for surrogate models: by
  default the one-hot of the categorical view of the *canonical* genome, inactive choices all zero, so
  genomes that share a key share an encoding.

``nb201``: 6 choices (``edge[j<-i]``) over the space's op set; encoding 6 x len(ops) one-hot.

Layer-list spaces (``chain``, ``mlp``): ``depth`` (from ``min_layers`` to ``max_layers``), then for every
layer slot up to ``max_layers`` one choice per layer field (``layers[2].width``; the options of
``space.layer_options(())``), then ``lr`` on a log grid of :data:`LR_GRID_POINTS` storable values, then
``optimizer``, ``weight_decay`` and ``batch_size``. ``from_categorical`` builds the layers in order, and a
field value that does not fit next to the earlier layers (a third stride-2 layer where two are allowed)
takes the first option that does, so every index vector gives a valid genome. ``to_categorical`` maps a
learning rate to the nearest grid point (the only lossy step), and the encoding appends the exact
learning rate on a log scale in [0, 1].

Example::

    space = make_space("nb201")
    g = space.sample(rng=random.Random(0))
    values = space.to_categorical(g)          # e.g. (3, 1, 0, 4, 2, 3)
    assert space.from_categorical(values) == g
    x = space.encode(g)                       # 30 floats
"""

from __future__ import annotations

import dataclasses
import math
import operator
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from evonas.spaces.base import Genome, SearchSpace
    from evonas.spaces.hparams import LayerListSpace

__all__ = [
    "Choice",
    "LR_GRID_POINTS",
    "check_values",
    "layer_list_active",
    "layer_list_choices",
    "layer_list_encode",
    "layer_list_genome",
    "layer_list_values",
    "lr_grid",
    "one_hot",
    "require_categorical",
    "require_encoding",
]

#: learning rates a layer-list genome's ``lr`` choice offers (log-spaced from ``lr_min`` to ``lr_max``).
LR_GRID_POINTS = 8


@dataclasses.dataclass(frozen=True)
class Choice:
    """One categorical decision of a genome: a ``name`` (``edge[1<-0]``, ``layers[0].width``) and its options."""

    name: str
    options: tuple[Any, ...]

    def __len__(self) -> int:
        return len(self.options)


def check_values(choices: Sequence[Choice], values: Sequence[int], space: str) -> tuple[int, ...]:
    """``values`` as a tuple of ints, one valid option index per choice; else a ValueError naming the choice."""
    if len(values) != len(choices):
        raise ValueError(f"space '{space}': expected {len(choices)} categorical values, got {len(values)}")
    out = []
    for choice, v in zip(choices, values):
        try:
            if isinstance(v, bool):
                raise TypeError
            v = operator.index(v)  # ints and numpy integers
        except TypeError:
            raise ValueError(f"space '{space}': {choice.name}: expected an option index, got {v!r}") from None
        if not 0 <= v < len(choice.options):
            raise ValueError(f"space '{space}': {choice.name}: index {v} outside 0..{len(choice.options) - 1}")
        out.append(v)
    return tuple(out)


def one_hot(space: SearchSpace, genome: Genome) -> list[float]:
    """The one-hot of ``genome``'s categorical values (inactive choices all zero): the default encoding."""
    choices = space.categorical()
    values = space.to_categorical(genome)
    active = space.categorical_active(values)
    out: list[float] = []
    for choice, v, on in zip(choices, values, active):
        block = [0.0] * len(choice.options)
        if on:
            block[v] = 1.0
        out.extend(block)
    return out


def neighbours(space: SearchSpace, genome: Genome) -> list[Genome]:
    """Every genome one categorical change away from ``genome`` (active choices only), in choice order."""
    values = list(space.to_categorical(genome))
    active = space.categorical_active(values)
    out: list[Genome] = []
    for i, (choice, on) in enumerate(zip(space.categorical(), active)):
        if on:
            out += [space.from_categorical(values[:i] + [v] + values[i + 1 :]) for v in range(len(choice.options)) if v != values[i]]
    return out


def require_categorical(space: SearchSpace, strategy: str) -> tuple[Choice, ...]:
    """``space.categorical()``, or a ValueError saying that ``strategy`` needs a categorical view of the space."""
    try:
        choices = tuple(space.categorical())
    except NotImplementedError:
        raise ValueError(
            f"strategy '{strategy}' needs a categorical view of space '{space.name}' "
            "(implement categorical(), to_categorical() and from_categorical())"
        ) from None
    if not choices:
        raise ValueError(f"strategy '{strategy}': space '{space.name}' has an empty categorical view")
    return choices


def require_encoding(space: SearchSpace, strategy: str) -> None:
    """Raise a ValueError unless ``space`` has a numeric encoding (its own ``encode`` or a categorical view)."""
    from evonas.spaces.base import SearchSpace as _Base

    if type(space).encode is _Base.encode:
        require_categorical(space, strategy)


# -- layer-list spaces --------------------------------------------------------------------------------
def lr_grid(space: LayerListSpace) -> tuple[float, ...]:
    """:data:`LR_GRID_POINTS` storable learning rates, log-spaced over the space's range (repeats merged)."""
    from evonas.spaces.hparams import round_lr

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


def layer_list_genome(space: LayerListSpace, values: Sequence[int]) -> Genome:
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
    scaled = 0.0 if high <= low else (math.log(genome.lr) - math.log(low)) / (math.log(high) - math.log(low))
    return one_hot(space, genome) + [scaled]
