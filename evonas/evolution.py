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
import dataclasses
import functools
import math
import random
from typing import Any, Callable, Sequence

from deap import base, tools

from evonas.operators import CROSSOVERS, MUTATIONS, Crossover, Mutation
from evonas.operators.base import child_problem, describe_error
from evonas.registry import Registry, is_plugin
from evonas.spaces.base import BUILD_FUNCTION, Genome, SearchSpace

__all__ = [
    "Fitness",
    "Individual",
    "Variation",
    "OperatorStats",
    "OperatorFault",
    "SELECTIONS",
    "select",
    "make_toolbox",
]


class Fitness(base.Fitness):
    """A DEAP fitness whose ``weights`` are set per instance (one class serves every objective set).

    ``pruned``: the values are those of an evaluation a pruner stopped early. Such a fitness ranks below every
    complete one (and above a failure, whose values are the worst) in DEAP's comparisons and in
    :meth:`dominates`, so selections, tournaments and the hall of fame prefer completed evaluations.
    """

    weights: tuple[float, ...] = (1.0,)
    pruned: bool = False

    def __init__(self, values: Sequence[float] = (), weights: Sequence[float] | None = None) -> None:
        if weights is not None:
            self.weights = tuple(float(w) for w in weights)
        super().__init__(values)

    def __le__(self, other: Any) -> bool:
        return (_tier(self), self.wvalues) <= (_tier(other), other.wvalues)

    def __lt__(self, other: Any) -> bool:
        return (_tier(self), self.wvalues) < (_tier(other), other.wvalues)

    def __eq__(self, other: Any) -> bool:
        return (_tier(self), self.wvalues) == (_tier(other), other.wvalues)

    __hash__ = base.Fitness.__hash__

    def dominates(self, other: Any, obj: slice = slice(None)) -> bool:
        mine, theirs = _tier(self), _tier(other)
        if mine != theirs:
            return mine > theirs
        return bool(super().dominates(other, obj))

    def __deepcopy__(self, memo: dict) -> "Fitness":
        clone = Fitness.__new__(Fitness)
        clone.weights = self.weights
        clone.wvalues = self.wvalues
        if self.pruned:
            clone.pruned = True
        return clone

    def __reduce__(self) -> tuple:
        return (_make_fitness, (self.weights, self.wvalues, self.pruned))


def _tier(fitness: Any) -> int:
    """How a fitness ranks before its values: 0 a failure (every value the worst), 1 pruned, 2 complete (any DEAP
    fitness that is not ours is complete unless it failed)."""
    if fitness.wvalues and all(v == -math.inf for v in fitness.wvalues):
        return 0
    return 1 if getattr(fitness, "pruned", False) else 2


def _make_fitness(weights: tuple[float, ...], wvalues: tuple[float, ...], pruned: bool = False) -> Fitness:
    fit = Fitness(weights=weights)
    fit.wvalues = wvalues
    if pruned:
        fit.pruned = True
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


class OperatorFault(RuntimeError):
    """A variation operator raised or gave no valid child while faults are fatal (``strict: true``)."""


@dataclasses.dataclass
class OperatorStats:
    """How one operator fared in a run: calls, the calls that raised or gave no valid child, the first error."""

    kind: str  # "mutation" | "crossover"
    name: str
    calls: int = 0
    failures: int = 0
    #: ``ValueError: boom at my_ops.py:12``, or ``returned an invalid genome: <why>``
    first_error: str | None = None
    #: calls whose valid answer was the parent itself (a mutation that changed nothing)
    unchanged: int = 0
    #: an operator evonas ships (an idle one is the space leaving it nothing to change, not a bug of its own)
    builtin: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def line(self) -> str:
        """``mutation 'my_op' failed 7 of 21 calls (first: ValueError: boom at my_ops.py:12)``."""
        return f"{self.kind} '{self.name}' failed {self.failures} of {self.calls} calls (first: {self.first_error})"


class Variation:
    """Applies the experiment's operators: one picked per child, with probability proportional to ``prob``.

    An operator that raises, or gives something that is not a valid genome of the space, does not end the
    run: that child is made by another of the operators (drawn among those not yet tried for it, by
    ``prob``), and when every one has failed for it the parent is kept (``mutate``) or both parents are
    (``crossover``), named ``none``. Each fault is counted per operator in :attr:`stats` (calls, failures,
    the first error). ``strict``: the first fault raises :class:`OperatorFault` instead.
    """

    def __init__(
        self,
        space: SearchSpace,
        mutations: Sequence[tuple[Mutation, float]],
        crossovers: Sequence[tuple[Crossover, float]] = (),
        *,
        strict: bool = False,
        required: bool = True,
    ) -> None:
        self.space = space
        self.mutations = [(m, p) for m, p in mutations if p > 0]
        self.crossovers = [(c, p) for c, p in crossovers if p > 0]
        if not self.mutations and required:  # required=False: for a strategy that never mutates
            raise ValueError(f"no mutation operator for space '{space.name}'")
        self.strict = strict
        #: per operator (kind, name): calls, failures, first error, in the order the operators were first called
        self.stats: dict[tuple[str, str], OperatorStats] = {}
        #: faults so far, all operators together
        self.faults = 0

    @classmethod
    def default(cls, space: SearchSpace, *, required: bool = True) -> "Variation":
        """Every registered operator that applies to ``space``, with equal probability."""
        muts = [(MUTATIONS.get(n)(), 1.0) for n in MUTATIONS if MUTATIONS.get(n).applies_to(space)]
        cxs = [(CROSSOVERS.get(n)(), 1.0) for n in CROSSOVERS if CROSSOVERS.get(n).applies_to(space)]
        return cls(space, muts, cxs, required=required)

    def fresh(self, *, strict: bool | None = None) -> "Variation":
        """The same operators with counts at zero (one per run: a run's counts are its own)."""
        clone = copy.copy(self)
        clone.stats, clone.faults = {}, 0
        if strict is not None:
            clone.strict = strict
        return clone

    def operator_stats(self) -> list[dict[str, Any]]:
        """Every operator called so far: ``{kind, name, calls, failures, first_error}``."""
        return [s.to_dict() for s in self.stats.values()]

    @staticmethod
    def _pick(ops: Sequence[tuple[Any, float]], rng: random.Random) -> Any:
        if len(ops) == 1:
            return ops[0][0]
        return rng.choices([o for o, _ in ops], weights=[p for _, p in ops], k=1)[0]

    def _apply(self, kind: str, op: Any, call: Callable[[], Any], check: Callable[[Any], str | None]) -> tuple[Any, bool]:
        """``(call(), True)``, or ``(None, False)`` when it raised or ``check`` found its answer wanting (counted)."""
        stats = self.stats.get((kind, op.name))
        if stats is None:
            stats = self.stats[(kind, op.name)] = OperatorStats(kind, op.name, builtin=not is_plugin(type(op)))
        stats.calls += 1
        try:
            out = call()
            problem = check(out)
        except Exception as exc:  # the operator's bug: this child is made another way
            problem = describe_error(exc)
        if problem is None:
            return out, True
        stats.failures += 1
        self.faults += 1
        if stats.first_error is None:
            stats.first_error = problem
        if self.strict:
            raise OperatorFault(f"{kind} '{op.name}' {_as_clause(problem)}")
        return None, False

    def mutate(self, genome: Genome, *, rng: random.Random) -> tuple[Genome, str]:
        """A mutated child and the name of the operator that made it (``none``: every operator failed, the parent)."""
        ops = self.mutations
        while ops:
            op = self._pick(ops, rng)
            child, ok = self._apply("mutation", op, lambda: op(genome, space=self.space, rng=rng),
                                    lambda c: child_problem(c, self.space))  # fmt: skip
            if ok:
                if child == genome:  # no fault, but a child that repeats its parent: counted, said if always
                    self.stats[("mutation", op.name)].unchanged += 1
                return child, op.name
            ops = [(o, p) for o, p in ops if o is not op]
        return genome, "none"

    def crossover(self, a: Genome, b: Genome, *, rng: random.Random) -> tuple[Genome, Genome, str]:
        """Two children and the operator's name; the parents (``none``) when no crossover is configured or all failed."""
        ops = self.crossovers
        while ops:
            op = self._pick(ops, rng)
            pair, ok = self._apply("crossover", op, lambda: op(a, b, space=self.space, rng=rng), self._pair_problem)
            if ok:
                # the parents back as they were: counted, and said if in every call (a legitimate crossover gives
                # them back only when they are alike, which not every call of a run meets)
                if tuple(pair) in ((a, b), (b, a)):
                    self.stats[("crossover", op.name)].unchanged += 1
                return pair[0], pair[1], op.name
            ops = [(o, p) for o, p in ops if o is not op]
        return a, b, "none"

    def _pair_problem(self, pair: Any) -> str | None:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            return "returned None, not a pair of genomes" if pair is None else f"returned a {type(pair).__name__}, not a pair of genomes"
        return child_problem(pair[0], self.space) or child_problem(pair[1], self.space)

    @property
    def can_cross(self) -> bool:
        return bool(self.crossovers)


def _as_clause(problem: str) -> str:
    """``returned None`` as it is; ``ValueError: boom at x.py:3`` as ``raised ValueError: boom at x.py:3``."""
    return problem if problem.startswith("returned ") else f"raised {problem}"


#: selection functions with DEAP's signature ``sel(individuals, k, **params)``.
SELECTIONS: Registry[Callable[..., list]] = Registry("selection")
SELECTIONS.add("tournament", functools.partial(tools.selTournament, tournsize=3))
SELECTIONS.add("best", tools.selBest)
SELECTIONS.add("random", tools.selRandom)
SELECTIONS.add("nsga2", tools.selNSGA2)
SELECTIONS.add("spea2", tools.selSPEA2)


def select(name: str, individuals: list, k: int, *, rng: random.Random, **params: Any) -> list:
    """Run DEAP selection ``name`` reproducibly: DEAP draws from the global ``random``, seeded here from ``rng``."""
    state = random.getstate()
    random.seed(rng.getrandbits(64))
    try:
        return SELECTIONS.get(name)(individuals, k, **params)
    finally:
        random.setstate(state)


class FaultLines:
    """One line the first time each operator of ``variation`` (or ``space``'s build function) fails: what ``evonas
    run`` (``counted``: its summary counts them) and the DEAP toolbox say while the search goes on (``say``: where
    the line goes)."""

    def __init__(self, variation: Variation | None, space: SearchSpace, say: Callable[[str], None], *,
                 counted: bool = True) -> None:  # fmt: skip
        self.variation, self.space, self.say, self.counted = variation, space, say, counted
        self._seen = 0
        self._warned: set[tuple[str, str]] = set()

    def _say_idle(self) -> None:
        from evonas.engine.status import fault_lines, idle  # (the status module's rule and words, as a run's summary)

        for s in self.variation.operator_stats() if self.variation is not None else []:
            if not s["failures"] and idle(s) and ("idle", s["name"]) not in self._warned:
                self._warned.add(("idle", s["name"]))
                self.say(f"evonas: {fault_lines([s])[0]}; the search goes on")

    def stats(self) -> list[dict[str, Any]]:
        """Each operator's calls, failures and first error so far, then the space's own
        (:meth:`~evonas.spaces.base.SearchSpace.faults`: a build function that raised)."""
        return (self.variation.operator_stats() if self.variation is not None else []) + self.space.faults()

    def check(self) -> None:
        """Say what failed for the first time since the last call (the counters first: rows only when one moved),
        and (the DEAP toolbox, whose caller has no summary) an operator that gave back its parents in every call."""
        if not self.counted:
            self._say_idle()
        faults = (self.variation.faults if self.variation is not None else 0) + sum(
            f["failures"] for f in self.space.faults()
        )
        if faults == self._seen:
            return
        self._seen = faults
        for s in self.stats():
            kind, name = s["kind"], s["name"]
            if s["failures"] and (kind, name) not in self._warned:
                self._warned.add((kind, name))
                goes_on = f"run goes on (the summary counts {'them' if kind == BUILD_FUNCTION else 'its faults'}; " \
                    if self.counted else "search goes on ("  # fmt: skip
                if kind == BUILD_FUNCTION:
                    self.say(f"evonas: build function '{name}' failed ({s['first_error']}); the genomes it fails on "
                             f"count as invalid and the {goes_on}raise evonas.spaces.InvalidGenome to refuse a "
                             "combination of choices without this line)")  # fmt: skip
                else:
                    self.say(f"evonas: {kind} '{name}' failed ({s['first_error']}); its children are made by another "
                             f"operator and the {goes_on}strict: true stops instead)")  # fmt: skip


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

    def become(ind: Individual, genome: Genome, origin: str, parents: tuple[str, ...]) -> Individual:
        """``ind`` made into the child, in place as DEAP's operators work (``tb.mutate(ind)`` alone changes it), its
        fitness invalid and its metrics cleared."""
        ind.genome, ind.key, ind.origin, ind.parents = genome, space.key(genome), origin, parents
        ind.fitness, ind.metrics = Fitness(weights=weights), {}
        return ind

    def mate(a: Individual, b: Individual) -> tuple[Individual, Individual]:
        c1, c2, name = variation.crossover(a.genome, b.genome, rng=rng)
        parents = (a.key, b.key)
        return become(a, c1, f"crossover:{name}", parents), become(b, c2, f"crossover:{name}", parents)

    def mutate(a: Individual) -> tuple[Individual]:
        child, name = variation.mutate(a.genome, rng=rng)
        return (become(a, child, f"mutation:{name}", (a.key,)),)

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
