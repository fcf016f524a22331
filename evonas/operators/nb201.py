"""Operators of the ``nb201`` space: change one edge's op; uniform crossover of edges."""

from __future__ import annotations

import dataclasses
import random

from evonas.operators.base import CROSSOVERS, MUTATIONS, Crossover, Mutation
from evonas.spaces.base import Genome, SearchSpace
from evonas.spaces.nb201 import NB201Genome, NB201Space

__all__ = ["NB201ChangeEdge", "NB201Uniform"]


@MUTATIONS.register("nb201_change_edge")
class NB201ChangeEdge(Mutation):
    """Pick one edge uniformly and give it a different op from the space's op set."""

    spaces = ("nb201",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        assert isinstance(genome, NB201Genome) and isinstance(space, NB201Space)
        i = rng.randrange(len(genome.edges))
        choices = [op for op in space.ops if op != genome.edges[i]]
        if not choices:  # a one-op space: nothing to change
            return genome
        edges = list(genome.edges)
        edges[i] = rng.choice(choices)
        return dataclasses.replace(genome, edges=tuple(edges))


@CROSSOVERS.register("nb201_uniform")
class NB201Uniform(Crossover):
    """Uniform crossover: each edge where the parents differ is swapped with probability 1/2.

    Swapping none or all of them would just copy the parents, so such draws are
    repeated; parents that differ on fewer than two edges are returned as they are.
    """

    spaces = ("nb201",)

    def _crossover(
        self, a: Genome, b: Genome, *, space: SearchSpace, rng: random.Random
    ) -> tuple[Genome, Genome]:
        assert isinstance(a, NB201Genome) and isinstance(b, NB201Genome)
        differ = [i for i, (x, y) in enumerate(zip(a.edges, b.edges)) if x != y]
        if len(differ) < 2:
            return a, b
        while True:
            swap = {i for i in differ if rng.random() < 0.5}
            if 0 < len(swap) < len(differ):
                break
        c1 = tuple(b.edges[i] if i in swap else a.edges[i] for i in range(len(a.edges)))
        c2 = tuple(a.edges[i] if i in swap else b.edges[i] for i in range(len(b.edges)))
        return dataclasses.replace(a, edges=c1), dataclasses.replace(b, edges=c2)
