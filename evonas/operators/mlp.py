"""Operators of the ``mlp`` space: add / remove / change a layer, change a hyperparameter, one-point crossover.

The layer-list edits are shared with ``chain`` and live in
:mod:`evonas.operators.chain`; these classes name them for the registries.
"""

from __future__ import annotations

import random

from evonas.operators.base import CROSSOVERS, MUTATIONS, Crossover, Mutation
from evonas.operators.chain import (
    add_layer,
    change_hparam,
    change_layer,
    layer_space,
    one_point_crossover,
    remove_layer,
)
from evonas.spaces.base import Genome, SearchSpace
from evonas.spaces.layered import layered

__all__ = ["MLPAddLayer", "MLPChangeLayer", "MLPHParam", "MLPOnePoint", "MLPRemoveLayer"]


@MUTATIONS.register("mlp_add_layer")
class MLPAddLayer(Mutation):
    """Insert a random hidden layer at a random position (up to ``max_layers``)."""

    spaces = ("mlp",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        return add_layer(layer_space(space), layered(genome), rng=rng)


@MUTATIONS.register("mlp_remove_layer")
class MLPRemoveLayer(Mutation):
    """Drop a random hidden layer (down to ``min_layers``)."""

    spaces = ("mlp",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        return remove_layer(layer_space(space), layered(genome), rng=rng)


@MUTATIONS.register("mlp_change_layer")
class MLPChangeLayer(Mutation):
    """Change one field (width, activation, dropout) of one hidden layer."""

    spaces = ("mlp",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        return change_layer(layer_space(space), layered(genome), rng=rng)


@MUTATIONS.register("mlp_hparam")
class MLPHParam(Mutation):
    """Change one hyperparameter: ``lr`` by a log-normal step clipped to range, the others resampled."""

    spaces = ("mlp",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        return change_hparam(layer_space(space), layered(genome), rng=rng)


@CROSSOVERS.register("mlp_one_point")
class MLPOnePoint(Crossover):
    """One-point crossover of the layer lists within the depth bounds; each hyperparameter from either parent."""

    spaces = ("mlp",)

    def _crossover(
        self, a: Genome, b: Genome, *, space: SearchSpace, rng: random.Random
    ) -> tuple[Genome, Genome]:
        return one_point_crossover(layer_space(space), layered(a), layered(b), rng=rng)
