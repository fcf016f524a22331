"""A fitness for tests that keeps ``leak_mib`` MiB more of the worker's memory at each evaluation (a leak).

It reports the evaluating process's id and its memory before this evaluation's leak, so a test can tell when
a worker was replaced by a fresh process. Scores like ``toy`` (deterministic per genome).
"""

from __future__ import annotations

import os
from typing import Any

from evonas.engine.pool import own_memory_gib
from evonas.fitness import FITNESSES, FitnessFunction

_KEPT: list[bytes] = []


@FITNESSES.register("leaky")
class LeakyFitness(FitnessFunction):
    needs_dataset = False
    metrics = ("val_acc", "pid", "memory_gib")

    def __init__(self, leak_mib: int = 100) -> None:
        self.params = {"leak_mib": leak_mib}

    def evaluate(self, genome: Any, *, space: Any, dataset: Any, seed: int) -> dict[str, float]:
        before = own_memory_gib()
        _KEPT.append(b"x" * (self.params["leak_mib"] << 20))  # written, so resident
        key = space.key(genome)
        return {"val_acc": int(key, 16) % 1000 / 1000, "pid": os.getpid(), "memory_gib": before}
