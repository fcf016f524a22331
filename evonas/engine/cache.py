"""The evaluation cache: what was trained once is never trained again, across runs.

A persistent SQLite file (default ``~/.cache/evonas/evaluations.sqlite``; the
``EVONAS_CACHE`` environment variable names another file) maps

    (genome key, evaluation seed, problem fingerprint) -> metrics

where the problem fingerprint hashes everything else that changes a result: the
space and its parameters, the fitness and its settings, the dataset with its
parameters and split seed, the seed policy and the evonas version. A repeated
experiment, a resumed run or a second strategy on the same problem (same seed)
then reuses every evaluation already done; the journal marks those rows
(``cached = 1``). Only successful evaluations are stored: a crash or a time-out
may not happen again. A fitness whose evaluation is cheaper than a lookup (a
table, a toy score) sets ``cacheable = False``.

On by default; ``cache: false`` in the experiment or ``evonas run --no-cache``
bypasses it. The cache fails soft: a file that cannot be used (not a database, damaged,
read-only, a folder at its path, a full disk: any ``sqlite3.Error`` or ``OSError`` on opening,
reading or writing) prints one warning line on stderr and the run goes on without a cache
(every evaluation is trained); the damaged file is left as it is. A run journals each result
before it stores it in the cache, so a failed cache write never loses a training. Example::

    cache = EvaluationCache()                       # the default file
    fingerprint = problem_fingerprint(built)
    cache.get(fingerprint, key, seed)               # -> metrics dict or None
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from evonas import __version__
from evonas.codehash import user_code
from evonas.datasets import DATASETS
from evonas.engine.backends import Backend, Job, JobResult
from evonas.engine.resolved import resolved_params
from evonas.strategies.base import evaluation_key

__all__ = ["EvaluationCache", "CachedBackend", "problem_fingerprint", "default_cache_path", "cache_problem"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    problem TEXT NOT NULL,
    key TEXT NOT NULL,
    seed INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    wall_s REAL,
    created REAL,
    PRIMARY KEY (problem, key, seed)
);
"""


def default_cache_path() -> Path:
    """``$EVONAS_CACHE``, else ``$XDG_CACHE_HOME/evonas/evaluations.sqlite`` (``~/.cache`` by default)."""
    if os.environ.get("EVONAS_CACHE"):
        return Path(os.environ["EVONAS_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "evonas" / "evaluations.sqlite"


def problem_fingerprint(built: Any) -> str:
    """A hash of everything but the genome and its seed that changes an evaluation's result."""
    exp = built.experiment
    problem = {
        "evonas": __version__,
        "space": _space_problem(exp.space.name, built.space),
        "fitness": {"name": exp.fitness.name, "settings": built.fitness.settings()},
        # the dataset's parameters with their defaults filled in: the same problem whether a default is written out
        # (a resumed run's resolved config.yaml) or left out
        "dataset": {"name": exp.dataset.name, "params": _dataset_params(exp), "split_seed": exp.seed}
        if built.fitness.needs_dataset else None,
        "seed_policy": "sha256(run seed, genome key)",
    }  # fmt: skip
    if built.dataset is not None:  # the data itself: a file regenerated, or another one at the same path, differs
        problem["data"] = built.dataset.fingerprint()
    runtime = built.fitness.runtime()
    if runtime:  # device and precision here (bf16 on one CPU, fp32 on another, or under ONEDNN_MAX_CPU_ISA=AVX2)
        problem["runtime"] = runtime
    dataset = DATASETS.get(exp.dataset.name) if built.fitness.needs_dataset else None
    code = plugin_code(type(built.space), type(built.fitness), *([dataset] if dataset is not None else []))
    if code:  # built-in components only: the fingerprint stays what it always was
        problem["plugin_code"] = code
    text = json.dumps(problem, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _space_problem(name: str, space: Any) -> dict[str, Any]:
    """The space's name, parameters and, where it runs user code, that code's hash (a space without one keeps the
    fingerprint it always had)."""
    out = {"name": name, "params": space.params}
    code = space.fingerprint()
    if code is not None:
        out["code"] = code
    return out


def plugin_code(*components: Any) -> dict[str, str]:
    """For each component (class or function) defined outside evonas, a hash of the user code it runs (its module's
    source file and the user modules that imports: :func:`evonas.codehash.user_code`), by the component's qualified
    name: a plug-in fitness, space or dataset whose code changes is another problem, so the cache never answers with
    results of the code as it was. A component whose code no file tells (:func:`cache_problem`) is left out."""
    out: dict[str, str] = {}
    for obj in components:
        digest, _ = user_code(obj)
        if digest is not None:
            out[f"{obj.__module__}.{obj.__qualname__}"] = digest
    return out


def cache_problem(built: Any) -> str | None:
    """Why the cache must not answer for ``built``'s evaluations, if it must not: a plug-in space, fitness, dataset or
    build function whose code its files do not tell (no source file; a file edited since this process loaded it)."""
    exp = built.experiment
    parts = [type(built.space), type(built.fitness), getattr(built.space, "build_function", None)]
    if built.fitness.needs_dataset:
        parts.append(DATASETS.get(exp.dataset.name))
    for obj in parts:
        if obj is not None:
            _, why = user_code(obj)
            if why:
                return why
    return None


def say_uncached(why: str) -> None:
    """The one line a run whose evaluations the cache may not answer prints."""
    print(f"evonas: note: this run's evaluations are not cached: {why}", file=sys.stderr)


def _dataset_params(exp: Any) -> dict[str, Any]:
    return resolved_params(DATASETS.get(exp.dataset.name), exp.dataset.params)


class EvaluationCache:
    """Metrics of finished evaluations in a SQLite file shared by every run on this machine.

    Fails soft: the first ``sqlite3.Error`` or ``OSError`` (opening, reading or writing) prints one warning
    on stderr and turns the cache off for this object's life: :meth:`get` then finds nothing, :meth:`put`
    stores nothing, ``len()`` is 0. The file itself is never removed or rewritten. :attr:`usable` says which.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self._db: sqlite3.Connection | None = None
        self.failure: str | None = None  #: why the cache was turned off (``None``: it works)
        try:
            self.path = Path(path) if path is not None else default_cache_path()
        except (RuntimeError, KeyError) as exc:  # no home folder to put the default file in
            self.path = Path("~/.cache/evonas/evaluations.sqlite")
            self._give_up(exc)
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
            # read before anything writes: a file that is not a database (or whose first page is damaged)
            # fails here and is left exactly as it was
            self._db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # a cache: losing the last entries to a power cut is fine
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            self._give_up(exc)

    @property
    def usable(self) -> bool:
        return self._db is not None

    def _give_up(self, exc: BaseException) -> None:
        """Warn (once: the cache is off afterwards) and go on without the cache."""
        first = self.failure is None
        self.failure = str(exc) or type(exc).__name__
        self.close()
        if first:
            print(
                f"evonas: warning: evaluation cache {self.path} is unusable ({self.failure}); "
                "this run goes on without it",
                file=sys.stderr,
                flush=True,
            )

    def get(self, problem: str, key: str, seed: int) -> tuple[dict[str, Any], float] | None:
        """``(metrics, wall_s)`` of the cached evaluation, or ``None`` (also when the cache is unusable)."""
        if self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT metrics, wall_s FROM evaluations WHERE problem = ? AND key = ? AND seed = ?", (problem, key, seed)
            ).fetchone()
            return None if row is None else (json.loads(row[0]), float(row[1] or 0.0))
        except (sqlite3.Error, OSError, ValueError, TypeError) as exc:  # a damaged row reads as damaged, too
            self._give_up(exc)
            return None

    def put(self, problem: str, key: str, seed: int, metrics: dict[str, Any], wall_s: float) -> None:
        """Store an evaluation; never raises for the cache's sake (an unusable cache stores nothing)."""
        if self._db is None:
            return
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO evaluations (problem, key, seed, metrics, wall_s, created) VALUES (?, ?, ?, ?, ?, ?)",
                (problem, key, seed, json.dumps(metrics, allow_nan=True), wall_s, time.time()),
            )
        except (sqlite3.Error, OSError) as exc:
            self._give_up(exc)

    def __len__(self) -> int:
        if self._db is None:
            return 0
        try:
            return self._db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
        except (sqlite3.Error, OSError) as exc:
            self._give_up(exc)
            return 0

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except (sqlite3.Error, OSError):
                pass


#: the entry of a cached result's metrics that holds what it reported to a pruner (``JobResult.curve``)
_CURVE = "__curve__"


def _inherits(job: Job) -> bool:
    return job.inheritance is not None and job.inheritance.parent is not None


def _curve(value: Any) -> tuple[tuple[float, float], ...]:
    """A cached result's curve, or none if it is not a list of ``[share, value]`` pairs."""
    try:
        return tuple((float(a), float(b)) for a, b in value) if value else ()
    except (TypeError, ValueError):
        return ()


class CachedBackend(Backend):
    """A backend in front of another: cached evaluations are answered at once, the rest go to the
    real backend and their successful results are stored. It has the real backend's slots (a resume
    replays with the recorded slot counts, so they must be the real ones).

    By default a result is stored when :meth:`wait` returns it. A caller with a journal (the engine
    loop) calls :meth:`store_after_journal` first; :meth:`wait` then only remembers the results, and
    :meth:`journalled` stores each one once it is in the journal, so a result is never lost to the cache.
    Results handed out but never journalled (an interrupted run) are not stored."""

    def __init__(
        self, inner: Backend, cache: EvaluationCache, problem: str, *, lookup: bool = True, expects: Iterable[str] = ()
    ) -> None:
        self.inner = inner
        #: metric names a stored result must hold to be used (the objectives: a result stored before the fitness
        #: reported one of them is a miss, evaluated again)
        self.expects = frozenset(expects)
        #: False: results are stored but never looked up (``inherit:``: every parent must be trained in the run)
        self.lookup = lookup
        self.slots = inner.slots
        self.cache, self.problem = cache, problem
        self._hits: list[JobResult] = []
        self._jobs: dict[int, Job] = {}
        self._deferred = False
        self._off = False  # the cache raised: it is neither asked nor written any more
        self._pending: dict[int, tuple[Job, JobResult]] = {}  # trial -> a result to store once journalled

    @property
    def restarts(self) -> int:  # type: ignore[override]
        return self.inner.restarts

    @property
    def recycled(self) -> int:  # type: ignore[override]
        return self.inner.recycled

    @property
    def in_process(self) -> bool:  # type: ignore[override]
        return self.inner.in_process

    def watch(self, started: Callable[[], None]) -> None:
        self.inner.watch(started)

    def said_by(self, say: Callable[[str], None]) -> None:
        self.inner.said_by(say)

    def free_slots(self) -> int:
        return self.inner.free_slots() - len(self._hits)

    def busy(self) -> int:
        return len(self._hits) + self.inner.busy()

    def submit(self, job: Job) -> None:
        hit = None
        if _inherits(job):  # its result depends on the parent's weights: neither looked up nor stored
            self.inner.submit(job)
            return
        if not self._off and self.lookup:
            try:
                hit = self.cache.get(self.problem, evaluation_key(job.key, job.fidelity), job.seed)
            except Exception as exc:  # noqa: BLE001 - a lookup that fails is a miss
                self._cache_failed(exc)
        if hit is not None and not (isinstance(hit[0], dict) and self.expects <= hit[0].keys()):
            hit = None  # stored before the fitness reported one of its metrics: evaluated again (and stored anew)
        if hit is not None:
            metrics = dict(hit[0])
            curve = _curve(metrics.pop(_CURVE, None))
            self._hits.append(JobResult(job.trial, "ok", metrics, None, hit[1], "cache", cached=True, curve=curve))
            return
        self._jobs[job.trial] = job
        self.inner.submit(job)

    def store_after_journal(self) -> None:
        """From now on store a result only when :meth:`journalled` says it is in the journal."""
        self._deferred = True

    def journalled(self, trial: int, keep: bool = True) -> None:
        """Trial ``trial``'s result is in the journal: store it if it is a fresh success the run keeps (``keep``; not
        one it judged failed), never raising for the cache."""
        pending = self._pending.pop(trial, None)
        if pending is not None and keep:
            self._store(*pending)

    def _store(self, job: Job, result: JobResult) -> None:
        if self._off:
            return
        try:
            metrics = {**result.metrics, **({_CURVE: [list(p) for p in result.curve]} if result.curve else {})}
            self.cache.put(self.problem, evaluation_key(job.key, job.fidelity), job.seed, metrics, result.wall_s)
        except Exception as exc:  # noqa: BLE001 - whatever a cache raises, it never costs a result
            self._cache_failed(exc)

    def _cache_failed(self, exc: BaseException) -> None:
        """The cache raised (it should not: :class:`EvaluationCache` fails soft itself): warn once, go on without it."""
        self._off = True
        if isinstance(self.cache, EvaluationCache):
            self.cache._give_up(exc)  # its one warning; it is off from now on
        else:
            print(f"evonas: warning: evaluation cache is unusable ({exc}); this run goes on without it", file=sys.stderr)

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        if self._hits:
            out, self._hits = self._hits, []
            return out
        results = self.inner.wait(timeout)
        for r in results:
            job = self._jobs.pop(r.trial, None)
            if job is not None and r.status == "ok":
                if self._deferred:
                    self._pending[r.trial] = (job, r)
                else:
                    self._store(job, r)
        return results

    def states(self) -> list[dict[str, Any]]:
        return self.inner.states()

    def close(self) -> None:
        self._pending.clear()
        try:
            self.inner.close()
        finally:
            try:
                self.cache.close()
            except Exception as exc:  # noqa: BLE001 - closing a broken cache is no reason to fail a run
                if not self._off:
                    self._cache_failed(exc)
