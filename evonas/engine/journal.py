"""The run journal: one SQLite row per finished evaluation, committed as it finishes.

The journal is the single source of truth of a run: ``best.json``, the
logbook, the plots and a resume are all derived from it. Rows are numbered by
``trial`` (the order in which the strategy asked for fresh evaluations, which
is deterministic for a seed) and ``seq`` (the order in which results arrived).
Nothing in it is a pickle: genomes and metrics are JSON text.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

__all__ = ["Journal", "Record", "JOURNAL_NAME"]

JOURNAL_NAME = "journal.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    trial INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    generation INTEGER NOT NULL,
    origin TEXT,
    parents TEXT,
    genome TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    metrics TEXT,
    fitness TEXT,
    seed INTEGER,
    wall_s REAL,
    worker TEXT,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS evaluations_key ON evaluations(key);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclasses.dataclass(frozen=True)
class Record:
    """One finished evaluation."""

    trial: int
    key: str
    generation: int
    genome: dict[str, Any]
    status: str  # "ok" | "failed"
    metrics: dict[str, Any]
    fitness: tuple[float, ...] | None
    error: str | None = None
    origin: str = ""
    parents: tuple[str, ...] = ()
    seed: int | None = None
    wall_s: float | None = None
    worker: str | None = None
    seq: int = -1
    finished_at: float | None = None


def _dumps(value: Any) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), allow_nan=False)


class Journal:
    """Append-only evaluation log in ``RUN_DIR/journal.sqlite``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    # -- writing -----------------------------------------------------------------------------
    def append(self, rec: Record) -> Record:
        """Insert ``rec`` and commit; returns it with its arrival number ``seq``."""
        with self._db:
            seq = self._db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM evaluations").fetchone()[0]
            finished = rec.finished_at or time.time()
            self._db.execute(
                "INSERT INTO evaluations (trial, seq, key, generation, origin, parents, genome, status, error,"
                " metrics, fitness, seed, wall_s, worker, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    rec.trial,
                    seq,
                    rec.key,
                    rec.generation,
                    rec.origin,
                    json.dumps(list(rec.parents)),
                    json.dumps(rec.genome, sort_keys=True),
                    rec.status,
                    rec.error,
                    _dumps(rec.metrics),
                    None if rec.fitness is None else _dumps(list(rec.fitness)),
                    rec.seed,
                    rec.wall_s,
                    rec.worker,
                    finished,
                ),
            )
        return dataclasses.replace(rec, seq=seq, finished_at=finished)

    def set_meta(self, name: str, value: Any) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, json.dumps(value)))

    # -- reading -----------------------------------------------------------------------------
    def get_meta(self, name: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else default

    def records(self, order: str = "trial") -> Iterator[Record]:
        """All rows, by ``trial`` (ask order) or ``seq`` (arrival order)."""
        if order not in ("trial", "seq"):
            raise ValueError("order must be 'trial' or 'seq'")
        cur = self._db.execute(
            "SELECT trial, seq, key, generation, origin, parents, genome, status, error, metrics, fitness, seed,"
            f" wall_s, worker, finished_at FROM evaluations ORDER BY {order}"
        )
        for row in cur:
            fitness = json.loads(row[10]) if row[10] is not None else None
            yield Record(
                trial=row[0],
                seq=row[1],
                key=row[2],
                generation=row[3],
                origin=row[4] or "",
                parents=tuple(json.loads(row[5] or "[]")),
                genome=json.loads(row[6]),
                status=row[7],
                error=row[8],
                metrics=json.loads(row[9] or "{}"),
                fitness=None if fitness is None else tuple(float("nan") if v is None else v for v in fitness),
                seed=row[11],
                wall_s=row[12],
                worker=row[13],
                finished_at=row[14],
            )

    def keys(self) -> list[str]:
        """Genome keys in trial order."""
        return [r[0] for r in self._db.execute("SELECT key FROM evaluations ORDER BY trial")]

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]

    def count(self, status: str | None = None) -> int:
        if status is None:
            return len(self)
        return self._db.execute("SELECT COUNT(*) FROM evaluations WHERE status = ?", (status,)).fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
