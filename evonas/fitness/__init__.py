"""Fitness functions by name: ``train`` (brief real training), ``nb201_table`` (NAS-Bench-201 table lookup),
``zero_cost`` (training-free proxy scores: NASWOT, SynFlow, ...) and ``toy`` (a cheap deterministic score for tests)."""

from __future__ import annotations

from evonas.fitness.base import FITNESSES, EvaluationError, FitnessFunction
from evonas.fitness import toy  # noqa: F401  (registration)
from evonas.fitness import table  # noqa: F401  (registration)

# These import torch: declared here, imported when first used.
FITNESSES.lazy("train", "evonas.fitness.train")
FITNESSES.lazy("zero_cost", "evonas.fitness.proxies")

__all__ = ["FITNESSES", "EvaluationError", "FitnessFunction"]
