"""The strategy interface: ask / tell over candidates, state rebuilt by replaying results.

A strategy answers :meth:`Strategy.ask` with the next candidates and learns
from :meth:`Strategy.tell`. It keeps no state but what those calls give it and
its own ``rng`` (seeded from the run's seed), so replaying a run's recorded
results through ask/tell in order rebuilds it exactly: every strategy is
resumable by construction.

A generational strategy asks a whole generation and asks again only once all
of it is told; a steady-state one asks one candidate per free worker.
"""

from __future__ import annotations

import dataclasses
import math
import random
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
from deap import tools

from evonas.config import Objective
from evonas.evolution import Individual, Variation, select
from evonas.registry import Registry
from evonas.spaces.base import Genome, SearchSpace

__all__ = ["BatchedSampling", "Candidate", "SearchContext", "Strategy", "STRATEGIES", "population_stats"]


def slot_key(key: str, fidelity: float | None) -> str:
    """A genome key with its evaluation's fidelity (``key@0.2``); the key alone for a full evaluation."""
    return key if fidelity is None else f"{key}@{fidelity:g}"


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A genome a strategy wants evaluated, with where it came from."""

    genome: Genome
    key: str
    generation: int
    index: int = 0
    origin: str = ""
    parents: tuple[str, ...] = ()
    #: share of the full training to spend (multi-fidelity); ``None``: the fitness's full evaluation
    fidelity: float | None = None

    @property
    def slot(self) -> str:
        """What the engine's repeat check compares: the key, and the fidelity when there is one."""
        return slot_key(self.key, self.fidelity)


@dataclasses.dataclass
class SearchContext:
    """What a strategy is built with: the space, operators, objectives, selection and its own ``rng``."""

    space: SearchSpace
    variation: Variation
    objectives: tuple[Objective, ...]
    rng: random.Random
    selection: str = "tournament"
    selection_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    initial: Sequence[Genome] = ()
    budget: int | None = None
    #: the run's check of cheap constraints (``None``: no constraints); strategies call :meth:`feasible`
    feasibility: Callable[[Genome], bool] | None = None

    def feasible(self, genome: Genome) -> bool:
        """Whether ``genome`` meets the run's limits on cheap metrics (params, FLOPs): redraw it if not.

        The engine never trains a genome that breaks one (it records it as ``infeasible``), so a strategy
        that redraws such genomes spends no asks on them. Pure: the same genome always gives the same answer.
        """
        return True if self.feasibility is None else self.feasibility(genome)

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(o.weight for o in self.objectives)

    def candidate(self, genome: Genome, generation: int, index: int, origin: str, parents: tuple[str, ...] = ()) -> Candidate:
        return Candidate(genome, self.space.key(genome), generation, index, origin, parents)


class Strategy(ABC):
    """Base class of search strategies, registered in :data:`STRATEGIES`.

    Subclasses implement :meth:`ask`, :meth:`tell` and :meth:`is_done`, and keep
    ``population`` (the current individuals), ``hall_of_fame`` (a DEAP
    ``HallOfFame``) and ``logbook`` (a DEAP ``Logbook``, one record per generation).
    """

    name: ClassVar[str] = ""
    #: True: asks a batch and waits for all of it; False: asks one candidate per free worker.
    generational: ClassVar[bool] = True

    def __init__(self, ctx: SearchContext, *, hall_of_fame: int = 10) -> None:
        self.ctx = ctx
        self.rng = ctx.rng
        self.population: list[Individual] = []
        self.hall_of_fame = tools.HallOfFame(hall_of_fame) if len(ctx.objectives) == 1 else tools.ParetoFront()
        self.logbook = tools.Logbook()
        self.evaluated = 0

    @abstractmethod
    def ask(self, n: int) -> list[Candidate]:
        """Up to ``n`` candidates to evaluate now (a generational strategy may return more, or none while it waits)."""

    @abstractmethod
    def tell(self, candidate: Candidate, individual: Individual) -> None:
        """The evaluated ``individual`` (fitness set; worst values if it failed) for ``candidate``."""

    @abstractmethod
    def is_done(self) -> bool:
        """True when the strategy will ask for nothing more."""

    def expected_evaluations(self) -> int | None:
        """How many evaluations the strategy will ask for at most (for progress bars), if known."""
        return self.ctx.budget

    # -- helpers for subclasses ---------------------------------------------------------------
    def record(self, generation: int, nevals: int) -> None:
        """Append one logbook record: per objective, max / min / avg / std of the population, and the best so far."""
        row: dict[str, Any] = {"gen": generation, "nevals": nevals, "evals": self.evaluated}
        row.update(population_stats(self.population, self.ctx.objectives))
        for i, obj in enumerate(self.ctx.objectives):
            vals = [ind.fitness.values[i] for ind in self.hall_of_fame if ind.fitness.valid]
            vals = [v for v in vals if math.isfinite(v)]
            row[f"{obj.metric}_best_so_far"] = (max(vals) if obj.weight > 0 else min(vals)) if vals else float("nan")
        self.logbook.record(**row)


class BatchedSampling(Strategy):
    """Bookkeeping shared by strategies that ask independent batches (``random``, ``grid``).

    Subclasses fill ``self._pending`` in :meth:`ask`; each finished batch is one logbook generation, and
    the population is the ``batch`` best genomes so far (so memory stays flat in long runs).
    """

    generational = True

    def __init__(self, ctx: SearchContext, *, batch: int, hall_of_fame: int = 10) -> None:
        super().__init__(ctx, hall_of_fame=hall_of_fame)
        self.batch = batch
        self.gen = 0
        self.asked = 0
        self._pending: list[Candidate] = []
        self._told: dict[int, Individual] = {}

    def tell(self, candidate: Candidate, individual: Individual) -> None:
        self._told[candidate.index] = individual
        self.evaluated += 1
        if len(self._told) == len(self._pending):
            batch = [self._told[i] for i in range(len(self._pending))]
            self.hall_of_fame.update(batch)
            pool = self.population + batch
            self.population = select("best", pool, min(self.batch, len(pool)), rng=self.rng)
            self.record(self.gen, len(batch))
            self._pending, self._told = [], {}
            self.gen += 1


def population_stats(population: Sequence[Individual], objectives: Sequence[Objective]) -> dict[str, float]:
    """``{metric}_{max,min,avg,std}`` over the finite fitness values of ``population`` (failures left out)."""
    out: dict[str, float] = {}
    for i, obj in enumerate(objectives):
        stats = tools.Statistics(key=lambda ind, i=i: ind.fitness.values[i])
        stats.register("max", _finite(np.max))
        stats.register("min", _finite(np.min))
        stats.register("avg", _finite(np.mean))
        stats.register("std", _finite(np.std))
        for k, v in stats.compile([ind for ind in population if ind.fitness.valid]).items():
            out[f"{obj.metric}_{k}"] = float(v)
    return out


def _finite(fn: Any) -> Any:
    def wrapped(values: Sequence[float]) -> float:
        arr = np.asarray(values, dtype=float)
        arr = arr[np.isfinite(arr)]
        return float(fn(arr)) if arr.size else float("nan")

    return wrapped


STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
