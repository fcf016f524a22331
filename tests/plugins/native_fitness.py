"""A fitness for tests that dies in native ways on known shares of genomes, scoring the rest like ``toy``.

By the genome key's hash modulo ``every`` (0 to 2 when ``crash``): 0 aborts (SIGABRT) unless in safe mode, where it scores like
the rest (a crash that safe mode avoids); 1 aborts always; 2 segfaults (through ctypes) always; 3 sleeps
forever, using no CPU (when ``hang``); 4 spins forever (when ``spin``). Every evaluation first sleeps ``sleep`` seconds. Each says what it is about to do
on stderr first, as a native library would.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
import time
from typing import Any

from evonas.fitness import FITNESSES, FitnessFunction
from evonas.fitness.device import in_safe_mode


def native_kind(key: str, every: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") % every


@FITNESSES.register("native")
class NativeFitness(FitnessFunction):
    needs_dataset = False

    def __init__(self, every: int = 8, crash: bool = True, hang: bool = False, spin: bool = False, sleep: float = 0.0) -> None:
        self.params = {"every": every, "crash": crash, "hang": hang, "spin": spin, "sleep": sleep}

    def evaluate(self, genome: Any, *, space: Any, dataset: Any, seed: int) -> dict[str, float]:
        key = space.key(genome)
        time.sleep(self.params["sleep"])
        kind = native_kind(key, self.params["every"])
        crash = self.params["crash"]
        if crash and ((kind == 0 and not in_safe_mode()) or kind == 1):
            print(f"native-fitness: corrupted heap on {key}", file=sys.stderr, flush=True)
            os.abort()
        if crash and kind == 2:
            print(f"native-fitness: bad pointer on {key}", file=sys.stderr, flush=True)
            ctypes.string_at(0)
        if kind == 3 and self.params["hang"]:
            time.sleep(3600)
        if kind == 4 and self.params["spin"]:
            while True:
                pass
        return {"val_acc": 2.0 + int(key, 16) % 1000 / 1000}
