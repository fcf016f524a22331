"""Variation operators: :class:`Mutation` and :class:`Crossover`, the classes plugins subclass.

The public ``__call__`` does the bookkeeping (the child is valid, the parent is
untouched because genomes are frozen); the subclass writes the small protected
``_mutate`` / ``_crossover`` (the pymoo ``do()`` / ``_do()`` pattern). The
random generator is always passed in.

Example, a plugin module named in an experiment file as ``plugins: [my_ops]``::

    import dataclasses
    from evonas.operators import MUTATIONS, Mutation

    @MUTATIONS.register("halve_lr")
    class HalveLR(Mutation):
        spaces = ("chain",)

        def _mutate(self, genome, *, space, rng):
            return dataclasses.replace(genome, lr=genome.lr / 2)
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from evonas.registry import Registry
from evonas.spaces.base import Genome, SearchSpace

__all__ = ["Operator", "Mutation", "Crossover", "MUTATIONS", "CROSSOVERS", "MAX_TRIES"]

#: attempts an operator gets to produce a valid, changed child before the parent is returned.
MAX_TRIES = 10


class Operator(ABC):
    """Shared plumbing: a registry ``name``, the ``spaces`` it applies to (empty: any), keyword params."""

    name: ClassVar[str] = ""
    spaces: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        if params:
            raise TypeError(f"{type(self).__name__} takes no parameters, got {sorted(params)}")

    @classmethod
    def applies_to(cls, space: SearchSpace | str) -> bool:
        name = space if isinstance(space, str) else space.name
        return not cls.spaces or name in cls.spaces

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Mutation(Operator):
    """``child = mutation(parent, space=space, rng=rng)``: a valid genome, preferably different."""

    def __call__(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        for _ in range(MAX_TRIES):
            child = self._mutate(genome, space=space, rng=rng)
            if child != genome and space.is_valid(child):
                return child
        return genome

    @abstractmethod
    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        """Return a new genome; may be invalid (the caller retries), must not modify ``genome``."""


class Crossover(Operator):
    """``c1, c2 = crossover(p1, p2, space=space, rng=rng)``: two valid children."""

    def __call__(
        self, a: Genome, b: Genome, *, space: SearchSpace, rng: random.Random
    ) -> tuple[Genome, Genome]:
        for _ in range(MAX_TRIES):
            c1, c2 = self._crossover(a, b, space=space, rng=rng)
            if space.is_valid(c1) and space.is_valid(c2):
                return c1, c2
        return a, b

    @abstractmethod
    def _crossover(
        self, a: Genome, b: Genome, *, space: SearchSpace, rng: random.Random
    ) -> tuple[Genome, Genome]:
        """Return two new genomes; may be invalid (the caller retries), must not modify the parents."""


MUTATIONS: Registry[type[Mutation]] = Registry("mutation")
CROSSOVERS: Registry[type[Crossover]] = Registry("crossover")
