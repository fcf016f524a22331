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
import re
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from evonas import __version__
from evonas.checks import is_real

__all__ = [
    "Journal", "JournalError", "Record", "JOURNAL_NAME", "JOURNAL_FORMAT", "ranked", "select_records",
    "failure_reasons", "failed_trials", "reason_kind", "failure_text", "more_failures", "name_trials", "training_spent",
]  # fmt: skip

JOURNAL_NAME = "journal.sqlite"
#: the journal's layout as this evonas writes it, recorded in its ``meta`` (``journal_format``, with
#: ``evonas_version``) when a journal is created; raised when an older evonas could no longer read what this one
#: writes. A journal without the entry (an evonas before it) is format 1.
JOURNAL_FORMAT = 2
#: every status a row may have
STATUSES = ("ok", "failed", "infeasible", "violated", "pruned")

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
    finished_at REAL,
    cached INTEGER NOT NULL DEFAULT 0,
    fidelity REAL,
    safe_mode INTEGER NOT NULL DEFAULT 0,
    curve TEXT,
    inherited TEXT
);
CREATE INDEX IF NOT EXISTS evaluations_key ON evaluations(key);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS discarded (seq INTEGER, trial INTEGER, row TEXT, reason TEXT);
"""

_COLUMNS = (
    "trial, seq, key, generation, origin, parents, genome, status, error, metrics, fitness, seed,"
    " wall_s, worker, finished_at, cached, fidelity, safe_mode, curve, inherited"
)


class JournalError(RuntimeError):
    """A journal that cannot be opened or read."""


@dataclasses.dataclass(frozen=True)
class Record:
    """One finished evaluation."""

    trial: int
    key: str
    generation: int
    genome: dict[str, Any]
    #: "ok" | "failed" | "infeasible" (broke a limit on a cheap metric: never trained) | "violated" (trained,
    #: its metrics broke a limit) | "pruned" (stopped early by the pruner: its fitness is the metrics where it
    #: stopped, ``metrics["pruned_at"]`` the share of its training it reached); "ok" and "pruned" have a fitness
    status: str
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
    #: the metrics came from the evaluation cache (trained in an earlier run), not from a training in this run
    cached: bool = False
    #: share of the full training this evaluation had (multi-fidelity); ``None``: the full evaluation
    fidelity: float | None = None
    #: evaluated in safe mode (oneDNN off, fp32, contiguous layout) after a worker died on it
    safe_mode: bool = False
    #: what it reported to the pruner: ``((share of its training, value), ...)``, value higher is better
    curve: tuple[tuple[float, float], ...] = ()
    #: the genome whose trained weights this evaluation started from (``inherit:``); ``None``: from scratch
    inherited: str | None = None

    @property
    def complete(self) -> bool:
        """A successful evaluation trained in full from scratch: no lower fidelity, not pruned, not inherited
        (what ``best.json``, the hall of fame and export use)."""
        return self.status == "ok" and self.fidelity is None and self.inherited is None


def fitness_order(values: Sequence[Any], weights: Sequence[float]) -> tuple[float, ...]:
    """A fitness as :func:`ranked` orders it, one entry per objective's weight (+1 maximises, -1 minimises): smaller
    is better, a missing or non-finite value last."""
    return tuple(-w * v if i < len(values) and is_real(v := values[i]) else math.inf for i, w in enumerate(weights))


def ranked(records: Sequence[Record], weight: float | Sequence[float] = 1.0) -> list[Record]:
    """Complete evaluations (:attr:`Record.complete`: successful, full, from scratch), best first by the first objective
    (``weight`` +1 maximises, -1 minimises), one per genome key.

    ``weight`` may give every objective's weight: ties on the first objective then go to the better second one, and
    so on (an evaluation equal on the first and worse on another is dominated, so the first is never a genome the
    run's Pareto front beats); a missing or non-finite later value ranks last. Remaining ties keep the order of
    ``records``.

    Example::

        best = ranked(list(journal.records("seq")), [o.weight for o in exp.objectives])[0]
    """
    weights = [float(weight)] if isinstance(weight, (int, float)) else [float(w) for w in weight] or [1.0]
    full = [
        r for r in records
        if r.complete and r.fitness and r.fitness[0] is not None and math.isfinite(r.fitness[0])
    ]  # fmt: skip
    out: list[Record] = []
    seen: set[str] = set()
    for r in sorted(full, key=lambda r: fitness_order(r.fitness or (), weights)):  # stable
        if r.key not in seen:
            seen.add(r.key)
            out.append(r)
    return out


#: defaults of the columns a journal written by an older evonas lacks (its readers may not migrate it)
_ADDED_COLUMNS = {"cached": "0", "fidelity": "NULL", "safe_mode": "0", "curve": "NULL", "inherited": "NULL"}


def select_records(db: sqlite3.Connection, order: str = "trial", where: str = "") -> Iterator[Record]:
    """The rows of the journal open on ``db`` (read-only connections too: ``evonas status``, ``evonas best``)
    matching the SQL condition ``where``, by ``trial`` or ``seq``; columns an older journal lacks read as their
    defaults."""
    if order not in ("trial", "seq"):
        raise ValueError("order must be 'trial' or 'seq'")
    condition = f" WHERE {where}" if where else ""
    for row in db.execute(f"SELECT {select_columns(db)} FROM evaluations{condition} ORDER BY {order}"):
        yield _parse(row)


def select_columns(db: sqlite3.Connection) -> str:
    """The column list that reads a :class:`Record` from the journal open on ``db``; columns an older journal
    lacks read as their defaults."""
    have = {r[1] for r in db.execute("PRAGMA table_info(evaluations)")}
    return ", ".join(c if c in have else _ADDED_COLUMNS[c] for c in (c.strip() for c in _COLUMNS.split(",")))


#: what varies between failures of one kind: a number standing alone (a seed, a size, a time; not a line number after
#: ``:``, nor digits inside a word such as ``float32``), a shape such as ``64x16`` (torch's "mat1 and mat2 shapes
#: cannot be multiplied (32x128 and 64x10)": one mistake in a build function, whatever the genome's widths), a
#: hexadecimal address, and a hexadecimal word of 8 or more digits with a number in it (a genome's key, a hash)
_VARYING = re.compile(r"0x[0-9a-fA-F]+|(?<![\w.:])(?=[0-9a-f]*\d)[0-9a-f]{8,}(?!\w)|(?<![\w.:])\d+(?:x\d+)+(?!\w)"
                      r"|(?<![\w.:])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?!\w|\.\d)")


def reason_kind(error: str | None) -> str | None:
    """``error`` with what varies between failures of one kind written as ``#``: failures counted together.

    ``"fitness raised ValueError: seed 1234 diverged"`` and ``"... seed 77 diverged"`` are one kind, as are
    ``"... boom on 5dab13d616a9592c"`` and ``"... boom on 0e1f2a3b4c5d6e7f"``; ``"... at my_fit.py:12"`` and
    ``"... at my_fit.py:40"`` are two."""
    return None if error is None else _VARYING.sub("#", error)


def _failed_rows(db: sqlite3.Connection) -> list[tuple[str | None, int, str]]:
    rows = db.execute("SELECT error, trial, key FROM evaluations WHERE status = 'failed' ORDER BY trial, seq")
    return [(e, int(t), str(k)) for e, t, k in rows]


def failure_reasons(db: sqlite3.Connection, limit: int = 3) -> list[tuple[str | None, int]]:
    """The most frequent reasons of the failed evaluations in the journal open on ``db`` (read-only connections
    too: ``evonas status``), with their counts, most frequent first. Reasons differing only in what
    :func:`reason_kind` leaves out count together, under the first one's text."""
    counts: dict[str | None, list[Any]] = {}
    for error, _, _ in _failed_rows(db):
        counts.setdefault(reason_kind(error), [error, 0])[1] += 1
    top = sorted(counts.values(), key=lambda c: -c[1])[:limit]  # stable: ties in order of first failure
    return [(e, n) for e, n in top]


def more_failures(failures: int, reasons: Sequence[tuple[str | None, int]]) -> list[str]:
    """``["and 57 more failed for other reasons ..."]`` when the most frequent ``reasons`` leave some of ``failures``
    out, else ``[]``: what follows the reasons' own lines."""
    rest = failures - sum(n for _, n in reasons)
    return [f"and {rest} more failed for other reasons (the journal's error column)"] if rest > 0 else []


def failed_trials(db: sqlite3.Connection, reasons: Sequence[str | None], limit: int = 3) -> list[list[tuple[int, str]]]:
    """For each of ``reasons`` (as :func:`failure_reasons` gives them), the first ``limit`` failed evaluations with
    that reason (or one of its kind) as ``(trial, key)``: which genomes to look at (read-only connections too)."""
    rows = _failed_rows(db)
    out = []
    for reason in reasons:
        kind = reason_kind(reason)
        out.append([(t, k) for e, t, k in rows if reason_kind(e) == kind][:limit])
    return out


def name_trials(trials: Sequence[tuple[int, str]], count: int) -> str:
    """``trial 15, key ed5702d27dbe68ac`` for one failed evaluation; ``trials 15, 40, 77 and 2 more`` for several."""
    if not trials:
        return ""
    if count == 1:
        return f"trial {trials[0][0]}, key {trials[0][1]}"
    more = f" and {count - len(trials)} more" if count > len(trials) else ""
    return "trials " + ", ".join(str(t) for t, _ in trials) + more


def failure_text(reason: str | None, count: int, trials: Sequence[tuple[int, str]] = ()) -> str:
    """One failure reason as the summary and ``evonas status`` list it: ``2x worker died: ... (trials 3, 9)``."""
    return f"{count}x {reason}" + (f" ({name_trials(trials, count)})" if trials else "")


def training_spent(db: sqlite3.Connection) -> dict[str, int]:
    """What the evaluations in the journal open on ``db`` spent (read-only connections too: ``evonas status``):
    ``train_steps`` (optimizer steps) and ``train_samples`` (samples those steps saw), summed over every evaluation
    trained in this run (not those from the cache), and how many were ``pruned`` or ``inherited`` weights."""
    have = {r[1] for r in db.execute("PRAGMA table_info(evaluations)")}
    cached = "cached = 0" if "cached" in have else "1"
    inherited = "inherited IS NOT NULL" if "inherited" in have else "0"
    try:
        row = db.execute(
            "SELECT SUM(CAST(json_extract(metrics, '$.train_steps') AS INTEGER)),"
            " SUM(CAST(json_extract(metrics, '$.train_samples') AS INTEGER)),"
            f" SUM(status = 'pruned'), SUM({inherited}) FROM evaluations WHERE {cached} AND json_valid(metrics)"
        ).fetchone()
    except sqlite3.DatabaseError:
        row = (None,) * 4
    names = ("train_steps", "train_samples", "pruned", "inherited")
    return {n: int(v or 0) for n, v in zip(names, row)}


def _parse(row: Sequence[Any]) -> Record:
    fitness = json.loads(row[10]) if row[10] is not None else None
    return Record(
        trial=int(row[0]),
        seq=int(row[1]),
        key=str(row[2]),
        generation=int(row[3]),
        origin=row[4] or "",
        parents=tuple(json.loads(row[5] or "[]")),
        genome=json.loads(row[6]),
        status=row[7],
        error=row[8],
        metrics=json.loads(row[9] or "{}"),
        fitness=None if fitness is None else tuple(float("nan") if v is None else float(v) for v in fitness),
        seed=row[11],
        wall_s=row[12],
        worker=row[13],
        finished_at=row[14],
        cached=bool(row[15]),
        fidelity=row[16],
        safe_mode=bool(row[17]),
        curve=tuple((float(a), float(b)) for a, b in json.loads(row[18] or "[]")),
        inherited=row[19],
    )


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
        #: called with the number of rows after each committed :meth:`append` (the run notes it in its lock file)
        self.on_append: Callable[[int], None] | None = None
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            created = not self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'evaluations'").fetchone()
            self._db.executescript(_SCHEMA)
            if created:  # which evonas wrote the run folder, in which format (evonas.runfolder checks it)
                stamp = [("evonas_version", json.dumps(__version__)), ("journal_format", json.dumps(JOURNAL_FORMAT))]
                self._db.executemany("INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)", stamp)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(evaluations)")}
            if "cached" not in columns:  # a journal written before the evaluation cache existed
                self._db.execute("ALTER TABLE evaluations ADD COLUMN cached INTEGER NOT NULL DEFAULT 0")
            if "fidelity" not in columns:  # ... or before multi-fidelity
                self._db.execute("ALTER TABLE evaluations ADD COLUMN fidelity REAL")
            if "safe_mode" not in columns:  # ... or before the safe-mode retry
                self._db.execute("ALTER TABLE evaluations ADD COLUMN safe_mode INTEGER NOT NULL DEFAULT 0")
            for added in ("curve", "inherited"):  # ... or before pruning and inheritance
                if added not in columns:
                    self._db.execute(f"ALTER TABLE evaluations ADD COLUMN {added} TEXT")
            if str(path) != ":memory:":
                # "closed": false until close(); checkpointed into the file itself at once, so a copy of the file
                # without its -wal tells that rows may be missing (see evonas.engine.runner.check_resumable)
                self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('closed', 'false')")
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{self.path}: not a readable evonas journal ({exc})") from None

    # -- writing -----------------------------------------------------------------------------
    def append(self, rec: Record) -> Record:
        """Insert ``rec`` and commit; returns it with its arrival number ``seq``."""
        with self._db:
            seq = self._db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM evaluations").fetchone()[0]
            finished = rec.finished_at or time.time()
            self._db.execute(
                "INSERT INTO evaluations (trial, seq, key, generation, origin, parents, genome, status, error,"
                " metrics, fitness, seed, wall_s, worker, finished_at, cached, fidelity, safe_mode, curve, inherited)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    rec.trial,
                    seq,
                    rec.key,
                    rec.generation,
                    rec.origin,
                    json.dumps(list(rec.parents)),
                    json.dumps(rec.genome),  # as the space gives it (a define-by-run space: in the order asked)
                    rec.status,
                    rec.error,
                    _dumps(rec.metrics),
                    None if rec.fitness is None else _dumps(list(rec.fitness)),
                    rec.seed,
                    rec.wall_s,
                    rec.worker,
                    finished,
                    int(rec.cached),
                    rec.fidelity,
                    int(rec.safe_mode),
                    _dumps([list(p) for p in rec.curve]) if rec.curve else None,
                    rec.inherited,
                ),
            )
        if self.on_append is not None:
            self.on_append(seq + 1)
        return dataclasses.replace(rec, seq=seq, finished_at=finished)

    def set_meta(self, name: str, value: Any) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, json.dumps(value)))

    # -- reading -----------------------------------------------------------------------------
    def get_meta(self, name: str, default: Any = None) -> Any:
        """The ``meta`` entry ``name`` (``default`` if absent); a damaged one raises :class:`JournalError`."""
        try:
            row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
            return json.loads(row[0]) if row else default
        except (sqlite3.DatabaseError, TypeError, ValueError, RecursionError) as exc:
            raise JournalError(f"{self.path}: the journal's meta entry '{name}' is damaged ({exc})") from None

    def records(self, order: str = "trial") -> Iterator[Record]:
        """All rows, by ``trial`` (ask order) or ``seq`` (arrival order)."""
        yield from select_records(self._db, order)

    def get(self, key: str, fidelity: float | None = None, inherited: str | None = None) -> Record | None:
        """The finished evaluation of genome ``key`` at ``fidelity``, started from ``inherited``'s weights (the
        first, if several), or ``None``."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM evaluations WHERE key = ? AND fidelity IS ? AND inherited IS ? ORDER BY seq LIMIT 1",
            (key, fidelity, inherited),
        ).fetchone()
        return None if row is None else _parse(row)

    def load_for_resume(self) -> tuple[list[Record], int]:
        """The rows to replay, in arrival order, up to the first damaged one.

        A damaged row (and every row after it, which the strategy may have learnt from) is moved to
        the ``discarded`` table, so its evaluation is redone; returns ``(records, n_discarded)``.
        """
        try:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM evaluations ORDER BY seq").fetchall()
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{self.path}: the journal is damaged ({exc})") from None
        good: list[Record] = []
        for i, row in enumerate(rows):
            try:
                rec = _parse(row)
                if rec.status not in STATUSES or not isinstance(rec.genome, dict):
                    raise ValueError(f"bad status or genome in row {row[1]}")
            except (ValueError, TypeError) as exc:
                bad = rows[i:]
                with self._db:
                    for b in bad:
                        self._db.execute(
                            "INSERT INTO discarded (seq, trial, row, reason) VALUES (?, ?, ?, ?)",
                            (b[1], b[0], json.dumps([str(v) for v in b]), str(exc)),
                        )
                        self._db.execute("DELETE FROM evaluations WHERE seq = ?", (b[1],))
                return good, len(bad)
            good.append(rec)
        return good, 0

    def keys(self) -> list[str]:
        """Genome keys in trial order."""
        return [r[0] for r in self._db.execute("SELECT key FROM evaluations ORDER BY trial")]

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]

    def count(self, status: str | None = None) -> int:
        if status is None:
            return len(self)
        return self._db.execute("SELECT COUNT(*) FROM evaluations WHERE status = ?", (status,)).fetchone()[0]

    def count_safe_mode(self) -> int:
        """Rows evaluated in safe mode after a worker died on them."""
        return self._db.execute("SELECT COUNT(*) FROM evaluations WHERE safe_mode = 1").fetchone()[0]

    def failure_reasons(self, limit: int = 3) -> list[tuple[str | None, int]]:
        """The most frequent reasons of failed evaluations, with their counts, most frequent first."""
        return failure_reasons(self._db, limit)

    def failed_trials(self, reasons: Sequence[str | None], limit: int = 3) -> list[list[tuple[int, str]]]:
        """:func:`failed_trials` of this journal."""
        return failed_trials(self._db, reasons, limit)

    def training_spent(self) -> dict[str, int]:
        """The training this run's evaluations spent, and how many were pruned or inherited (:func:`training_spent`)."""
        return training_spent(self._db)

    def count_cached(self) -> int:
        """Rows whose metrics came from the evaluation cache."""
        return self._db.execute("SELECT COUNT(*) FROM evaluations WHERE cached = 1").fetchone()[0]

    def close(self) -> None:
        """Mark the journal closed (every row is in the file once SQLite checkpoints at this close) and close it."""
        if str(self.path) != ":memory:":
            try:
                self.set_meta("closed", True)
            except sqlite3.Error:  # a full disk: the journal stays marked open, which is only cautious
                pass
        self._db.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
