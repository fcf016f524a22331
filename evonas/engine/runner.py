"""The engine: ask -> evaluate -> journal -> tell, until the strategy or the budget is done.

The engine loops: ask the strategy while workers are free, submit to a
backend, and as each result arrives append it to the journal (committed) and
tell the strategy. A genome key already evaluated in the run is answered from
the journal and costs no budget.

Resuming is replaying (:mod:`evonas.engine.replay`): the strategy is built
afresh with the run's seed and the same loop runs over the journal's results
in their arrival order; each replayed ask must give the recorded genome key.
Then the run carries on where it stopped, redoing what was in flight.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from evonas.config import Experiment, parse_experiment
from evonas.engine import outputs
from evonas.engine.backends import Backend, EvalContext, make_backend
from evonas.engine.cache import CachedBackend, EvaluationCache, problem_fingerprint
from evonas.engine.status import LiveStatus
from evonas.engine.loop import Loop as _Loop
from evonas.engine.build import Built, build
from evonas.engine.journal import JOURNAL_NAME, Journal, JournalError, Record
from evonas.engine.replay import ReplayBackend
from evonas.strategies.base import Strategy

__all__ = [
    "Run",
    "RunSummary",
    "RunFolderError",
    "RunInterrupted",
    "SearchResult",
    "search",
    "default_run_dir",
    "CONFIG_NAME",
]

CONFIG_NAME = "config.yaml"
#: what worker processes print (native libraries' messages included), in the run folder
NATIVE_LOG = "native.log"


class RunFolderError(RuntimeError):
    """A run folder that cannot be written to or resumed from."""


@dataclasses.dataclass
class RunSummary:
    run_dir: Path
    evaluations: int
    failures: int
    #: evaluations answered from the evaluation cache (trained in an earlier run)
    cached: int
    duplicates: int
    generations: int
    best: dict[str, Any] | None
    wall_s: float
    interrupted: bool = False
    discarded: int = 0
    #: why the run stopped early other than by Ctrl-C (a full disk, ...), if it did
    stopped: str | None = None
    #: candidates that broke a limit on a cheap metric: recorded, never trained (not in ``evaluations``)
    infeasible: int = 0
    #: evaluations whose metrics broke a limit checked after training (in ``evaluations``)
    violated: int = 0
    #: evaluations retried in safe mode after a worker died on them (in ``evaluations``)
    safe_mode: int = 0
    #: the most frequent reasons of the failed evaluations, with their counts
    failure_reasons: list[tuple[str | None, int]] = dataclasses.field(default_factory=list)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a run: what finished is recorded; ``summary`` says where."""

    def __init__(self, summary: RunSummary) -> None:
        super().__init__()
        self.summary = summary


def default_run_dir(experiment: Experiment) -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>`` under the working directory."""
    return Path("runs") / f"{experiment.name}-{time.strftime('%Y%m%d-%H%M%S')}"


class Run:
    """One run of an experiment in a run folder.

    Example::

        exp = load_experiment("experiments/quickstart.yaml")
        summary = Run(exp, "runs/quick").execute()
        print(summary.best["metrics"]["val_acc"])

        summary = Run.resume("runs/quick", overrides={"generations": 10}).continue_run()
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
        leftovers = [p for p in self.run_dir.iterdir() if not p.name.startswith(f".{JOURNAL_NAME}.new")] if self.run_dir.is_dir() else []
        if self.run_dir.exists() and (not self.run_dir.is_dir() or leftovers):
            if not overwrite:
                raise RunFolderError(f"{self.run_dir}: the run folder exists; use --overwrite to replace it or pick --out")
            if not (self.run_dir / JOURNAL_NAME).exists():
                raise RunFolderError(f"{self.run_dir}: not a run folder; refusing to overwrite it")
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # The journal appears whole, with its copy of the experiment, or not at all.
        fresh = self.run_dir / f".{JOURNAL_NAME}.new"
        fresh.unlink(missing_ok=True)
        with Journal(fresh) as journal:
            journal.set_meta("config", self.experiment.to_dict())
            if self.experiment.source:
                journal.set_meta("experiment_file", str(Path(self.experiment.source).resolve()))
        os.replace(fresh, self.run_dir / JOURNAL_NAME)
        outputs.write_yaml(self.run_dir / CONFIG_NAME, self.experiment.to_dict())
        return self._run(built, replay=[], discarded=0)

    @classmethod
    def resume(
        cls,
        run_dir: str | Path,
        *,
        workers: int | str | None = None,
        progress: bool = True,
        overrides: dict[str, Any] | None = None,
    ) -> "Run":
        """A run continuing the one in ``run_dir``; ``overrides`` patch the strategy params or the budget.

        The experiment comes from ``config.yaml``, or from the journal's own copy if that file is
        missing or damaged.
        """
        run_dir = Path(run_dir)
        if not (run_dir / JOURNAL_NAME).is_file():
            raise RunFolderError(f"{run_dir}: not a run folder (no {JOURNAL_NAME})")
        try:
            with Journal(run_dir / JOURNAL_NAME) as j:
                stored, source = j.get_meta("config"), j.get_meta("experiment_file")
        except JournalError as exc:
            raise RunFolderError(str(exc)) from None
        cfg = run_dir / CONFIG_NAME
        raw, where = None, str(cfg)
        try:
            raw = yaml.safe_load(cfg.read_text())
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            raw = None
        if not isinstance(raw, dict):
            if not isinstance(stored, dict):
                raise RunFolderError(f"{cfg}: missing or damaged, and the journal holds no copy of the experiment")
            print(f"evonas: {cfg} is missing or damaged; using the journal's copy of the experiment", file=sys.stderr)
            raw, where = stored, str(run_dir / JOURNAL_NAME)
        for key, value in (overrides or {}).items():
            if key == "budget":
                raw["budget"] = value
            else:
                raw.setdefault("strategy", {}).setdefault("params", {})[key] = value
        exp = parse_experiment(raw, source=where)
        if source and Path(source).exists():
            exp = dataclasses.replace(exp, source=source)
        return cls(exp, run_dir, workers=workers, progress=progress)

    def continue_run(self) -> RunSummary:
        """Replay the journal and carry on (the counterpart of :meth:`execute` for :meth:`resume`)."""
        built = self.built or build(self.experiment)
        try:
            with Journal(self.run_dir / JOURNAL_NAME) as j:
                replay, discarded = j.load_for_resume()
                j.set_meta("config", self.experiment.to_dict())
        except JournalError as exc:
            raise RunFolderError(str(exc)) from None
        if discarded:
            print(f"evonas: {discarded} damaged journal rows set aside (table 'discarded'); they are redone", file=sys.stderr)
        outputs.write_yaml(self.run_dir / CONFIG_NAME, self.experiment.to_dict())
        return self._run(built, replay=replay, discarded=discarded)

    # -- the run ----------------------------------------------------------------------------------
    def _run(self, built: Built, replay: list[Record], discarded: int) -> RunSummary:
        exp = self.experiment
        start = time.time()
        journal = Journal(self.run_dir / JOURNAL_NAME)
        strategy = built.make_strategy()
        loop = _Loop(self, built, strategy, journal)
        loop.live = LiveStatus(journal, backend=exp.backend.name, expected=strategy.expected_evaluations())
        backends: list[Backend] = []

        def real_backend() -> Backend:
            context = EvalContext.of(built.space, built.fitness, built.dataset)
            backend = make_backend(exp, self.workers, context=context, log=self.run_dir / NATIVE_LOG)
            if exp.cache and built.fitness.cacheable:
                backend = CachedBackend(backend, EvaluationCache(), problem_fingerprint(built))
            history = journal.get_meta("slots", [])
            # counted in results the replay serves (infeasible rows are never submitted, so never served)
            journal.set_meta("slots", [*history, [len(journal) - journal.count("infeasible"), backend.slots]])
            backends.append(backend)
            return backend

        interrupted, stopped = False, None
        try:
            replayer = ReplayBackend(replay, journal.get_meta("slots", []), exp.strategy.name) if replay else None
            loop.drive(real_backend, replayer)
        except KeyboardInterrupt:
            interrupted = True
        except (OSError, sqlite3.OperationalError) as exc:  # a full disk, a vanished folder: stop, keep what is committed
            interrupted, stopped = True, f"{type(exc).__name__}: {exc}"
        finally:
            loop.close_progress()
            for backend in backends:
                backend.close()
            try:
                loop.live.finish("stopped" if stopped else "interrupted" if interrupted else "finished", loop.duplicates)
            except (OSError, sqlite3.OperationalError):
                pass
        try:
            best = outputs.write_results(self.run_dir, exp, built.space, strategy, journal)
        except (OSError, sqlite3.OperationalError) as exc:
            if not interrupted:
                raise
            best = None
            stopped = stopped or f"{type(exc).__name__}: {exc}"
        summary = RunSummary(
            run_dir=self.run_dir,
            evaluations=len(journal) - journal.count("infeasible"),
            cached=journal.count_cached(),
            failures=journal.count("failed"),
            duplicates=loop.duplicates,
            generations=len(strategy.logbook),
            best=best,
            wall_s=time.time() - start,
            interrupted=interrupted,
            discarded=discarded,
            stopped=stopped,
            infeasible=journal.count("infeasible"),
            violated=journal.count("violated"),
            safe_mode=journal.count_safe_mode(),
            failure_reasons=journal.failure_reasons(),
        )
        journal.close()
        if interrupted:
            raise RunInterrupted(summary)
        try:
            from evonas.diagnostics import plot_diagnostics
            from evonas.plotting import plot_run

            plot_run(self.run_dir)
            plot_diagnostics(self.run_dir)
        except Exception as exc:  # a plot must never lose a finished run
            print(f"evonas: could not draw the plots ({type(exc).__name__}: {exc})", file=sys.stderr)
        return summary


@dataclasses.dataclass
class SearchResult:
    """What :func:`search` returns: the strategy after the search and every evaluation, in trial order."""

    strategy: Strategy
    records: list[Record]
    duplicates: int


def search(built: Built) -> SearchResult:
    """Run ``built``'s experiment in this process, with an in-memory journal and no run folder.

    The same loop as ``evonas run`` (ask, evaluate, journal, tell, repeats answered from the journal),
    without files or worker processes: for benchmarks that run a search hundreds of times.

    Example::

        result = search(build(load_experiment("experiments/nb201_toy.yaml")))
        best = max(r.fitness[0] for r in result.records if r.status == "ok")
    """
    journal = Journal(":memory:")
    strategy = built.make_strategy()
    loop = _Loop(Run(built.experiment, ".", progress=False), built, strategy, journal)

    def backend() -> Backend:
        return make_backend(built.experiment, 0, context=EvalContext.of(built.space, built.fitness, built.dataset))

    loop.drive(backend, None)
    records = list(journal.records("trial"))
    journal.close()
    return SearchResult(strategy, records, loop.duplicates)
