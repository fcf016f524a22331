"""Mutation and crossover operators, registered by name; built-ins per search space."""

from __future__ import annotations

from evonas.operators.base import CROSSOVERS, MAX_TRIES, MUTATIONS, Crossover, Mutation, Operator
from evonas.operators import chain, mlp, nb201  # noqa: F401  (registration)

__all__ = ["CROSSOVERS", "MUTATIONS", "MAX_TRIES", "Crossover", "Mutation", "Operator"]
