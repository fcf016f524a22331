"""Aging (regularized) evolution (Real et al. 2019): tournaments in a population of the most recent results."""

from __future__ import annotations

from evonas.checks import check_int, check_probability
from evonas.evolution import Individual
from evonas.strategies.base import STRATEGIES, Candidate, Proposal, SearchContext, SteadyState

__all__ = ["AgingEvolution"]


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
    A logbook record every ``population_size`` results. A child the run has
    already asked, or one over a cheap limit, is drawn again up to ``max_retries`` times.

    Example (experiment file)::

        strategy: {name: aging, params: {population_size: 20, sample_size: 10}}
        budget: 200

    Parameters:
        population_size: the population: the most recent results (the oldest dies as each new one arrives).
        sample_size: members drawn (with replacement) for each tournament; the best of them is the parent.
        cycles: architectures in all (default: the run's budget).
        cxpb: probability that a child is the crossover of two tournaments' winners instead of a mutation.
    """

    run_length = "cycles"

    def __init__(
        self, ctx: SearchContext, *, population_size: int = 20, sample_size: int = 10, cycles: int | None = None,
        cxpb: float = 0.0, max_retries: int = 10, hall_of_fame: int = 10,
    ) -> None:
        check_int("population_size", population_size, 2)
        check_int("sample_size", sample_size, 1)
        if sample_size > population_size:
            raise ValueError(f"sample_size: expected at most population_size ({population_size}), got {sample_size}")
        check_probability("cxpb", cxpb)
        super().__init__(
            ctx, samples=cycles, log_every=population_size, max_retries=max_retries, hall_of_fame=hall_of_fame
        )
        self.population_size = population_size
        self.sample_size = sample_size
        self.cxpb = cxpb
        self._initial_asked = 0

    def propose(self) -> Proposal | None:
        if self._initial_asked < self.population_size:
            self._initial_asked += 1
            return self.sample()
        if not self.population:
            return None
        var = self.ctx.variation
        if self.cxpb and var.can_cross and self.rng.random() < self.cxpb:
            a, b = self._tournament(), self._tournament()

            def cross() -> Proposal:
                child, _, name = var.crossover(a.genome, b.genome, rng=self.rng)
                return child, f"crossover:{name}", (a.key, b.key)

            return self.redraw(cross)
        parent = self._tournament()

        def mutate() -> Proposal:
            child, name = var.mutate(parent.genome, rng=self.rng)
            return child, f"mutation:{name}", (parent.key,)

        return self.redraw(mutate)

    def _tournament(self) -> Individual:
        """The best of ``sample_size`` members drawn with replacement (first drawn wins ties)."""
        pop = self.population
        best = pop[self.rng.randrange(len(pop))]
        for _ in range(self.sample_size - 1):
            other = pop[self.rng.randrange(len(pop))]
            if other.fitness > best.fitness:
                best = other
        return best

    def learn(self, candidate: Candidate, individual: Individual) -> None:
        self.population.append(individual)
        if len(self.population) > self.population_size:
            del self.population[0]  # the oldest dies
