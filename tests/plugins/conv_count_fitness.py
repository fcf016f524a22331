"""A synthetic nb201 objective for strategy tests: the number of ``nor_conv_3x3`` edges, plus a little noise.

``val_acc`` = (number of ``nor_conv_3x3`` edges of the canonical cell + ``noise`` x a hash of the key in
[0, 1)) / 7: a smooth landscape (each edge counts on its own) whose optimum, six convolutions, a strategy
that learns finds far more often than random sampling does.
"""

from __future__ import annotations

import hashlib
from typing import Any

from evonas.fitness import FITNESSES, FitnessFunction


@FITNESSES.register("conv_count")
class ConvCountFitness(FitnessFunction):
    needs_dataset = False
    metrics = ("val_acc",)

    def __init__(self, noise: float = 0.5) -> None:
        self.params = {"noise": noise}

    def evaluate(self, genome: Any, *, space: Any, dataset: Any, seed: int) -> dict[str, float]:
        key = space.key(genome)
        u = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") / 2**64
        convs = sum(op == "nor_conv_3x3" for op in space.canonical(genome).edges)
        return {"val_acc": (convs + self.params["noise"] * u) / 7}
