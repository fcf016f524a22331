"""Search strategies by name: ``ga`` (generational mu + lambda), ``random``, ``aging`` (regularized
evolution), ``reinforce`` (policy gradient), ``surrogate`` (model-based), ``grid`` and ``nsga2`` (multi-objective); add yours with
``@STRATEGIES.register("name")`` on a :class:`Strategy` subclass."""

from __future__ import annotations

from evonas.strategies.base import STRATEGIES, Candidate, SearchContext, Strategy, population_stats
from evonas.strategies import ga, nsga2, random_search  # noqa: F401  (registration)
from evonas.strategies import aging, grid, local_search, model_based, reinforce  # noqa: F401  (registration)

__all__ = ["STRATEGIES", "Candidate", "SearchContext", "Strategy", "population_stats"]
