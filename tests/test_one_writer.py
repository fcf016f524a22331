"""One writer per run folder, nothing deleted that evonas did not write, nothing re-run in silence, and signals
that leave ``best.json`` consistent with the journal."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import toy_experiment
from evonas.cli import main

SLOW = {"name": "toy", "params": {"sleep": 0.05}}


def _default_signals() -> None:
    # a test suite started in the background runs with SIGINT ignored, and that survives exec
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


def evonas(*args: str, workers: str = "0") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "evonas", *args, "--quiet", "--workers", workers],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)  # fmt: skip


def rows(run_dir: Path) -> list[tuple]:
    db = sqlite3.connect(f"file:{run_dir / 'journal.sqlite'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT trial, seq, key, status, fitness FROM evaluations ORDER BY seq").fetchall()
    finally:
        db.close()


def wait_rows(run_dir: Path, n: int, proc: subprocess.Popen, limit: float = 60) -> None:
    deadline = time.time() + limit
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.stderr.read() if proc.stderr else ''}")
        if (run_dir / "journal.sqlite").exists():
            try:
                if len(rows(run_dir)) >= n:
                    return
            except sqlite3.DatabaseError:
                pass
        time.sleep(0.02)
    raise AssertionError(f"no {n} rows within {limit} s")


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("evonas: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def best_matches_journal(run_dir: Path) -> None:
    """``best.json`` names the best successful full row of the journal (higher fitness is better here)."""
    ok = [(json.loads(f)[0], k, t) for t, _, k, s, f in rows(run_dir) if s == "ok" and f]
    best = json.loads((run_dir / "best.json").read_text())
    top = max(v for v, _, _ in ok)
    assert best["fitness"][0] == pytest.approx(top)
    assert best["key"] in {k for v, k, _ in ok if v == top}


# -- one writer ------------------------------------------------------------------------------------------------------


def test_a_second_writer_gets_one_line_and_exit_2_and_a_killed_writer_leaves_no_lock(write_experiment, tmp_path):
    cfg = write_experiment(toy_experiment(fitness=SLOW, strategy={"name": "ga", "params": {"population_size": 8, "generations": 40}}))
    out = tmp_path / "run"
    first = evonas("run", str(cfg), "--out", str(out))
    try:
        wait_rows(out, 3, first)
        for args in (("resume", str(out)), ("run", str(cfg), "--out", str(out), "--overwrite")):
            second = subprocess.run([sys.executable, "-m", "evonas", *args, "--quiet"], capture_output=True, text=True)
            assert second.returncode == 2, second.stderr
            line = one_line(second.stderr)
            assert f"in use by process {first.pid}" in line and "evonas run" in line, line
        assert first.poll() is None  # the first writer goes on
        before = rows(out)
        assert [r[1] for r in before] == list(range(len(before)))  # its journal is intact
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (out / "run.lock").exists()  # the file stays; the OS released the lock with the process
    budget = len(rows(out)) + 3
    done = subprocess.run([sys.executable, "-m", "evonas", "resume", str(out), "--quiet", "--budget", str(budget)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(rows(out)) == budget


def test_the_lock_is_held_in_process_and_released_after(write_experiment, tmp_path):
    from evonas.config import load_experiment
    from evonas.engine.runner import Run
    from evonas.runfolder import RunLocked, RunLock

    out = tmp_path / "run"
    seen = []

    def on_result(rec):  # while the run writes, nobody else may take the lock
        if not seen:
            with pytest.raises(RunLocked, match=f"in use by process {os.getpid()}"):
                RunLock(out).acquire()
        seen.append(rec)

    Run(load_experiment(write_experiment(toy_experiment())), out, progress=False, on_result=on_result).execute()
    assert seen
    RunLock(out).acquire().release()  # free again


# -- --overwrite ----------------------------------------------------------------------------------------------------


def test_overwrite_refuses_a_folder_with_other_files_and_deletes_nothing(write_experiment, tmp_path, capsys):
    cfg = write_experiment(toy_experiment())
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "journal.sqlite").write_bytes(b"")
    (folder / "thesis.tex").write_text("\\documentclass{article}")
    (folder / "figures").mkdir()
    before = sorted(p.name for p in folder.iterdir())
    assert main(["run", str(cfg), "--out", str(folder), "--overwrite", "--quiet"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "thesis.tex" in line and "refusing to overwrite" in line
    assert sorted(p.name for p in folder.iterdir()) == before
    assert (folder / "thesis.tex").read_text() == "\\documentclass{article}"


@pytest.mark.parametrize("mine", ["plots/mine.png", "export/notes.txt", "plots/sub/x.png",
                                  "journal.sqlite.damaged-mybackup", ".best.json.bak.tmp"])
def test_overwrite_refuses_your_files_inside_plots_and_export_and_a_set_aside_journal(mine, write_experiment, tmp_path, capsys):
    cfg = write_experiment(toy_experiment())
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    (out / mine).parent.mkdir(parents=True, exist_ok=True)
    (out / mine).write_text("mine")
    capsys.readouterr()
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--overwrite"]) == 2
    line = one_line(capsys.readouterr().err)
    assert mine.split("/")[0] in line and "refusing to overwrite" in line, line
    assert (out / mine).read_text() == "mine" and (out / "journal.sqlite").exists()


def test_overwrite_replaces_a_run_folder_evonas_made(write_experiment, tmp_path, capsys):
    cfg = write_experiment(toy_experiment())
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    (out / "report.html").write_text("<html></html>")
    first = rows(out)
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--overwrite"]) == 0
    capsys.readouterr()
    assert rows(out) == first and not (out / "report.html").exists()


def test_overwrite_of_a_symlink_is_one_line(write_experiment, tmp_path, capsys):
    cfg = write_experiment(toy_experiment())
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    (tmp_path / "link").symlink_to(target)
    assert main(["run", str(cfg), "--out", str(tmp_path / "link"), "--overwrite", "--quiet"]) == 2
    assert "symbolic link" in one_line(capsys.readouterr().err)
    assert (target / "keep.txt").read_text() == "mine"


# -- nothing re-run in silence ----------------------------------------------------------------------------------------


@pytest.fixture
def finished(write_experiment, tmp_path) -> Path:
    out = tmp_path / "done"
    cfg = write_experiment(toy_experiment())
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    return out


def _files(run_dir: Path) -> dict[str, bytes]:
    """The folder's files but the lock and SQLite's shared-memory index (a reader may create it)."""
    out = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name not in ("run.lock", "journal.sqlite-shm")}
    if not out.get("journal.sqlite-wal", b"x"):
        del out["journal.sqlite-wal"]  # an empty WAL a reader opened holds nothing
    return out


def _refused(run_dir: Path, capsys, *extra: str) -> str:
    before = _files(run_dir)
    assert main(["resume", str(run_dir), "--quiet", *extra]) == 2
    line = one_line(capsys.readouterr().err)
    assert _files(run_dir) == before  # nothing was re-run or rewritten
    return line


def test_resume_refuses_an_empty_journal(finished, capsys):
    capsys.readouterr()
    (finished / "journal.sqlite").write_bytes(b"")
    line = _refused(finished, capsys)
    assert "empty (0 bytes)" in line and "--restart" in line


def test_resume_refuses_a_hard_linked_journal(finished, tmp_path, capsys):
    capsys.readouterr()
    os.link(finished / "journal.sqlite", tmp_path / "outside.sqlite")
    before = (tmp_path / "outside.sqlite").read_bytes()
    assert "2 hard links" in _refused(finished, capsys)
    assert (tmp_path / "outside.sqlite").read_bytes() == before


def test_resume_refuses_a_garbage_journal(finished, capsys):
    capsys.readouterr()
    (finished / "journal.sqlite").write_bytes(b"this is not a database" * 50)
    assert "not an SQLite database" in _refused(finished, capsys)


def test_resume_refuses_a_journal_with_a_missing_row(finished, capsys):
    capsys.readouterr()
    with sqlite3.connect(finished / "journal.sqlite") as db:
        db.execute("DELETE FROM evaluations WHERE seq = 7")
    line = _refused(finished, capsys)
    assert "1 rows are missing" in line and "7" in line


def killed_after_5_rows(write_experiment, tmp_path) -> Path:
    """The folder of a slow run SIGKILLed once its journal holds 5 rows."""
    cfg = write_experiment(toy_experiment(fitness=SLOW, strategy={"name": "ga", "params": {"population_size": 8, "generations": 40}}))
    out = tmp_path / "killed"
    proc = evonas("run", str(cfg), "--out", str(out))
    try:
        wait_rows(out, 5, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return out


def test_resume_refuses_a_journal_copied_without_its_wal(write_experiment, tmp_path, capsys):
    out = killed_after_5_rows(write_experiment, tmp_path)
    assert (out / "journal.sqlite-wal").stat().st_size > 0  # the rows are in the WAL
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("journal.sqlite", "config.yaml"):
        shutil.copy(out / name, copy / name)
    line = _refused(copy, capsys)
    assert "journal.sqlite-wal is missing" in line and "Copy journal.sqlite-wal" in line
    assert main(["status", str(copy)]) == 1  # the status (of what few rows the file holds) says it too
    assert capsys.readouterr().err.startswith("evonas: status: a resume would refuse this journal: ")
    for command in (["best"], ["show", "0"]):  # what reads it says the rows may be incomplete, then shows what it has
        main([command[0], str(copy), *command[1:]])
        err = capsys.readouterr().err
        assert "journal.sqlite-wal is missing" in err and "what follows is what the journal itself holds" in err, err
    # with the WAL copied too, the resume goes on from where the run was killed
    shutil.copy(out / "journal.sqlite-wal", copy / "journal.sqlite-wal")
    assert "is below that" in _refused(copy, capsys, "--budget", "3")  # a refusal leaves it resumable
    assert (copy / "journal.sqlite-wal").stat().st_size > 0
    assert main(["resume", str(copy), "--quiet", "--budget", "12"]) == 0
    assert len(rows(copy)) == 12


def test_a_killed_run_resumes_after_a_reader_checkpointed_its_wal(write_experiment, tmp_path, capsys):
    # sqlite3's last connection to a WAL journal checkpoints the -wal into the file and deletes it: every row is
    # then in the file, and the row count the run noted in run.lock lets the resume go on (a copy without the
    # -wal, run.lock included, still holds fewer rows than noted and is refused)
    out = killed_after_5_rows(write_experiment, tmp_path)
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("journal.sqlite", "config.yaml", "run.lock"):
        shutil.copy(out / name, copy / name)
    line = _refused(copy, capsys)
    assert "journal.sqlite-wal is missing (it holds" in line and "rows its run wrote" in line
    with sqlite3.connect(out / "journal.sqlite") as db:  # a plain reader, as a user's sqlite3 shell
        killed = db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    db.close()
    assert killed >= 5 and not (out / "journal.sqlite-wal").exists()
    assert main(["resume", str(out), "--quiet", "--budget", "12"]) == 0
    assert len(rows(out)) == 12


def test_restart_sets_the_damaged_journal_aside_and_starts_over(finished, capsys):
    capsys.readouterr()
    (finished / "journal.sqlite").write_bytes(b"")
    assert main(["resume", str(finished), "--quiet", "--restart"]) == 0
    err = capsys.readouterr().err
    assert "set aside as journal.sqlite.set-aside-" in err
    aside = [p for p in finished.iterdir() if p.name.startswith("journal.sqlite.set-aside-") and p.name[-4:] not in ("-wal", "-shm")]
    assert len(aside) == 1 and aside[0].stat().st_size == 0
    assert len(rows(finished)) > 0 and (finished / "best.json").exists()


def test_a_damaged_config_meta_row_is_rebuilt_and_a_damaged_slots_row_is_named(finished, capsys):
    capsys.readouterr()
    expected = rows(finished)
    with sqlite3.connect(finished / "journal.sqlite") as db:
        db.execute("UPDATE meta SET value = '{not json' WHERE name = 'config'")
    assert main(["resume", str(finished), "--quiet"]) == 0  # the experiment comes from config.yaml
    capsys.readouterr()
    assert rows(finished) == expected
    with sqlite3.connect(finished / "journal.sqlite") as db:
        assert json.loads(db.execute("SELECT value FROM meta WHERE name = 'config'").fetchone()[0])["name"] == "toy"
        db.execute("UPDATE meta SET value = '[[0,' WHERE name = 'slots'")
    assert "meta entry 'slots'" in _refused(finished, capsys)


def test_resume_refuses_a_budget_or_generations_below_what_is_done(finished, capsys):
    capsys.readouterr()
    done = len(rows(finished))
    line = _refused(finished, capsys, "--budget", "5")
    assert f"has done {done} evaluations" in line and "--budget 5" in line
    line = _refused(finished, capsys, "--generations", "1")
    assert "reached generation 3" in line
    assert main(["status", str(finished)]) == 0
    assert f"{done}/" in capsys.readouterr().out


# -- signals --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT])
def test_sighup_and_sigquit_stop_like_sigterm(sig, write_experiment, tmp_path):
    cfg = write_experiment(toy_experiment(fitness=SLOW, strategy={"name": "ga", "params": {"population_size": 8, "generations": 40}}))
    out = tmp_path / "run"
    proc = evonas("run", str(cfg), "--out", str(out))
    wait_rows(out, 4, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume with: evonas resume" in err and "Traceback" not in err
    best_matches_journal(out)


def test_only_a_runs_first_signal_stops_it_and_the_later_ones_wait_for_the_final_writes(capsys) -> None:
    """The race the test below can lose on a loaded machine, made certain: a second signal that comes while the
    first one's KeyboardInterrupt unwinds the loop (before the final writes begin) must not raise again."""
    from evonas.engine.runner import _DeferSignals

    before = signal.getsignal(signal.SIGINT)
    shutdown = _DeferSignals()
    shutdown.arm()
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler runs in this thread, at once
        os.kill(os.getpid(), signal.SIGINT)  # unwinding: noted, not raised
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        shutdown.start()
        os.kill(os.getpid(), signal.SIGINT)  # the final writes: noted
        time.sleep(0.05)
    finally:
        assert shutdown.stop()
    assert signal.getsignal(signal.SIGINT) is before
    assert capsys.readouterr().err == "evonas: stopping: writing best.json and the logbook first\n"


def test_a_second_ctrl_c_during_shutdown_still_leaves_best_json(write_experiment, tmp_path):
    """Ctrl-C twice (the second while the run stops its workers and writes its files, 0 to 40 ms after the
    first): three runs, three consistent ``best.json``, no traceback."""
    cfg = write_experiment(toy_experiment(fitness=SLOW, strategy={"name": "ga", "params": {"population_size": 8, "generations": 40}}))
    for i in range(3):
        out = tmp_path / f"run{i}"
        proc = evonas("run", str(cfg), "--out", str(out), workers="1")
        wait_rows(out, 3 + i, proc)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02 * i)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        best_matches_journal(out)


def test_a_journal_sqlite_cannot_open_on_a_full_disk_is_not_called_damaged(write_experiment, tmp_path, capsys,
                                                                            monkeypatch):  # fmt: skip
    """SQLite says "disk I/O error" where it cannot make its -shm file: on a full disk that is said, not damage."""
    import os as _os

    from evonas import runfolder

    out = killed_after_5_rows(write_experiment, tmp_path)  # its -wal is there: read through SQLite's WAL

    def failing(*args, **kwargs):
        raise sqlite3.DatabaseError("disk I/O error")

    monkeypatch.setattr(runfolder.sqlite3, "connect", failing)
    monkeypatch.setattr(runfolder, "_private_copy", failing)
    assert main(["resume", str(out), "--quiet"]) == 2
    assert "not a readable evonas journal (disk I/O error)" in capsys.readouterr().err  # (room on this disk)
    full = _os.statvfs_result((4096, 4096, 1000, 0, 0, 1000, 0, 0, 0, 255))
    monkeypatch.setattr(runfolder.os, "statvfs", lambda path: full)
    assert main(["resume", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "cannot open the journal (disk I/O error); the disk holding" in err and "is full (0 KiB free)" in err, err
    assert "the journal is not damaged; free some space" in err


def test_a_ctrl_c_while_a_finished_run_writes_its_results_says_it_had_finished(write_experiment, tmp_path, capsys,
                                                                              monkeypatch):  # fmt: skip
    """The signal waits for best.json; the run had finished, so the message says so, not "resume with" (exit 130)."""
    from evonas.engine import outputs

    real = outputs.write_results

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # held until the final writes are done
        return real(*args, **kwargs)

    monkeypatch.setattr(outputs, "write_results", signalled)
    out = tmp_path / "run"
    assert main(["run", str(write_experiment(toy_experiment())), "--out", str(out), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert f"interrupted after the run had finished: its results are written, its plots are not (draw them with: " \
           f"evonas plot {out})" in err and "resume with" not in err, err
    best_matches_journal(out)
