"""The engine: ask -> evaluate -> journal -> tell, until the strategy or the budget is done.

The engine loops: ask the strategy while workers are free, submit to a
backend, and as each result arrives append it to the journal (committed) and
tell the strategy. A genome key already evaluated in the run is answered from
the journal and costs no budget.

Resuming is replaying: the strategy is built afresh with the run's seed and
the journal's results are told to it in order; each replayed ask must give the
recorded genome key (a mismatch means a non-deterministic strategy, a bug).
Then the run carries on where it stopped.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

import yaml

from evonas.config import Experiment, parse_experiment
from evonas.engine.backends import Backend, EvalContext, Job, JobResult, make_backend
from evonas.engine.build import Built, build, evaluation_seed
from evonas.engine.journal import JOURNAL_NAME, Journal, Record
from evonas.engine import outputs
from evonas.evolution import Individual
from evonas.strategies.base import Candidate, Strategy

__all__ = ["Run", "RunSummary", "RunFolderError", "default_run_dir"]

CONFIG_NAME = "config.yaml"


class RunFolderError(RuntimeError):
    """A run folder that cannot be written to or resumed from."""


@dataclasses.dataclass
class RunSummary:
    run_dir: Path
    evaluations: int
    failures: int
    duplicates: int
    generations: int
    best: dict[str, Any] | None
    wall_s: float
    interrupted: bool = False


def default_run_dir(experiment: Experiment) -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>`` under the working directory."""
    return Path("runs") / f"{experiment.name}-{time.strftime('%Y%m%d-%H%M%S')}"


class Run:
    """One run of an experiment in a run folder.

    Example::

        exp = load_experiment("experiments/quickstart.yaml")
        summary = Run(exp, "runs/quick").execute()
        print(summary.best["metrics"]["val_acc"])
    """

    def __init__(
        self,
        experiment: Experiment,
        run_dir: str | Path,
        *,
        workers: int | str | None = None,
        progress: bool = True,
        built: Built | None = None,
        on_result: Callable[[Record], None] | None = None,
    ) -> None:
        self.experiment = experiment
        self.run_dir = Path(run_dir)
        self.workers = workers
        self.progress = progress
        self.built = built
        self.on_result = on_result

    # -- public -----------------------------------------------------------------------------------
    def execute(self, *, overwrite: bool = False) -> RunSummary:
        """Start a new run in ``run_dir`` (refused if it holds anything unless ``overwrite``)."""
        built = self.built or build(self.experiment)
        if self.run_dir.exists() and any(self.run_dir.iterdir()):
            if not overwrite:
                raise RunFolderError(f"{self.run_dir}: the run folder exists; use --overwrite to replace it or pick --out")
            if not (self.run_dir / JOURNAL_NAME).exists() and not (self.run_dir / CONFIG_NAME).exists():
                raise RunFolderError(f"{self.run_dir}: not a run folder; refusing to overwrite it")
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        outputs.write_yaml(self.run_dir / CONFIG_NAME, self.experiment.to_dict())
        return self._run(built, replay=[])

    @classmethod
    def resume(
        cls,
        run_dir: str | Path,
        *,
        workers: int | str | None = None,
        progress: bool = True,
        overrides: dict[str, Any] | None = None,
    ) -> "Run":
        """A run continuing the one in ``run_dir``; ``overrides`` patch the strategy params or budget."""
        run_dir = Path(run_dir)
        cfg = run_dir / CONFIG_NAME
        if not (run_dir / JOURNAL_NAME).exists() or not cfg.exists():
            raise RunFolderError(f"{run_dir}: not a run folder (no {CONFIG_NAME} and {JOURNAL_NAME})")
        raw = yaml.safe_load(cfg.read_text())
        with Journal(run_dir / JOURNAL_NAME) as j:
            source = j.get_meta("experiment_file")
        for key, value in (overrides or {}).items():
            if key == "budget":
                raw["budget"] = value
            else:
                raw.setdefault("strategy", {}).setdefault("params", {})[key] = value
        exp = parse_experiment(raw, source=source if source and Path(source).exists() else str(cfg))
        return cls(exp, run_dir, workers=workers, progress=progress)

    def continue_run(self) -> RunSummary:
        """Replay the journal and carry on (the counterpart of :meth:`execute` for :meth:`resume`)."""
        built = self.built or build(self.experiment)
        with Journal(self.run_dir / JOURNAL_NAME) as j:
            replay = list(j.records("seq"))
        outputs.write_yaml(self.run_dir / CONFIG_NAME, self.experiment.to_dict())
        return self._run(built, replay=replay)

    # -- the loop ---------------------------------------------------------------------------------
    def _run(self, built: Built, replay: list[Record]) -> RunSummary:
        exp = self.experiment
        start = time.time()
        journal = Journal(self.run_dir / JOURNAL_NAME)
        if exp.source and not str(exp.source).startswith(str(self.run_dir)):
            journal.set_meta("experiment_file", str(Path(exp.source).resolve()))
        journal.set_meta("space", exp.space.name)
        strategy = built.make_strategy()
        by_trial = {r.trial: r for r in replay}
        loop = _Loop(self, built, strategy, journal, by_trial)
        backend: Backend | None = None
        interrupted = False
        try:
            loop.replay_only()
            if not loop.finished():
                context = EvalContext.__new__(EvalContext)
                context.space, context.fitness, context.dataset = built.space, built.fitness, built.dataset
                backend = make_backend(exp, self.workers, context=context)
                loop.drive(backend)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            loop.close_progress()
            if backend is not None:
                backend.close()
        best = outputs.write_results(self.run_dir, exp, built.space, strategy, journal)
        summary = RunSummary(
            run_dir=self.run_dir,
            evaluations=len(journal),
            failures=journal.count("failed"),
            duplicates=loop.duplicates,
            generations=len(strategy.logbook),
            best=best,
            wall_s=time.time() - start,
            interrupted=interrupted,
        )
        journal.close()
        if not interrupted:
            try:
                from evonas.plotting import plot_run

                plot_run(self.run_dir)
            except Exception as exc:  # a plot must never lose a finished run
                print(f"evonas: could not draw the plots ({type(exc).__name__}: {exc})", file=sys.stderr)
        if interrupted:
            raise RunInterrupted(summary)
        return summary


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: what finished is recorded; ``summary`` says where."""

    def __init__(self, summary: RunSummary) -> None:
        super().__init__()
        self.summary = summary


class _Loop:
    """State of one engine loop; kept apart from :class:`Run` so the loop reads top to bottom."""

    def __init__(self, run: Run, built: Built, strategy: Strategy, journal: Journal, replay: dict[int, Record]) -> None:
        self.run, self.built, self.strategy, self.journal = run, built, strategy, journal
        self.exp = built.experiment
        self.replay = replay
        self.next_trial = 0
        self.known: dict[str, Record] = {}
        self.waiting: dict[str, list[Candidate]] = {}
        self.inflight: dict[int, Candidate] = {}
        self.queue: deque[tuple[int, Candidate]] = deque()
        self.duplicates = 0
        self.budget = self.exp.budget
        self._bar: Any = None
        self._stalled = False

    # -- progress -----------------------------------------------------------------------
    def _progress(self) -> Any:
        if self._bar is None and self.run.progress:
            from tqdm.auto import tqdm

            total = self.strategy.expected_evaluations()
            self._bar = tqdm(total=total, unit="eval", dynamic_ncols=True, file=sys.stderr, smoothing=0.1)
        return self._bar

    def _tick(self, rec: Record) -> None:
        bar = self._progress()
        if bar is None:
            return
        bar.update(1)
        best = self.strategy.hall_of_fame[0] if len(self.strategy.hall_of_fame) else None
        post = {"gen": rec.generation}
        if best is not None and best.fitness.valid:
            post[self.exp.objectives[0].metric] = f"{best.fitness.values[0]:.4f}"
        bar.set_postfix(post, refresh=False)

    def close_progress(self) -> None:
        if self._bar is not None:
            self._bar.close()

    # -- loop -----------------------------------------------------------------------------
    def budget_left(self) -> bool:
        return self.budget is None or self.next_trial < self.budget

    def finished(self) -> bool:
        return (self.strategy.is_done() or not self.budget_left() or self._stalled) and not self.inflight and not self.queue

    def replay_only(self) -> None:
        """Tell the strategy everything the journal holds, asking exactly as the original run did."""
        while self.replay and not self.strategy.is_done():
            before = self.next_trial
            cands = self.strategy.ask(1)
            if not cands:
                break
            for c in cands:
                self._dispatch(c)
            if self.next_trial == before and not self.queue:
                continue
            if self.queue:  # the strategy asked beyond the journal: stop replaying, the driver evaluates these
                break

    def drive(self, backend: Backend) -> None:
        while True:
            if not self.queue and not self.strategy.is_done() and self.budget_left():
                cands = self.strategy.ask(max(1, backend.free_slots()))
                for c in cands:
                    self._dispatch(c)
                if not cands and not self.inflight and not self.queue:
                    self._stalled = not self.strategy.is_done()
                    return
            while self.queue and backend.free_slots() > 0:
                trial, cand = self.queue.popleft()
                self.inflight[trial] = cand
                backend.submit(Job(trial, self.built.space.to_dict(cand.genome), evaluation_seed(self.exp.seed, cand.key)))
            if not self.inflight:
                if self.queue:
                    continue
                if self.strategy.is_done() or not self.budget_left():
                    return
                continue
            for result in backend.wait():
                self._finish(result)

    def _dispatch(self, cand: Candidate) -> None:
        if cand.key in self.known:
            self.duplicates += 1
            self._tell(cand, self.known[cand.key])
            return
        if cand.key in self.waiting:
            self.waiting[cand.key].append(cand)
            return
        if not self.budget_left():
            return
        trial = self.next_trial
        self.next_trial += 1
        self.waiting[cand.key] = []
        rec = self.replay.pop(trial, None)
        if rec is not None:
            if rec.key != cand.key:
                raise RuntimeError(
                    f"resume: trial {trial} asked for genome {cand.key}, the journal recorded {rec.key}; "
                    f"strategy '{self.exp.strategy.name}' is not deterministic"
                )
            self._complete(cand, rec)
            return
        self.queue.append((trial, cand))

    def _finish(self, result: JobResult) -> None:
        cand = self.inflight.pop(result.trial)
        rec = self._record(cand, result)
        rec = self.journal.append(rec)
        self._complete(cand, rec)
        if self.run.on_result is not None:
            self.run.on_result(rec)

    def _complete(self, cand: Candidate, rec: Record) -> None:
        self.known[cand.key] = rec
        self._tell(cand, rec)
        self._tick(rec)
        for other in self.waiting.pop(cand.key, []):
            self.duplicates += 1
            self._tell(other, rec)

    def _record(self, cand: Candidate, result: JobResult) -> Record:
        status, error, metrics = result.status, result.error, result.metrics
        values: tuple[float, ...] | None = None
        if status == "ok":
            try:
                values = tuple(float(metrics[o.metric]) for o in self.exp.objectives)
            except KeyError as exc:
                status, error = "failed", f"the fitness returned no metric {exc}; it returned: {', '.join(metrics)}"
            except (TypeError, ValueError):
                status, error = "failed", "an objective metric is not a number"
            else:
                bad = [o.metric for o, v in zip(self.exp.objectives, values) if not math.isfinite(v)]
                if bad:
                    status, error, values = "failed", f"non-finite {', '.join(bad)}", None
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
        )

    def _tell(self, cand: Candidate, rec: Record) -> None:
        ind = Individual(cand.genome, cand.key, self.exp.weights, origin=cand.origin, parents=cand.parents)
        ind.metrics = dict(rec.metrics)
        if rec.status == "ok" and rec.fitness is not None:
            ind.fitness.values = rec.fitness
        else:
            ind.fitness.values = tuple(-math.inf * w for w in self.exp.weights)
        self.strategy.tell(cand, ind)
