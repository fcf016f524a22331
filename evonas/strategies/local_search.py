"""``local_search``: first-improvement hill climbing with random restarts (White et al. 2020).

"Local search is state of the art for neural architecture search benchmarks"
(White, Nolen & Savani, 2020): start from the best of a few random samples,
evaluate the neighbours of the current architecture (every genome one
categorical change away, :mod:`evonas.spaces.encoding`) in random order, move
to the first one that improves on it, and restart from new random samples
when a neighbourhood is exhausted without improvement (a local optimum).
"""

from __future__ import annotations

from typing import Any

from evonas.checks import check_int
from evonas.evolution import Individual
from evonas.spaces.base import Genome
from evonas.spaces.encoding import neighbours
from evonas.strategies.base import STRATEGIES, Candidate, Proposal, SearchContext, SteadyState, scalar_fitness

__all__ = ["LocalSearch"]


@STRATEGIES.register("local_search")
class LocalSearch(SteadyState):
    """Local search with random restarts, asynchronous.

    Each (re)start asks ``initial_samples`` candidates (the saved genomes, then
    random samples) and takes the best of their results as the current
    architecture. Its neighbours are then asked in a random order: with a
    categorical view of the space (``space.categorical()``), every genome that
    differs from it in one active choice; otherwise the distinct children of
    ``mutations`` draws of the experiment's mutation operators. A result better
    than the current architecture (including one that arrives late from an
    earlier neighbourhood) becomes the current architecture, with a fresh
    neighbourhood. When a neighbourhood is used up and its results are in with
    no improvement, the search restarts. ``samples`` architectures in all
    (default: the run's budget). A logbook record every ``log_every`` results,
    over the ``population_size`` best.

    Example (experiment file)::

        strategy: {name: local_search, params: {initial_samples: 10}}
        budget: 100
    """

    def __init__(
        self, ctx: SearchContext, *, initial_samples: int = 10, mutations: int = 100, population_size: int = 10,
        **common: Any,
    ) -> None:
        check_int("initial_samples", initial_samples, 1)
        check_int("mutations", mutations, 1)
        check_int("population_size", population_size, 1)
        super().__init__(ctx, **common)
        self.initial_samples, self.mutations, self.population_size = initial_samples, mutations, population_size
        try:
            self._categorical = bool(ctx.space.categorical())
        except NotImplementedError:
            self._categorical = False
        self.current: Individual | None = None
        self.restarts = 0
        self._start: set[int] = set()  # candidate indices of the current (re)start's samples
        self._start_left = initial_samples  # samples of the current (re)start still to ask
        self._start_results: list[Individual] = []
        self._queue: list[Proposal] = []  # the current neighbourhood's proposals not asked yet

    # -- proposals ----------------------------------------------------------------------------
    def propose(self) -> Proposal | None:
        if self._start_left > 0:
            self._start_left -= 1
            self._start.add(self.next_index)
            return self.sample()
        if self.current is None:
            return None  # the start's results are not all in
        while self._queue:
            proposal = self._queue.pop()
            if self.is_new(self.ctx.space.key(proposal[0])):
                return proposal
        if self._pending:
            return None  # a neighbour still out may improve
        self._restart()  # a local optimum
        return self.propose()

    def _restart(self) -> None:
        self.restarts += 1
        self.current = None
        self._start, self._start_left, self._start_results = set(), self.initial_samples, []

    def _neighbours(self, genome: Genome, key: str) -> list[Proposal]:
        """``genome``'s distinct new neighbours, shuffled by ``self.rng``."""
        space = self.ctx.space
        genomes: list[tuple[Genome, str]] = []
        if self._categorical:
            genomes += [(child, "neighbour") for child in neighbours(space, genome)]
        else:
            for _ in range(self.mutations):
                child, name = self.ctx.variation.mutate(genome, rng=self.rng)
                genomes.append((child, f"mutation:{name}"))
        out: list[Proposal] = []
        keys = {key}
        for child, origin in genomes:
            k = space.key(child)
            if k not in keys and self.usable(child, k):
                keys.add(k)
                out.append((child, origin, (key,)))
        self.rng.shuffle(out)
        return out

    def _move(self, individual: Individual) -> None:
        self.current = individual
        self._queue = self._neighbours(individual.genome, individual.key)

    # -- results ------------------------------------------------------------------------------
    def learn(self, candidate: Candidate, individual: Individual) -> None:
        pool = sorted([*self.population, individual], key=scalar_fitness, reverse=True)  # stable: earlier first
        self.population = pool[: self.population_size]
        if candidate.index in self._start:
            self._start_results.append(individual)
            if len(self._start_results) == self.initial_samples:
                self._move(max(self._start_results, key=scalar_fitness))  # first of the best
        elif self.current is not None and scalar_fitness(individual) > scalar_fitness(self.current):
            self._move(individual)
