"""Fitness functions by name: ``train`` (brief real training) and ``toy`` (a cheap deterministic score for tests)."""

from __future__ import annotations

from evonas.fitness.base import FITNESSES, EvaluationError, FitnessFunction
from evonas.fitness import toy, train  # noqa: F401  (registration)

__all__ = ["FITNESSES", "EvaluationError", "FitnessFunction"]
