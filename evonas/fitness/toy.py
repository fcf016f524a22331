"""``toy``: a cheap, deterministic, training-free score for tests and demos.

The score is a pure function of the genome's key (a pseudo-random number in
[0, 1)), so a run's results depend only on what the strategy asks. ``sleep``
adds a fixed delay per evaluation (to exercise parallel backends).
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from evonas.fitness.base import FITNESSES, FitnessFunction
from evonas.spaces.base import Genome, SearchSpace

__all__ = ["ToyFitness"]


@FITNESSES.register("toy")
class ToyFitness(FitnessFunction):
    """``val_acc`` = a hash of the genome key scaled to [0, 1); ``size`` = length of its JSON form."""

    needs_dataset = False
    cacheable = False  # cheaper than a lookup
    metrics = ("val_acc", "size")
    metric_ranges = {"val_acc": (0.0, 1.0), "size": (0.0, math.inf)}

    def __init__(self, sleep: float = 0.0) -> None:
        if sleep < 0:
            raise ValueError("sleep: expected seconds >= 0")
        self.params = {"sleep": sleep}

    def evaluate(self, genome: Genome, *, space: SearchSpace, dataset: Any, seed: int) -> dict[str, float]:
        key = space.key(genome)
        h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
        if self.params["sleep"]:
            time.sleep(self.params["sleep"])
        return {"val_acc": (h % 1_000_000) / 1_000_000, "size": float(len(str(space.to_dict(genome))))}
