"""The engine loop: ask the strategy while slots are free, submit to a backend, journal and tell each result.

Kept apart from :mod:`evonas.engine.runner` (run folders, resume, summaries) so the loop reads top to bottom.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from tqdm.auto import tqdm

from evonas.checks import decimals_text, is_real
from evonas.config import Experiment
from evonas.engine.backends import Backend, Inheritance, Job, JobResult, Pruning, evaluation_seed
from evonas.engine.build import Built
from evonas.engine.judge import judge
from evonas.engine.journal import Journal, Record
from evonas.engine.replay import ReplayBackend
from evonas.engine.status import LiveStatus
from evonas.engine.weights import WEIGHTS_DIR, WeightStore
from evonas.evolution import FaultLines, Individual, Variation
from evonas.loggers import LoggerGroup
from evonas.pruners import Curve, History
from evonas.strategies.base import Candidate, Strategy

__all__ = ["CONFIRM", "Loop", "StrategyStalled"]

#: the origin of the evaluations from scratch that confirm the best inherited ones once the search is over
CONFIRM = "confirm"


#: this many failed evaluations at the start of a session, and none that did not fail, are said at once
FAILED_AT_START = 3


def _first_line(error: str | None) -> str:
    lines = (error or "").strip().splitlines()
    line = lines[0] if lines else "no reason recorded"
    return line if len(line) <= 300 else line[:297] + "..."


class StrategyStalled(RuntimeError):
    """The strategy asked for nothing while nothing was in flight and it was not done: the run cannot go on
    (a strategy's bug: its ``propose`` / ``ask`` waits for a result that never comes)."""


#: repeats in a row after which the loop looks whether a finite space is used up (every genome evaluated)
USED_UP_AFTER = 100

#: the journal's meta key of the seconds of searching the run's sessions have spent (``stop.time_budget_s``)
SEARCHED_META = "searched_s"


class StopCheck:
    """The experiment's ``stop:`` told complete evaluations in tell order (the loop's, a resume's replay, a check of
    a run's journal): :attr:`reason` is why it ends the search, once met (``None``: not met)."""

    def __init__(self, exp: Experiment) -> None:
        self.exp = exp
        self.reason: str | None = None
        # the first objective's best so far (weighted: larger is better), the complete evaluations since it improved
        self._best_so_far: float | None = None
        self._since_best = 0
        self._failed = 0

    def time_spent(self, searched_s: float) -> str | None:
        """The reason once ``stop.time_budget_s`` is spent by ``searched_s`` seconds of searching."""
        rule = self.exp.stop
        if self.reason is None and rule is not None and rule.time_budget_s is not None and searched_s >= rule.time_budget_s:
            self.reason = f"stop.time_budget_s: {rule.time_budget_s:g} s of searching spent"
        return self.reason

    def tell(self, rec: Record) -> None:
        """``stop:``'s failures, targets and patience, after each evaluation is told (replayed ones too, so a resume
        meets them where the run did)."""
        rule = self.exp.stop
        if rule is not None and self.reason is None and rule.failures is not None and rec.status == "failed":
            self._failed += 1
            if self._failed >= rule.failures:
                self.reason = (f"{self._failed} evaluation{'s' if self._failed != 1 else ''} failed (stop.failures; "
                               f"the last, trial {rec.trial}: {_first_line(rec.error)})")  # fmt: skip
            return
        if rule is None or self.reason is not None or not rec.complete or rec.fitness is None:
            return
        for metric, target in rule.targets:
            i = self.exp.metrics.index(metric)
            value = rec.fitness[i]
            maximise = self.exp.objectives[i].direction == "max"
            if math.isfinite(value) and (value >= target if maximise else value <= target):
                self.reason = (f"{metric} {value:.6g} {'>=' if maximise else '<='} {target:g} (stop.{metric}) "
                               f"at trial {rec.trial}")  # fmt: skip
                return
        if rule.patience is None:
            return
        value = rec.fitness[0] * self.exp.weights[0]
        if math.isfinite(value) and (self._best_so_far is None or value > self._best_so_far):
            self._best_so_far, self._since_best = value, 0
            return
        self._since_best += 1
        if self._since_best >= rule.patience:
            best = "none" if self._best_so_far is None else f"{self._best_so_far * self.exp.weights[0]:.6g}"
            self.reason = (f"no better {self.exp.metrics[0]} in {rule.patience} complete evaluations "
                           f"(stop.patience; best {best})")  # fmt: skip


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
        #: why the search ended before its plan: a strategy that asked only genomes the run had seen (None: it did not)
        self.stuck: str | None = None
        self._space_size: int | None = None  # the space's genomes (0: not finite, or not counted), once asked
        # stop: (the experiment's StopRule) and the searching of earlier sessions
        self._stop_check = StopCheck(self.exp)
        self._searched_before = float(journal.get_meta(SEARCHED_META, 0.0) or 0.0)
        self._session_start: float | None = None
        self.say_stuck = True
        self._bar: Any = None
        self.live: LiveStatus | None = None  # the run's entry for `evonas status` (None: not kept)
        # told each fresh result's trial once it is in the journal (a cache stores it only then: a failed
        # cache write never loses a training); None: the backend wants no word
        self._journalled: Callable[[int, bool], None] | None = None
        # the strategy's operators with this run's own fault counts (strict: true makes the first fault fatal)
        self.variation: Variation | None = None
        ctx = strategy.ctx
        if isinstance(ctx.variation, Variation):
            ctx.variation = self.variation = ctx.variation.fresh(strict=self.exp.strict)
        self._fault_lines = FaultLines(self.variation, built.space, self._say)
        self._fresh: list[bool] = []  # whether each of this session's first evaluations failed
        #: True while the loop answers from the journal (a resume's replay); counts then are not yet the run's
        self.replaying = False
        # pruning: the curves of the finished evaluations, by kind (fidelity, inherited or not), in tell order
        self.pruner = built.pruner
        self._curves: dict[tuple[float | None, bool], list[Curve]] = {}
        # inheritance: the weight store, the genomes whose trained weights it was given (fresh successes), the best
        # inherited result of each genome and the genomes evaluated from scratch (both in tell order), and the
        # confirmations chosen once the search is over
        self.inherit = self.exp.inherit
        self.weights_dir: Path = Path(run.run_dir) / WEIGHTS_DIR
        self._store: WeightStore | None = None
        self._trained: dict[str, dict[str, Any]] = {}
        self._inherited_best: dict[str, Record] = {}
        self._scratch: set[str] = set()
        self._confirms: list[Candidate] | None = None
        self._confirmed = 0
        # loggers: told each fresh result and each new logbook row (never what a resume replays)
        self.loggers = LoggerGroup(built.loggers, say=self._say)
        self._logged_rows = 0

    # -- the loop -----------------------------------------------------------------------
    def _stopping(self) -> bool:
        """Whether :meth:`Run.stop` was called or the experiment's ``stop:`` met; the first time, the candidates not
        yet submitted are let go (a resume asks them again) and the reason becomes the run's ``ended_early``."""
        reason = getattr(self.run, "stop_reason", None) or self._stop_check.reason or self._time_spent()
        if reason is None:
            return False
        if self.stuck is None:  # the search's candidates not yet submitted are let go; inherit's confirmations run
            dropped = [(t, c) for t, c in self.queue if c.origin != CONFIRM]
            for _, cand in dropped:
                self.waiting.pop(cand.evaluation_key, None)
            self.queue = deque(e for e in self.queue if e[1].origin == CONFIRM)
            self.stuck = reason
            if self.say_stuck:
                self._say(f"evonas: stopped early: {reason}" + ("; the running evaluations finish" if self.inflight else ""))
        return True

    def searched_s(self) -> float:
        """Seconds of searching over the run's sessions: the earlier ones' (the journal's), and this one's so far."""
        now = 0.0 if self._session_start is None else time.monotonic() - self._session_start
        return self._searched_before + now

    def _time_spent(self) -> str | None:
        """``stop.time_budget_s`` spent: the reason (never while a resume replays: its journal is told whole)."""
        return None if self.replaying else self._stop_check.time_spent(self.searched_s())

    def budget_left(self) -> bool:
        if self._stopping():
            return False
        if self._repeats_in_a_row >= self.max_repeats:  # stuck: the strategy only proposes what the run has seen
            return False
        return self.exp.budget is None or self.next_trial - self.infeasible < self.exp.budget

    def drive(self, start_backend: Callable[[], Backend], replay: ReplayBackend | None) -> None:
        """Run the loop: over ``replay`` while it has recorded results, then over ``start_backend()``."""
        backend: Backend | None = replay
        self.replaying = replay is not None
        self._session_start = time.monotonic()
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
                if not self.queue and not self.inflight and not self._asking():
                    return
                backend = start_backend()
                backend.store_after_journal()  # a cache in front of the backend stores only journalled results
                backend.said_by(self._say)  # its lines during the run keep the progress bar whole
                if self.live is not None:  # an evaluation in this process blocks the loop: `status` is written first
                    live, real = self.live, backend
                    real.watch(lambda: live.update(real, self.duplicates, force=True))
                self._journalled = backend.journalled
            need = backend.free_slots() - len(self.queue) - len(arrived)
            if need > 0 and self._asking():
                cands = self._ask(need, idle=not (self.inflight or self.queue or arrived))
                self._warn_faults()
                for c in cands:
                    self._dispatch(c)
                if not cands and not self.inflight and not self.queue and not arrived:
                    if self._searched():
                        if self._asking():
                            continue  # the confirmations were chosen just now
                        return  # the strategy waits for nothing and asks nothing: it is finished
                    raise StrategyStalled(
                        f"strategy '{self.exp.strategy.name}' asked for nothing while no evaluation was running and "
                        "it is not done (is_done() is False): the run cannot go on"
                    )
            while self.queue and backend.free_slots() - len(arrived) > 0:
                if self._stopping() and not self.queue:  # the search's candidates let go (the confirmations kept)
                    break
                trial, cand = self.queue.popleft()
                self.inflight[trial] = cand
                seed = evaluation_seed(self.exp.seed, cand.key)
                backend.submit(Job(
                    trial, self.built.space.to_dict(cand.genome), seed, key=cand.key, fidelity=cand.fidelity,
                    pruning=self._pruning(cand), inheritance=self._inheritance(cand),
                ))  # fmt: skip
            if self.live is not None and backend is not replay:
                self.live.update(backend, self.duplicates)
            if not self.inflight:
                if self.queue or self._asking():
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

    def expected_evaluations(self) -> int | None:
        """The strategy's expected evaluations, and the confirmations after them (at most ``inherit.confirm``)."""
        total = self.strategy.expected_evaluations()
        return total + self.inherit.confirm if total is not None and self.inherit is not None else total

    def _expect(self, confirms: int) -> None:
        """Once the confirmations are chosen: the evaluations the run ends with, for the progress bar (which counts
        infeasible candidates too) and ``evonas status`` (which does not)."""
        if self._bar is not None:
            self._bar.total = self.next_trial + confirms
            self._bar.refresh()
        if self.live is not None:
            self.live.entry["expected"] = self.next_trial - self.infeasible + confirms

    # -- what to ask: the strategy's candidates, then the confirmations ----------------------------------------
    def _searched(self) -> bool:
        """Whether the search is over: the strategy is done or the budget spent."""
        return self.strategy.is_done() or not self.budget_left()

    def _asking(self) -> bool:
        """Whether anything is left to ask: the strategy's candidates, or the confirmations after them."""
        if not self._searched():
            return True
        if self.inherit is None or not self.inherit.confirm:
            return False
        return self._confirms is None or self._confirmed < len(self._confirms)

    def _ask(self, n: int, idle: bool) -> list[Candidate]:
        """Up to ``n`` candidates: the strategy's while it searches, then (once every result of the search is in:
        ``idle``) the confirmations."""
        if not self._searched():
            return self.strategy.ask(n)
        if self._confirms is None:
            if not idle:
                return []
            self._confirms = self._confirmations()
            self._expect(len(self._confirms))
        out = self._confirms[self._confirmed : self._confirmed + n]
        self._confirmed += len(out)
        return out

    def _confirmations(self) -> list[Candidate]:
        """The ``inherit.confirm`` best genomes known only from inherited evaluations, to train from scratch: so
        that ``best.json`` and export, which use complete evaluations only, can hold what inheritance found."""
        assert self.inherit is not None
        sign = self.exp.objectives[0].weight
        unconfirmed = [r for k, r in self._inherited_best.items() if k not in self._scratch]
        best = sorted(unconfirmed, key=lambda r: (-sign * r.fitness[0], r.trial))[: self.inherit.confirm]  # type: ignore[index]
        space, last = self.built.space, max(0, self.strategy.gen - 1)  # the search's last generation
        return [Candidate(space.from_dict(r.genome), r.key, last, i, CONFIRM, (r.key,)) for i, r in enumerate(best)]

    def _pruning(self, cand: Candidate) -> Pruning | None:
        if self.pruner is None or cand.origin == CONFIRM:  # a confirmation is a complete evaluation, never pruned
            return None
        history = History(tuple(self._curves.get((cand.fidelity, cand.inherit is not None), ())))
        objective = self.exp.objectives[0]
        return Pruning(self.pruner, history, objective.metric, objective.weight)

    def _inheritance(self, cand: Candidate) -> Inheritance | None:
        if self.inherit is None:
            return None
        return Inheritance(str(self.weights_dir), cand.inherit, self.inherit.fidelity, self.inherit.max_bytes)

    def _with_parent(self, cand: Candidate) -> Candidate:
        """``cand`` set to start from its first parent's weights (``inherit:``): a child of a mutation or crossover
        of a full evaluation whose parent was trained in this run (not pruned, not from the cache), with the
        parent's training hyperparameters. A child whose learning rate, optimizer or batch size changed trains from
        scratch: trained weights say nothing about how well those train a network (a low learning rate looks best
        on weights that are already trained)."""
        if self.inherit is None or cand.inherit is not None or cand.fidelity is not None or not cand.parents:
            return cand
        parent = cand.parents[0]
        if not cand.origin.startswith(("mutation:", "crossover:")) or parent not in self._trained:
            return cand
        if self.built.space.hparams(cand.genome) != self._trained[parent]:
            return cand
        return dataclasses.replace(cand, inherit=parent)

    def _learnt(self, cand: Candidate, rec: Record) -> None:
        """Book a finished evaluation (fresh or replayed, in tell order): its training cost, its curve for the
        pruner, its weights and inherited result for inheritance."""
        if not rec.cached:
            for name in ("train_steps", "train_samples"):
                value = rec.metrics.get(name)
                if is_real(value):
                    self.strategy.spent[name] += int(value)
        if self.pruner is not None and rec.status in ("ok", "pruned"):
            kind = (cand.fidelity, cand.inherit is not None)
            self._curves.setdefault(kind, []).append(Curve(dict(rec.curve), complete=rec.status == "ok"))
        if self.inherit is None:
            return
        if rec.status == "ok" and not rec.cached:
            self._trained[cand.key] = self.built.space.hparams(cand.genome)
        if cand.inherit is None and cand.fidelity is None and rec.status in ("ok", "failed", "violated"):
            self._scratch.add(cand.key)
        elif cand.inherit is not None and rec.status == "ok" and rec.fitness:
            old = self._inherited_best.get(cand.key)
            if old is None or self.exp.objectives[0].weight * (rec.fitness[0] - old.fitness[0]) > 0:  # type: ignore[index]
                self._inherited_best[cand.key] = rec
        if self._store is None:
            self._store = WeightStore(self.weights_dir, self.inherit.max_bytes)
        if not self.replaying:
            self._store.enforce()

    def operator_stats(self) -> list[dict[str, Any]]:
        """Each operator's calls, failures and first error so far in this run (none: no variation of its own), then
        the space's own (:meth:`~evonas.spaces.base.SearchSpace.faults`: a build function that raised)."""
        return self._fault_lines.stats()

    def _warn_faults(self) -> None:
        """One line on stderr the first time each operator (or the space's build function) fails (the run goes on;
        the summary counts them)."""
        self._fault_lines.check()

    def _say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def _dispatch(self, cand: Candidate) -> None:
        cand = self._with_parent(cand)
        evaluation = cand.evaluation_key
        if evaluation in self.known:
            self.duplicates += 1
            self._repeats_in_a_row += 1
            if self._repeats_in_a_row == USED_UP_AFTER and self._space_used_up():
                self._repeats_in_a_row = self.max_repeats  # (budget_left() is False from here)
                self.stuck = (f"strategy '{self.exp.strategy.name}' asked {USED_UP_AFTER} genomes in a row that the "
                              f"run had already evaluated, and the run has evaluated every genome of the space "
                              f"({self._space_size}): its search space is used up")  # fmt: skip
                if self.say_stuck:
                    self._say(f"evonas: {self.stuck}; stopping")
            elif self._repeats_in_a_row == self.max_repeats:
                dead = [f"{f['kind']} '{f['name']}'" for f in self.operator_stats()
                        if f.get("kind") in ("mutation", "crossover") and f.get("calls") and f["failures"] >= f["calls"]]
                self._stuck("had already evaluated", f"every call of {', '.join(dead)} failed, so each child was its "
                            "parent: see the faults" if dead else "is the search space used up, or does the strategy "
                            "keep proposing genomes the run has seen? redraw() draws new ones")  # fmt: skip
            rec = self.journal.get(cand.key, cand.fidelity, cand.inherit)
            assert rec is not None
            self._tell(cand, rec)
        elif evaluation in self.waiting:
            self.waiting[evaluation].append(cand)
        elif self.budget_left() or cand.origin == CONFIRM:
            problems, cheap = self.checker.cheap_violations(cand.genome) if self.checker is not None else ([], {})
            if problems:  # never trained: recorded (or, replaying, found in the journal) and told the worst fitness
                self._infeasible(cand, problems, cheap)
                return
            self._repeats_in_a_row = 0
            self.waiting[evaluation] = []
            self.queue.append((self.next_trial, cand))
            self.next_trial += 1

    def _space_used_up(self) -> bool:
        """Whether the run has evaluated (or found over a limit) every genome of a finite space: no strategy can ask
        a new one. The space's size is worked out once, when a strategy first repeats itself this often."""
        if self._space_size is None:
            try:
                self._space_size = self.built.space.size or 0
            except Exception:  # a plug-in space that cannot count its genomes
                self._space_size = 0
        full = sum(1 for k in self.known if "@" not in k and "<" not in k)  # full evaluations from scratch: keys
        return 0 < self._space_size <= full

    def _stuck(self, what: str, question: str) -> None:
        """The strategy asked ``max_repeats`` genomes in a row that train nothing: the search ends here, and says so."""
        self.stuck = (f"strategy '{self.exp.strategy.name}' asked {self.max_repeats} genomes in a row that the run {what}"
                      f" ({question})")  # fmt: skip
        if self.say_stuck:
            self._say(f"evonas: {self.stuck}; stopping")

    def _infeasible(self, cand: Candidate, problems: list[str], cheap: dict[str, float]) -> None:
        rec = self.journal.get(cand.key, cand.fidelity, cand.inherit)
        if rec is None or rec.status != "infeasible" or rec.trial != self.next_trial:
            rec = self.journal.append(Record(
                trial=self.next_trial, key=cand.key, generation=cand.generation, genome=self.built.space.to_dict(cand.genome),
                status="infeasible", metrics=dict(cheap), fitness=None, error="; ".join(problems), origin=cand.origin,
                parents=cand.parents, wall_s=0.0, fidelity=cand.fidelity,
            ))  # fmt: skip
            self._notify(rec)
        self.next_trial += 1
        self.infeasible += 1
        self._repeats_in_a_row += 1
        if self._repeats_in_a_row == self.max_repeats:
            self._stuck("had already evaluated or that broke a limit", "are the constraints too tight?")
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
                self._journalled(result.trial, rec.status != "failed")  # (judged failed: never cached)
            self._notify(rec)
        self.known.add(cand.evaluation_key)
        self._learnt(cand, rec)
        self._tell(cand, rec)
        self._stop_check.tell(rec)
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
            fitness=values if status in ("ok", "pruned") else None,
            error=error,
            origin=cand.origin,
            parents=cand.parents,
            seed=evaluation_seed(self.exp.seed, cand.key),
            wall_s=result.wall_s,
            worker=result.worker,
            cached=result.cached,
            fidelity=cand.fidelity,
            safe_mode=result.safe_mode,
            curve=result.curve,
            inherited=cand.inherit,
        )

    def _tell(self, cand: Candidate, rec: Record) -> None:
        if cand.origin == CONFIRM:  # the search is over: nothing to tell (best.json reads the journal)
            return
        ind = Individual(cand.genome, cand.key, self.exp.weights, origin=cand.origin, parents=cand.parents)
        ind.metrics = dict(rec.metrics)
        if rec.status in ("ok", "pruned") and rec.fitness is not None and all(math.isfinite(v) for v in rec.fitness):
            ind.fitness.values = rec.fitness
            ind.fitness.pruned = rec.status == "pruned"  # ranks below every completed evaluation
        else:  # failures get the worst fitness: never selected as best
            ind.fitness.values = tuple(-math.inf * w for w in self.exp.weights)
        self.strategy.tell(cand, ind)
        self.flush_logbook()

    def _notify(self, rec: Record) -> None:
        """A fresh result is in the journal: tell the loggers (they never raise), then ``on_result``."""
        if self.exp.stop is not None and self.exp.stop.time_budget_s is not None:  # what a resume goes on from
            self.journal.set_meta(SEARCHED_META, self.searched_s())
        self._fresh.append(rec.status == "failed")
        rule = self.exp.stop
        ends = rule is not None and rule.failures is not None and rule.failures <= FAILED_AT_START  # (said by stop)
        if len(self._fresh) == FAILED_AT_START and all(self._fresh) and not ends:  # a fitness that fails everything
            self._say(f"evonas: the first {FAILED_AT_START} evaluations of this session all failed (trial {rec.trial}: "
                      f"{_first_line(rec.error)}); the run goes on, and its summary counts the failures")  # fmt: skip
        if self.loggers:
            self.loggers.log_result(rec)
        if self.run.on_result is not None:
            self.run.on_result(rec)

    def flush_logbook(self) -> None:
        """Give the loggers the logbook rows the strategy added since the last call (a replay's are skipped)."""
        rows = self.strategy.logbook
        if self.replaying or not self.loggers:
            self._logged_rows = len(rows)
            return
        while self._logged_rows < len(rows):
            self.loggers.log_generation(rows[self._logged_rows])
            self._logged_rows += 1

    # -- progress -----------------------------------------------------------------------
    def _tick(self, rec: Record) -> None:
        if not self.run.progress:
            return
        if self._bar is None:
            self._bar = tqdm(total=self.expected_evaluations(), unit="eval", dynamic_ncols=True, file=sys.stderr)
        self._bar.update(1)
        post: dict[str, Any] = {"gen": rec.generation}
        hof = self.strategy.hall_of_fame
        if len(hof) and hof[0].fitness.valid and math.isfinite(hof[0].fitness.values[0]):
            post[self.exp.objectives[0].metric] = decimals_text(hof[0].fitness.values[0])
        self._bar.set_postfix(post, refresh=False)

    def close_progress(self) -> None:
        if self._bar is not None:
            self._bar.close()
