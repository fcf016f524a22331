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

import contextlib
import dataclasses
import inspect
import json
import math
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from evonas.checks import is_real, one_line
from evonas.config import ConfigError, Experiment, check_workers, parse_experiment
from evonas.engine import outputs
from evonas.engine.backends import Backend, EvalContext, InProcessBackend, connect_backend, make_backend
from evonas.engine.cache import CachedBackend, EvaluationCache, cache_problem, problem_fingerprint, say_uncached
from evonas.engine.status import LiveStatus, operator_faults, runtime_text
from evonas.engine.loop import CONFIRM, SEARCHED_META, Loop as _Loop, StopCheck
from evonas.engine.build import Built, build, check_main_defined, resolved_experiment
from evonas.engine.journal import JOURNAL_NAME, Journal, JournalError, Record, ranked
from evonas.engine.plugins import exit_text
from evonas.engine.replay import ReplayBackend, ResumeMismatch
from evonas.evolution import OperatorFault
from evonas.loggers import RunInfo
from evonas.operators.base import describe_error
from evonas.registry import is_plugin
from evonas.runfolder import (
    LOCK_NAME, RunFolder, RunFolderError, RunLock, data_hint, foreign_entries, in_folder_config, plugin_hint,
    resolve_plugins,
)
from evonas.strategies.base import Strategy

__all__ = [
    "Run",
    "RunSummary",
    "RunFolderError",
    "BackendUnreachable",
    "RunInterrupted",
    "RunCrashed",
    "SearchResult",
    "search",
    "default_run_dir",
    "CONFIG_NAME",
]

CONFIG_NAME = "config.yaml"
#: what worker processes print (native libraries' messages included), in the run folder
NATIVE_LOG = "native.log"


class BackendUnreachable(RunFolderError):
    """The backend's cluster cannot be reached; said before the run folder is touched (nothing is written)."""


def _crash_text(exc: BaseException) -> str:
    """What ended a run as crashed, in one line with the plug-in's line: an exception, or a ``sys.exit()``."""
    if isinstance(exc, SystemExit):
        return f"SystemExit: plug-in code called {exit_text(exc)}"
    return describe_error(exc, limit=300)




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
    #: seconds this session took (a resume's own, while the counts are the whole run's)
    wall_s: float
    interrupted: bool = False
    discarded: int = 0
    #: the session resumed a run: the counts include what earlier sessions did
    resumed: bool = False
    #: why the run stopped early other than by Ctrl-C (a full disk, ...), if it did
    stopped: str | None = None
    #: why a finished search ended before its plan (its strategy asked only genomes the run had seen), if it did
    ended_early: str | None = None
    #: candidates that broke a limit on a cheap metric: recorded, never trained (not in ``evaluations``)
    infeasible: int = 0
    #: evaluations whose metrics broke a limit checked after training (in ``evaluations``)
    violated: int = 0
    #: evaluations retried in safe mode after a worker died on them (in ``evaluations``)
    safe_mode: int = 0
    #: when no candidate met the constraints: each one's nearest value, ``"params <= 10: nearest params=134"``
    nearest: list[str] = dataclasses.field(default_factory=list)
    #: the most frequent reasons of the failed evaluations, with their counts
    failure_reasons: list[tuple[str | None, int]] = dataclasses.field(default_factory=list)
    #: for each of ``failure_reasons``, its first failed evaluations as ``(trial, key)``
    failed_trials: list[list[tuple[int, str]]] = dataclasses.field(default_factory=list)
    #: operators that raised or gave no valid child: ``{kind, name, calls, failures, first_error}``, most failures first
    operator_faults: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: the operator fault that stopped the run (``strict: true``), in one line
    fault: str | None = None
    #: optimizer steps the run's evaluations took, and the samples they saw (cached results spent none)
    train_steps: int = 0
    train_samples: int = 0
    #: evaluations a pruner stopped early (in ``evaluations``)
    pruned: int = 0
    #: evaluations that started from a parent's trained weights (in ``evaluations``)
    inherited: int = 0
    #: a steady-state strategy's logbook block (its ``log_every``); ``None`` for a generational strategy
    log_every: int | None = None
    #: journal rows this session added (a resume's new candidates; ``None``: not counted)
    added: int | None = None
    #: the signal that made ``interrupted`` came once the run had finished, while its results were written: they are
    #: complete (its plots are not drawn)
    finished_first: bool = False


#: the journal's record of the plug-in code a run started with (:func:`code_of`)
CODE_META = "code"


def code_of(built: Built) -> dict[str, str]:
    """A hash of each piece of user code that decides which genomes a run asks: the space's (a build function's
    file), and the files of plug-in space, strategy and operator classes."""
    from evonas.engine.cache import plugin_code

    ops = [type(op) for op, _ in (*built.variation.mutations, *built.variation.crossovers)]
    out = plugin_code(type(built.space), built.strategy_cls, *ops)
    try:
        space_code = built.space.fingerprint()
    except Exception:  # a plug-in space's own method failed: nothing to compare
        space_code = None
    if isinstance(space_code, str):
        out[f"space '{built.experiment.space.name}'" + (f" ({built.space.params['build']})" if isinstance(
            built.space.params.get("build"), str) else "")] = space_code  # fmt: skip
    return out


#: the journal's meta entry with the settings that decide a run's results (:func:`settings_of`), which a resume keeps
SETTINGS_META = "settings"
#: config.yaml's keys a resume may see changed: how the run is carried out, not what it computes (``strategy``'s run
#: length and ``dataset.params.path`` too, see :func:`changed_setting`)
_CARRIED_OUT = ("name", "plugins", "budget", "workers", "timeout", "backend", "cache", "loggers", "strict", "stop")


def settings_of(built: Built, resolved: dict[str, Any]) -> dict[str, Any]:
    """What a resume must find as the run started (``resolved``: :func:`resolved_experiment`'s mapping): every key
    but :data:`_CARRIED_OUT`, and the hash of a plug-in fitness's file (``_fitness_code``)."""
    from evonas.engine.cache import plugin_code

    out = {k: v for k, v in resolved.items() if k not in _CARRIED_OUT}
    fitness = out.get("fitness")
    if isinstance(fitness, dict) and isinstance(fitness.get("params"), dict):  # the device, threads, ...: may change
        runtime = set(getattr(built.fitness, "runtime_params", ()))
        out["fitness"] = {**fitness, "params": {k: v for k, v in fitness["params"].items() if k not in runtime}}
    out["_fitness_code"] = plugin_code(type(built.fitness))
    return out


def changed_setting(recorded: Any, now: dict[str, Any], run_length: str | None) -> tuple[str, Any, Any] | None:
    """The first setting (``key.path``, then, now) that differs between ``recorded`` (a journal's
    :data:`SETTINGS_META`) and ``now``; keys on one side only (a parameter a newer evonas added) are no change."""

    def walk(path: str, a: Any, b: Any) -> tuple[str, Any, Any] | None:
        if path in (f"strategy.params.{run_length}", "dataset.params.path", "_fitness_code"):  # (said apart)
            return None
        if isinstance(a, dict) and isinstance(b, dict):
            for k in a:
                if k in b:
                    found = walk(f"{path}.{k}" if path else str(k), a[k], b[k])
                    if found:
                        return found
            return None
        return None if a == b else (path, a, b)

    return walk("", recorded, now) if isinstance(recorded, dict) else None


def changed_code(recorded: Any, now: dict[str, str]) -> list[str]:
    """The names in ``recorded`` (a journal's :data:`CODE_META`) whose hash differs from ``now``'s."""
    if not isinstance(recorded, dict):
        return []
    return [name for name, h in recorded.items() if name in now and now[name] != h]


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a run: what finished is recorded; ``summary`` says where."""

    def __init__(self, summary: RunSummary, plugins: Sequence[str] = ()) -> None:
        why = f" ({summary.stopped})" if summary.stopped else ""
        more = f", plugins={list(plugins)!r}" if plugins else ""  # what a new process needs to build the run again
        if getattr(summary, "finished_first", False):  # (a summary-like object of a caller may lack it)
            super().__init__(f"the run in {summary.run_dir} had finished ({summary.evaluations} evaluations) when the "
                             "signal came, and its results are written")  # fmt: skip
        else:
            super().__init__(f"the run in {summary.run_dir} stopped{why} after {summary.evaluations} evaluations; what "
                             f"finished is recorded: go on with Run.resume({str(summary.run_dir)!r}{more}).continue_run()")
        self.summary = summary


class RunCrashed(RuntimeError):
    """An exception escaped the run's loop (a bug in a plug-in strategy, selection, ...): what finished is in the
    journal, whose ``live`` entry says ``crashed`` with ``error``; the original exception is ``__cause__``."""

    def __init__(self, run_dir: Path, error: str) -> None:
        super().__init__(error)
        self.run_dir, self.error = run_dir, error


def default_run_dir(experiment: Experiment, *, claim: bool = False) -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>`` under the working directory. ``claim``: create it, empty, as this process's
    own; where it exists already (another run of the experiment started in the same second) the name ends in ``-2``,
    ``-3``, ...: runs started together never collide."""
    base = Path("runs") / f"{experiment.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not claim:
        return base
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return base  # Run.execute says why it cannot make it
    for i in range(1, 10_000):
        path = base if i == 1 else base.with_name(f"{base.name}-{i}")
        try:
            path.mkdir()  # atomic: of two processes only one creates it
        except FileExistsError:
            continue
        except OSError:
            return path
        return path
    return base


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
        if not isinstance(experiment, Experiment):
            raise TypeError(f"Run: expected an Experiment (evonas.config.load_experiment or parse_experiment), got "
                            f"{type(experiment).__name__}")  # fmt: skip
        if not isinstance(run_dir, (str, os.PathLike)):
            raise TypeError(f"Run: run_dir: expected a folder's path (str or pathlib.Path), got {type(run_dir).__name__}")
        self.experiment = experiment
        self.run_dir = Path(run_dir)
        self.workers = None if workers is None else check_workers(workers)
        self.progress = progress
        self.built = built
        self.on_result = on_result
        #: why :meth:`stop` ended the search (None: it was not called)
        self.stop_reason: str | None = None
        #: resume --restart: set the journal aside and start over
        self._restart = False
        #: resume --budget N: the evaluations the run is to reach (the strategy's run length may be raised to it)
        self._extend_to: int | None = None

    # -- public -----------------------------------------------------------------------------------
    def stop(self, reason: str = "Run.stop() was called") -> None:
        """End the search early, as Optuna's ``study.stop()`` does: no new evaluation of the search starts, the running
        ones finish (and ``inherit:``'s confirmations run), and the run ends as finished, its summary's ``ended_early`` saying ``reason`` (``evonas status`` too), with
        ``best.json`` and the logbook written. Call it from ``on_result`` (a target reached, no improvement for a
        while) or from another thread; ``Run.resume(run_dir).continue_run()`` goes on with the search later.

        Example::

            def on_result(record):
                if record.status == "ok" and record.metrics["val_acc"] >= 0.99:
                    run.stop(f"val_acc {record.metrics['val_acc']:.4f} >= 0.99 at trial {record.trial}")

            run = Run(exp, "runs/target", on_result=on_result)
            summary = run.execute()  # summary.ended_early: the reason
        """
        if not isinstance(reason, str) or not reason.strip():
            raise TypeError(f"Run.stop: reason: expected a non-empty str, got {reason!r}")
        if self.stop_reason is None:
            self.stop_reason = one_line(reason, 300)  # (status and the summary show it on one line)

    def execute(self, *, overwrite: bool = False) -> RunSummary:
        """Start a new run in ``run_dir`` (refused if it holds anything unless ``overwrite``).

        ``overwrite`` replaces only a run folder evonas made (nothing else in it) and no other process runs in.
        """
        built = self._check_workers(self.built or build(self.experiment))
        self._connect()
        if self.run_dir.is_symlink():
            raise RunFolderError(f"{self.run_dir}: a symbolic link, not a folder; pick another --out (or the link's target)")
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise RunFolderError(f"{self.run_dir}: exists and is not a folder; pick another --out")
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(f"{self.run_dir}: cannot create the run folder ({exc.strerror or exc})") from None
        leftovers = [n for n in os.listdir(self.run_dir) if n != LOCK_NAME and not n.startswith(f".{JOURNAL_NAME}.new")]
        if leftovers:
            foreign = foreign_entries(self.run_dir)
            if not overwrite and (foreign or not (self.run_dir / JOURNAL_NAME).is_file()):  # --overwrite would refuse
                held = foreign or sorted(leftovers)
                shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
                raise RunFolderError(f"{self.run_dir}: exists and is not a run folder of evonas (it holds {shown}"
                                     f"{'' if foreign else f', but no {JOURNAL_NAME}'}); pick another --out")  # fmt: skip
            if not overwrite:
                raise RunFolderError(f"{self.run_dir}: the run folder exists; evonas resume {self.run_dir} to continue "
                                     "it, --overwrite to replace it, or pick another --out")  # fmt: skip
            if foreign or not (self.run_dir / JOURNAL_NAME).is_file():
                shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
                why = f"it holds files evonas did not write ({shown})" if foreign else f"it has no {JOURNAL_NAME}"
                raise RunFolderError(f"{self.run_dir}: not a run folder made by evonas: {why}; refusing to overwrite it")
        lock = RunLock(self.run_dir).acquire()  # a live run holds it: --overwrite stops here
        try:
            if leftovers:
                _clear_run_folder(self.run_dir)
            self._create_journal(built)
        except BaseException:
            lock.release()
            raise
        return self._run(built, replay=[], discarded=0, lock=lock)

    #: the plug-ins the run's config names (set by :meth:`resume`; ``None``: the experiment's own)
    recorded_plugins: tuple[str, ...] | None = None
    #: a resume's ``(plugins, trust)``: what it was asked to import (``None``: not a resume)
    _resumed_with: tuple[Any, bool] | None = None
    _data_given = False  # a resume told where the data is now (--data)
    #: a resume's overrides by the config key they set (``strategy.params.generations``: ``generations``)
    _overridden: dict[str, str] = {}

    def _recorded(self, mapping: dict[str, Any]) -> dict[str, Any]:
        """``mapping`` (the experiment as written to the run folder) with the plug-ins the run names."""
        if self.recorded_plugins is None:
            return mapping
        return {**mapping, "plugins": list(self.recorded_plugins)}

    def _create_journal(self, built: Built) -> None:
        # The journal appears whole, with its copy of the experiment, or not at all.
        fresh = self.run_dir / f".{JOURNAL_NAME}.new"
        fresh.unlink(missing_ok=True)
        with Journal(fresh) as journal:
            journal.set_meta("config", self._recorded(self.experiment.to_dict()))
            journal.set_meta("created_at", time.time())  # the run's start (a resume's session starts later)
            journal.set_meta(CODE_META, code_of(built))  # a resume that cannot replay says which code changed
            if self.experiment.source:
                journal.set_meta("experiment_file", str(Path(self.experiment.source).resolve()))
            if built.dataset is not None:  # what a resume checks it trains on, and an export that it tests on
                journal.set_meta(DATA_META, built.dataset.fingerprint())
                journal.set_meta(TEST_DATA_META, built.dataset.test_fingerprint())
            resolved = resolved_experiment(built)
            journal.set_meta(SETTINGS_META, settings_of(built, resolved))  # what a resume must find unchanged
        os.replace(fresh, self.run_dir / JOURNAL_NAME)
        outputs.write_config(self.run_dir / CONFIG_NAME, self._recorded(resolved))

    @classmethod
    def resume(
        cls,
        run_dir: str | Path,
        *,
        workers: int | str | None = None,
        progress: bool = True,
        overrides: dict[str, Any] | None = None,
        plugins: list[str] | tuple[str, ...] | None = None,
        trust: bool = False,
        restart: bool = False,
        data_path: str | os.PathLike[str] | None = None,
    ) -> "Run":
        """A run continuing the one in ``run_dir``; ``overrides`` extend its run length (``{"generations": 12}``, the strategy's ``run_length``) or its ``budget``: nothing else, which would make the replay diverge.

        A ``budget`` beyond what the strategy's run length lets the run reach raises that length to it when it
        counts evaluations (``samples``, ``aging``'s ``cycles``), as if it had been given too; a strategy that
        would still end the run first (``ga``'s ``generations``) is refused by :meth:`continue_run` before anything
        is written (:func:`reach_budget`).

        The experiment comes from ``config.yaml``, or from the journal's own copy if that file is
        missing or damaged. No plug-in the folder names is imported unless ``trust`` (or it is already
        imported in this process); ``plugins`` names the modules or files to import instead.
        ``restart``: the journal is set aside (renamed, never deleted) and the run starts over.
        ``data_path``: the dataset's file (or folder) where it is now, for a run folder moved away from its data; it must
        hold the data the run was started on (:func:`check_data`), and ``config.yaml`` records it for later resumes.
        A journal that is empty, damaged, missing rows or its WAL file is refused (:class:`RunFolderError`).
        """
        if overrides is not None and not isinstance(overrides, dict):
            raise TypeError(f"Run.resume: overrides is a dict such as {{'generations': 12}} (strategy parameters and "
                            f"'budget'), got {type(overrides).__name__}")  # fmt: skip
        folder = RunFolder(run_dir, need_journal=not restart)
        if not restart:
            check_resumable(folder)
        raw = folder.config()
        # each override by the config key it sets: a bad value is named as the override's, not as the folder's file
        overridden = {"budget" if k == "budget" else f"strategy.params.{k}": k for k in overrides or {}}
        for key, value in (overrides or {}).items():
            if key == "budget":
                raw["budget"] = value
            else:
                strategy = raw.setdefault("strategy", {})
                if not isinstance(strategy, dict):
                    raise RunFolderError(f"{folder.path / CONFIG_NAME}: strategy: expected a mapping")
                if not isinstance(strategy.setdefault("params", {}), dict):
                    raise RunFolderError(f"{folder.path / CONFIG_NAME}: strategy.params: expected a mapping")
                strategy["params"][key] = value
        try:
            exp = parse_experiment(raw, source=str(folder.path / CONFIG_NAME))
        except ConfigError as exc:
            if exc.key in overridden:
                raise RunFolderError(f"{folder.path}: resume's {overridden[exc.key]}: {exc.message}") from None
            damaged = (f" (a damaged {CONFIG_NAME}: delete it, and the resume takes the journal's copy of the "
                       "experiment)" if (folder.path / CONFIG_NAME).is_file() else "")  # fmt: skip
            raise RunFolderError(f"{exc}{damaged}") from None
        loaded = tuple(p for p in exp.plugins if p in sys.modules)  # imported by this process already: no new code runs
        if not trust and plugins is None and loaded == tuple(exp.plugins):
            plugins = list(loaded)
        named = tuple(exp.plugins)
        if data_path is not None:
            exp = with_data(exp, data_path, folder.path)
        exp = resolve_plugins(dataclasses.replace(exp, source=folder.origin(trust)), plugins, trust, where=folder.path)
        # (after the plug-ins are imported: a plug-in strategy's run length is known)
        length = getattr(_strategy_class_or_none(exp.strategy.name), "run_length", None)
        bad = [k for k in overrides or {} if k != "budget" and k != length]
        if bad:  # before anything is written: another parameter would make the replay diverge from the journal
            raise RunFolderError(f"{folder.path}: resume extends only the run ({length or 'its run length'}) and the "
                                 f"budget; '{bad[0]}' would change the search the journal replays (start a new run "
                                 "for that)")  # fmt: skip
        if not restart:  # before anything is written: a refused extension changes no file
            lengthened = length if length in (overrides or {}) and "budget" not in (overrides or {}) else None
            _check_extension(folder.path, exp, folder.records("seq"), extended=bool(overrides), lengthened=lengthened,
                             searched_s=folder.meta().get(SEARCHED_META))  # fmt: skip
        run = cls(exp, folder.path, workers=workers, progress=progress)
        run._restart = restart
        budget = (overrides or {}).get("budget")
        run._extend_to = budget if isinstance(budget, int) else None
        run.recorded_plugins = named  # config.yaml keeps the plug-ins the run names, whatever this resume imported
        run._resumed_with = (plugins, trust)
        run._data_given = data_path is not None
        run._overridden = overridden
        return run

    def _check_workers(self, built: Built) -> Built:
        """``built``, after the check :func:`build` made with the experiment's ``workers: 0``, made again for the
        workers this run was given instead (``Run(..., workers=N)``, ``--workers N``)."""
        if self.workers is not None and self.experiment.workers == 0:
            check_main_defined(self.experiment, built.space, built.fitness, self.workers)
        return built

    def build_experiment(self) -> Built:
        """:attr:`built`, else the experiment built. For a resume, an experiment that cannot be built is named as the
        run folder's ``config.yaml`` (an override's value as the override's), with the plug-ins the folder names and
        the resume did not import."""
        if self.built is not None:
            return self.built
        try:
            return build(self.experiment)
        except ConfigError as exc:
            if self._resumed_with is None:
                raise
            if exc.key in self._overridden:
                raise ConfigError(None, f"resume's {self._overridden[exc.key]}", exc.message) from None
            plugins, trust = self._resumed_with
            hint = plugin_hint(self.run_dir, exc, plugins, trust) + data_hint(exc, given=self._data_given)
            raise in_folder_config(self.run_dir, exc, hint) from None

    def _check_settings(self, built: Built, recorded: Any) -> dict[str, Any]:
        """Refuse a resume whose config.yaml changes what the run computes (its seed, a fitness parameter, an
        objective, ...): the journal's results were made with the settings it started with. A plug-in fitness whose
        file changed is said in a line (a fix may be the reason to resume). Returns the settings now."""
        now = settings_of(built, resolved_experiment(built))
        length = getattr(built.strategy_cls, "run_length", None) or None
        changed = changed_setting(recorded, now, length)
        if changed:
            path, then, value = changed
            raise RunFolderError(f"{self.run_dir}: resume: {CONFIG_NAME}'s {path} is {_shown(value)}, the run started "
                                 f"with {_shown(then)}; its journal's results were made with the settings it started "
                                 f"with: restore {path} (a damaged {CONFIG_NAME}: delete it, and the resume takes the "
                                 "journal's copy of the experiment), or start a new run with the new settings")  # fmt: skip
        before = recorded.get("_fitness_code") if isinstance(recorded, dict) else None
        edited = [name for name, h in (before or {}).items() if now["_fitness_code"].get(name, h) != h]
        if edited:
            print(f"evonas: warning: the code of fitness {', '.join(edited)} changed since the run started: the "
                  "journal's results and this session's may be scored differently", file=sys.stderr)  # fmt: skip
        return now

    def continue_run(self) -> RunSummary:
        """Replay the journal and carry on (the counterpart of :meth:`execute` for :meth:`resume`)."""
        built = self._check_workers(self.build_experiment())
        settings = None
        if not self._restart:  # before anything is said or written
            meta = RunFolder(self.run_dir).meta()  # the test split too: the run's export scores on it
            settings = self._check_settings(built, meta.get(SETTINGS_META))
            check_data(self.run_dir, built, meta.get(DATA_META), given=self._data_given,
                       recorded_test=meta.get(TEST_DATA_META))  # fmt: skip
        if self._extend_to is not None:  # before anything is written: a refused --budget changes no file
            built = reach_budget(built, self._extend_to, self.run_dir)
            self.built, self.experiment = built, built.experiment
        self._connect()
        lock = RunLock(self.run_dir).acquire()
        try:
            if self._restart:
                aside = _set_aside(self.run_dir)
                if aside:
                    print(f"evonas: the journal was set aside as {aside}; the run starts over", file=sys.stderr)
                self._create_journal(built)
                return self._run(built, replay=[], discarded=0, lock=lock)
            try:
                with Journal(self.run_dir / JOURNAL_NAME) as j:
                    replay, discarded = j.load_for_resume()
                    if built.dataset is not None:
                        j.set_meta(DATA_META, built.dataset.fingerprint())
                    j.set_meta("config", self._recorded(self.experiment.to_dict()))
                    j.set_meta(SETTINGS_META, settings or settings_of(built, resolved_experiment(built)))
            except JournalError as exc:
                raise RunFolderError(str(exc)) from None
            if discarded:
                print(f"evonas: {discarded} damaged journal rows set aside (table 'discarded'); they are redone", file=sys.stderr)
            outputs.write_config(self.run_dir / CONFIG_NAME, self._recorded(resolved_experiment(built)))
        except BaseException:
            lock.release()
            raise
        return self._run(built, replay=replay, discarded=discarded, lock=lock, resumed=True)

    def _connect(self) -> None:
        try:
            connect_backend(self.experiment, self.workers)
        except ConnectionError as exc:
            raise BackendUnreachable(f"{exc}; nothing was written") from None

    # -- the run ----------------------------------------------------------------------------------
    def _run(
        self, built: Built, replay: list[Record], discarded: int, lock: RunLock | None = None, resumed: bool = False
    ) -> RunSummary:
        try:
            return self._loop(built, replay, discarded, lock, resumed)
        finally:
            if lock is not None:
                lock.release()

    def _loop(
        self, built: Built, replay: list[Record], discarded: int, lock: RunLock | None = None, resumed: bool = False
    ) -> RunSummary:
        exp = self.experiment
        start = time.time()
        if exp.timeout is not None and (exp.workers if self.workers is None else self.workers) == 0:
            print(f"evonas: timeout: {exp.timeout:g} s has no effect with workers: 0 (an evaluation in the run's own "
                  "process cannot be stopped); use workers: 1 or more to bound each evaluation", file=sys.stderr)  # fmt: skip
        recycling = [k for k in ("max_tasks_per_child", "memory_limit_gib") if exp.backend.params.get(k) is not None]
        if recycling and (exp.workers if self.workers is None else self.workers) == 0:
            print(f"evonas: backend.params.{' and '.join(recycling)} {'have' if len(recycling) > 1 else 'has'} no "
                  "effect with workers: 0 (there is no worker process to replace); use workers: 1 or more",
                  file=sys.stderr)  # fmt: skip
        journal = Journal(self.run_dir / JOURNAL_NAME)
        if lock is not None:  # the journal's row count, for a resume after a kill (check_resumable)
            lock.note_rows(len(journal))
            journal.on_append = lock.note_rows
        strategy = built.make_strategy()
        _say_what_will_not_happen(strategy, built)
        _record_runtime(journal, built)
        loop = _Loop(self, built, strategy, journal)
        loop.live = LiveStatus(journal, backend=exp.backend.name, expected=loop.expected_evaluations(),
                               operators=loop.operator_stats)  # fmt: skip
        backends: list[Backend] = []
        uncached = cache_problem(built) if exp.cache and built.fitness.cacheable else None
        if uncached:
            say_uncached(uncached)

        def real_backend() -> Backend:
            context = EvalContext.of(built.space, built.fitness, built.dataset)
            backend = make_backend(exp, self.workers, context=context, log=self.run_dir / NATIVE_LOG)
            if built.dataset is not None and not isinstance(backend, InProcessBackend):
                # the workers load the data themselves: this process keeps its shapes and fingerprints only
                built.dataset = built.dataset.emptied()
            if exp.cache and built.fitness.cacheable and not uncached:
                # inherit: a result from the cache has no trained weights for its children, so the run trains
                # everything itself and only stores what it trained from scratch
                backend = CachedBackend(backend, EvaluationCache(), problem_fingerprint(built),
                                        lookup=exp.inherit is None,
                                        expects=exp.metrics)  # fmt: skip
            history = journal.get_meta("slots", [])
            # counted in results the replay serves (infeasible rows are never submitted, so never served)
            journal.set_meta("slots", [*history, [len(journal) - journal.count("infeasible"), backend.slots]])
            backends.append(backend)
            return backend

        interrupted, stopped, fault = False, None, None
        # how the loop ended when it did not return: ("crashed" | "stopped", the error); "finished" only if it returned
        ended: tuple[str, str] | None = None
        finished = False
        shutdown = _DeferSignals()
        shutdown.arm()
        try:
            # in the try: a Ctrl-C while a tracker connects stops the run like any other, and closes the loggers.
            # A resume, even of a run stopped before its first result, is one: the loggers go on with what they began
            loop.loggers.setup(
                RunInfo(self.run_dir, exp, built.space, resumed=resumed or bool(replay), journalled=tuple(replay))
            )
            replayer = ReplayBackend(replay, journal.get_meta("slots", []), exp.strategy.name) if replay else None
            loop.drive(real_backend, replayer)
            if loop.stuck is not None:  # the search ended before the strategy's plan: its last results logged
                strategy.end_search()
            finished = True
        except KeyboardInterrupt:
            interrupted = True
        except OperatorFault as exc:  # strict: true: the first operator fault stops the run, what finished is kept
            interrupted, stopped = True, f"strict: {exc}"
            fault = str(exc)
        except (OSError, sqlite3.OperationalError) as exc:  # a full disk, a vanished folder: stop, keep what is committed
            interrupted, stopped = True, f"{type(exc).__name__}: {exc}"
        except ResumeMismatch as exc:  # the resume refused to go on: nothing new was done
            changed = changed_code(journal.get_meta(CODE_META), code_of(built))
            if changed:  # the likely reason, said first: a plug-in or build function edited since the run began
                exc = ResumeMismatch(f"resume: the code of {', '.join(changed)} changed since the run started, so "
                                     f"the journal cannot be replayed ({exc.what}): restore it as it was, or start "
                                     "over with --restart", exc.what)  # fmt: skip
            ended = ("stopped", " ".join(str(exc).split()))
            raise exc from None
        except Exception as exc:  # a bug in a plug-in strategy or selection, ...: recorded as crashed, then raised
            ended = ("crashed", _crash_text(exc))
            raise RunCrashed(self.run_dir, ended[1]) from exc
        except SystemExit as exc:  # sys.exit() in a plug-in strategy, operator or build function: a crash, said
            ended = ("crashed", _crash_text(exc))
            raise RunCrashed(self.run_dir, ended[1]) from None
        finally:
            shutdown.start()  # from here to best.json, a second Ctrl-C (or SIGTERM, SIGHUP) waits
            loop.close_progress()
            for backend in backends:
                backend.close()
            if stopped or interrupted:
                state, error = ("stopped" if stopped else "interrupted"), stopped
            elif finished:  # (a search that ended before its plan says why)
                state, error = "finished", loop.stuck
            else:  # an exception (or a SystemExit) left the loop: never "finished"
                state, error = ended or ("crashed", None)
            try:
                loop.live.finish(state, loop.duplicates, error=error,
                                 operators=None if loop.replaying else loop.operator_stats(),
                                 backend=backends[-1] if backends else None)  # fmt: skip
            except (OSError, sqlite3.OperationalError):
                pass
            if ended is not None or not (finished or interrupted):
                loop.loggers.close(None)
                shutdown.stop()
                journal.close()
        if not len(strategy.hall_of_fame) and is_plugin(type(strategy)) and journal.count("ok"):
            print(f"evonas: strategy '{exp.strategy.name}' kept no hall of fame: hall_of_fame.json is empty and the "
                  "logbook has no best so far (its tell gives its results to self.record_evaluated(...), see the "
                  "strategies guide); best.json is the journal's best", file=sys.stderr)  # fmt: skip
        try:
            best = outputs.write_results(self.run_dir, exp, built.space, strategy, journal)
        except (OSError, sqlite3.OperationalError) as exc:  # a full disk: what is committed stays; say why it stopped
            try:  # the best is in the journal, whatever happened to best.json
                best = outputs.best_result(exp, built.space, journal)
            except Exception:
                best = None
            interrupted = True
            stopped = stopped or f"cannot write the results: {type(exc).__name__}: {exc}"
        except (Exception, SystemExit) as exc:  # plug-in code (a build function describing a genome) failed here
            error = f"while writing best.json and the logbook: {_crash_text(exc)}"
            with contextlib.suppress(OSError, sqlite3.OperationalError):  # the journal says crashed, not finished
                loop.live.finish("crashed", loop.duplicates, error=error)
            loop.loggers.close(None)
            shutdown.stop()
            journal.close()
            raise RunCrashed(self.run_dir, error) from None
        summary = RunSummary(
            run_dir=self.run_dir,
            evaluations=len(journal) - journal.count("infeasible"),
            cached=journal.count_cached(),
            failures=journal.count("failed"),
            duplicates=loop.duplicates,
            generations=len(strategy.logbook),
            log_every=None if strategy.generational else getattr(strategy, "log_every", None),
            best=best,
            wall_s=time.time() - start,
            resumed=resumed or bool(replay),
            added=len(journal) - len(replay or ()),
            interrupted=interrupted,
            discarded=discarded,
            stopped=stopped,
            ended_early=loop.stuck,
            infeasible=journal.count("infeasible"),
            violated=journal.count("violated"),
            nearest=[] if best else _nearest(exp.constraints, journal),
            safe_mode=journal.count_safe_mode(),
            failure_reasons=(reasons := journal.failure_reasons()),
            failed_trials=journal.failed_trials([r for r, _ in reasons]),
            operator_faults=operator_faults(journal),
            fault=fault,
            finished_first=False,
            **journal.training_spent(),
        )
        journal.close()
        loop.flush_logbook()
        loop.loggers.close(summary)
        if shutdown.stop() and not interrupted:  # a signal during the final writes: they are done; say it was stopped
            summary.interrupted = interrupted = True
            summary.finished_first = finished
        if interrupted:
            raise RunInterrupted(summary, exp.plugins)
        return summary  # the command line draws the plots (evonas.commands.draw_plots)


#: the clean ends of a run, as its journal's ``live`` entry records them


def check_resumable(folder: RunFolder) -> None:
    """Refuse (:class:`RunFolderError`, one line with the way out) a journal that resuming would misread:
    empty, not a database, damaged, without the WAL file its unclosed run left, or missing rows."""
    path = folder.journal_path
    restart = f"start over with: evonas resume {folder.path} --restart (the journal is kept, renamed)"
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError as exc:
        raise RunFolderError(f"{path}: cannot read the journal ({exc.strerror or exc})") from None
    if not header:
        raise RunFolderError(f"{path}: the journal is empty (0 bytes), so nothing can be resumed; {restart}")
    links = os.stat(path).st_nlink
    if links > 1:  # a hard link (cp -al, ln): resuming would write into every other name of the file too
        raise RunFolderError(f"{path}: the journal has {links} hard links, and resuming would change the file under "
                             "each of its names; make it a file of its own first (cp journal.sqlite j && mv j "
                             "journal.sqlite)")  # fmt: skip
    if not header.startswith(b"SQLite format 3\x00") or len(header) < 100:
        raise RunFolderError(f"{path}: not an SQLite database (damaged or replaced); {restart}")
    try:
        db = folder.connect()
    except RunFolderError as exc:
        raise RunFolderError(f"{exc}; {restart}") from None
    try:
        folder.meta(db)
        if "slots" in folder.damaged_meta:
            raise RunFolderError(f"{path}: the journal's meta entry 'slots' (how many workers ran when) is damaged, so "
                                 f"the run cannot be replayed exactly; {restart}")  # fmt: skip
        try:
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            n, low, high = db.execute("SELECT COUNT(*), MIN(seq), MAX(seq) FROM evaluations").fetchone()
        except sqlite3.DatabaseError as exc:
            raise RunFolderError(f"{path}: the journal is damaged ({exc}); {restart}") from None
        if check != "ok":
            raise RunFolderError(f"{path}: the journal is damaged (SQLite's check: {str(check)[:120]}); {restart}")
        if folder.missing_wal:
            raise RunFolderError(f"{folder.missing_wal}. Copy {JOURNAL_NAME}-wal next to the journal and resume again, "
                                 f"or {restart}")  # fmt: skip
        if n and (low != 0 or high != n - 1):
            have = {r[0] for r in db.execute("SELECT seq FROM evaluations")}
            missing = [i for i in range(int(high) + 1) if i not in have]
            shown = ", ".join(map(str, missing[:5])) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise RunFolderError(f"{path}: {len(missing)} rows are missing from the journal (arrival numbers {shown} "
                                 f"of 0..{high}): it was edited or damaged; restore it from a copy, or {restart}")  # fmt: skip
    finally:
        db.close()


def _check_extension(
    run_dir: Path, exp: Experiment, records: list[Record], extended: bool = False, lengthened: str | None = None,
    searched_s: Any = None,
) -> None:
    """Refuse ``--budget`` or ``--generations`` below what the run has done (it would rewrite its files), any
    extension of a run whose search is over and confirmed (``inherit.confirm`` trained its best from scratch) or
    ended by its ``stop:`` (met again where it was, it would add nothing; ``searched_s``: the journal's seconds of
    searching), and a longer run length (``lengthened``: its name) that the run's budget, spent already, would make
    do nothing."""
    if extended and any(r.origin == CONFIRM for r in records):
        raise RunFolderError(f"{run_dir}: the run's search is over: it has trained its best inherited genomes from "
                             "scratch (inherit: confirm), so it cannot be extended; start a new run with a larger "
                             "budget (the evaluation cache keeps what this one trained from scratch)")  # fmt: skip
    if extended and exp.stop is not None:
        check = StopCheck(exp)
        for rec in records:
            check.tell(rec)
        reason = check.reason or check.time_spent(float(searched_s) if is_real(searched_s) else 0.0)
        if reason is not None:
            raise RunFolderError(f"{run_dir}: the run's stop: ended its search ({reason}) and would end a longer one "
                                 f"at the same place, adding nothing; raise or remove stop in {run_dir / CONFIG_NAME}, "
                                 "then resume")  # fmt: skip
    done = sum(r.status != "infeasible" for r in records)
    if exp.budget is not None and exp.budget < done:
        raise RunFolderError(f"{run_dir}: the run has done {done} evaluations; --budget {exp.budget} is below that "
                             f"(pass {done} or more)")  # fmt: skip
    generations = exp.strategy.params.get("generations")
    reached = max((r.generation for r in records), default=0)
    if isinstance(generations, int) and generations < reached:
        raise RunFolderError(f"{run_dir}: the run has reached generation {reached}; --generations {generations} is "
                             f"below that (pass {reached} or more)")  # fmt: skip
    if lengthened and exp.budget is not None and done >= exp.budget:
        raise RunFolderError(f"{run_dir}: the run's budget of {exp.budget} evaluations is spent, so a longer "
                             f"{lengthened} adds none; pass --budget N as well")  # fmt: skip


def reach_budget(built: Built, budget: int, run_dir: Path) -> Built:
    """``built`` made to reach ``budget`` evaluations (``resume --budget``), or refused in one line.

    When the strategy's run length (its class's ``run_length``) ends the run before ``budget``: a run length
    that counts evaluations (set to ``budget``, the strategy expects exactly ``budget``: ``samples``, ``cycles``)
    is raised to ``budget``, and the run's config records it; any other (``generations``, a plug-in's) raises
    :class:`RunFolderError` saying what to pass instead. A strategy that does not say how many evaluations it
    asks (``expected_evaluations`` is ``None``) is taken at its word.
    """
    exp = built.experiment
    params = dict(exp.strategy.params)
    reach = _expected(built, params, budget)
    if reach is None or reach >= budget:
        return built
    cls, name = built.strategy_cls, built.strategy_cls.run_length
    try:
        declared = bool(name) and name in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        declared = False
    uncapped = _expected(built, params, None)
    ends = f"{run_dir}: --budget {budget}: "
    if not declared:
        most = uncapped or reach
        raise RunFolderError(f"{ends}strategy '{exp.strategy.name}' ends the run after at most {most} evaluations "
                             f"and declares no run length to extend; pass --budget {most} or less")  # fmt: skip
    raised = {**params, name: budget}
    if _expected(built, raised, None) == budget and (_expected(built, raised, budget) or 0) >= budget:
        print(f"evonas: --budget {budget}: {name} raised from {params.get(name)} to {budget} so the run goes on to "
              f"{budget} evaluations", file=sys.stderr)  # fmt: skip
        strategy = dataclasses.replace(exp.strategy, params=raised)
        return dataclasses.replace(built, experiment=dataclasses.replace(exp, strategy=strategy))
    value = params.get(name)
    ends += f"the run ends after {name}: {value} (at most {uncapped or reach} evaluations) first; "
    more = _expected(built, {**params, name: value + 1}, None) if isinstance(value, int) and uncapped else None
    step = more - uncapped if more is not None and uncapped is not None else 0
    if name == "generations" and step > 0 and uncapped is not None and isinstance(value, int):
        need = value + math.ceil((budget - uncapped) / step)
        raise RunFolderError(f"{ends}pass --generations {need} as well (each generation adds up to {step} "
                             "evaluations)")  # fmt: skip
    if name == "generations":
        raise RunFolderError(f"{ends}extend it with --generations N")
    raise RunFolderError(f"{ends}resume extends only --generations and --budget; start a new run with a larger {name}")


def _expected(built: Built, params: dict[str, Any], budget: int | None) -> int | None:
    """How many evaluations the strategy asks at most with ``params`` under ``budget`` (``None``: not said, or it
    cannot be built with them)."""
    exp = built.experiment
    exp = dataclasses.replace(exp, budget=budget, strategy=dataclasses.replace(exp.strategy, params=params))
    try:
        n = dataclasses.replace(built, experiment=exp).make_strategy().expected_evaluations()
    except Exception:  # a plug-in strategy that refuses the parameters: nothing is known
        return None
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def _record_runtime(journal: Journal, built: Built) -> None:
    """Note what this session trains with (the fitness's device and precision: bf16 on one CPU, fp32 on another or
    under ``ONEDNN_MAX_CPU_ISA=AVX2``) in the journal, one entry per session where it changes; a resume that trains
    otherwise than the run did is said (its results differ in the last digits)."""
    try:
        runtime = built.fitness.runtime()
    except Exception:  # a plug-in fitness's own method: nothing to note
        return
    if not isinstance(runtime, dict) or not runtime:
        return
    try:
        sessions = journal.get_meta("runtime", [])
    except JournalError:  # a damaged entry: started again
        sessions = []
    sessions = [s for s in sessions if isinstance(s, dict)] if isinstance(sessions, list) else []
    before = sessions[-1].get("runtime") if sessions else None
    if isinstance(before, dict) and all(before[k] == v for k, v in runtime.items() if k in before) \
            and set(before) <= set(runtime):  # the same (a journal of an older evonas noted fewer keys)
        return
    if isinstance(before, dict):
        print(f"evonas: this session trains with {runtime_text(runtime)}; the run trained with {runtime_text(before)} "
              "until now: results differ in their last digits, and the evaluation cache keeps them apart",
              file=sys.stderr)  # fmt: skip
    journal.set_meta("runtime", [*sessions, {"from_evaluation": len(journal), "runtime": runtime}])


def _say_what_will_not_happen(strategy: Strategy, built: Built) -> None:
    """One line each for settings the run will not act on: a ``cxpb`` on a space without a crossover operator, an
    initial population that takes the whole budget (every evaluation a random sample, no evolution)."""
    cxpb = getattr(strategy, "cxpb", 0)
    given = "cxpb" in (built.experiment.strategy.params or {})  # a default is no setting of the user's to act on
    if given and isinstance(cxpb, (int, float)) and cxpb > 0 and not built.variation.can_cross:
        none = ("crossovers: [] names none" if "crossovers" in built.experiment.given else
                f"space '{built.space.name}' has no crossover operator")  # fmt: skip
        print(f"evonas: strategy.params.cxpb: {cxpb:g}, but {none}: those children are made by mutation",
              file=sys.stderr)  # fmt: skip
    # the random start: local_search's and surrogate's initial_samples (their population_size only keeps the best)
    param = next((p for p in ("initial_samples", "population_size", "mu") if isinstance(getattr(strategy, p, None), int)),
                 None)  # fmt: skip
    initial = getattr(strategy, param) if param else None
    expected = strategy.expected_evaluations()
    # cut by the budget (or a steady-state strategy's samples): a ga with generations: 0 asks for its population only
    cut = strategy.ctx.budget if strategy.ctx.budget is not None else getattr(strategy, "limit", None)
    if isinstance(initial, int) and isinstance(expected, int) and isinstance(cut, int) and 0 < expected <= initial \
            and cut <= initial:
        what = (f"initial samples of {initial} take" if param == "initial_samples" else
                f"initial population of {initial} takes")  # fmt: skip
        print(f"evonas: strategy '{strategy.name}': its {what} the whole budget of "
              f"{expected} evaluations, so the search never goes past it (no evolution): raise the budget or lower "
              f"{param}", file=sys.stderr)  # fmt: skip
    if strategy.ctx.initial and not type(strategy).asks_saved:
        print(f"evonas: initial_population: strategy '{strategy.name}' asks the genomes of the space in its own order, "
              "so the saved genomes are not asked first", file=sys.stderr)  # fmt: skip


#: the journal's meta entry with the fingerprint of the data the run trains on (:meth:`Dataset.fingerprint`)
DATA_META = "data_fingerprint"
#: and of its test split (:meth:`Dataset.test_fingerprint`), which ``evonas export`` scores on
TEST_DATA_META = "test_data_fingerprint"


def _shown(value: Any) -> str:
    """A setting's value in a message: short, one line."""
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _nearest(constraints: Sequence[Any], journal: Journal) -> list[str]:
    """For each constraint no evaluated or infeasible candidate met, the value that came nearest to it."""
    from evonas.checks import metric_text

    out = []
    records = [r for r in journal.records("trial") if r.status in ("ok", "infeasible", "violated")]
    for c in constraints:
        values = [float(v) for r in records if is_real(v := (r.metrics or {}).get(c.metric))]
        if values and not any(c.holds(v) for v in values):
            near = min(values) if c.op.startswith("<") else max(values)
            out.append(f"{c}: nearest {c.metric}={metric_text(near)}")
    return out


def _strategy_class_or_none(name: str) -> Any:
    """The registered strategy ``name`` (importing a declared built-in), or ``None`` (a plug-in not imported yet)."""
    from evonas.strategies import STRATEGIES

    try:
        return STRATEGIES.get(name)
    except Exception:
        return None


def check_data(
    run_dir: Path, built: Built, recorded: Any, what: str = "resume", given: bool = False, recorded_test: Any = None
) -> None:
    """Refuse a resume (or an export: ``what``) whose dataset is not the one the run was started on (a file
    regenerated or replaced, or another one found at a relative path from another working directory; ``given``: the
    file ``--data`` named): it would mix two problems in one run, or export a network trained and tested on other
    data than the search saw (``recorded_test``: the test split's fingerprint, which an export checks too)."""
    if built.dataset is None or not isinstance(recorded, str):
        return
    same = recorded == built.dataset.fingerprint()
    if same and (not isinstance(recorded_test, str) or recorded_test == built.dataset.test_fingerprint()):
        return
    exp = built.experiment
    files = [f"{k}: {exp.dataset.params[k]}" for k in ("path", "root") if exp.dataset.params.get(k)]
    where = f" ({', '.join(files)})" if files else ""
    differs = "its contents differ" if not same else "its test split differs"
    if given:
        raise RunFolderError(f"{run_dir}: --data: the dataset '{exp.dataset.name}'{where} is not the data the run was "
                             f"started on ({differs}); name the file the run searched on")  # fmt: skip
    raise RunFolderError(f"{run_dir}: the dataset '{exp.dataset.name}'{where} as loaded here is not the data the run was "
                         f"started on ({differs}): its files changed, or a relative path found others from this working "
                         f"directory; {what} where the data is as it was"
                         + (", name a copy of the run's data with --data PATH" if files else "") + ", or start a new run")  # fmt: skip


def with_data(exp: Experiment, data: str | os.PathLike[str], run_dir: Path) -> Experiment:
    """``exp`` reading its dataset from ``data`` (``--data``: a run folder moved away from its data, or data moved
    since): the dataset's ``path`` (or ``root``) parameter set to it, absolute. That the file holds the run's data is
    then checked by :func:`check_data`."""
    from evonas.engine.components import PATH_PARAMS

    params = dict(exp.dataset.params)
    key = next((k for k in PATH_PARAMS if k in params), None)
    if key is None:
        raise RunFolderError(f"{run_dir}: --data: the run's dataset '{exp.dataset.name}' reads no file of "
                             f"yours (it has no {' or '.join(PATH_PARAMS)} parameter)")  # fmt: skip
    found = Path(data).expanduser()
    if not found.exists():
        raise RunFolderError(f"--data: no file or folder '{data}'")
    params[key] = str(found.resolve())
    return dataclasses.replace(exp, dataset=dataclasses.replace(exp.dataset, params=params))


def _set_aside(run_dir: Path) -> str | None:
    """Rename the journal (and its SQLite side files) to ``journal.sqlite.set-aside-<time>``; returns the new name."""
    journal = run_dir / JOURNAL_NAME
    if not journal.exists():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = run_dir / f"{JOURNAL_NAME}.set-aside-{stamp}"
    os.replace(journal, target)
    for side in ("-wal", "-shm"):
        if Path(f"{journal}{side}").exists():
            os.replace(f"{journal}{side}", f"{target}{side}")
    return target.name


def _clear_run_folder(run_dir: Path) -> None:
    """Delete what evonas wrote in ``run_dir`` (only that: :func:`foreign_entries` is empty), keeping the lock."""
    for name in os.listdir(run_dir):
        if name == LOCK_NAME:
            continue
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


class _DeferSignals:
    """SIGINT, SIGTERM, SIGHUP and SIGQUIT during a run. Armed (:meth:`arm`, the run's loop), the first one stops the
    run (``KeyboardInterrupt``) and any later one is noted; from :meth:`start` to :meth:`stop` (the final writes)
    each one is noted: ``best.json`` and the logbook get written however fast the user presses twice. Main thread
    only."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._raising = False
        self.caught = False

    def arm(self) -> None:
        self._install(raising=True)

    def start(self) -> None:
        self._install(raising=False)

    def _install(self, raising: bool) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self._raising = raising
        if self._previous:  # installed already: only what the next signal does changes
            return
        for name in self.SIGNALS:
            sig = getattr(signal, name, None)
            if sig is not None:
                self._previous[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._raising:
            self._raising = False
            raise KeyboardInterrupt
        if not self.caught:
            print("evonas: stopping: writing best.json and the logbook first", file=sys.stderr, flush=True)
        self.caught = True

    def stop(self) -> bool:
        """Restore the handlers; whether a signal was noted meanwhile."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        return self.caught


@dataclasses.dataclass
class SearchResult:
    """What :func:`search` returns: the strategy after the search and every evaluation, in trial order."""

    strategy: Strategy
    records: list[Record]
    duplicates: int
    #: why the search ended before its plan (its strategy asked only genomes it had seen), if it did; not printed
    ended_early: str | None = None
    #: the operators (and build function) that failed: ``{kind, name, calls, failures, first_error}`` each
    operator_faults: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: the objectives' weights (+1 maximised, -1 minimised), which :attr:`best` ranks by
    weights: tuple[float, ...] = (1.0,)

    @property
    def best(self) -> Record | None:
        """The best complete evaluation (successful, full, from scratch) by the objectives, as ``best.json`` of a run
        chooses it (ties on the first objective go to the better second); ``None`` if none succeeded."""
        first = ranked(self.records, self.weights)
        return first[0] if first else None


def search(built: Built, *, quiet: bool = False) -> SearchResult:
    """Run ``built``'s experiment in this process, with an in-memory journal and no run folder.

    The same loop as ``evonas run`` (ask, evaluate, journal, tell, repeats answered from the journal),
    without files or worker processes: for benchmarks that run a search hundreds of times. A faulty operator is
    said in a line on stderr unless ``quiet``; either way ``operator_faults`` of the result counts it.

    Example::

        result = search(build(load_experiment("experiments/nb201_toy.yaml")))
        print(result.best.metrics["val_acc"], result.best.genome)
    """
    if not isinstance(built, Built):
        raise TypeError(f"search: expected a Built (evonas.engine.build.build(experiment)), got {type(built).__name__}")
    journal = Journal(":memory:")
    strategy = built.make_strategy()
    loop = _Loop(Run(built.experiment, ".", progress=False), built, strategy, journal)
    loop.say_stuck = False  # the caller reads ended_early (a benchmark runs hundreds of searches)
    if quiet:  # nor a line per faulty operator: the caller reads operator_faults
        loop._fault_lines.say = lambda line: None

    def backend() -> Backend:
        return make_backend(built.experiment, 0, context=EvalContext.of(built.space, built.fitness, built.dataset))

    with tempfile.TemporaryDirectory(prefix="evonas-weights-") as weights:  # inherit: the weight store, then gone
        loop.weights_dir = Path(weights)
        loop.drive(backend, None)
    if loop.stuck is not None:
        strategy.end_search()
    records = list(journal.records("trial"))
    journal.close()
    faults = [dict(f) for f in loop.operator_stats() if f.get("failures")]
    return SearchResult(strategy, records, loop.duplicates, loop.stuck, faults, built.experiment.weights)
