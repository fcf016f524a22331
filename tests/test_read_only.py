"""The reading commands (``status``, ``best``, ``plot``, ``report``) leave every byte of a run folder as it was, and a
run folder says which evonas wrote it: one from an older evonas reads as before, one in a newer journal format is
refused in one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, toy_experiment
from evonas import __version__
from evonas.cli import main
from evonas.engine.journal import JOURNAL_FORMAT
from evonas.runfolder import RunFolder

READERS = ("status", "best", "plot", "report")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small finished toy run (with its end-of-run plots)."""
    import yaml

    tmp = tmp_path_factory.mktemp("readonly")
    (tmp / "toy.yaml").write_text(yaml.safe_dump(toy_experiment()))
    assert main(["run", str(tmp / "toy.yaml"), "--out", str(tmp / "run"), "--quiet"]) == 0
    assert (tmp / "run" / "plots" / "fitness.png").is_file()
    return tmp / "run"


@pytest.fixture
def run(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the base run in ``tmp_path/run``; the working directory is ``tmp_path/work``, outside it."""
    shutil.copytree(base, tmp_path / "run")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "run"


def _state(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder``: a file's sha256, size and modification time; a folder's presence."""
    out: dict[str, tuple] = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(folder))] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns)
        else:
            out[str(p.relative_to(folder))] = ("entry", st.st_mode)
    return out


def _sql(journal: Path, *statements: str) -> None:
    """Run ``statements`` on the journal and leave it whole in its main file, as a finished run leaves it."""
    db = sqlite3.connect(journal)
    try:
        with db:
            for s in statements:
                db.execute(s)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    for side in ("-wal", "-shm"):
        Path(f"{journal}{side}").unlink(missing_ok=True)


def test_the_reading_commands_change_no_byte_of_a_run_folder(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _state(run)
    for command in READERS:
        assert main([command, str(run)]) == 0, (command, capsys.readouterr().err)
        assert _state(run) == before, f"evonas {command} changed the run folder"
    # export-optuna reads the run folder and writes only the storage it is given, outside it
    assert main(["export-optuna", str(run), "--storage", f"sqlite:///{run.parent / 'work' / 'study.db'}"]) == 0
    assert _state(run) == before, "evonas export-optuna changed the run folder"
    capsys.readouterr()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "evonas", "report", str(run), "--out", "again.html"],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _state(run) == before, "evonas report (a process of its own) changed the run folder"
    # what they wrote is in the working directory, named after the run
    work = Path.cwd()
    assert {"fitness.png", "diagnostics.png"} <= {p.name for p in (work / "run-plots").iterdir()}
    assert (work / "run-report.html").read_text().count("<img ") >= 2 and (work / "again.html").is_file()


def test_a_wal_left_by_a_run_is_read_and_left_as_it_was(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A -wal and -shm that no run holds (a run killed, a folder copied while it ran): its rows are read, and
    neither file (nor the journal) changes; nothing is left next to them."""
    journal = run / "journal.sqlite"
    db = sqlite3.connect(journal)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('note', '\"in the WAL only\"')")
    db.commit()
    for side in ("-wal", "-shm"):  # copies taken while the connection is open: what a killed run leaves
        shutil.copy(f"{journal}{side}", f"{journal}{side}.copy")
    db.close()
    for side in ("-wal", "-shm"):
        os.replace(f"{journal}{side}.copy", f"{journal}{side}")
    before = _state(run)
    assert RunFolder(run).meta()["note"] == "in the WAL only"
    for command in READERS:
        assert main([command, str(run)]) == 0, (command, capsys.readouterr().err)
        assert _state(run) == before, f"evonas {command} changed the run folder"
    assert main(["export-optuna", str(run), "--storage", f"sqlite:///{run.parent / 'study.db'}"]) == 0
    assert _state(run) == before, "evonas export-optuna changed the run folder"


def test_a_run_folder_says_which_evonas_wrote_it(base: Path) -> None:
    db = sqlite3.connect(f"file:{base / 'journal.sqlite'}?mode=ro&immutable=1", uri=True)
    meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
    db.close()
    assert json.loads(meta["evonas_version"]) == __version__ and json.loads(meta["journal_format"]) == JOURNAL_FORMAT


def test_a_folder_from_an_older_evonas_reads_and_resumes(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _sql(run / "journal.sqlite", "DELETE FROM meta WHERE name IN ('evonas_version', 'journal_format')")
    for command in READERS:
        assert main([command, str(run)]) == 0, (command, capsys.readouterr().err)
    capsys.readouterr()
    assert main(["resume", str(run), "--generations", "4", "--quiet"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("command", [*READERS, "resume", "export"])
def test_a_folder_in_a_newer_format_is_refused_in_one_line(run: Path, command: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    newer = JOURNAL_FORMAT + 1
    _sql(run / "journal.sqlite", f"UPDATE meta SET value = '{newer}' WHERE name = 'journal_format'",
         "UPDATE meta SET value = '\"9.9.9\"' WHERE name = 'evonas_version'")  # fmt: skip
    before = _state(run)
    assert main([command, str(run)]) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and err.count("\n") == 1, err
    assert err.startswith("evonas: ") and err.rstrip().endswith(
        f"{run}: written by evonas 9.9.9 (journal format {newer}); this evonas ({__version__}) reads formats up to "
        f"{JOURNAL_FORMAT}: upgrade evonas"
    ), err
    assert _state(run) == before
