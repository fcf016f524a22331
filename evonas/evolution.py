"""The DEAP glue: Fitness and Individual classes, variation by named operators, selection by name.

The classes are defined once here, in an importable module, so they pickle
under ``spawn`` and no ``creator.create`` happens at run time. An
:class:`Individual` holds an immutable genome and a DEAP fitness whose weights
come from the experiment's objectives (+1 maximise, -1 minimise).

:func:`make_toolbox` builds a ``deap.base.Toolbox`` from an experiment, with
``individual``, ``population``, ``mate``, ``mutate``, ``select``, ``evaluate``
and ``clone`` registered, so a DEAP user can call
``deap.algorithms.eaMuPlusLambda(pop, toolbox, ...)`` directly.
"""

from __future__ import annotations

import copy
import functools
import random
from typing import Any, Callable, Sequence

from deap import base, tools

from evonas.operators import CROSSOVERS, MUTATIONS, Crossover, Mutation
from evonas.registry import Registry
from evonas.spaces.base import Genome, SearchSpace

__all__ = [
    "Fitness",
    "Individual",
    "Variation",
    "SELECTIONS",
    "select",
    "make_toolbox",
]


class Fitness(base.Fitness):
    """A DEAP fitness whose ``weights`` are set per instance (one class serves every objective set)."""

    weights: tuple[float, ...] = (1.0,)

    def __init__(self, values: Sequence[float] = (), weights: Sequence[float] | None = None) -> None:
        if weights is not None:
            self.weights = tuple(float(w) for w in weights)
        super().__init__(values)

    def __deepcopy__(self, memo: dict) -> "Fitness":
        clone = Fitness.__new__(Fitness)
        clone.weights = self.weights
        clone.wvalues = self.wvalues
        return clone

    def __reduce__(self) -> tuple:
        return (_make_fitness, (self.weights, self.wvalues))


def _make_fitness(weights: tuple[float, ...], wvalues: tuple[float, ...]) -> Fitness:
    fit = Fitness(weights=weights)
    fit.wvalues = wvalues
    return fit


class Individual:
    """A genome with its key, fitness and provenance; equality is by key (what HallOfFame de-duplicates on)."""

    __slots__ = ("genome", "key", "fitness", "metrics", "origin", "parents", "__weakref__")

    def __init__(
        self,
        genome: Genome,
        key: str,
        weights: Sequence[float],
        *,
        origin: str = "",
        parents: tuple[str, ...] = (),
    ) -> None:
        self.genome = genome
        self.key = key
        self.fitness = Fitness(weights=weights)
        self.metrics: dict[str, Any] = {}
        self.origin = origin
        self.parents = parents

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Individual) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __deepcopy__(self, memo: dict) -> "Individual":
        clone = Individual.__new__(Individual)
        clone.genome = self.genome  # immutable: shared
        clone.key = self.key
        clone.fitness = copy.deepcopy(self.fitness, memo)
        clone.metrics = dict(self.metrics)
        clone.origin = self.origin
        clone.parents = self.parents
        return clone

    def __getstate__(self) -> dict:
        return {s: getattr(self, s) for s in self.__slots__ if s != "__weakref__"}

    def __setstate__(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def __repr__(self) -> str:
        fit = self.fitness.values if self.fitness.valid else "invalid"
        return f"Individual({self.key}, fitness={fit})"


class Variation:
    """Applies the experiment's operators: one picked per child, with probability proportional to ``prob``."""

    def __init__(
        self,
        space: SearchSpace,
        mutations: Sequence[tuple[Mutation, float]],
        crossovers: Sequence[tuple[Crossover, float]] = (),
    ) -> None:
        self.space = space
        self.mutations = [(m, p) for m, p in mutations if p > 0]
        self.crossovers = [(c, p) for c, p in crossovers if p > 0]
        if not self.mutations:
            raise ValueError(f"no mutation operator for space '{space.name}'")

    @classmethod
    def default(cls, space: SearchSpace) -> "Variation":
        """Every registered operator that applies to ``space``, with equal probability."""
        muts = [(MUTATIONS.get(n)(), 1.0) for n in MUTATIONS if MUTATIONS.get(n).applies_to(space)]
        cxs = [(CROSSOVERS.get(n)(), 1.0) for n in CROSSOVERS if CROSSOVERS.get(n).applies_to(space)]
        return cls(space, muts, cxs)

    @staticmethod
    def _pick(ops: Sequence[tuple[Any, float]], rng: random.Random) -> Any:
        if len(ops) == 1:
            return ops[0][0]
        return rng.choices([o for o, _ in ops], weights=[p for _, p in ops], k=1)[0]

    def mutate(self, genome: Genome, *, rng: random.Random) -> tuple[Genome, str]:
        """A mutated child and the operator's name."""
        op = self._pick(self.mutations, rng)
        return op(genome, space=self.space, rng=rng), op.name

    def crossover(self, a: Genome, b: Genome, *, rng: random.Random) -> tuple[Genome, Genome, str]:
        """Two children and the operator's name; falls back to copies when no crossover is configured."""
        if not self.crossovers:
            return a, b, "none"
        op = self._pick(self.crossovers, rng)
        c1, c2 = op(a, b, space=self.space, rng=rng)
        return c1, c2, op.name

    @property
    def can_cross(self) -> bool:
        return bool(self.crossovers)


#: selection functions with DEAP's signature ``sel(individuals, k, **params)``.
SELECTIONS: Registry[Callable[..., list]] = Registry("selection")
SELECTIONS.add("tournament", functools.partial(tools.selTournament, tournsize=3))
SELECTIONS.add("best", tools.selBest)
SELECTIONS.add("random", tools.selRandom)
SELECTIONS.add("nsga2", tools.selNSGA2)
SELECTIONS.add("spea2", tools.selSPEA2)
SELECTIONS.add(
    "double_tournament",
    functools.partial(tools.selDoubleTournament, fitness_size=3, parsimony_size=1.4, fitness_first=True),
)


def select(name: str, individuals: list, k: int, *, rng: random.Random, **params: Any) -> list:
    """Run DEAP selection ``name`` reproducibly: DEAP draws from the global ``random``, seeded here from ``rng``."""
    state = random.getstate()
    random.seed(rng.getrandbits(64))
    try:
        return SELECTIONS.get(name)(individuals, k, **params)
    finally:
        random.setstate(state)


def make_toolbox(
    space: SearchSpace,
    variation: Variation,
    weights: Sequence[float],
    evaluate: Callable[[Genome], Sequence[float]],
    *,
    selection: str = "tournament",
    selection_params: dict[str, Any] | None = None,
    rng: random.Random | None = None,
    toolbox: base.Toolbox | None = None,
) -> base.Toolbox:
    """A DEAP toolbox over evonas genomes, usable with ``deap.algorithms``.

    ``evaluate(genome) -> objective values``, called in this process; operators draw from ``rng``
    (default: seeded from DEAP's global ``random``, which ``deap.algorithms`` also uses). The
    functions are registered on ``toolbox`` if given (a ``base.Toolbox`` subclass), else on a new one.

    Example::

        tb = make_toolbox(space, Variation.default(space), (1.0,), lambda g: (score(g),))
        pop = tb.population(n=10)
        pop, log = deap.algorithms.eaMuPlusLambda(pop, tb, mu=10, lambda_=20, cxpb=0.3, mutpb=0.7, ngen=5)
    """
    rng = rng or random.Random(random.getrandbits(64))
    tb = toolbox if toolbox is not None else base.Toolbox()

    def individual(genome: Genome | None = None) -> Individual:
        g = genome if genome is not None else space.sample(rng=rng)
        return Individual(g, space.key(g), weights, origin="sample" if genome is None else "given")

    def mate(a: Individual, b: Individual) -> tuple[Individual, Individual]:
        c1, c2, name = variation.crossover(a.genome, b.genome, rng=rng)
        out = []
        for child, src in ((c1, a), (c2, b)):
            ind = Individual(child, space.key(child), weights, origin=f"crossover:{name}", parents=(a.key, b.key))
            out.append(ind)
        return out[0], out[1]

    def mutate(a: Individual) -> tuple[Individual]:
        child, name = variation.mutate(a.genome, rng=rng)
        return (Individual(child, space.key(child), weights, origin=f"mutation:{name}", parents=(a.key,)),)

    def evaluate_ind(ind: Individual) -> tuple[float, ...]:
        return tuple(evaluate(ind.genome))

    tb.register("individual", individual)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("mate", mate)
    tb.register("mutate", mutate)
    tb.register("select", functools.partial(SELECTIONS.get(selection), **(selection_params or {})))
    tb.register("evaluate", evaluate_ind)
    tb.register("clone", copy.deepcopy)
    return tb
