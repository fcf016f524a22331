"""NSGA-II (and NSGA-III / SPEA2) for several objectives, on the GA's variation, with hypervolume per generation."""

from __future__ import annotations

import math
import random
from typing import Any, Callable, Literal, Sequence

from deap import tools

from evonas.checks import check_choice, check_int, check_number
from evonas.evolution import Individual
from evonas.pareto import derive_reference, hypervolume
from evonas.strategies.base import STRATEGIES, Candidate, SearchContext
from evonas.strategies.ga import MuPlusLambda

__all__ = ["NSGA2", "SELECTIONS"]

#: the selections of the ``selection`` parameter (``evonas list selections`` shows them as nsga2's)
SELECTIONS = ("nsga2", "nsga3", "spea2")


@STRATEGIES.register("nsga2")
class NSGA2(MuPlusLambda):
    """NSGA-II (Deb et al. 2002): DEAP's ``selNSGA2`` picks the next population from parents + children.

    Children are made as in ``ga`` (crossover with probability ``cxpb``, else mutation with ``mutpb``,
    else a copy; unseen and feasible genomes preferred), from parents chosen by DEAP's
    ``selTournamentDCD`` (dominance, then crowding distance; ``parents: random`` draws them uniformly).
    ``selection: nsga3`` uses ``selNSGA3`` with ``divisions`` uniform reference points per objective
    axis, ``spea2`` uses ``selSPEA2``. Failed, infeasible and limit-breaking genomes rank below every
    feasible one. The experiment's ``selection:`` key is not used.

    The hall of fame is DEAP's ``ParetoFront`` of every full evaluation; each logbook row adds
    ``hypervolume`` (of that front) and ``front_size``. The hypervolume's reference point is
    ``reference_point`` (one value per objective, in the objectives' units) if given, else derived once
    from the first generation: each objective's worst finite value, moved ``reference_margin`` x the
    generation's range of that objective further away (see :func:`evonas.pareto.derive_reference`).

    Example (experiment file)::

        objectives: [{metric: val_acc, direction: max}, {metric: params, direction: min}]
        strategy: {name: nsga2, params: {population_size: 20, generations: 10, reference_point: [0.0, 2.0e5]}}

    Parameters:
        selection: how the next population is picked from parents + children: ``nsga2`` (``selNSGA2``), ``nsga3``
            (``selNSGA3``) or ``spea2`` (``selSPEA2``).
        parents: how parents are drawn: ``dcd`` (DEAP's ``selTournamentDCD``: dominance, then crowding distance) or
            ``random`` (uniformly).
        divisions: with ``selection: nsga3``, reference points per objective axis.
        reference_point: the hypervolume's reference point, one value per objective in its units (default: derived
            from the first generation).
        reference_margin: how far past each objective's worst value of the first generation the derived reference
            point lies, as a share of that objective's range.
    """

    #: chooses its own (multi-objective) selection: the experiment's ``selection:`` is not checked
    multi_objective = True

    def __init__(
        self, ctx: SearchContext, *, selection: Literal["nsga2", "nsga3", "spea2"] = "nsga2",
        parents: Literal["dcd", "random"] = "dcd", divisions: int = 12, reference_point: list[float] | None = None,
        reference_margin: float = 0.1, **common: Any,
    ) -> None:
        super().__init__(ctx, **common)
        self.selection = check_choice("selection", selection, SELECTIONS)
        self.parents = check_choice("parents", parents, ("dcd", "random"))
        self.divisions = check_int("divisions", divisions, 1)
        n = len(ctx.objectives)
        if reference_point is not None and (len(reference_point) != n or not all(math.isfinite(v) for v in reference_point)):
            raise ValueError(f"reference_point: expected {n} finite numbers (one per objective), got {reference_point!r}")
        self.reference_margin = check_number("reference_margin", reference_margin, minimum=0.0)
        self.hall_of_fame = tools.ParetoFront()
        self.reference_point = [float(v) for v in reference_point] if reference_point is not None else None
        self._mating: list[Individual] = []
        self._next_parent = 0

    # -- variation: parents by dominance tournament ------------------------------------------------
    def _offspring(self) -> list[Candidate]:
        ok = [ind for ind in self.population if _finite(ind)]
        self._mating, self._next_parent = [], 0
        if self.parents == "dcd" and len(ok) >= 4:
            for front in tools.sortNondominated(ok, len(ok)):
                tools.emo.assignCrowdingDist(front)
            self._mating = self._seeded(tools.selTournamentDCD, ok, 4 * (len(ok) // 4))
        return super()._offspring()

    def _parent(self) -> Individual:
        if not self._mating:
            return super()._parent()
        ind = self._mating[self._next_parent % len(self._mating)]
        self._next_parent += 1
        return ind

    def _parent_pair(self) -> tuple[Individual, Individual]:
        if not self._mating:
            return super()._parent_pair()
        return self._parent(), self._parent()

    # -- survival ------------------------------------------------------------------------------
    def survive(self, batch: list[Individual]) -> None:
        """The next population by the multi-objective selection; the first generation sets the reference point."""
        unique = list({ind.key: ind for ind in reversed(self.population + batch)}.values())[::-1]
        ok = [ind for ind in unique if _finite(ind)]
        worst = [ind for ind in unique if not _finite(ind)]  # failed or infeasible: only to fill the population
        self.population = self._survivors(ok, min(self.mu, len(ok))) + worst[: max(0, self.mu - len(ok))]
        self.hall_of_fame.update([ind for ind in batch if _finite(ind)])
        if self.reference_point is None:
            points = [ind.fitness.values for ind in batch if _finite(ind)]
            if points:
                self.reference_point = derive_reference(points, self.ctx.weights, self.reference_margin)

    def select(self, individuals: Sequence[Individual], k: int) -> list[Individual]:
        """``k`` of ``individuals`` by this strategy's multi-objective selection (``selection``): what the DEAP
        toolbox of an nsga2 experiment registers as ``select``."""
        return self._survivors(list(individuals), k)

    def _survivors(self, individuals: list[Individual], k: int) -> list[Individual]:
        if k <= 0:
            return []
        if self.selection == "nsga3":
            refs = tools.uniform_reference_points(len(self.ctx.objectives), self.divisions)
            return self._seeded(tools.selNSGA3, individuals, k, refs)
        if self.selection == "spea2":
            return self._seeded(tools.selSPEA2, individuals, k)
        return self._seeded(tools.selNSGA2, individuals, k)

    def _seeded(self, fn: Callable[..., list], *args: Any) -> list:
        """Run a DEAP function that draws from the global ``random``, seeded from this strategy's ``rng``."""
        state = random.getstate()
        random.seed(self.rng.getrandbits(64))
        try:
            return list(fn(*args))
        finally:
            random.setstate(state)

    def record(self, generation: int, nevals: int) -> None:
        """The GA's logbook row plus ``hypervolume`` and ``front_size`` of the Pareto front so far."""
        super().record(generation, nevals)
        points = [ind.fitness.values for ind in self.hall_of_fame]
        hv = hypervolume(points, self.ctx.weights, self.reference_point) if self.reference_point and points else 0.0
        self.logbook[-1].update(hypervolume=hv, front_size=len(points))


def _finite(ind: Individual) -> bool:
    return ind.fitness.valid and all(math.isfinite(v) for v in ind.fitness.values)
