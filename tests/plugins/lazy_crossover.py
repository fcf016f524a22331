"""A crossover for tests with a bug: it gives back its two parents (it mixed copies and threw them away)."""

from __future__ import annotations

import random
from typing import Any

from evonas.operators import CROSSOVERS, Crossover


@CROSSOVERS.register("returns_parents")
class ReturnsParents(Crossover):
    spaces = ("nb201",)

    def _crossover(self, a: Any, b: Any, *, space: Any, rng: random.Random) -> Any:
        return a, b  # mixed copies it threw away
