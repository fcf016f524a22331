"""A run folder, opened safely: the one place that reads one, and the lock of its one writer.

A run folder may come from someone else (a colleague's results, a download), so reading it must be safe:

- **No code from the folder runs.** Its ``config.yaml`` may name ``plugins:``; reading commands never import
  them unless the user asks (:func:`resolve_plugins`: ``--plugins`` names modules or files the user trusts,
  ``--trust`` imports what the folder names, with a warning). The folder is never put on the import path.
- **Nothing outside the folder is read or written through it.** :meth:`RunFolder.inside` refuses a path whose
  symbolic links lead out of the folder (``journal.sqlite`` linked to another database, ``plots`` linked to
  another folder); SQLite's ``-wal`` and ``-shm`` files are checked too, since even a reader writes ``-shm``.
- **Damage is one line, not a traceback.** The journal is opened read-only; a damaged ``config.yaml`` falls
  back to the journal's copy; damaged rows are skipped and counted; bounded YAML (no alias bombs).

One writer: ``evonas run`` and ``evonas resume`` hold :class:`RunLock` (an OS lock on ``run.lock``, released by
the OS when the process ends, so a crash never leaves a stale lock) for the life of the run.

Example::

    folder = RunFolder("runs/quickstart")
    records = folder.records()
    exp = folder.experiment()              # plug-ins named by the folder are not imported
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import shutil
import socket
import sqlite3
import stat
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

from evonas import __version__
from evonas.config import ConfigError, parse_experiment, safe_load_yaml
from evonas.engine.journal import JOURNAL_FORMAT, STATUSES, _parse, select_columns
from evonas.engine.plugins import import_plugins, resolve_path

__all__ = [
    "RunFolder",
    "RunFolderError",
    "RunLock",
    "RunLocked",
    "RUN_FILES",
    "RUN_DIRS",
    "LOCK_NAME",
    "resolve_plugins",
    "foreign_entries",
    "noted_rows",
]

JOURNAL_NAME = "journal.sqlite"
CONFIG_NAME = "config.yaml"
LOCK_NAME = "run.lock"
#: the files evonas writes in a run folder (what ``--overwrite`` may delete)
RUN_FILES = frozenset(
    {
        JOURNAL_NAME, f"{JOURNAL_NAME}-wal", f"{JOURNAL_NAME}-shm", f"{JOURNAL_NAME}-journal", CONFIG_NAME, LOCK_NAME,
        "best.json", "logbook.json", "logbook.csv", "hall_of_fame.json", "population.json", "pareto_front.json",
        "native.log", "native.log.1", "report.html", "optuna.db", "optuna.db-journal", "optuna.db-wal", "optuna.db-shm",
    }
)  # fmt: skip
#: the folders evonas writes in a run folder
RUN_DIRS = frozenset({"plots", "export", "weights", "tensorboard", "mlruns"})
#: the folders the loggers write (``tensorboard``, ``mlflow``: see :mod:`evonas.loggers`), whose files the tracker names
LOGGER_DIRS = frozenset({"tensorboard", "mlruns"})
#: the largest config.yaml a reader will parse
MAX_CONFIG_BYTES = 1 << 20


class RunFolderError(RuntimeError):
    """A folder that is not a readable run folder, or one that cannot be written to or resumed; one line."""


class RunLocked(RunFolderError):
    """Another process writes to the run folder."""


#: the files evonas writes in the folders of a run folder
RUN_DIR_FILES = {
    "plots": frozenset({"fitness.png", "diagnostics.png", "pareto_front.png", "pareto_fronts.png", "hypervolume.png"}),
    "export": frozenset({"model.pt", "model.torchscript.pt", "model.onnx", "genome.json", "metrics.json"}),
}


#: the files of the weight store (``weights/``, see :mod:`evonas.engine.weights`): ``<key>.safetensors`` and the
#: temporary files they are written through
_WEIGHT_FILE = re.compile(r"[A-Za-z0-9_-]{1,100}\.safetensors|\.[a-z0-9_]{8}\.tmp")


def _is_temporary(name: str, ours: frozenset[str]) -> bool:
    """A temporary file of :func:`evonas.engine.outputs.atomic_write` (``.NAME.<random>.tmp``) for one of ``ours``."""
    # tempfile.mkstemp's names: 8 characters of [a-z0-9_]
    return any(re.fullmatch(rf"\.{re.escape(n)}\.[a-z0-9_]{{8}}\.tmp", name) for n in ours)


def _is_ours(name: str) -> bool:
    """An entry evonas itself writes in a run folder (temporary files of atomic writes included)."""
    if name in RUN_FILES or name in RUN_DIRS:
        return True
    if re.fullmatch(r"\.w\d{1,4}\.crash", name):  # a worker's crash stack (evonas.engine.pool.crash_file)
        return True
    # the journal being created; atomic_write's temporaries (a journal set aside by --restart is the user's to keep)
    return name.startswith(f".{JOURNAL_NAME}.new") or _is_temporary(name, RUN_FILES)


def foreign_entries(path: str | Path) -> list[str]:
    """The entries of folder ``path`` that evonas did not write, ``plots/``, ``export/`` and ``weights/`` looked into (what
    ``--overwrite`` must never delete)."""
    out = []
    for entry in sorted(os.listdir(path)):
        full = os.path.join(path, entry)
        if os.path.islink(full):
            out.append(f"{entry} (a symbolic link)")
        elif not _is_ours(entry) or (entry in RUN_DIRS) != os.path.isdir(full):
            out.append(entry)
        elif entry in LOGGER_DIRS:  # the tracker's own layout: any regular file, no link
            for root, dirs, files in os.walk(full):
                for inner in dirs + files:
                    inner_full = os.path.join(root, inner)
                    if os.path.islink(inner_full) or not (os.path.isdir(inner_full) or os.path.isfile(inner_full)):
                        out.append(os.path.relpath(inner_full, path))
        elif entry in RUN_DIRS:
            ours = RUN_DIR_FILES.get(entry, frozenset())
            for inner in sorted(os.listdir(full)):
                inner_full = os.path.join(full, inner)
                if os.path.islink(inner_full) or not os.path.isfile(inner_full) or not (
                    inner in ours or _is_temporary(inner, ours) or (entry == "weights" and _WEIGHT_FILE.fullmatch(inner))
                ):
                    out.append(f"{entry}/{inner}")
    return out


class RunFolder:
    """A run folder opened for reading.

    ``RunFolder(path)`` checks that ``path`` is a folder holding ``journal.sqlite`` (``need_journal=False``:
    or at least ``config.yaml``); every problem is a :class:`RunFolderError` with one line.
    """

    def __init__(self, path: str | Path, *, need_journal: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise RunFolderError(f"{self.path}: no such run folder")
        if not self.path.is_dir():
            raise RunFolderError(f"{self.path}: not a folder; expected a run folder (holding {JOURNAL_NAME})")
        self.root = os.path.realpath(self.path)
        #: rows of the journal that could not be read (skipped by :meth:`records`)
        self.damaged = 0
        #: meta entries that could not be read (left out by :meth:`meta`)
        self.damaged_meta: list[str] = []
        #: why the journal may hold fewer rows than its run wrote (an unclosed run's journal without its -wal file),
        #: set by :meth:`connect`; ``None`` when it holds them all
        self.missing_wal: str | None = None
        self._config: dict[str, Any] | None = None  # what config() read, so that its warning is printed once
        journal = self.inside(JOURNAL_NAME)
        if need_journal and not journal.is_file():
            raise RunFolderError(f"{self.path}: not a run folder (no {JOURNAL_NAME})")
        if not need_journal and not journal.is_file() and not self.inside(CONFIG_NAME).is_file():
            raise RunFolderError(f"{self.path}: not a run folder (no {JOURNAL_NAME} or {CONFIG_NAME})")
        if journal.is_file():
            self._check_format()

    def _check_format(self) -> None:
        """Refuse (one line) a journal written by a newer evonas in a format this one does not know; a journal
        without the entry (an older evonas) is format 1. A journal that cannot be read is left to its readers."""
        try:
            meta = self.meta()
        except RunFolderError:
            return
        found = meta.get("journal_format", 1)
        if isinstance(found, int) and not isinstance(found, bool) and found > JOURNAL_FORMAT:
            writer = meta.get("evonas_version")
            raise RunFolderError(f"{self.path}: written by evonas {writer if isinstance(writer, str) else '?'} "
                                 f"(journal format {found}); this evonas ({__version__}) reads formats up to "
                                 f"{JOURNAL_FORMAT}: upgrade evonas")  # fmt: skip

    # -- paths ------------------------------------------------------------------------------------
    def inside(self, name: str | Path) -> Path:
        """``path/name``, refused if a symbolic link on the way leads out of the folder."""
        p = self.path / name
        real = os.path.realpath(p)
        if real != self.root and not real.startswith(self.root.rstrip(os.sep) + os.sep):
            raise RunFolderError(f"{p}: a link to {real}, outside the run folder; refusing to follow it")
        return p

    @property
    def journal_path(self) -> Path:
        return self.inside(JOURNAL_NAME)

    # -- the journal ------------------------------------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        """A read-only connection to the journal (it never blocks a running writer)."""
        path = self.journal_path
        for side in ("-wal", "-shm"):
            self.inside(JOURNAL_NAME + side)  # SQLite opens these next to the journal, and writes -shm
        if not path.is_file():
            raise RunFolderError(f"{self.path}: not a run folder (no {JOURNAL_NAME})")
        if path.stat().st_size == 0:
            raise RunFolderError(f"{path}: the journal is empty (0 bytes)")
        # Without a -wal file no writer is at work (a live one keeps it) and every row is in the file itself: read it
        # as immutable, which creates nothing next to it (a plain read-only connection would leave -wal and -shm).
        # With one, read through SQLite's WAL (a read-only connection that never blocks the writer).
        # A -wal file that no run holds (the run ended without closing the journal, or the folder was copied so) is
        # read from a private copy: even a read-only connection would write to the folder's -shm.
        live = Path(f"{path}-wal").exists()
        try:
            if live and not _writer_holds(self.path):
                db = _private_copy(path)
            else:
                uri = f"file:{_uri(path)}?mode=ro" + ("" if live else "&immutable=1")
                db = sqlite3.connect(uri, uri=True, timeout=10)
            db.execute("SELECT 1 FROM evaluations LIMIT 1").fetchall()
            self.missing_wal = None if live else self._rows_in_missing_wal(db)
        except OSError as exc:
            raise RunFolderError(f"{path}: cannot read the journal ({exc.strerror or exc})") from None
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                raise RunFolderError(f"{path}: not an evonas journal (no evaluations table)") from None
            raise RunFolderError(f"{path}: cannot open the journal ({exc}){disk_full(self.path)}") from None
        except sqlite3.DatabaseError as exc:
            full = disk_full(self.path)  # SQLite says "disk I/O error" where it cannot make its -shm file
            what = "cannot open the journal" if full else "not a readable evonas journal"
            raise RunFolderError(f"{path}: {what} ({exc}){full}") from None
        return db

    def _rows_in_missing_wal(self, db: sqlite3.Connection) -> str | None:
        """Why ``db`` (opened without a -wal file next to it) may lack rows: its run did not close the journal, and the
        rows written since the last checkpoint were in the -wal file (a folder copied without it). A journal whose -wal
        a later reader checkpointed into the file and deleted holds every row: the row count its run noted in the lock
        file tells the two apart."""
        try:
            with open(self.journal_path, "rb") as fh:
                if fh.read(20)[18:20] != b"\x02\x02":  # not in WAL mode: every row is in the file
                    return None
            meta = dict(db.execute("SELECT name, value FROM meta WHERE name IN ('closed', 'live')").fetchall())
            closed, live = (json.loads(meta.get(k) or "null") for k in ("closed", "live"))
            state = live.get("state") if isinstance(live, dict) else None
            if not (closed is False or (closed is None and state not in CLOSED_STATES)):  # None: an older evonas's
                return None  # closed: every row is in the file (the common case: no count of the rows)
            n = db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
        except (OSError, sqlite3.DatabaseError, ValueError, RecursionError):
            return None  # a damaged journal is said by what reads it
        noted = noted_rows(self.path)
        if noted is not None and n >= noted:
            return None
        held = f" (it holds {n} of the {noted} rows its run wrote)" if noted is not None else ""
        return (f"{self.journal_path}: its run did not close the journal (last state: {state or 'never reported'}) and "
                f"{JOURNAL_NAME}-wal is missing{held}: the rows written since the last checkpoint are in that file")

    def meta(self, db: sqlite3.Connection | None = None) -> dict[str, Any]:
        """The journal's ``meta`` table; a damaged entry is left out (and named in :attr:`damaged_meta`)."""
        own = db is None
        db = db or self.connect()
        try:
            rows = db.execute("SELECT name, value FROM meta").fetchall()
        except sqlite3.DatabaseError as exc:
            raise RunFolderError(f"{self.journal_path}: cannot read the journal ({exc})") from None
        finally:
            if own:
                db.close()
        out: dict[str, Any] = {}
        self.damaged_meta = []
        for name, value in rows:
            try:
                out[str(name)] = json.loads(value)
            except (TypeError, ValueError, RecursionError):
                self.damaged_meta.append(str(name))
        return out

    def records(self, order: str = "trial", where: str = "", db: sqlite3.Connection | None = None) -> list[Any]:
        """The journal's readable rows (see :func:`evonas.engine.journal.select_records`); damaged ones are
        skipped and counted in :attr:`damaged`."""
        own = db is None
        db = db or self.connect()
        out = []
        self.damaged = 0
        try:
            condition = f" WHERE {where}" if where else ""
            for row in db.execute(f"SELECT {select_columns(db)} FROM evaluations{condition} ORDER BY {order}"):
                try:
                    rec = _parse(row)
                    _check_record(rec, STATUSES)
                except (TypeError, ValueError, RecursionError, OverflowError):
                    self.damaged += 1
                    continue
                out.append(rec)
        except sqlite3.DatabaseError as exc:
            raise RunFolderError(f"{self.journal_path}: cannot read the journal ({exc})") from None
        finally:
            if own:
                db.close()
        return out

    def warn_damaged(self) -> None:
        """One line on stderr if :meth:`records` skipped damaged rows."""
        if self.damaged:
            print(f"evonas: {self.journal_path}: {self.damaged} damaged rows skipped (evonas resume sets them aside "
                  "and redoes them)", file=sys.stderr)  # fmt: skip
        if self.missing_wal:
            print(f"evonas: {self.missing_wal}; what follows is what the journal itself holds (copy {JOURNAL_NAME}-wal "
                  "next to it for the rest)", file=sys.stderr)  # fmt: skip

    # -- the experiment ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The run's experiment as a mapping: ``config.yaml``, or the journal's copy if that is missing or damaged."""
        if self._config is not None:
            return self._config
        cfg = self.path / CONFIG_NAME
        problem = "missing"
        try:
            self.inside(CONFIG_NAME)
            usable = True
        except RunFolderError as exc:  # a link out of the folder: not followed, the journal's copy is used
            problem, usable = str(exc).split(": ", 1)[-1], False
        if usable and cfg.is_file():
            try:
                if cfg.stat().st_size > MAX_CONFIG_BYTES:
                    raise ConfigError(cfg, None, f"larger than {MAX_CONFIG_BYTES} bytes")
                raw = safe_load_yaml(cfg.read_text(), cfg)
                if isinstance(raw, dict):
                    self._config = raw
                    return raw
                problem = "not a mapping"
            except ConfigError as exc:  # its file is named once, below
                problem = ": ".join(p for p in (exc.key, exc.message) if p)
            except (OSError, UnicodeDecodeError) as exc:
                problem = f"unreadable ({exc})"
        stored = None
        if self.journal_path.is_file():
            try:
                stored = self.meta().get("config")
            except RunFolderError:
                stored = None
        if not isinstance(stored, dict):
            raise RunFolderError(f"{cfg}: {problem}, and the journal holds no readable copy of the experiment")
        print(f"evonas: {cfg}: {problem}; using the journal's copy of the experiment", file=sys.stderr)
        self._config = stored
        return stored

    def experiment(self, *, plugins: Sequence[str] | None = None, trust: bool = False) -> Any:
        """The run's :class:`~evonas.config.Experiment`, its plug-ins resolved by :func:`resolve_plugins`."""
        raw = self.config()
        try:
            exp = parse_experiment(raw, source=str(self.path / CONFIG_NAME))
        except ConfigError as exc:
            stored = self.meta().get("config") if self.journal_path.is_file() else None
            if not isinstance(stored, dict) or stored == raw:
                raise RunFolderError(str(exc)) from None
            try:  # config.yaml was edited into something invalid: the journal's own copy is what ran
                exp = parse_experiment(stored, source=str(self.journal_path))
            except ConfigError:
                raise RunFolderError(str(exc)) from None
            print(f"evonas: {exc}; using the journal's copy of the experiment", file=sys.stderr)
        return resolve_plugins(dataclasses.replace(exp, source=self.origin(trust)), plugins, trust, where=self.path)

    def origin(self, trust: bool = False) -> str | None:
        """Where the run's plug-ins and relative paths are looked for: the experiment file the run was started from
        when it is on this machine (outside the folder), else (``trust`` only: worker processes then find the
        folder's modules too) the folder's ``config.yaml``."""
        try:
            source = self.meta().get("experiment_file") if self.journal_path.is_file() else None
        except RunFolderError:
            source = None
        if isinstance(source, str) and os.path.isfile(source):
            real = os.path.realpath(source)
            if not real.startswith(self.root.rstrip(os.sep) + os.sep):
                return source
        return str(self.path / CONFIG_NAME) if trust else None


def _number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _check_record(rec: Any, statuses: Sequence[str]) -> None:
    """Raise ``ValueError`` for a row whose fields a reader could not use (sorted, summed, hashed, formatted)."""
    if rec.status not in statuses or not isinstance(rec.genome, dict) or not isinstance(rec.metrics, dict):
        raise ValueError("bad status, genome or metrics")
    if not all(isinstance(p, str) for p in rec.parents) or not isinstance(rec.origin, str):
        raise ValueError("bad parents or origin")
    if not all(_number_or_none(v) for v in (rec.wall_s, rec.finished_at, rec.fidelity)):
        raise ValueError("bad wall_s, finished_at or fidelity")
    if not (rec.seed is None or (isinstance(rec.seed, int) and not isinstance(rec.seed, bool))):
        raise ValueError("bad seed")
    if not (rec.worker is None or isinstance(rec.worker, str)) or not (rec.error is None or isinstance(rec.error, str)):
        raise ValueError("bad worker or error")


#: the states a run's journal is closed in (a run that ends in another left it open)
CLOSED_STATES = ("finished", "interrupted", "stopped", "crashed")


def disk_full(path: Path) -> str:
    """``"; the disk holding FOLDER is full ..."`` when the file system of ``path`` has (almost) no room left (an error
    SQLite words as a damaged or unreadable file is then no damage), else ``""``."""
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):
        return ""
    if st.f_bavail * st.f_frsize >= 1 << 20:
        return ""
    return (f"; the disk holding {path} is full ({st.f_bavail * st.f_frsize // 1024} KiB free), so SQLite cannot "
            "open the journal there: the journal is not damaged; free some space and run the command again")


def noted_rows(run_dir: Path) -> int | None:
    """The journal's row count the run last noted in ``run_dir``'s lock file (:meth:`RunLock.note_rows`), if any."""
    try:
        with open(run_dir / LOCK_NAME, "rb") as fh:
            rows = json.loads(fh.read(65536).decode() or "{}").get("journal_rows")
    except (OSError, ValueError, AttributeError):
        return None
    return rows if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 else None


def _writer_holds(run_dir: Path) -> bool:
    """Whether a run holds ``run_dir``'s lock now (asked without creating or changing a file)."""
    try:
        fd = os.open(run_dir / LOCK_NAME, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:  # no lock file: no run writes here
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing the descriptor releases the shared lock
    return False


class _CopyConnection(sqlite3.Connection):
    """A connection to a private copy of a journal (:func:`_private_copy`); closing it removes the copy."""

    copy_dir = ""

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.copy_dir, ignore_errors=True)


def _private_copy(path: Path) -> sqlite3.Connection:
    """A connection to a copy of the journal ``path`` and its ``-wal``, in a temporary folder removed when the
    connection is closed (or collected)."""
    tmp = tempfile.mkdtemp(prefix="evonas-journal-")
    try:
        for side in ("", "-wal"):
            shutil.copyfile(f"{path}{side}", os.path.join(tmp, f"{JOURNAL_NAME}{side}"))
        db = sqlite3.connect(os.path.join(tmp, JOURNAL_NAME), timeout=10, factory=_CopyConnection)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    db.copy_dir = tmp
    weakref.finalize(db, shutil.rmtree, tmp, True)
    return db


def _uri(path: Path) -> str:
    return quote(str(path.resolve()))


def resolve_plugins(exp: Any, plugins: Sequence[str] | None, trust: bool, *, where: Path | str) -> Any:
    """``exp`` with the plug-ins a reading command may import, imported.

    - ``plugins`` (``--plugins``): the modules (names on the import path, or ``.py`` files) the user names;
      names are looked for in the working directory and next to ``exp.source`` (set it to
      :meth:`RunFolder.origin`, never to a file inside a folder that is not trusted);
    - ``trust`` (``--trust``): the plug-ins the folder's config names, with a one-line warning;
    - neither: none. A component that needs one then fails with a line naming the plug-in (see
      :func:`missing_plugins`).
    """
    if plugins is not None and (isinstance(plugins, (str, bytes, os.PathLike)) or not all(
            isinstance(p, (str, os.PathLike)) for p in plugins)):  # fmt: skip
        raise TypeError(f"plugins: expected a list of module names or .py files (plugins=['space.py']), got "
                        f"{plugins!r}"[:300])  # fmt: skip
    plugins = None if plugins is None else [os.fspath(p) for p in plugins]
    named = tuple(exp.plugins)
    if trust:
        if named:
            print(f"evonas: --trust: importing the plug-ins {where}/{CONFIG_NAME} names ({', '.join(named)}); "
                  "their code runs with your rights", file=sys.stderr)  # fmt: skip
            folder = os.path.realpath(where)  # trusted: its own modules are found too (after the working directory
            if folder not in sys.path:  # and the experiment file's folder, which import_plugins puts first)
                sys.path.insert(0, folder)
        chosen = named
    else:
        chosen = tuple(plugins or ())
        exp = dataclasses.replace(exp, plugins=chosen)
    if not chosen:  # import_plugins would still put the working directory (maybe the folder) on the import path
        return exp
    try:
        import_plugins(exp)
    except ConfigError as exc:
        if trust:
            raise RunFolderError(str(exc)) from None
        # the entry came from --plugins, not from the experiment file: say so, and where it was looked for
        looked = "the working directory" + (f" and next to {exp.source}" if exp.source else "")
        raise RunFolderError(f"--plugins: {exc.message} (looked in {looked})") from None
    return exp


def space_file_problem(file: Any, exp: Any = None) -> str:
    """Why the space declaration file a run names must not be read ("" if it may): a reader of a received folder
    reads only a regular file of at most ``MAX_CONFIG_BYTES`` (never ``/dev/zero``, a FIFO, a huge file)."""
    if not file:
        return ""
    if not isinstance(file, str):
        return f"space.file: expected a path, got {type(file).__name__}"
    path: Any = Path(file)
    if exp is not None:
        path = resolve_path(file, exp)
        if path is None:
            return ""  # the builder says that it is missing
    try:
        st = os.stat(path)
    except OSError:
        return ""
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_CONFIG_BYTES:
        return f"space.file: {file} is not a regular file of at most {MAX_CONFIG_BYTES} bytes; not read"
    return ""


def _named_plugins(plugins: Any) -> list[str]:
    """The plug-ins an experiment's ``plugins:`` lists, as journalled: anything but a list of strings is none."""
    return [p for p in plugins if isinstance(p, str)] if isinstance(plugins, (list, tuple)) else []


def resume_command(run_dir: str | Path, plugins: Any) -> str:
    """The command that resumes the run in ``run_dir`` whose experiment lists ``plugins`` (:func:`_named_plugins`):
    with ``--plugins`` naming them, as evonas imports no code a run folder names unless asked."""
    named = _named_plugins(plugins)
    return f"evonas resume {run_dir}" + (f" --plugins {' '.join(named)}" if named else "")


def in_folder_config(run_dir: str | Path, exc: Any, hint: str = "") -> Any:
    """``exc`` (a :class:`~evonas.config.ConfigError` from building a run folder's experiment) naming the folder's
    ``config.yaml``, the copy a reading command or a resume builds, whatever file the run was started from; ``hint``
    appended to its message (:func:`plugin_hint`)."""
    from evonas.config import ConfigError

    return ConfigError(Path(run_dir) / CONFIG_NAME, exc.key, exc.message + hint)


def data_hint(exc: Any, given: bool = False) -> str:
    """For a run folder's dataset file that is not where the run found it: ``--data`` (appended to the error's line by
    resume and export; empty for other errors, and when ``given``: the file --data named is the one not found)."""
    key, message = getattr(exc, "key", None) or "", getattr(exc, "message", str(exc))
    if not given and key.startswith("dataset") and ("no file" in message or "not found" in message):
        return "; if it moved, name where it is now with --data PATH"
    return ""


def plugin_hint(run_dir: str | Path, exc: Exception, plugins: Sequence[str] | None, trust: bool) -> str:
    """For an unknown component of a run folder whose config names plug-ins the command did not import: which
    (appended to the error's line; empty otherwise)."""
    import re

    if trust or not re.search(r"unknown (search space|space|dataset|fitness|mutation|crossover|strategy|selection|backend) '", str(exc)):
        return ""
    try:
        config = RunFolder(run_dir, need_journal=False).config()
    except RunFolderError:
        return ""
    return missing_plugins(config, [Path(p).stem for p in plugins or ()])


def missing_plugins(config: dict[str, Any], imported: Sequence[str]) -> str:
    """The hint added to an "unknown component" error of a reading command: which plug-ins the run names."""
    named = _named_plugins(config.get("plugins")) if isinstance(config, dict) else []
    left = [p for p in named if p not in imported]
    if not left:
        return ""
    return (f"; the run names the plug-ins {', '.join(left)}, and evonas imports no code a run folder names unless "
            f"asked: pass --plugins {' '.join(left)} (module names, or the path of each .py file) if you trust them, "
            "or --trust")  # fmt: skip


# -- the lock of the one writer ------------------------------------------------------------------------------------


class RunLock:
    """An exclusive OS lock on ``RUN_DIR/run.lock`` for the life of a run (or until :meth:`release`).

    The OS releases it when the process ends, however it ends: a crash or ``kill -9`` never leaves a stale lock.
    A second writer gets :class:`RunLocked` naming the process that holds it.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None
        self._info: dict[str, Any] = {}

    def acquire(self, what: str = "") -> "RunLock":
        if os.path.islink(self.path):
            raise RunFolderError(f"{self.path}: a symbolic link; refusing to use it as the run's lock")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as exc:
            raise RunFolderError(f"{self.path.parent}: cannot write to the run folder ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLocked(f"{self.path.parent}: in use by {holder}; wait for it to end or stop it, then try again") from None
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": what or " ".join(["evonas", *sys.argv[1:]]), "since": time.time()}
        os.write(fd, json.dumps(info).encode())
        self._fd, self._info = fd, info
        return self

    def note_rows(self, rows: int) -> None:
        """Record in the lock file how many rows the run's journal holds (after each commit).

        A reader that opens the journal after the run was killed checkpoints SQLite's ``-wal`` into the file and
        deletes it; this count tells a resume that the file then holds every row (see
        :func:`evonas.engine.runner.check_resumable`), where a journal copied without its ``-wal`` would not.
        """
        if self._fd is None:
            return
        self._info["journal_rows"] = int(rows)
        data = json.dumps(self._info).encode()
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def lock_held(run_dir: str | Path) -> bool | None:
    """Whether a process holds ``run_dir``'s lock now (``None``: the folder has no lock file, or it cannot be read).

    A copy of a live run's folder has the live run's state in its journal but no process holding it."""
    try:
        fd = os.open(Path(run_dir) / LOCK_NAME, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released at once: only to ask
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
        since = time.strftime("%H:%M:%S", time.localtime(float(info["since"])))
        host = "" if info.get("host") == socket.gethostname() else f" on {info.get('host', '?')}"
        return f"process {int(info['pid'])}{host} ({str(info.get('command', ''))[:160]}, since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
