"""Operators of the ``function`` space: change one or a few active choices, uniform crossover over shared choices.

A changed value is a step from the old one: a Gaussian step over the range for an ``arch.int`` or
``arch.float`` (on a log scale for ``log=True``), another option for an ``arch.choice``. The child is
then normalised by replaying the function (:meth:`~evonas.spaces.function.FunctionSpace.normalise`): a
change to ``depth`` drops the choices of the layers it removes and draws those of the layers it adds
from the space, so a child never holds an inactive choice; a combination the function refuses
(``InvalidGenome``) is drawn again. A plug-in operator for this space works the
same way: edit ``genome.as_dict()`` and return ``space.normalise(values, rng=rng)``.
"""

from __future__ import annotations

import random
from typing import Any

from evonas.operators.base import CROSSOVERS, MAX_TRIES, MUTATIONS, Crossover, Mutation
from evonas.spaces import Genome, InvalidGenome, SearchSpace

__all__ = ["FunctionChangeFew", "FunctionChangeOne", "FunctionUniform", "change_choices", "uniform_crossover"]

#: the most choices :class:`FunctionChangeFew` changes at once
FEW = 3


def _function_space(space: SearchSpace) -> Any:
    if not callable(getattr(space, "normalise", None)) or not callable(getattr(space, "active_choices", None)):
        raise TypeError(f"operator needs a define-by-run space (function), got '{space.name}'")
    return space


def change_choices(space: SearchSpace, genome: Genome, count: int, *, rng: random.Random) -> Genome:
    """``genome`` with ``count`` random active choices (among those with another value) stepped, normalised."""
    fspace = _function_space(space)
    movable = [(name, dist, value) for name, dist, value in fspace.active_choices(genome) if dist.varies()]
    if not movable:
        return genome
    values = genome.as_dict()  # type: ignore[attr-defined]
    for name, dist, value in rng.sample(movable, min(count, len(movable))):
        values[name] = dist.mutate(value, rng)
    return fspace.normalise(values, rng=rng)


def uniform_crossover(space: SearchSpace, a: Genome, b: Genome, *, rng: random.Random) -> tuple[Genome, Genome]:
    """Each choice both parents hold goes to either child with probability 1/2; a child keeps its own parent's
    other choices, takes a choice it newly activates from the other parent when that one holds it, and draws it
    from the space otherwise."""
    fspace = _function_space(space)
    pa, pb = a.as_dict(), b.as_dict()  # type: ignore[attr-defined]
    shared = sorted(set(pa) & set(pb))
    x, y = dict(pa), dict(pb)
    for name in shared:
        if rng.random() < 0.5:
            x[name], y[name] = y[name], x[name]
    return _child(fspace, x, pa, pb, shared, rng), _child(fspace, y, pb, pa, shared, rng)


def _child(fspace: Any, values: dict[str, Any], own: dict[str, Any], other: dict[str, Any], shared: list[str],
           rng: random.Random) -> Genome:
    """``values`` (``own``'s choices, some shared ones taken from ``other``) normalised. Where the function refuses
    the combination (InvalidGenome), this child alone is drawn again, each shared choice from either parent with
    probability 1/2, up to MAX_TRIES times: the other child is kept."""
    for _ in range(MAX_TRIES - 1):
        try:
            return fspace.normalise({**other, **values}, rng=rng)
        except InvalidGenome:
            values = {**own, **{name: (other if rng.random() < 0.5 else own)[name] for name in shared}}
    return fspace.normalise({**other, **values}, rng=rng)


@MUTATIONS.register("function_change_one")
class FunctionChangeOne(Mutation):
    """Change one active choice (a step for numbers, another option for categories); newly active choices drawn."""

    spaces = ("function",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        return change_choices(space, genome, 1, rng=rng)


@MUTATIONS.register("function_change_few")
class FunctionChangeFew(Mutation):
    """Change 2 or 3 active choices at once (a bigger jump than ``function_change_one``)."""

    spaces = ("function",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        return change_choices(space, genome, rng.randint(2, FEW), rng=rng)


@CROSSOVERS.register("function_uniform")
class FunctionUniform(Crossover):
    """Uniform crossover over the choices both parents hold, children normalised by replaying the function."""

    spaces = ("function",)

    def _crossover(self, a: Genome, b: Genome, *, space: SearchSpace, rng: random.Random) -> tuple[Genome, Genome]:
        return uniform_crossover(space, a, b, rng=rng)
