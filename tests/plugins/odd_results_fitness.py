"""A fitness for tests that returns, by the genome key's hash modulo 10, results of the kinds users' fitness
functions return by mistake (or by habit: numpy and torch scalars), and good dicts for the rest."""

from __future__ import annotations

import hashlib
import sys
from typing import Any

import numpy as np
import torch

from evonas.fitness import FITNESSES, FitnessFunction


def result_kind(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") % 10


@FITNESSES.register("odd_results")
class OddResults(FitnessFunction):
    needs_dataset = False

    def evaluate(self, genome: Any, *, space: Any, dataset: Any, seed: int) -> Any:
        key = space.key(genome)
        score = 2.0 + int(key, 16) % 1000 / 1000
        kind = result_kind(key)
        if kind == 0:
            return None
        if kind == 1:
            return score  # a bare number, not a dict
        if kind == 2:
            return {"val_acc": np.float32(score), "params": np.int64(12)}  # numpy scalars: fine
        if kind == 3:
            return {"val_acc": torch.tensor(score), "loss": torch.tensor([0.5])}  # one-element tensors: fine
        if kind == 4:
            return {"val_acc": True}
        if kind == 5:
            return {"val_acc": "high"}
        if kind == 6:
            return {"val_acc": score, "per_class": np.zeros(3)}
        if kind == 7:
            sys.exit("bye")
        if kind == 8:
            return {1: score}
        return {"val_acc": score, "note": "plain"}
