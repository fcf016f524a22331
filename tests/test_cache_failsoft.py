"""The evaluation cache fails soft: a cache that cannot be used costs one warning line, never a run or a result.

Each test points ``EVONAS_CACHE`` at a file of its own in ``tmp_path`` and runs a small, training-free but
cacheable experiment (nb201 with the ``conv_count`` test fitness, in-process) through ``evonas run``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import toy_experiment

import evonas.engine.cache as cache_module
from evonas.cli import main
from evonas.engine.cache import EvaluationCache

WARNING = "evonas: warning: evaluation cache"


def experiment(**changes: Any) -> dict[str, Any]:
    """Cacheable (``conv_count`` keeps ``cacheable = True``) and cheap: 8 + 3 x 8 evaluations at most."""
    return toy_experiment(fitness={"name": "conv_count", "params": {"noise": 0.5}}, plugins=["conv_count_fitness"], **changes)


def run(write_experiment, tmp_path: Path, capsys, name: str, **changes: Any) -> tuple[int, list[str], Path]:
    """``evonas run`` in this process: (exit code, warning lines about the cache on stderr, run folder)."""
    path = write_experiment(experiment(**changes), name=name)
    out = tmp_path / f"run-{name}"
    capsys.readouterr()
    code = main(["run", str(path), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if "cache" in line], out


def journal(run_dir: Path) -> list[tuple]:
    """Every journal row without what differs between two equal runs (wall time, finish time, worker)."""
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        return db.execute(
            "SELECT trial, key, generation, origin, parents, genome, status, error, metrics, fitness, seed, cached,"
            " fidelity FROM evaluations ORDER BY trial"
        ).fetchall()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def cache_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache" / "evaluations.sqlite"
    path.parent.mkdir()
    monkeypatch.setenv("EVONAS_CACHE", str(path))
    return path


@pytest.fixture
def reference(write_experiment, tmp_path: Path, capsys) -> list[tuple]:
    """The journal of the same run with ``cache: false``."""
    code, warnings, out = run(write_experiment, tmp_path, capsys, "nocache", cache=False)
    assert code == 0 and warnings == []
    rows = journal(out)
    assert len(rows) >= 8 and all(r[6] == "ok" for r in rows)
    return rows


def a_good_cache_file(path: Path) -> bytes:
    """The bytes of a real cache file of another problem (so a damaged copy still looks like SQLite)."""
    other = path.parent / "other.sqlite"
    cache = EvaluationCache(other)
    for i in range(400):
        cache.put("another problem", f"key{i}", i, {"val_acc": i / 400, "pad": "x" * 100}, 1.0)
    cache.close()
    return other.read_bytes()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "header only"])
def test_a_corrupt_cache_file_costs_one_warning_and_nothing_else(
    write_experiment, tmp_path: Path, capsys, cache_path: Path, reference: list[tuple], damage: str
) -> None:
    good = a_good_cache_file(cache_path)
    data = {"garbage": os.urandom(3000) + b"not a database", "truncated": good[: len(good) // 3], "header only": good[:100]}
    cache_path.write_bytes(data[damage])
    before = digest(cache_path)
    code, warnings, out = run(write_experiment, tmp_path, capsys, "corrupt")
    assert code == 0
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"{WARNING} {cache_path} is unusable (")
    assert warnings[0].endswith("); this run goes on without it")
    assert journal(out) == reference  # the same search, every evaluation done (none from the cache)
    assert digest(cache_path) == before, "the damaged cache file was changed"


class _ReadOnlySqlite:
    """``sqlite3`` for the cache module whose ``connect`` opens files read-only: what a read-only file or
    folder gives a user who is not root (root may write to a file whatever its mode)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(sqlite3, name)

    @staticmethod
    def connect(path: str, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        return sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", *args, uri=True, **kwargs)


def read_only(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``path`` (file or folder) read-only, also for root."""
    path.chmod(0o555 if path.is_dir() else 0o444)
    probe = path / "probe" if path.is_dir() else path
    try:
        with open(probe, "a"):
            pass
        writable = True
    except OSError:
        writable = False
    if writable:  # root: the mode does not bite, open the cache read-only instead
        if probe != path:
            probe.unlink()
        monkeypatch.setattr(cache_module, "sqlite3", _ReadOnlySqlite())


@pytest.fixture
def restore_modes(cache_path: Path):
    yield
    for p in (cache_path.parent, cache_path):
        if p.exists():
            p.chmod(0o755 if p.is_dir() else 0o644)  # let pytest clean tmp_path up


def test_a_read_only_cache_file(
    write_experiment, tmp_path: Path, capsys, cache_path: Path, reference: list[tuple], monkeypatch, restore_modes
) -> None:
    cache_path.write_bytes(a_good_cache_file(cache_path))
    before = digest(cache_path)
    read_only(cache_path, monkeypatch)
    code, warnings, out = run(write_experiment, tmp_path, capsys, "readonly")
    assert code == 0
    assert len(warnings) == 1 and "readonly database" in warnings[0], warnings
    assert journal(out) == reference  # every result journalled, even those trained before the first failed write
    assert digest(cache_path) == before


def test_a_read_only_cache_folder(
    write_experiment, tmp_path: Path, capsys, cache_path: Path, reference: list[tuple], monkeypatch, restore_modes
) -> None:
    read_only(cache_path.parent, monkeypatch)
    code, warnings, out = run(write_experiment, tmp_path, capsys, "readonly-folder")
    assert code == 0 and len(warnings) == 1, warnings
    assert journal(out) == reference
    assert not cache_path.exists()


def test_a_folder_at_the_cache_path(write_experiment, tmp_path: Path, capsys, cache_path: Path, reference: list[tuple]) -> None:
    cache_path.mkdir()
    code, warnings, out = run(write_experiment, tmp_path, capsys, "folder")
    assert code == 0
    assert warnings == [f"{WARNING} {cache_path} is unusable (unable to open database file); this run goes on without it"]
    assert journal(out) == reference
    assert cache_path.is_dir() and not any(cache_path.iterdir())


@pytest.mark.parametrize("error", [sqlite3.OperationalError("database or disk is full"), OSError(28, "No space left on device")])
def test_a_failing_cache_write_loses_no_result(
    write_experiment, tmp_path: Path, capsys, cache_path: Path, reference: list[tuple], monkeypatch, error: Exception
) -> None:
    writes: list[str] = []

    def full(self, problem, key, seed, metrics, wall_s):
        writes.append(key)
        raise error

    monkeypatch.setattr(EvaluationCache, "put", full)
    code, warnings, out = run(write_experiment, tmp_path, capsys, "full")
    assert code == 0
    assert len(warnings) == 1 and str(error) in warnings[0], warnings
    assert journal(out) == reference  # every trained result is in the journal
    assert len(writes) == 1  # the first failure turns the cache off: no write is tried again


def test_a_result_is_journalled_before_it_is_cached(write_experiment, tmp_path: Path, capsys, cache_path: Path, monkeypatch) -> None:
    out = tmp_path / "run-order"
    real = EvaluationCache.put
    seen: list[tuple[str, bool]] = []

    def put(self, problem, key, seed, metrics, wall_s):
        with sqlite3.connect(out / "journal.sqlite") as db:
            seen.append((key, db.execute("SELECT COUNT(*) FROM evaluations WHERE key = ?", (key,)).fetchone()[0] == 1))
        return real(self, problem, key, seed, metrics, wall_s)

    monkeypatch.setattr(EvaluationCache, "put", put)
    path = write_experiment(experiment(), name="order")
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    assert "cache" not in capsys.readouterr().err
    assert seen and all(journalled for _, journalled in seen), seen
    assert len(EvaluationCache(cache_path)) == len(seen) == len(journal(out))  # every training cached, once
    # and a healthy cache still serves a second run entirely
    assert main(["run", str(path), "--out", str(tmp_path / "again"), "--quiet"]) == 0
    rows = journal(tmp_path / "again")
    assert rows and all(r[11] == 1 for r in rows)
    assert [r[1] for r in rows] == [r[1] for r in journal(out)]
    assert [json.loads(r[8]) for r in rows] == [json.loads(r[8]) for r in journal(out)]
