"""Generational (mu + lambda) evolution: the base of ``ga`` and ``nsga2``, and the ``ga`` strategy with elitism."""

from __future__ import annotations

import dataclasses
import math
from abc import abstractmethod
from typing import Any

from evonas.checks import check_int, check_number
from evonas.evolution import Individual, select
from evonas.strategies.base import STRATEGIES, Candidate, Proposal, SearchContext, Strategy

__all__ = ["GeneticAlgorithm", "MuPlusLambda"]

#: the default share of a generation's briefly trained genomes that multi-fidelity trains in full
PROMOTE = 0.25


class MuPlusLambda(Strategy):
    """Generational evolution: a population of ``population_size``, ``offspring`` children per generation, for
    ``generations`` generations after the initial one.

    Generation 0 is the initial population (saved genomes first, then random samples). Each later generation
    makes ``offspring`` children (default: ``population_size``), DEAP's ``varOr``: by crossover with probability
    ``cxpb``, by mutation with ``mutpb``, else a copy. A subclass writes :meth:`survive`, which picks the next
    population once a generation is told.

    Parameters:
        population_size: the population each generation keeps (and the size of generation 0).
        offspring: children made per generation (default: ``population_size``).
        generations: generations after the initial one.
        cxpb: probability that a child is made by crossover of two parents.
        mutpb: probability that a child is made by mutation of one parent (``cxpb + mutpb <= 1``; the rest are
            copies, which the run re-draws as new genomes where it can).
    """

    generational = True
    run_length = "generations"

    def __init__(
        self, ctx: SearchContext, *, population_size: int = 20, offspring: int | None = None, generations: int = 10,
        cxpb: float = 0.3, mutpb: float = 0.7, **common: Any,
    ) -> None:
        super().__init__(ctx, **common)
        self.mu = check_int("population_size", population_size, 2)
        self.lambda_ = check_int("offspring", offspring, 1) if offspring is not None else population_size
        self.generations = check_int("generations", generations, 0)
        if not (0 <= cxpb <= 1 and 0 <= mutpb <= 1 and cxpb + mutpb <= 1):
            raise ValueError(f"cxpb, mutpb: expected probabilities with cxpb + mutpb <= 1, got {cxpb!r}, {mutpb!r}")
        self.cxpb, self.mutpb = cxpb, mutpb
        #: multi-fidelity (``ga``): the share of the full training of each new genome's first evaluation
        self.fidelity: float | None = None
        self.promote = 1.0
        self._batch: list[Candidate] = []
        self._told: dict[int, Individual] = {}
        self._promoted: list[Candidate] | None = None  # multi-fidelity: the full evaluations of this generation
        self._full: dict[int, Individual] = {}

    @abstractmethod
    def survive(self, batch: list[Individual]) -> None:
        """Set ``population`` from the current one and the told ``batch`` (each genome's best-fidelity result), and
        update the hall of fame."""

    @property
    def uses_fidelity(self) -> bool:
        return self.fidelity is not None

    def _promotions(self, n: int) -> int:
        return max(1, math.ceil(n * self.promote - 1e-9)) if self.fidelity is not None else 0

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
        self._batch = self._initial() if self.gen == 0 else self._offspring()
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

    def _initial(self) -> list[Candidate]:
        """Generation 0: the saved genomes, then random samples, ``population_size`` in all."""
        out = [self.candidate(g, "saved", fidelity=self.fidelity) for g in list(self.ctx.initial)[: self.mu]]
        while len(out) < self.mu:
            proposal = self.redraw(lambda: (self.ctx.space.sample(rng=self.rng), "sample", ()))
            out.append(self.candidate(*proposal, fidelity=self.fidelity))
        return out

    def _offspring(self) -> list[Candidate]:
        """``offspring`` children of the population, each new to the run where :meth:`redraw` manages it."""
        return [self.candidate(*self.redraw(self._child), fidelity=self.fidelity) for _ in range(self.lambda_)]

    def _child(self) -> Proposal:
        """One child of the population, DEAP's ``varOr``: crossover, mutation or a copy."""
        var = self.ctx.variation
        op = self.rng.random()
        if op < self.cxpb and var.can_cross and len(self.population) > 1:
            a, b = self._parent_pair()
            c1, _, name = var.crossover(a.genome, b.genome, rng=self.rng)
            return c1, f"crossover:{name}", (a.key, b.key)
        if op < self.cxpb + self.mutpb:
            a = self._parent()
            c, name = var.mutate(a.genome, rng=self.rng)
            return c, f"mutation:{name}", (a.key,)
        a = self._parent()
        return a.genome, "copy", (a.key,)

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
        self.survive(batch)
        self._batch, self._told, self._promoted, self._full = [], {}, None, {}
        self.end_generation(nevals)


@STRATEGIES.register("ga")
class GeneticAlgorithm(MuPlusLambda):
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

    Parameters:
        elitism: how many of the best of parents + children survive before the selection operator picks the rest.
        fidelity: multi-fidelity: the share of the full training (between 0 and 1) of each new genome's first
            evaluation; none (default) trains every genome in full.
        promote: with ``fidelity``, the share of each generation's briefly trained genomes (at least one) trained
            again in full.
    """

    def __init__(
        self, ctx: SearchContext, *, elitism: int = 1, fidelity: float | None = None, promote: float = PROMOTE,
        **common: Any,
    ) -> None:
        super().__init__(ctx, **common)
        if fidelity is not None:
            check_number("fidelity (a share of the full training)", fidelity, above=0.0, below=1.0)
        self.fidelity, self.promote = fidelity, check_number("promote", promote, above=0.0, maximum=1.0)
        if fidelity is None and promote != PROMOTE:  # (the default is written into every run's config.yaml)
            raise ValueError(f"promote: {promote:g} does nothing without fidelity (multi-fidelity: the share of each "
                             "generation's briefly trained genomes trained in full); set fidelity too, or remove it")  # fmt: skip
        self.elitism = check_int("elitism", elitism, 0, self.mu)

    def survive(self, batch: list[Individual]) -> None:
        """The ``elitism`` best of parents + children, then the experiment's selection from the others."""
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
