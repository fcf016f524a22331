"""A plug-in space whose frozen genome holds a list, and a mutation that changes that list in place (as DEAP's
operators change what they are given) and returns the genome: for tests."""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Mapping

from evonas.operators import MUTATIONS, Mutation
from evonas.spaces import SPACES, Genome, InvalidGenome, SearchSpace


@dataclasses.dataclass(frozen=True)
class ListGenome(Genome):
    widths: list[int]


@SPACES.register("t_list_genome")
class ListGenomeSpace(SearchSpace):
    def sample(self, *, rng: random.Random) -> ListGenome:
        return ListGenome([rng.choice([4, 8, 16]) for _ in range(3)])

    def validate(self, genome: Genome) -> None:
        if not isinstance(genome, ListGenome) or len(genome.widths) != 3 or any(w not in (4, 8, 16) for w in genome.widths):
            raise InvalidGenome(f"not a genome of t_list_genome: {genome!r}")

    def decode(self, genome: Genome, *, input_shape: tuple[int, ...], num_classes: int) -> Any:
        raise NotImplementedError

    def from_dict(self, data: Mapping[str, Any]) -> ListGenome:
        return ListGenome(list(data["widths"]))


@MUTATIONS.register("t_list_in_place")
class InPlace(Mutation):
    spaces = ("t_list_genome",)

    def _mutate(self, genome: Any, *, space: Any, rng: random.Random) -> Any:
        i = rng.randrange(3)
        genome.widths[i] = rng.choice([w for w in (4, 8, 16) if w != genome.widths[i]])
        return genome
