"""A plugin that registers a name the built-ins already use."""

from evonas.operators import MUTATIONS, Mutation


@MUTATIONS.register("chain_add_layer")
class Again(Mutation):
    def _mutate(self, genome, *, space, rng):
        return genome
