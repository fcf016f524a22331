"""The engine loop: ask the strategy while slots are free, submit to a backend, journal and tell each result.

Kept apart from :mod:`evonas.engine.runner` (run folders, resume, summaries) so the loop reads top to bottom.
"""

from __future__ import annotations

import math
import sys
from collections import deque
from typing import Any, Callable

from tqdm.auto import tqdm

from evonas.engine.backends import Backend, Job, JobResult, evaluation_seed
from evonas.engine.build import Built
from evonas.engine.judge import judge
from evonas.engine.journal import Journal, Record
from evonas.engine.replay import ReplayBackend
from evonas.engine.status import LiveStatus
from evonas.evolution import Individual, Variation
from evonas.strategies.base import Candidate, Strategy

__all__ = ["Loop", "StrategyStalled"]


class StrategyStalled(RuntimeError):
    """The strategy asked for nothing while nothing was in flight and it was not done: the run cannot go on
    (a strategy's bug: its ``propose`` / ``ask`` waits for a result that never comes)."""


class Loop:
    """State of one engine loop; kept apart from :class:`Run` so the loop reads top to bottom."""

    #: asks in a row answered from the journal after which a strategy counts as stuck (a small space used up)
    max_repeats = 10_000

    def __init__(self, run: Any, built: Built, strategy: Strategy, journal: Journal) -> None:
        self.run, self.built, self.strategy, self.journal = run, built, strategy, journal
        self.exp = built.experiment
        self.next_trial = 0
        self.known: set[str] = set()  # keys with a finished evaluation (the record lives in the journal)
        self.waiting: dict[str, list[Candidate]] = {}  # key in flight -> repeats waiting for its result
        self.inflight: dict[int, Candidate] = {}
        self.queue: deque[tuple[int, Candidate]] = deque()
        self.duplicates = 0
        self.checker = built.checker
        self.infeasible = 0  # candidates recorded as breaking a cheap limit: never trained, no budget spent
        self._repeats_in_a_row = 0
        self._bar: Any = None
        self.live: LiveStatus | None = None  # the run's entry for `evonas status` (None: not kept)
        # told each fresh result's trial once it is in the journal (a cache stores it only then: a failed
        # cache write never loses a training); None: the backend wants no word
        self._journalled: Callable[[int], None] | None = None
        # the strategy's operators with this run's own fault counts (strict: true makes the first fault fatal)
        self.variation: Variation | None = None
        ctx = strategy.ctx
        if isinstance(ctx.variation, Variation):
            ctx.variation = self.variation = ctx.variation.fresh(strict=self.exp.strict)
        self._faults_seen = 0
        self._warned: set[tuple[str, str]] = set()
        #: True while the loop answers from the journal (a resume's replay); counts then are not yet the run's
        self.replaying = False

    # -- the loop -----------------------------------------------------------------------
    def budget_left(self) -> bool:
        if self._repeats_in_a_row >= self.max_repeats:  # stuck: the strategy only proposes what the run has seen
            return False
        return self.exp.budget is None or self.next_trial - self.infeasible < self.exp.budget

    def drive(self, start_backend: Callable[[], Backend], replay: ReplayBackend | None) -> None:
        """Run the loop: over ``replay`` while it has recorded results, then over ``start_backend()``."""
        backend: Backend | None = replay
        self.replaying = replay is not None
        # Results one wait() returned are told one per pass, with an ask in between, exactly as a replay
        # (one recorded result per pass) will tell them: steady-state strategies then resume exactly.
        arrived: deque[JobResult] = deque()
        while True:
            if backend is None or (backend is replay and replay.exhausted()):
                if replay is not None:  # the journal is used up: what it cut off in flight is redone
                    for job in reversed(replay.in_flight()):
                        self.queue.appendleft((job.trial, self.inflight.pop(job.trial)))
                    replay = None
                    self.replaying = False
                if not self.queue and not self.inflight and (self.strategy.is_done() or not self.budget_left()):
                    return
                backend = start_backend()
                backend.store_after_journal()  # a cache in front of the backend stores only journalled results
                self._journalled = backend.journalled
            need = backend.free_slots() - len(self.queue) - len(arrived)
            if need > 0 and not self.strategy.is_done() and self.budget_left():
                cands = self.strategy.ask(need)
                self._warn_faults()
                for c in cands:
                    self._dispatch(c)
                if not cands and not self.inflight and not self.queue and not arrived:
                    if self.strategy.is_done():
                        return  # the strategy waits for nothing and asks nothing: it is finished
                    raise StrategyStalled(
                        f"strategy '{self.exp.strategy.name}' asked for nothing while no evaluation was running and "
                        "it is not done (is_done() is False): the run cannot go on"
                    )
            while self.queue and backend.free_slots() - len(arrived) > 0:
                trial, cand = self.queue.popleft()
                self.inflight[trial] = cand
                seed = evaluation_seed(self.exp.seed, cand.key)
                backend.submit(Job(trial, self.built.space.to_dict(cand.genome), seed, key=cand.key, fidelity=cand.fidelity))
            if self.live is not None and backend is not replay:
                self.live.update(backend, self.duplicates)
            if not self.inflight:
                if self.queue or (not self.strategy.is_done() and self.budget_left()):
                    continue
                return
            if not arrived:
                if self.live is not None and backend is not replay:
                    # keep `evonas status` true while results take long (a skipped update, workers that died,
                    # were killed or restarted): wait in short steps and write the state after each
                    while not arrived:
                        arrived.extend(backend.wait(timeout=self.live.every if self.live.dirty else self.live.refresh))
                        if not arrived:
                            self.live.update(backend, self.duplicates, force=True)
                else:
                    arrived.extend(backend.wait())
            if arrived:
                self._finish(arrived.popleft())

    def operator_stats(self) -> list[dict[str, Any]]:
        """Each operator's calls, failures and first error so far in this run (empty: no variation of its own)."""
        return self.variation.operator_stats() if self.variation is not None else []

    def _warn_faults(self) -> None:
        """One line on stderr the first time each operator fails (the run goes on; the summary counts them)."""
        if self.variation is None or self.variation.faults == self._faults_seen:
            return
        self._faults_seen = self.variation.faults
        for (kind, name), stats in self.variation.stats.items():
            if stats.failures and (kind, name) not in self._warned:
                self._warned.add((kind, name))
                self._say(f"evonas: {kind} '{name}' failed ({stats.first_error}); its children are made by another "
                          "operator and the run goes on (the summary counts its faults; strict: true stops instead)")  # fmt: skip

    def _say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def _dispatch(self, cand: Candidate) -> None:
        evaluation = cand.evaluation_key
        if evaluation in self.known:
            self.duplicates += 1
            self._repeats_in_a_row += 1
            if self._repeats_in_a_row == self.max_repeats:
                print(
                    f"evonas: strategy '{self.exp.strategy.name}' asked {self.max_repeats} genomes in a row that the run "
                    "had already evaluated; stopping (is the search space used up?)",
                    file=sys.stderr,
                )
            rec = self.journal.get(cand.key, cand.fidelity)
            assert rec is not None
            self._tell(cand, rec)
        elif evaluation in self.waiting:
            self.waiting[evaluation].append(cand)
        elif self.budget_left():
            problems, cheap = self.checker.cheap_violations(cand.genome) if self.checker is not None else ([], {})
            if problems:  # never trained: recorded (or, replaying, found in the journal) and told the worst fitness
                self._infeasible(cand, problems, cheap)
                return
            self._repeats_in_a_row = 0
            self.waiting[evaluation] = []
            self.queue.append((self.next_trial, cand))
            self.next_trial += 1

    def _infeasible(self, cand: Candidate, problems: list[str], cheap: dict[str, float]) -> None:
        rec = self.journal.get(cand.key, cand.fidelity)
        if rec is None or rec.status != "infeasible" or rec.trial != self.next_trial:
            rec = self.journal.append(Record(
                trial=self.next_trial, key=cand.key, generation=cand.generation, genome=self.built.space.to_dict(cand.genome),
                status="infeasible", metrics=dict(cheap), fitness=None, error="; ".join(problems), origin=cand.origin,
                parents=cand.parents, wall_s=0.0, fidelity=cand.fidelity,
            ))  # fmt: skip
            if self.run.on_result is not None:
                self.run.on_result(rec)
        self.next_trial += 1
        self.infeasible += 1
        self._repeats_in_a_row += 1
        if self._repeats_in_a_row == self.max_repeats:
            print(f"evonas: strategy '{self.exp.strategy.name}' asked {self.max_repeats} genomes in a row that the run had "
                  "already evaluated or that broke a limit; stopping (are the constraints too tight?)", file=sys.stderr)  # fmt: skip
        self.known.add(cand.evaluation_key)
        self._tell(cand, rec)
        self._tick(rec)

    def _finish(self, result: JobResult) -> None:
        cand = self.inflight.pop(result.trial)
        if result.record is not None:  # replayed from the journal
            rec = result.record
        else:
            rec = self.journal.append(self._record(cand, result))
            if self._journalled is not None:
                self._journalled(result.trial)
            if self.run.on_result is not None:
                self.run.on_result(rec)
        self.known.add(cand.evaluation_key)
        self._tell(cand, rec)
        self._tick(rec)
        for other in self.waiting.pop(cand.evaluation_key, []):
            self.duplicates += 1
            self._tell(other, rec)

    def _record(self, cand: Candidate, result: JobResult) -> Record:
        status, error, values = judge(result, self.exp.objectives, self.checker)
        metrics = result.metrics
        return Record(
            trial=result.trial,
            key=cand.key,
            generation=cand.generation,
            genome=self.built.space.to_dict(cand.genome),
            status=status,
            metrics=metrics,
            fitness=values if status == "ok" else None,
            error=error,
            origin=cand.origin,
            parents=cand.parents,
            seed=evaluation_seed(self.exp.seed, cand.key),
            wall_s=result.wall_s,
            worker=result.worker,
            cached=result.cached,
            fidelity=cand.fidelity,
            safe_mode=result.safe_mode,
        )

    def _tell(self, cand: Candidate, rec: Record) -> None:
        ind = Individual(cand.genome, cand.key, self.exp.weights, origin=cand.origin, parents=cand.parents)
        ind.metrics = dict(rec.metrics)
        if rec.status == "ok" and rec.fitness is not None:
            ind.fitness.values = rec.fitness
        else:  # failures get the worst fitness: never selected as best
            ind.fitness.values = tuple(-math.inf * w for w in self.exp.weights)
        self.strategy.tell(cand, ind)

    # -- progress -----------------------------------------------------------------------
    def _tick(self, rec: Record) -> None:
        if not self.run.progress:
            return
        if self._bar is None:
            self._bar = tqdm(total=self.strategy.expected_evaluations(), unit="eval", dynamic_ncols=True, file=sys.stderr)
        self._bar.update(1)
        post: dict[str, Any] = {"gen": rec.generation}
        hof = self.strategy.hall_of_fame
        if len(hof) and hof[0].fitness.valid and math.isfinite(hof[0].fitness.values[0]):
            post[self.exp.objectives[0].metric] = f"{hof[0].fitness.values[0]:.4f}"
        self._bar.set_postfix(post, refresh=False)

    def close_progress(self) -> None:
        if self._bar is not None:
            self._bar.close()
