"""A fitness for tests that fails in known ways on known shares of genomes, scoring the rest like ``toy``.

By the genome key's hash modulo ``every``: 0 raises, 1 returns NaN, 2 hangs (when ``hang``), 3 kills its
own process (when ``crash``); the rest score 2.0 + something, better than any failure could look.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path
from typing import Any

from evonas.fitness import FITNESSES, FitnessFunction


def injected() -> str:
    """The failure kind 0 records: the message and the line of this file that raises it."""
    lines = Path(__file__).read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.strip() == 'raise RuntimeError("injected failure")')
    return f"RuntimeError: injected failure at faulty_fitness.py:{line}"


def fault_kind(key: str, every: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") % every


@FITNESSES.register("faulty")
class FaultyFitness(FitnessFunction):
    needs_dataset = False

    def __init__(self, every: int = 3, hang: bool = False, crash: bool = False) -> None:
        self.params = {"every": every, "hang": hang, "crash": crash}

    def evaluate(self, genome: Any, *, space: Any, dataset: Any, seed: int) -> dict[str, float]:
        key = space.key(genome)
        kind = fault_kind(key, self.params["every"])
        if kind == 0:
            raise RuntimeError("injected failure")
        if kind == 1:
            return {"val_acc": float("nan")}
        if kind == 2 and self.params["hang"]:
            time.sleep(3600)
        if kind == 3 and self.params["crash"]:
            os.kill(os.getpid(), signal.SIGKILL)
        return {"val_acc": 2.0 + int(key, 16) % 1000 / 1000}
