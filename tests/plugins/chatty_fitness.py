"""A fitness for tests that prints a lot, without ending its last line, scoring like ``toy``."""

from __future__ import annotations

import sys
from typing import Any

from evonas.fitness import FITNESSES
from evonas.fitness.toy import ToyFitness


@FITNESSES.register("chatty")
class ChattyFitness(ToyFitness):
    def __init__(self, chars: int = 40_000) -> None:
        super().__init__()
        self.chars = chars

    def evaluate(self, genome: Any, *, space: Any, dataset: Any, seed: int) -> dict[str, float]:
        sys.stdout.write("E" * self.chars)  # no newline at the end
        sys.stderr.write("e" * (self.chars // 4))
        return super().evaluate(genome, space=space, dataset=dataset, seed=seed)
