"""The strategy interface: ask / tell over candidates, state rebuilt by replaying results.

A strategy answers :meth:`Strategy.ask` with the next candidates and learns from :meth:`Strategy.tell`. It keeps
no state but what those calls give it and its own ``rng`` (seeded from the run's seed), so replaying a run's
recorded results through ask/tell in order rebuilds it exactly: every strategy is resumable by construction.

:class:`Strategy` is a template. It numbers candidates and records their keys (:meth:`Strategy.candidate`),
draws again a genome the run has already asked or one that breaks a cheap limit (:meth:`Strategy.redraw`), and
keeps the hall of fame and the logbook. A strategy writes how it proposes and how it learns:

- :class:`SteadyState` (``aging``, ``reinforce``, ``local_search``, ``surrogate``) asks one candidate per free
  worker; a subclass writes :meth:`SteadyState.propose` and :meth:`SteadyState.learn`;
- :class:`BatchedSampling` (``random``, ``grid``) asks independent batches; a subclass writes ``ask``;
- a generational strategy (``ga``, ``nsga2``) asks a whole generation and selects once all of it is told.

A subclass whose ``__init__`` ends in ``**common`` and passes it on to ``super().__init__`` gets the parameters
it forwards in its signature too, so the experiment checker and ``evonas list --params`` see every parameter.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import random
import typing
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Iterable, Sequence

import numpy as np
from deap import tools

from evonas.checks import check_int
from evonas.config import Objective
from evonas.evolution import Individual, Variation, select
from evonas.registry import Registry
from evonas.spaces.base import Genome, InvalidGenome, SearchSpace

__all__ = [
    "BatchedSampling", "Candidate", "DEFAULT_EVALUATIONS", "Proposal", "SINGLE_OBJECTIVE_SELECTIONS", "STRATEGIES",
    "SearchContext", "SteadyState", "Strategy", "evaluation_key", "population_stats", "scalar_fitness",
]  # fmt: skip

#: a proposed genome, the operator that made it (journal ``origin``) and its parents' keys.
Proposal = tuple[Genome, str, tuple[str, ...]]
#: how many architectures a steady-state strategy evaluates when neither its params nor the run give a number.
DEFAULT_EVALUATIONS = 100
#: the experiment's selections that rank by one objective: with several objectives a strategy that uses the
#: experiment's ``selection:`` needs another (``nsga2``, ``spea2``), or chooses its own (``multi_objective``).
SINGLE_OBJECTIVE_SELECTIONS = frozenset({"tournament", "best"})


def evaluation_key(key: str, fidelity: float | None) -> str:
    """A genome key with its evaluation's fidelity (``key@0.2``); the key alone for a full evaluation."""
    return key if fidelity is None else f"{key}@{fidelity:g}"


def scalar_fitness(ind: Individual) -> float:
    """One number to maximise: the sum of the weighted objective values (``-inf`` for a failure)."""
    value = float(sum(ind.fitness.wvalues))
    return value if math.isfinite(value) else -math.inf


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
    #: the genome whose trained weights the evaluation starts from (set by the engine with ``inherit:``)
    inherit: str | None = None

    @property
    def evaluation_key(self) -> str:
        """What the engine's repeat check compares: the key, the fidelity when there is one, and the parent whose
        weights it starts from (a child with inherited weights is another evaluation than one from scratch)."""
        key = evaluation_key(self.key, self.fidelity)
        return key if self.inherit is None else f"{key}<{self.inherit}"


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


#: options of the bookkeeping every strategy shares: listed after a strategy's own parameters
_BOOKKEEPING = ("log_every", "max_retries", "hall_of_fame")


def _forward_signature(cls: type, init: Callable[..., None]) -> None:
    """Give ``init`` (``cls``'s own ``__init__``), when it ends in ``**common``, the signature it really accepts: the
    parameters of the base class's ``__init__`` it forwards ``**common`` to, its own, then the shared bookkeeping."""
    sig = inspect.signature(init)
    params = list(sig.parameters.values())
    if not params or params[-1].kind is not inspect.Parameter.VAR_KEYWORD:
        return
    parent = super(cls, cls).__init__  # type: ignore[misc,arg-type]
    own = params[:-1]
    names = {p.name for p in own}
    inherited = [
        p for p in inspect.signature(parent).parameters.values()
        if p.name not in names and p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD)
    ]  # fmt: skip
    # what the strategy is (the base's parameters, e.g. population_size), then how it varies it (its own), then
    # the bookkeeping every strategy shares
    positional = [p for p in own if p.kind is not p.KEYWORD_ONLY]
    keyword = [p for p in own if p.kind is p.KEYWORD_ONLY]
    first = [p for p in inherited if p.name not in _BOOKKEEPING and p.kind is not p.VAR_KEYWORD]
    last = [p for p in inherited if p.name in _BOOKKEEPING or p.kind is p.VAR_KEYWORD]
    try:
        hints = {**typing.get_type_hints(parent), **typing.get_type_hints(init)}
    except Exception:  # unresolvable annotations: the checker then checks names only
        hints = {}
    init.__signature__ = sig.replace(parameters=positional + first + keyword + last)  # type: ignore[attr-defined]
    init.__annotations__ = hints


class Strategy(ABC):
    """Base class of search strategies, registered in :data:`STRATEGIES`.

    Subclasses implement :meth:`ask`, :meth:`tell` and :meth:`is_done` (or :class:`SteadyState`'s ``propose`` and
    ``learn``) and keep ``population`` (the current individuals). The base keeps the hall of fame, the logbook (a
    DEAP ``Logbook``, one record per generation) and the keys asked so far. The hall of fame holds the
    ``hall_of_fame`` best genomes (a DEAP ``HallOfFame``; with several objectives a ``ParetoFront`` of them all).
    A genome the run has asked, or one over a cheap limit of the experiment's ``constraints``, is drawn again up
    to ``max_retries`` times.
    """

    name: ClassVar[str] = ""
    #: True: asks a batch and waits for all of it; False: asks one candidate per free worker.
    generational: ClassVar[bool] = True
    #: True: chooses its own (multi-objective) selection, so the experiment's ``selection:`` is not checked.
    multi_objective: ClassVar[bool] = False
    #: the name of the parameter that sets how long the search is (``generations``, ``samples``, ``cycles``);
    #: empty when none does (``grid`` asks the whole space).
    run_length: ClassVar[str] = ""
    #: False: never calls the space's mutations (``random``, ``grid``, ``reinforce``), so a space with none runs it
    mutates: ClassVar[bool] = True
    #: False: never asks ``initial_population``'s genomes first (``grid`` enumerates the space in its own order)
    asks_saved: ClassVar[bool] = True
    #: False: never ranks its results to choose what to ask next (``random``, ``grid``), so it searches any number
    #: of objectives with no multi-objective selection (the run's best and Pareto front come from the journal)
    ranks: ClassVar[bool] = True
    #: the point hypervolumes are measured from (one value per objective), once the strategy has one.
    reference_point: list[float] | None = None

    def __init__(self, ctx: SearchContext, *, max_retries: int = 10, hall_of_fame: int = 10) -> None:
        self.ctx = ctx
        self.rng = ctx.rng
        self.max_retries = check_int("max_retries", max_retries, 0)
        check_int("hall_of_fame", hall_of_fame, 1)
        self.population: list[Individual] = []
        self.hall_of_fame = tools.HallOfFame(hall_of_fame) if len(ctx.objectives) == 1 else tools.ParetoFront()
        self.logbook = tools.Logbook()
        self.evaluated = 0
        self.gen = 0
        #: the index the next candidate gets (from 0 in each generation of a generational strategy)
        self.next_index = 0
        #: the keys of every candidate asked so far
        self.asked_keys: set[str] = set()
        #: the training the run's evaluations told so far spent (the engine adds each fresh result's
        #: ``train_steps`` and ``train_samples``); written to each logbook record
        self.spent: dict[str, int] = {"train_steps": 0, "train_samples": 0}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None:
            _forward_signature(cls, init)

    @property
    def uses_fidelity(self) -> bool:
        """Whether it asks evaluations at a lower fidelity (``Candidate.fidelity``): the fitness must support it."""
        return False

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

    # -- the bookkeeping subclasses use ---------------------------------------------------------------
    def candidate(
        self, genome: Genome, origin: str, parents: tuple[str, ...] = (), *, key: str | None = None,
        fidelity: float | None = None,
    ) -> Candidate:
        """A new candidate of this generation, numbered, its key (computed unless given) recorded as asked.

        Raises ``TypeError`` / ``ValueError`` naming the strategy for what no candidate can be made of: no valid
        genome of the run's space, an ``origin`` that is no string, ``parents`` that are no sequence of keys."""
        self._check_proposal(genome, origin, parents)
        key = self.ctx.space.key(genome) if key is None else key
        cand = Candidate(genome, key, self.gen, self.next_index, origin, tuple(parents), fidelity)
        self.next_index += 1
        self.asked_keys.add(key)
        return cand

    def _check_proposal(self, genome: Any, origin: Any, parents: Any) -> None:
        space, who = self.ctx.space, f"strategy '{self.name}'"
        if not isinstance(genome, Genome):
            raise TypeError(f"{who} proposed a {type(genome).__name__}, not a genome of the space '{space.name}' (to "
                            "make one from a dict: self.ctx.space.from_dict(...))")  # fmt: skip
        try:
            space.validate(genome)
        except InvalidGenome as exc:
            from evonas.registry import is_plugin

            blame = ""
            if is_plugin(type(space)) and not is_plugin(type(self)):  # a built-in strategy builds with the space's code
                blame = (f" (the genome came from the code of the plug-in space '{space.name}': its sample(), "
                         "from_categorical() or an operator; evonas.testing.check_space checks it)")
            raise ValueError(f"{who} proposed an invalid genome: {exc}{blame}") from None
        if not isinstance(origin, str):
            raise TypeError(f"{who} proposed a genome whose origin is a {type(origin).__name__} ({origin!r:.40}); "
                            "expected a string such as 'mutation'")  # fmt: skip
        if isinstance(parents, str) or not isinstance(parents, (tuple, list)) or not all(
            isinstance(p, str) for p in parents
        ):
            raise TypeError(f"{who} proposed a genome whose parents are {parents!r:.60}; expected a tuple of the "
                            "parents' keys, () for none")  # fmt: skip

    def is_new(self, key: str) -> bool:
        """Whether the run has not asked for ``key`` yet."""
        return key not in self.asked_keys

    def usable(self, genome: Genome, key: str | None = None) -> bool:
        """Whether ``genome`` (whose key is ``key`` when the caller has it) is new to the run and within every cheap
        limit of the experiment's ``constraints``: what :meth:`redraw` draws again for."""
        return self.is_new(self.ctx.space.key(genome) if key is None else key) and self.ctx.feasible(genome)

    def redraw(self, make: Callable[[], Proposal], first: Proposal | None = None) -> Proposal:
        """``first`` (default: ``make()``), then ``make()`` again while the genome is not :meth:`usable`, at most
        ``max_retries`` times; the engine records a genome that is still infeasible without training it."""
        out = make() if first is None else first
        for _ in range(self.max_retries):
            if self.usable(out[0]):
                break
            out = make()
        return out

    def saved(self) -> Genome | None:
        """The first genome of ``initial_population`` the run has not asked yet, if any."""
        return next((g for g in self.ctx.initial if self.is_new(self.ctx.space.key(g))), None)

    def sample(self) -> Proposal:
        """A saved genome not yet asked, else a random sample (drawn again as :meth:`redraw` says)."""
        genome = self.saved()
        if genome is not None:
            return genome, "saved", ()
        return self.redraw(lambda: (self.ctx.space.sample(rng=self.rng), "sample", ()))

    def logged_evaluations(self) -> int:
        """The logbook's ``evals``: the results told so far."""
        return self.evaluated

    def end_search(self) -> None:
        """The engine ended the search before :meth:`is_done` (the strategy proposed only genomes the run had seen):
        a strategy that logs in blocks logs its last, partial one here."""

    def record_evaluated(self, individuals: Iterable[Individual]) -> None:
        """Count ``individuals`` as told results and keep the best of them in the hall of fame, which the logbook's
        best so far, ``hall_of_fame.json`` and ``evonas status`` read. A generational strategy's ``tell`` calls it
        with its results (each as it comes, or a generation's at once); ``SteadyState`` calls it itself (and
        ``BatchedSampling`` keeps the same counts in its own ``tell``)."""
        batch = list(individuals)
        self.evaluated += len(batch)
        self.hall_of_fame.update(batch)

    def end_generation(self, nevals: int) -> None:
        """Record the generation in the logbook (:meth:`record`) and start the next one."""
        self.record(self.gen, nevals)
        self.gen += 1
        if self.generational:
            self.next_index = 0

    def record(self, generation: int, nevals: int) -> None:
        """Append one logbook record: per objective, max / min / avg / std of the population, and the best so far."""
        row: dict[str, Any] = {"gen": generation, "nevals": nevals, "evals": self.logged_evaluations(), **self.spent}
        row.update(population_stats(self.population, self.ctx.objectives))
        for i, obj in enumerate(self.ctx.objectives):
            vals = [ind.fitness.values[i] for ind in self.hall_of_fame if ind.fitness.valid]
            vals = [v for v in vals if math.isfinite(v)]
            row[f"{obj.metric}_best_so_far"] = (max(vals) if obj.weight > 0 else min(vals)) if vals else float("nan")
        self.logbook.record(**row)


class SteadyState(Strategy):
    """Base of asynchronous strategies: up to ``n`` candidates per ask, learning from each tell as it arrives.

    ``samples`` distinct architectures are asked (default: the run's budget, else 100;
    never more than the budget). A logbook record every ``log_every`` distinct evaluations (a repeat the run
    answers from the journal is learnt from, not logged). A subclass writes :meth:`propose` and :meth:`learn`;
    both see only ask/tell and ``self.rng``, so results told in the same order give the same run, which is what
    resume-by-replay needs with several workers.
    """

    generational = False
    run_length = "samples"

    def __init__(self, ctx: SearchContext, *, samples: int | None = None, log_every: int = 10, **common: Any) -> None:
        super().__init__(ctx, **common)
        if samples is not None:
            check_int(self.run_length, samples, 1)
        self.limit = samples if samples is not None else (ctx.budget or DEFAULT_EVALUATIONS)
        self.log_every = check_int("log_every", log_every, 1)
        self._pending = 0
        self._asked = 0  # candidates asked, in order: their generations
        self._told: set[str] = set()  # evaluation keys told so far: a repeat the run answered adds no logbook row

    @abstractmethod
    def propose(self) -> Proposal | None:
        """The next genome to ask, with its origin and parents' keys, or ``None`` to wait for results.

        :meth:`Strategy.sample` and :meth:`Strategy.redraw` give genomes new to the run."""

    @abstractmethod
    def learn(self, candidate: Candidate, individual: Individual) -> None:
        """Update the strategy's state with one result (called in tell order, after the hall of fame)."""

    def expected_evaluations(self) -> int:
        return min(self.limit, self.ctx.budget) if self.ctx.budget else self.limit

    def is_done(self) -> bool:
        return len(self.asked_keys) >= self.expected_evaluations()

    def ask(self, n: int) -> list[Candidate]:
        out: list[Candidate] = []
        while len(out) < n and not self.is_done():
            proposal = self.propose()
            if proposal is None:  # nothing to build on until a result arrives
                break
            if not isinstance(proposal, (tuple, list)) or len(proposal) != 3:
                raise TypeError(f"strategy '{self.name}': propose() returned {type(proposal).__name__}"
                                + (f" of {len(proposal)}" if isinstance(proposal, (tuple, list)) else "")
                                + "; expected (genome, origin, parents), or None to wait for results")  # fmt: skip
            # its generation is its block of log_every in ask order, the logbook's blocks of results (with several
            # workers, the block in progress when it is asked can be the one before: its label would lag)
            cand = dataclasses.replace(self.candidate(*proposal), generation=self._asked // self.log_every)
            out.append(cand)
            self._asked += 1
            self._pending += 1
        return out

    @property
    def distinct(self) -> int:
        """The distinct evaluations told so far (a repeat answered from the journal is learnt from, but is no
        evaluation)."""
        return len(self._told)

    def logged_evaluations(self) -> int:
        """The logbook's ``evals``: :attr:`distinct`."""
        return self.distinct

    def tell(self, candidate: Candidate, individual: Individual) -> None:
        self._pending -= 1
        fresh = candidate.evaluation_key not in self._told
        self._told.add(candidate.evaluation_key)
        self.record_evaluated([individual])
        self.learn(candidate, individual)
        # a row per log_every distinct evaluations: a strategy that proposes only what the run has seen (its space
        # used up) writes none (it wrote one per log_every repeats, up to the engine's stop after 10,000)
        if fresh and self.distinct % self.log_every == 0:
            self.end_generation(self.log_every)
        elif self.is_done() and self._pending == 0:  # the last, partial block
            self.end_search()

    def end_search(self) -> None:
        if self.distinct % self.log_every and (not self.logbook or self.logbook[-1]["evals"] != self.distinct):
            self.end_generation(self.distinct % self.log_every)


class BatchedSampling(Strategy):
    """Bookkeeping shared by strategies that ask independent batches (``random``, ``grid``).

    Subclasses fill ``self._pending`` in :meth:`ask` (counting ``self.n_asked``); each finished batch is one
    logbook generation, and the population is the ``batch`` best genomes so far (so memory stays flat in long runs).
    """

    generational = True

    def __init__(self, ctx: SearchContext, *, batch: int, **common: Any) -> None:
        super().__init__(ctx, **common)
        self.batch = check_int("batch", batch, 1)
        self.n_asked = 0
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
            self._pending, self._told = [], {}
            self.end_generation(len(batch))


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
