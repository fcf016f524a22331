"""Generational (mu + lambda) genetic algorithm with elitism."""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

from evonas.evolution import Individual, select
from evonas.strategies.base import STRATEGIES, Candidate, SearchContext, Strategy
from evonas.spaces.base import Genome

__all__ = ["GeneticAlgorithm"]

_Made = tuple[Genome, str, tuple[str, ...]]  # genome, origin, parents' keys
_Child = tuple[Genome, str, str, tuple[str, ...]]  # genome, key, origin, parents' keys


@STRATEGIES.register("ga")
class GeneticAlgorithm(Strategy):
    """(mu + lambda) GA: DEAP's ``varOr`` variation, elitism, then the experiment's selection.

    Generation 0 is the initial population (saved genomes first, then random
    samples). Each later generation makes ``offspring`` children: by crossover
    with probability ``cxpb``, by mutation with ``mutpb``, else a copy; the next
    population is the ``elitism`` best of parents + children plus
    ``population_size - elitism`` chosen by the selection operator from that pool.
    Children whose key the run has already seen, or that break a limit on a cheap
    metric (``constraints:``), are re-drawn up to ``max_retries`` times, so the
    budget goes to new, feasible architectures.

    Multi-fidelity (successive halving within each generation): with ``fidelity``
    set, every new genome of a generation is first trained briefly (that share of
    the full training; the fitness must support it, as ``train`` does), and only the
    best ``promote`` share of them (at least one) by that brief result is trained in
    full. Genomes not promoted keep their brief result (the journal records each
    evaluation's fidelity); selection prefers full results as they are higher, and
    ``best.json`` and the hall of fame hold full evaluations only.

    Example (experiment file)::

        strategy: {name: ga, params: {population_size: 16, offspring: 16, generations: 6}}
        strategy: {name: ga, params: {population_size: 16, generations: 6, fidelity: 0.2, promote: 0.25}}
    """

    generational = True

    def __init__(
        self,
        ctx: SearchContext,
        *,
        population_size: int = 20,
        offspring: int | None = None,
        generations: int = 10,
        cxpb: float = 0.3,
        mutpb: float = 0.7,
        elitism: int = 1,
        max_retries: int = 10,
        hall_of_fame: int = 10,
        fidelity: float | None = None,
        promote: float = 0.25,
    ) -> None:
        super().__init__(ctx, hall_of_fame=hall_of_fame)
        if fidelity is not None and not 0 < fidelity < 1:
            raise ValueError(f"fidelity: expected a share of the full training between 0 and 1, got {fidelity!r}")
        if not 0 < promote <= 1:
            raise ValueError(f"promote: expected a share between 0 and 1, got {promote!r}")
        self.fidelity, self.promote = fidelity, promote
        if population_size < 2:
            raise ValueError("population_size: expected an integer >= 2")
        if offspring is not None and offspring < 1:
            raise ValueError("offspring: expected an integer >= 1")
        if generations < 0:
            raise ValueError("generations: expected an integer >= 0")
        if not (0 <= cxpb <= 1 and 0 <= mutpb <= 1 and cxpb + mutpb <= 1):
            raise ValueError("cxpb, mutpb: expected probabilities with cxpb + mutpb <= 1")
        if not 0 <= elitism <= population_size:
            raise ValueError(f"elitism: expected an integer from 0 to population_size ({population_size})")
        self.mu = population_size
        self.lambda_ = offspring or population_size
        self.generations = generations
        self.cxpb, self.mutpb = cxpb, mutpb
        self.elitism = elitism
        self.max_retries = max_retries
        self.gen = 0
        self._batch: list[Candidate] = []
        self._told: dict[int, Individual] = {}
        self._seen: set[str] = set()
        self._promoted: list[Candidate] | None = None  # multi-fidelity: the full evaluations of this generation
        self._full: dict[int, Individual] = {}

    def _promotions(self, n: int) -> int:
        return max(1, math.ceil(n * self.promote - 1e-9)) if self.fidelity is not None else 0

    @property
    def uses_fidelity(self) -> bool:
        return self.fidelity is not None

    def expected_evaluations(self) -> int:
        n = self.mu + self._promotions(self.mu) + self.generations * (self.lambda_ + self._promotions(self.lambda_))
        return min(n, self.ctx.budget) if self.ctx.budget else n

    def is_done(self) -> bool:
        return self.gen > self.generations

    def ask(self, n: int) -> list[Candidate]:
        if self.is_done():
            return []
        if self._batch:
            if self._promoted is None and self.fidelity is not None and len(self._told) == len(self._batch):
                return self._promote()
            return []
        genomes = self._initial() if self.gen == 0 else self._offspring()
        self._batch = [
            Candidate(g, key, self.gen, i, origin, parents, fidelity=self.fidelity)
            for i, (g, key, origin, parents) in enumerate(genomes)
        ]
        return list(self._batch)

    def tell(self, candidate: Candidate, individual: Individual) -> None:
        self.evaluated += 1
        if candidate.fidelity is None and self.fidelity is not None:  # a promoted genome's full evaluation
            self._full[candidate.index] = individual
            if self._promoted is not None and len(self._full) == len(self._promoted):
                self._close_generation()
            return
        self._told[candidate.index] = individual
        if len(self._told) == len(self._batch) and self.fidelity is None:
            self._close_generation()

    def _promote(self) -> list[Candidate]:
        """Successive halving: the best ``promote`` share of the briefly trained batch, asked again in full."""
        brief = [self._told[i] for i in range(len(self._batch))]
        best = select("best", brief, self._promotions(len(brief)), rng=self.rng)
        index = {id(ind): i for i, ind in enumerate(brief)}
        self._promoted = [
            dataclasses.replace(self._batch[index[id(ind)]], fidelity=None) for ind in best
        ]
        return list(self._promoted)

    # -- internals -------------------------------------------------------------------------
    def _fresh(self, make: Callable[[], _Made]) -> _Child:
        """Call ``make()`` until it gives a feasible genome with a key the run has not seen (at most
        ``max_retries`` extra times; the engine records a genome that is still infeasible without training it)."""
        genome, origin, parents = make()
        key = self.ctx.space.key(genome)
        for _ in range(self.max_retries):
            if key not in self._seen and self.ctx.feasible(genome):
                break
            genome, origin, parents = make()
            key = self.ctx.space.key(genome)
        self._seen.add(key)
        return genome, key, origin, parents

    def _initial(self) -> list[_Child]:
        out = []
        for g in list(self.ctx.initial)[: self.mu]:
            key = self.ctx.space.key(g)
            self._seen.add(key)
            out.append((g, key, "saved", ()))
        while len(out) < self.mu:
            out.append(self._fresh(lambda: (self.ctx.space.sample(rng=self.rng), "sample", ())))
        return out

    def _offspring(self) -> list[_Child]:
        pop = self.population
        var = self.ctx.variation

        def child() -> _Made:
            op = self.rng.random()
            if op < self.cxpb and var.can_cross and len(pop) > 1:
                a, b = self._parent_pair()
                c1, _, name = var.crossover(a.genome, b.genome, rng=self.rng)
                return c1, f"crossover:{name}", (a.key, b.key)
            if op < self.cxpb + self.mutpb:
                a = self._parent()
                c, name = var.mutate(a.genome, rng=self.rng)
                return c, f"mutation:{name}", (a.key,)
            a = self._parent()
            return a.genome, "copy", (a.key,)

        return [self._fresh(child) for _ in range(self.lambda_)]

    def _parent(self) -> Individual:
        """One parent from the population (uniformly at random; subclasses choose otherwise)."""
        return self.rng.choice(self.population)

    def _parent_pair(self) -> tuple[Individual, Individual]:
        """Two distinct parents for crossover."""
        a, b = self.rng.sample(self.population, 2)
        return a, b

    def _close_generation(self) -> None:
        batch = [self._full.get(i, self._told[i]) for i in range(len(self._batch))]
        nevals = len(batch) + len(self._full)
        full = [self._full[i] for i in sorted(self._full)] if self.fidelity is not None else batch
        if self.gen == 0:
            self.population = batch[: self.mu]
        else:
            pool = self.population + batch
            unique = list({ind.key: ind for ind in reversed(pool)}.values())[::-1]
            elites = select("best", unique, min(self.elitism, len(unique)), rng=self.rng)
            elite_keys = {e.key for e in elites}
            rest_pool = [ind for ind in pool if ind.key not in elite_keys] or pool
            rest = select(
                self.ctx.selection, rest_pool, self.mu - len(elites), rng=self.rng, **self.ctx.selection_params
            )
            self.population = list(elites) + list(rest)
        self.hall_of_fame.update(full)
        self.record(self.gen, nevals)
        self._batch, self._told, self._promoted, self._full = [], {}, None, {}
        self.gen += 1
