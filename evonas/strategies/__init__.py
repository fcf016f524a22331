"""Search strategies by name: ``ga`` (generational mu + lambda), ``random``, ``aging`` (regularized evolution),
``reinforce`` (policy gradient), ``local_search``, ``surrogate`` (model-based), ``grid`` and ``nsga2``
(multi-objective); add yours with ``@STRATEGIES.register("name")`` on a :class:`Strategy` subclass.

Every module of this package is imported here, so a built-in strategy is one module that registers itself.
"""

from __future__ import annotations

import importlib
import pkgutil

from evonas.strategies.base import (
    SINGLE_OBJECTIVE_SELECTIONS, STRATEGIES, BatchedSampling, Candidate, Proposal, SearchContext, SteadyState, Strategy, population_stats,
    scalar_fitness,
)  # fmt: skip

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")  # each registers its strategies

__all__ = [
    "SINGLE_OBJECTIVE_SELECTIONS", "STRATEGIES", "BatchedSampling", "Candidate", "Proposal", "SearchContext", "SteadyState", "Strategy",
    "population_stats", "scalar_fitness",
]  # fmt: skip
