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
bypasses it. Example::

    cache = EvaluationCache()                       # the default file
    fingerprint = problem_fingerprint(built)
    cache.get(fingerprint, key, seed)               # -> metrics dict or None
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from evonas.engine.backends import Backend, Job, JobResult
from evonas.strategies.base import slot_key

__all__ = ["EvaluationCache", "CachedBackend", "problem_fingerprint", "default_cache_path"]

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
    from evonas import __version__

    exp = built.experiment
    problem = {
        "evonas": __version__,
        "space": {"name": exp.space.name, "params": built.space.params},
        "fitness": {"name": exp.fitness.name, "settings": built.fitness.settings()},
        "dataset": {"name": exp.dataset.name, "params": dict(exp.dataset.params), "split_seed": exp.seed}
        if built.fitness.needs_dataset else None,
        "seed_policy": "sha256(run seed, genome key)",
    }  # fmt: skip
    text = json.dumps(problem, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class EvaluationCache:
    """Metrics of finished evaluations in a SQLite file shared by every run on this machine."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a cache: losing the last entries to a power cut is fine
        self._db.executescript(_SCHEMA)

    def get(self, problem: str, key: str, seed: int) -> tuple[dict[str, Any], float] | None:
        """``(metrics, wall_s)`` of the cached evaluation, or ``None``."""
        row = self._db.execute(
            "SELECT metrics, wall_s FROM evaluations WHERE problem = ? AND key = ? AND seed = ?", (problem, key, seed)
        ).fetchone()
        return None if row is None else (json.loads(row[0]), float(row[1] or 0.0))

    def put(self, problem: str, key: str, seed: int, metrics: dict[str, Any], wall_s: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO evaluations (problem, key, seed, metrics, wall_s, created) VALUES (?, ?, ?, ?, ?, ?)",
            (problem, key, seed, json.dumps(metrics, allow_nan=True), wall_s, time.time()),
        )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]

    def close(self) -> None:
        self._db.close()


class CachedBackend(Backend):
    """A backend in front of another: cached evaluations are answered at once, the rest go to the
    real backend and their successful results are stored. It has the real backend's slots (a resume
    replays with the recorded slot counts, so they must be the real ones)."""

    def __init__(self, inner: Backend, cache: EvaluationCache, problem: str) -> None:
        self.inner = inner
        self.slots = inner.slots
        self.cache, self.problem = cache, problem
        self._hits: list[JobResult] = []
        self._jobs: dict[int, Job] = {}

    @property
    def restarts(self) -> int:  # type: ignore[override]
        return self.inner.restarts

    def free_slots(self) -> int:
        return self.inner.free_slots() - len(self._hits)

    def busy(self) -> int:
        return len(self._hits) + self.inner.busy()

    def submit(self, job: Job) -> None:
        hit = self.cache.get(self.problem, slot_key(job.key, job.fidelity), job.seed)
        if hit is not None:
            self._hits.append(JobResult(job.trial, "ok", hit[0], None, hit[1], "cache", cached=True))
            return
        self._jobs[job.trial] = job
        self.inner.submit(job)

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        if self._hits:
            out, self._hits = self._hits, []
            return out
        results = self.inner.wait(timeout)
        for r in results:
            job = self._jobs.pop(r.trial, None)
            if job is not None and r.status == "ok":
                self.cache.put(self.problem, slot_key(job.key, job.fidelity), job.seed, r.metrics, r.wall_s)
        return results

    def states(self) -> list[dict[str, Any]]:
        return self.inner.states()

    def close(self) -> None:
        self.inner.close()
        self.cache.close()
