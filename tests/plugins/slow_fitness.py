"""A fitness for tests that takes ``seconds`` per evaluation and notes which process ran it.

Each evaluation appends the evaluating process's id to ``<log_dir>/<key>.pids`` when it starts, so a
test can kill that process in the middle of the evaluation and check afterwards that it was redone.
Scores like ``toy`` (deterministic per genome).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from evonas.fitness import FITNESSES, FitnessFunction


@FITNESSES.register("slow")
class SlowFitness(FitnessFunction):
    needs_dataset = False

    def __init__(self, seconds: float = 1.0, log_dir: str | None = None) -> None:
        self.params = {"seconds": seconds, "log_dir": log_dir}

    def evaluate(self, genome: Any, *, space: Any, dataset: Any, seed: int) -> dict[str, float]:
        key = space.key(genome)
        if self.params["log_dir"]:
            with open(Path(self.params["log_dir"]) / f"{key}.pids", "a") as fh:
                fh.write(f"{os.getpid()}\n")
        time.sleep(self.params["seconds"])
        return {"val_acc": int(key, 16) % 1000 / 1000}
