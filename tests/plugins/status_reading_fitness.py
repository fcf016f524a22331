"""A fitness for tests that reads ``evonas status`` of its own run while it evaluates (``workers: 0``: in-process)."""

from __future__ import annotations

import time
from typing import Any

from evonas.engine.status import format_status, read_status
from evonas.fitness import FITNESSES, FitnessFunction

SEEN: list[str] = []


@FITNESSES.register("status_reading")
class StatusReadingFitness(FitnessFunction):
    needs_dataset = False

    def __init__(self, run_dir: str = "") -> None:
        self.params = {"run_dir": run_dir}

    def evaluate(self, genome: Any, *, space: Any, dataset: Any, seed: int) -> dict[str, float]:
        SEEN.append(format_status(read_status(self.params["run_dir"])))
        time.sleep(0.25)  # long enough to be watched (a status write per evaluation of milliseconds is not made)
        return {"val_acc": int(space.key(genome), 16) % 1000 / 1000}
