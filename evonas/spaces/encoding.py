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

Layer-list spaces (``chain``, ``mlp``): see :mod:`evonas.spaces.layered`.

:class:`Choice` and the default encoding :func:`one_hot` are part of the space contract
(:mod:`evonas.spaces.base`); this module adds what strategies build on the views.

Example::

    space = make_space("nb201")
    g = space.sample(rng=random.Random(0))
    values = space.to_categorical(g)          # e.g. (3, 1, 0, 4, 2, 3)
    assert space.from_categorical(values) == g
    x = space.encode(g)                       # 30 floats
"""

from __future__ import annotations

import operator
from typing import Sequence

from evonas.spaces.base import Choice, Genome, SearchSpace, UnsuitedSpace, one_hot

__all__ = [
    "Choice",
    "check_values",
    "neighbours",
    "one_hot",
    "require_categorical",
    "require_encoding",
]


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


def neighbours(space: SearchSpace, genome: Genome) -> list[Genome]:
    """Every genome one categorical change away from ``genome`` (active choices only), in choice order."""
    values = list(space.to_categorical(genome))
    active = space.categorical_active(values)
    out: list[Genome] = []
    for i, (choice, on) in enumerate(zip(space.categorical(), active)):
        if on:
            others = (v for v in range(len(choice.options)) if v != values[i])
            out += [space.from_categorical(values[:i] + [v] + values[i + 1 :]) for v in others]
    return out


def require_categorical(space: SearchSpace, strategy: str) -> tuple[Choice, ...]:
    """``space.categorical()``, or a ValueError saying that ``strategy`` needs a categorical view of the space."""
    try:
        choices = tuple(space.categorical())
    except NotImplementedError:
        raise UnsuitedSpace(
            f"strategy '{strategy}' needs a categorical view of space '{space.name}' "
            "(implement categorical(), to_categorical() and from_categorical())"
        ) from None
    if not choices:
        raise UnsuitedSpace(f"strategy '{strategy}': space '{space.name}' has an empty categorical view")
    return choices


def require_encoding(space: SearchSpace, strategy: str) -> None:
    """Raise a ValueError unless ``space`` has a numeric encoding (its own ``encode`` or a categorical view)."""
    if type(space).encode is SearchSpace.encode:
        require_categorical(space, strategy)
