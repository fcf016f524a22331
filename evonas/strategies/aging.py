"""Aging (regularized) evolution, and the steady-state plumbing the asynchronous strategies share.

:class:`SteadyState` is the base of the strategies that ask one candidate per
free worker with no generation barrier (``aging``, ``reinforce``,
``surrogate``): it counts distinct architectures against the run's length,
numbers candidates, re-draws proposals the run has already seen, keeps the hall
of fame and writes a logbook record every ``log_every`` tells. A subclass
writes :meth:`SteadyState._propose` and :meth:`SteadyState._learn`; both see
only ask/tell and ``self.rng``, so results told in the same order give the
same run, which is what resume-by-replay needs with several workers.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Callable

from evonas.evolution import Individual
from evonas.spaces.base import Genome
from evonas.strategies.base import STRATEGIES, Candidate, SearchContext, Strategy

__all__ = ["AgingEvolution", "Proposal", "SteadyState", "DEFAULT_EVALUATIONS", "scalar_fitness"]

#: a proposed genome, the operator that made it (journal ``origin``) and its parents' keys.
Proposal = tuple[Genome, str, tuple[str, ...]]
#: how many architectures a steady-state strategy evaluates when neither its params nor the run give a number.
DEFAULT_EVALUATIONS = 100


def scalar_fitness(ind: Individual) -> float:
    """One number to maximise: the sum of the weighted objective values (``-inf`` for a failure)."""
    value = float(sum(ind.fitness.wvalues))
    return value if math.isfinite(value) else -math.inf


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")


class SteadyState(Strategy):
    """Base of asynchronous strategies: up to ``n`` candidates per ask, learning from each tell as it arrives.

    ``evaluations`` distinct architectures are asked (default: the run's budget, else
    :data:`DEFAULT_EVALUATIONS`; never more than the budget). A proposal whose key the run has seen is re-drawn up to
    ``max_retries`` times, so the budget goes to new architectures.
    """

    generational = False

    def __init__(
        self, ctx: SearchContext, *, evaluations: int | None, log_every: int, max_retries: int, hall_of_fame: int,
        evaluations_name: str = "evaluations",
    ) -> None:
        super().__init__(ctx, hall_of_fame=hall_of_fame)
        if evaluations is not None:
            _check_int(evaluations_name, evaluations, 1)
        _check_int("log_every", log_every, 1)
        _check_int("max_retries", max_retries, 0)
        _check_int("hall_of_fame", hall_of_fame, 1)
        self.limit = evaluations if evaluations is not None else (ctx.budget or DEFAULT_EVALUATIONS)
        self.log_every = log_every
        self.max_retries = max_retries
        self.gen = 0
        self._asked: set[str] = set()
        self._pending = 0
        self._next_index = 0

    # -- the interface ------------------------------------------------------------------------
    def expected_evaluations(self) -> int:
        return min(self.limit, self.ctx.budget) if self.ctx.budget else self.limit

    def is_done(self) -> bool:
        return len(self._asked) >= self.expected_evaluations()

    def ask(self, n: int) -> list[Candidate]:
        out: list[Candidate] = []
        while len(out) < n and not self.is_done():
            proposal = self._propose()
            if proposal is None:  # nothing to build on until a result arrives
                break
            genome, origin, parents = proposal
            cand = self.ctx.candidate(genome, self.gen, self._next_index, origin, parents)
            self._next_index += 1
            self._asked.add(cand.key)
            self._pending += 1
            out.append(cand)
        return out

    def tell(self, candidate: Candidate, individual: Individual) -> None:
        self.evaluated += 1
        self._pending -= 1
        self.hall_of_fame.update([individual])
        self._learn(candidate, individual)
        if self.evaluated % self.log_every == 0:
            self.record(self.gen, self.log_every)
            self.gen += 1
        elif self.is_done() and self._pending == 0:  # the last, partial block
            self.record(self.gen, self.evaluated % self.log_every)
            self.gen += 1

    # -- for subclasses ---------------------------------------------------------------------------
    @abstractmethod
    def _propose(self) -> Proposal | None:
        """The next candidate, or None to wait for results."""

    @abstractmethod
    def _learn(self, candidate: Candidate, individual: Individual) -> None:
        """Update the strategy's state with one result (called in tell order)."""

    def _seen(self, key: str) -> bool:
        """Whether the run has asked for ``key`` already."""
        return key in self._asked

    def _usable(self, genome: Genome, key: str | None = None) -> bool:
        """Whether ``genome`` (whose key is ``key`` when the caller has it) is new to the run and within every cheap
        limit of the experiment's ``constraints``: what the strategies redraw for."""
        return not self._seen(self.ctx.space.key(genome) if key is None else key) and self.ctx.feasible(genome)

    def _fresh(self, make: Callable[[], Proposal]) -> Proposal:
        """``make()`` re-called until its genome is feasible and its key new to the run (at most ``max_retries``
        more times; the engine records a genome that is still infeasible without training it)."""
        out = make()
        for _ in range(self.max_retries):
            if self._usable(out[0]):
                break
            out = make()
        return out

    def _sample(self) -> Proposal:
        """A saved genome not yet asked (from ``initial_population``), else a fresh random sample."""
        for g in self.ctx.initial:
            if not self._seen(self.ctx.space.key(g)):
                return g, "saved", ()
        return self._fresh(lambda: (self.ctx.space.sample(rng=self.rng), "sample", ()))


@STRATEGIES.register("aging")
class AgingEvolution(SteadyState):
    """Aging (regularized) evolution (Real et al. 2019), asynchronous.

    The first ``population_size`` candidates are the saved genomes, then random
    samples. After that each candidate is a child of a tournament: ``sample_size``
    members drawn uniformly (with replacement) from the current population, the
    best of them mutated (or, with probability ``cxpb``, the best of two such
    tournaments crossed). Each result joins the population as it arrives and
    the oldest member dies, so the population is the ``population_size`` most
    recent results. ``cycles`` architectures in all (default: the run's budget).
    A logbook record every ``population_size`` results.

    Example (experiment file)::

        strategy: {name: aging, params: {population_size: 20, sample_size: 10}}
        budget: 200
    """

    def __init__(
        self,
        ctx: SearchContext,
        *,
        population_size: int = 20,
        sample_size: int = 10,
        cycles: int | None = None,
        cxpb: float = 0.0,
        max_retries: int = 10,
        hall_of_fame: int = 10,
    ) -> None:
        _check_int("population_size", population_size, 2)
        _check_int("sample_size", sample_size, 1)
        if sample_size > population_size:
            raise ValueError(f"sample_size: expected at most population_size ({population_size}), got {sample_size}")
        if isinstance(cxpb, bool) or not 0 <= cxpb <= 1:
            raise ValueError(f"cxpb: expected a probability from 0 to 1, got {cxpb!r}")
        super().__init__(
            ctx, evaluations=cycles, log_every=population_size, max_retries=max_retries,
            hall_of_fame=hall_of_fame, evaluations_name="cycles",
        )
        self.population_size = population_size
        self.sample_size = sample_size
        self.cxpb = cxpb
        self._initial_asked = 0

    def _propose(self) -> Proposal | None:
        if self._initial_asked < self.population_size:
            self._initial_asked += 1
            return self._sample()
        if not self.population:
            return None
        var = self.ctx.variation
        if self.cxpb and var.can_cross and self.rng.random() < self.cxpb:
            a, b = self._tournament(), self._tournament()

            def cross() -> Proposal:
                child, _, name = var.crossover(a.genome, b.genome, rng=self.rng)
                return child, f"crossover:{name}", (a.key, b.key)

            return self._fresh(cross)
        parent = self._tournament()

        def mutate() -> Proposal:
            child, name = var.mutate(parent.genome, rng=self.rng)
            return child, f"mutation:{name}", (parent.key,)

        return self._fresh(mutate)

    def _tournament(self) -> Individual:
        """The best of ``sample_size`` members drawn with replacement (first drawn wins ties)."""
        pop = self.population
        best = pop[self.rng.randrange(len(pop))]
        for _ in range(self.sample_size - 1):
            other = pop[self.rng.randrange(len(pop))]
            if other.fitness > best.fitness:
                best = other
        return best

    def _learn(self, candidate: Candidate, individual: Individual) -> None:
        self.population.append(individual)
        if len(self.population) > self.population_size:
            del self.population[0]  # the oldest dies
