"""DEAP's ``toolbox.map`` over evonas's evaluation backends: isolation, time limits, retries, cache, parallelism.

DEAP's algorithms (``eaSimple``, ``eaMuPlusLambda``, ``eaMuCommaLambda``) evaluate with
``fitnesses = toolbox.map(toolbox.evaluate, invalid_ind)`` and assign the values in order. The
toolbox of :meth:`evonas.engine.build.Built.toolbox` registers an :class:`IsolatedMap` as its
``map``: when it is handed the toolbox's own ``evaluate``, each individual's genome becomes a
:class:`~evonas.engine.backends.Job` for the experiment's backend (the local worker pool, Ray, or
this process with ``workers: 0``), as many in flight as the backend has free slots, and the list of
fitness tuples comes back in input order. Each genome key is evaluated once: a repeat, in the same
call or a later one, gets the first evaluation's outcome (as a run answers repeats from its journal;
evaluations are seeded by key, so evaluating again would only repeat the work). Any other function
is mapped with the built-in ``map``.

An evaluation that fails (the fitness raised, returned no or a non-finite objective, broke a
constraint of the experiment, ran past ``timeout:``, or killed its worker: a native crash is
retried once on a fresh worker) gets the worst fitness (``-inf * weight`` per objective), as in a
run. Its reason is appended to ``toolbox.failures`` (:class:`EvaluationFailure`) and printed as one
``evonas: genome KEY failed (...)`` line on stderr (``quiet=True``: not printed), once per key. The
metrics of each evaluation are set as ``ind.metrics`` on the individuals passed in.

The workers start on the first evaluation and stop with ``toolbox.close()`` (or at the end of a
``with`` block), when the toolbox is garbage-collected, or when the process exits. Example::

    with build(load_experiment("experiments/quickstart.yaml")).toolbox() as tb:
        pop, log = deap.algorithms.eaMuPlusLambda(tb.population(n=10), tb, 10, 20, 0.3, 0.6, ngen=5)
    print(tb.failures)
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import os
import sys
import weakref
from collections import deque
from typing import Any, Callable, Iterable, Sequence

from deap import base

from evonas.engine.backends import Backend, EvalContext, Job, JobResult, evaluation_seed, make_backend
from evonas.engine.cache import CachedBackend, EvaluationCache, cache_problem, problem_fingerprint, say_uncached
from evonas.engine.judge import judge

__all__ = ["EvaluationFailure", "IsolatedMap", "IsolatedToolbox"]


@dataclasses.dataclass(frozen=True)
class EvaluationFailure:
    """One genome that got the worst fitness, and why.

    ``status``: ``failed`` (the evaluation raised, crashed, timed out or returned no usable objective),
    ``violated`` (trained, but its metrics break a constraint) or ``infeasible`` (breaks a limit on a
    cheap metric: never trained).
    """

    key: str
    genome: dict[str, Any]
    status: str
    error: str
    metrics: dict[str, Any]
    worker: str = ""


@dataclasses.dataclass(frozen=True)
class _Outcome:
    values: tuple[float, ...]
    status: str
    error: str | None
    metrics: dict[str, Any]
    worker: str


class _Workers:
    """The backend of one :class:`IsolatedMap`, apart from it so a finalizer can close it without keeping it alive."""

    def __init__(self) -> None:
        self.backend: Backend | None = None
        self.pid = os.getpid()

    def set(self, backend: Backend) -> None:
        self.backend, self.pid = backend, os.getpid()

    def close(self) -> None:
        backend, self.backend = self.backend, None
        # A forked child holds a copy of this object: the workers are its parent's to stop, not its own.
        if backend is not None and os.getpid() == self.pid:
            backend.close()


class IsolatedMap:
    """``toolbox.map`` (and ``toolbox.evaluate``) evaluating through the experiment's backend.

    ``built`` is the experiment's :class:`~evonas.engine.build.Built`; ``workers`` overrides the
    experiment's ``workers:`` (``0``: this process); ``cache`` overrides its ``cache:`` (the
    evaluation cache, ``$EVONAS_CACHE`` or ``~/.cache/evonas/evaluations.sqlite``, used only for a
    fitness that is worth caching); ``quiet`` keeps failures off stderr (they are still in
    :attr:`failures`).

    A pickled copy (e.g. ``toolbox.evaluate`` sent to a process pool of your own whose ``map`` you
    registered instead) evaluates in the process that unpickles it: worker pools are never nested.
    """

    def __init__(self, built: Any, *, workers: int | str | None = None, cache: bool | None = None, quiet: bool = False) -> None:
        exp = built.experiment
        self.experiment = exp
        self.space = built.space
        self.checker = built.checker
        self.workers = exp.workers if workers is None else workers
        use_cache = exp.cache if cache is None else bool(cache)
        self.cache = use_cache and built.fitness.cacheable
        uncached = cache_problem(built) if self.cache else None
        if uncached:
            self.cache = False
            say_uncached(uncached)
        self.fingerprint = problem_fingerprint(built) if self.cache else ""
        self.quiet = quiet
        #: every genome that got the worst fitness, in the order they were evaluated (clear it as you like)
        self.failures: list[EvaluationFailure] = []
        self._context: EvalContext | None = EvalContext.of(built.space, built.fitness, built.dataset)
        self._setup()

    def _setup(self) -> None:
        #: the outcome of every genome key evaluated so far (the toolbox's counterpart of a run's journal)
        self._known: dict[str, _Outcome] = {}
        self._trials = itertools.count()
        self._workers = _Workers()
        self._finalizer = weakref.finalize(self, self._workers.close)  # also runs at exit

    # -- pickling: settings travel, workers and built components do not -------------------------
    def __getstate__(self) -> dict[str, Any]:
        keep = ("experiment", "space", "checker", "cache", "fingerprint", "quiet")
        return {"workers": 0, "failures": [], "_context": None, **{k: self.__dict__[k] for k in keep}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    # -- the DEAP interface ----------------------------------------------------------------------
    def __call__(self, func: Callable[..., Any], *iterables: Iterable[Any]) -> Any:
        """``map(func, iterable)``: the list of fitness tuples, in order, when ``func`` is this toolbox's
        ``evaluate``; else the built-in ``map(func, *iterables)``."""
        if len(iterables) != 1 or not self._is_evaluate(func):
            return map(func, *iterables)
        return self.evaluate_all(list(iterables[0]))

    def evaluate(self, individual: Any) -> tuple[float, ...]:
        """The fitness values of one individual (or genome), evaluated on the backend like :meth:`__call__`."""
        return self.evaluate_all([individual])[0]

    def evaluate_all(self, items: Sequence[Any]) -> list[tuple[float, ...]]:
        """Fitness tuples of ``items`` (individuals or genomes), in order; each key evaluated once."""
        exp = self.experiment
        entries = [self._genome_and_key(item) for item in items]
        unique: dict[str, Any] = {}
        for genome, key in entries:
            unique.setdefault(key, genome)
        outcomes: dict[str, _Outcome] = {}  # what this call learnt
        jobs = []
        for key, genome in unique.items():
            if key in self._known:
                continue
            if self.checker is not None:
                problems, cheap = self.checker.cheap_violations(genome)
                if problems:  # never trained, as in a run
                    outcomes[key] = _Outcome(self._worst(), "infeasible", "; ".join(problems), dict(cheap), "")
                    continue
            seed = evaluation_seed(exp.seed, key)
            jobs.append(Job(next(self._trials), self.space.to_dict(genome), seed=seed, key=key))
        if jobs:
            results = self._run(jobs)
            for job in jobs:
                outcomes[job.key] = self._outcome(results[job.trial])
        for key, outcome in outcomes.items():
            self._known[key] = outcome
            if outcome.status != "ok":
                self._report(key, unique[key], outcome)
        values = []
        for item, (_, key) in zip(items, entries):
            outcome = self._known[key]
            if hasattr(item, "genome"):  # an individual: its metrics are the user's to read
                try:
                    item.metrics = dict(outcome.metrics)
                except AttributeError:  # an individual class without a metrics slot
                    pass
            values.append(outcome.values)
        return values

    def close(self) -> None:
        """Stop the workers (a later evaluation starts fresh ones)."""
        self._workers.close()

    # -- internals -------------------------------------------------------------------------------
    def _is_evaluate(self, func: Any) -> bool:
        while isinstance(func, functools.partial) and not func.args and not func.keywords:
            func = func.func  # Toolbox.register wraps every function in a partial
        return func == self.evaluate

    def _genome_and_key(self, item: Any) -> tuple[Any, str]:
        genome = getattr(item, "genome", item)
        key = getattr(item, "key", None) if genome is not item else None
        return genome, key or self.space.key(genome)

    def _worst(self) -> tuple[float, ...]:
        return tuple(-math.inf * w for w in self.experiment.weights)

    def _backend(self) -> Backend:
        if self._workers.backend is None:
            if self._context is None and self.workers == 0:  # an unpickled copy: build the components here
                self._context = EvalContext(self.experiment)
            backend = make_backend(self.experiment, self.workers, context=self._context)
            if self.cache:
                backend = CachedBackend(backend, EvaluationCache(), self.fingerprint, expects=self.experiment.metrics)
            self._workers.set(backend)
        assert self._workers.backend is not None
        return self._workers.backend

    def _run(self, jobs: list[Job]) -> dict[int, JobResult]:
        """Evaluate ``jobs`` with as many in flight as the backend has free slots."""
        backend = self._backend()
        queue = deque(jobs)
        inflight: dict[int, Any] = {}
        results: dict[int, JobResult] = {}
        try:
            while queue or inflight:
                while queue and backend.free_slots() > 0:
                    job = queue.popleft()
                    backend.submit(job)
                    inflight[job.trial] = job
                done = backend.wait()
                if not done and not backend.busy():
                    raise RuntimeError(f"the {self.experiment.backend.name} backend lost {len(inflight)} evaluation(s)")
                for result in done:
                    if inflight.pop(result.trial, None) is not None:
                        results[result.trial] = result
        except BaseException:
            # Ctrl-C, a worker that cannot start: what was in flight is abandoned with its workers
            self._workers.close()
            raise
        return results

    def _outcome(self, result: JobResult) -> _Outcome:
        """The fitness of one result, judged as a run judges it (:func:`evonas.engine.judge.judge`)."""
        status, error, values = judge(result, self.experiment.objectives, self.checker)
        return _Outcome(values if values is not None else self._worst(), status, error, dict(result.metrics), result.worker)

    def _report(self, key: str, genome: Any, outcome: _Outcome) -> None:
        error = outcome.error or "no reason given"
        self.failures.append(
            EvaluationFailure(key, self.space.to_dict(genome), outcome.status, error, dict(outcome.metrics), outcome.worker)
        )
        if not self.quiet:
            print(f"evonas: genome {key} {outcome.status} ({error}); it gets the worst fitness", file=sys.stderr)


class IsolatedToolbox(base.Toolbox):
    """A DEAP toolbox whose ``map`` and ``evaluate`` go through an :class:`IsolatedMap`; a context manager.

    ``failures`` lists the genomes that got the worst fitness and why; ``close()`` stops the workers.
    """

    def __init__(self, isolated: IsolatedMap) -> None:
        super().__init__()
        self.isolated = isolated

    @property
    def failures(self) -> list[EvaluationFailure]:
        return self.isolated.failures

    def close(self) -> None:
        """Stop the evaluation workers (a later evaluation starts fresh ones)."""
        self.isolated.close()

    def __enter__(self) -> "IsolatedToolbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
