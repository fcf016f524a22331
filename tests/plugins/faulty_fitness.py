"""A fitness for tests that fails on a known share of genomes (raise, NaN), scoring the rest like ``toy``."""

from __future__ import annotations

import hashlib
from typing import Any

from evonas.fitness import FITNESSES, FitnessFunction


@FITNESSES.register("faulty")
class FaultyFitness(FitnessFunction):
    needs_dataset = False

    def __init__(self, fail_every: int = 3) -> None:
        self.params = {"fail_every": fail_every}

    def evaluate(self, genome: Any, *, space: Any, dataset: Any, seed: int) -> dict[str, float]:
        h = int.from_bytes(hashlib.sha256(space.key(genome).encode()).digest()[:8], "little")
        kind = h % self.params["fail_every"]
        if kind == 0:
            raise RuntimeError("injected failure")
        score = 2.0 + (h % 1000) / 1000  # failures must never look better than this
        if kind == 1 and h % 2:
            return {"val_acc": float("nan")}
        return {"val_acc": score}
