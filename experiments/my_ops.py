"""A user-written mutation operator, loaded by experiments/custom_mutation.yaml (``plugins: [my_ops]``).

``widen_layer`` moves one layer of a ``chain`` genome to the next larger width
the space allows. The base class does the bookkeeping: it retries when the
child is invalid or unchanged, and the parent is never modified (genomes are
frozen; ``dataclasses.replace`` makes new ones).
"""

from __future__ import annotations

import dataclasses
import random

from evonas.operators import MUTATIONS, Mutation
from evonas.spaces import Genome, SearchSpace
from evonas.spaces.chain import ChainGenome, ChainSpace


@MUTATIONS.register("widen_layer")
class WidenLayer(Mutation):
    """Give one randomly chosen layer the next larger allowed width."""

    spaces = ("chain",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        assert isinstance(genome, ChainGenome) and isinstance(space, ChainSpace)  # spaces = ("chain",): always
        i = rng.randrange(len(genome.layers))
        layer = genome.layers[i]
        wider = [w for w in sorted(space.widths) if w > layer.width]
        if not wider:
            return genome  # already the widest: the base class tries again with another layer
        layers = list(genome.layers)
        layers[i] = dataclasses.replace(layer, width=wider[0])
        return dataclasses.replace(genome, layers=tuple(layers))
