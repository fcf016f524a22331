"""Operators of the ``chain`` space: add / remove / change a layer, change a hyperparameter, one-point crossover.

The edits themselves live in :class:`~evonas.spaces.hparams.LayerListSpace`
(shared with ``mlp``); these classes name them for the registries.
"""

from __future__ import annotations

import random

from evonas.operators.base import CROSSOVERS, MUTATIONS, Crossover, Mutation
from evonas.spaces.base import Genome, SearchSpace
from evonas.spaces.hparams import LayerListSpace

__all__ = ["ChainAddLayer", "ChainChangeLayer", "ChainHParam", "ChainOnePoint", "ChainRemoveLayer", "layer_space"]


def layer_space(space: SearchSpace) -> LayerListSpace:
    """``space`` if it is a layer-list space, else a ``TypeError`` (these operators need its edits)."""
    if not isinstance(space, LayerListSpace):
        raise TypeError(f"operator needs a layer-list space (chain, mlp), got '{space.name}'")
    return space


@MUTATIONS.register("chain_add_layer")
class ChainAddLayer(Mutation):
    """Insert a random layer at a random position (up to ``max_layers``)."""

    spaces = ("chain",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        return layer_space(space).add_layer(genome, rng=rng)


@MUTATIONS.register("chain_remove_layer")
class ChainRemoveLayer(Mutation):
    """Drop a random layer (down to ``min_layers``)."""

    spaces = ("chain",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        return layer_space(space).remove_layer(genome, rng=rng)


@MUTATIONS.register("chain_change_layer")
class ChainChangeLayer(Mutation):
    """Change one field (kernel, width, stride, activation, batch norm, residual) of one layer."""

    spaces = ("chain",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        return layer_space(space).change_layer(genome, rng=rng)


@MUTATIONS.register("chain_hparam")
class ChainHParam(Mutation):
    """Change one hyperparameter: ``lr`` by a log-normal step clipped to range, the others resampled."""

    spaces = ("chain",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        return layer_space(space).change_hparam(genome, rng=rng)


@CROSSOVERS.register("chain_one_point")
class ChainOnePoint(Crossover):
    """One-point crossover of the layer lists within the depth bounds; each hyperparameter from either parent."""

    spaces = ("chain",)

    def _crossover(
        self, a: Genome, b: Genome, *, space: SearchSpace, rng: random.Random
    ) -> tuple[Genome, Genome]:
        return layer_space(space).one_point_crossover(a, b, rng=rng)
