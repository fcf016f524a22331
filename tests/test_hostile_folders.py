"""Hostile and damaged run folders (issue 14): the reading commands never run code from a folder, never write
outside it, and answer damage with one line instead of a traceback.

One small real run is made once; each case copies it into ``tmp_path``, damages or booby-traps the copy, and runs
``status``, ``best``, ``plot``, ``report`` and ``export`` on it in this process (``EVONAS_DEBUG=1``: an exception
that escapes to ``cli.main``'s last net fails the test instead of being printed). Every copy also names a planted
plug-in (``plugins: [evilmod]`` in ``config.yaml`` and in the journal's copy, ``evilmod.py`` next to them) that
would write a marker file when imported; the commands run from inside the folder (its own working directory), and
a folder ``outside`` holds the targets of the links (a SQLite file, a png, a config, a report): its files' hashes
must not change and the marker must never appear. The reading commands (all but ``export``) leave the folder itself
as it was, links included: ``plot`` and ``report`` write next to it (``run-plots/``, ``run-report.html``), and every
test runs in its own ``tmp_path`` (nothing is written in the directory pytest was started from).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Callable

import pytest
import yaml

from evonas.cli import main

COMMANDS = ("status", "best", "plot", "report", "export")

EVIL = """from pathlib import Path
Path({marker!r}).write_text("imported")
"""

PLUGDATA = """from pathlib import Path
from evonas.datasets import DATASETS
Path({marker!r}).write_text("imported")
DATASETS.register("plugdigits")(DATASETS.get("digits"))
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run that trains (so that `export` has something to retrain): GA on digits, two generations; made
    by `evonas run`, which draws ``plots/`` (the Python API does not), so that the cases have plots to link out."""
    tmp = tmp_path_factory.mktemp("hostile")
    exp = {
        "name": "small", "seed": 0, "budget": 8, "workers": 0, "cache": False,
        "space": {"name": "chain", "params": {"max_layers": 2, "widths": [8, 16]}},
        "dataset": {"name": "digits", "params": {"val_fraction": 0.2, "test_fraction": 0.2}},
        "fitness": {"name": "train", "params": {"epochs": 1, "max_train_samples": 300}},
        "strategy": {"name": "ga", "params": {"population_size": 4, "generations": 1}},
    }  # fmt: skip
    (tmp / "small.yaml").write_text(yaml.safe_dump(exp))
    run = tmp / "run"
    assert main(["run", str(tmp / "small.yaml"), "--out", str(run), "--quiet"]) == 0
    _sql(run / "journal.sqlite")  # everything in the main file: a copy is self-contained
    (run / "run.lock").unlink(missing_ok=True)
    assert (run / "logbook.json").is_file() and (run / "best.json").is_file()
    assert (run / "plots" / "fitness.png").is_file() and (run / "plots" / "diagnostics.png").is_file()
    return run


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _state(folder: Path) -> dict[str, str]:
    """Every entry of ``folder``, links not followed: a link by its target, a file by its hash, a folder as such."""
    state = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root, name)
            rel = str(p.relative_to(folder))
            if p.is_symlink():
                state[rel] = f"-> {os.readlink(p)}"
            elif p.is_dir():
                state[rel] = "folder"
            else:
                state[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return state


def _set_meta_config(journal: Path, change: Callable[[dict], None]) -> None:
    (value,) = _sql(journal, "SELECT value FROM meta WHERE name = 'config'")[0]
    config = json.loads(value)
    change(config)
    _sql(journal, f"UPDATE meta SET value = '{json.dumps(config)}' WHERE name = 'config'")


def _sql(journal: Path, *statements: str) -> list[tuple]:
    """Run ``statements`` on the journal and leave it whole in its main file, as a finished run leaves it."""
    db = sqlite3.connect(journal)
    try:
        with db:
            rows = [row for s in statements for row in db.execute(s).fetchall()]
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    for side in ("-wal", "-shm"):
        Path(f"{journal}{side}").unlink(missing_ok=True)
    return rows


class Folder:
    """A copy of the base run in ``tmp/run`` with a planted plug-in, and ``tmp/outside`` with link targets."""

    def __init__(self, base: Path, tmp: Path) -> None:
        self.dir, self.outside = tmp / "run", tmp / "outside"
        shutil.copytree(base, self.dir)
        self.outside.mkdir()
        self.marker = self.outside / "MARKER"
        (self.dir / "evilmod.py").write_text(EVIL.format(marker=str(self.marker)))
        config = yaml.safe_load((self.dir / "config.yaml").read_text())
        config["plugins"] = ["evilmod"]
        (self.dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        _set_meta_config(self.journal, lambda c: c.update(plugins=["evilmod"]))
        # the targets a link in the folder could lead to
        shutil.copy(self.journal, self.outside / "other.sqlite")
        (self.outside / "plots").mkdir()
        (self.outside / "plots" / "fitness.png").write_bytes(b"\x89PNG not really")
        (self.outside / "export").mkdir()
        (self.outside / "export" / "model.pt").write_bytes(b"someone's model")
        (self.outside / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        (self.outside / "report.html").write_text("<p>someone's report</p>")
        (self.outside / "logbook.json").write_text("[]")

    @property
    def journal(self) -> Path:
        return self.dir / "journal.sqlite"

    def link(self, name: str, target: str) -> None:
        path = self.dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        path.symlink_to(self.outside / target)


# -- the cases: what each does to the folder, and which commands must cope (exit 0) rather than refuse -------------


def garbage_journal(f: Folder) -> None:
    f.journal.write_bytes(os.urandom(4096) * 3)


def truncated_journal(f: Folder) -> None:
    data = f.journal.read_bytes()
    f.journal.write_bytes(data[: len(data) // 3])


def empty_journal(f: Folder) -> None:
    f.journal.write_bytes(b"")


def header_only_journal(f: Folder) -> None:
    f.journal.write_bytes(f.journal.read_bytes()[:100])


def no_evaluations_table(f: Folder) -> None:
    _sql(f.journal, "DROP TABLE evaluations")


def leftover_wal(f: Folder) -> None:  # read through SQLite's WAL, as while a run goes on
    db = sqlite3.connect(f.journal)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('note', '\"in the WAL only\"')")
    db.commit()
    shutil.copy(f"{f.journal}-wal", f"{f.journal}-wal.copy")
    shutil.copy(f"{f.journal}-shm", f"{f.journal}-shm.copy")
    db.close()
    for side in ("-wal", "-shm"):
        os.replace(f"{f.journal}{side}.copy", f"{f.journal}{side}")


def damaged_config(f: Folder) -> None:  # falls back to the journal's copy
    (f.dir / "config.yaml").write_text("name: [unclosed\nspace: {name: chain\n")


def alias_bomb_config(f: Folder) -> None:  # "billion laughs": bounded YAML refuses it, the journal's copy is used
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
              for i in range(1, 10)]  # fmt: skip
    (f.dir / "config.yaml").write_text("\n".join(lines) + "\n")


def both_configs_damaged(f: Folder) -> None:
    damaged_config(f)
    _sql(f.journal, "UPDATE meta SET value = '{\"name\": [' WHERE name = 'config'")


def bad_rows(f: Folder) -> None:
    """Rows a reader cannot use: a fitness that is text, metrics and genome that are not JSON objects, a stamp that
    is text; each is skipped (and counted), the others still read."""
    trials = [t for (t,) in _sql(f.journal, "SELECT trial FROM evaluations WHERE status = 'ok' ORDER BY trial")]
    assert len(trials) >= 6
    _sql(
        f.journal,
        f"UPDATE evaluations SET fitness = '[\"abc\"]' WHERE trial = {trials[0]}",
        f"UPDATE evaluations SET fitness = '\"0.5\"' WHERE trial = {trials[1]}",
        f"UPDATE evaluations SET metrics = '{{broken' WHERE trial = {trials[2]}",
        f"UPDATE evaluations SET genome = '[1, 2]' WHERE trial = {trials[3]}",
        f"UPDATE evaluations SET finished_at = 'yesterday', wall_s = 'long', parents = '[[1]]' WHERE trial = {trials[4]}",
        f"UPDATE evaluations SET fitness = '[0.5' WHERE trial = {trials[5]}",
    )


def alien_genomes(f: Folder) -> None:  # readable JSON objects that do not fit the run's space
    _sql(f.journal, "UPDATE evaluations SET genome = '{\"alien\": [1, 2]}'")


def damaged_meta(f: Folder) -> None:
    _sql(f.journal, "UPDATE meta SET value = '{broken' WHERE name = 'live'",
         "UPDATE meta SET value = '[1, 2' WHERE name = 'config'")  # fmt: skip


def odd_meta(f: Folder) -> None:  # readable JSON of the wrong shapes
    live = {"pid": "me", "state": 7, "expected": "many", "started_at": "noon", "workers": [3, {"trial": [1], "since": "x"}]}
    _sql(f.journal, f"UPDATE meta SET value = '{json.dumps(live)}' WHERE name = 'live'",
         "UPDATE meta SET value = '{\"objectives\": 5, \"strategy\": 3, \"budget\": \"x\"}' WHERE name = 'config'")  # fmt: skip


def damaged_logbook(f: Folder) -> None:
    (f.dir / "logbook.json").write_text('[{"gen": "zero", "val_acc_max": "high"}, 7, {"gen": 1')


def journal_link_out(f: Folder) -> None:
    f.link("journal.sqlite", "other.sqlite")


def wal_link_out(f: Folder) -> None:
    f.link("journal.sqlite-shm", "other.sqlite")


def plots_link_out(f: Folder) -> None:  # never followed: plot and report write outside the run folder
    f.link("plots", "plots")


def png_link_out(f: Folder) -> None:
    f.link("plots/fitness.png", "plots/fitness.png")


def config_link_out(f: Folder) -> None:  # not followed: the journal's copy is used
    f.link("config.yaml", "config.yaml")


def logbook_link_out(f: Folder) -> None:
    f.link("logbook.json", "logbook.json")


def report_link_out(f: Folder) -> None:  # where the report went before it was written outside the run folder
    f.link("report.html", "report.html")


def export_link_out(f: Folder) -> None:
    f.link("export", "export")


def space_file_dev_zero(f: Folder) -> None:  # a declaration file that never ends: never read
    for path in (f.dir / "config.yaml",):
        config = yaml.safe_load(path.read_text())
        config["space"]["file"] = "/dev/zero"
        path.write_text(yaml.safe_dump(config))
    _set_meta_config(f.journal, lambda c: c["space"].update(file="/dev/zero"))


OK, FAIL = 0, 2
ALL_FAIL = dict.fromkeys(COMMANDS, FAIL)
ALL_OK = dict.fromkeys(COMMANDS, OK)
CASES: dict[str, tuple[Callable[[Folder], None], dict[str, int]]] = {
    "garbage_journal": (garbage_journal, {**ALL_FAIL, "plot": FAIL}),
    "truncated_journal": (truncated_journal, ALL_FAIL),
    "empty_journal": (empty_journal, ALL_FAIL),
    "header_only_journal": (header_only_journal, ALL_FAIL),
    "no_evaluations_table": (no_evaluations_table, ALL_FAIL),
    "damaged_config": (damaged_config, ALL_OK),
    "leftover_wal": (leftover_wal, ALL_OK),
    "alias_bomb_config": (alias_bomb_config, ALL_OK),
    "both_configs_damaged": (both_configs_damaged, {**ALL_FAIL, "status": OK, "best": OK}),
    "bad_rows": (bad_rows, ALL_OK),
    "alien_genomes": (alien_genomes, {**ALL_OK, "export": FAIL}),
    "damaged_meta": (damaged_meta, ALL_OK),
    "odd_meta": (odd_meta, ALL_OK),
    "damaged_logbook": (damaged_logbook, {**ALL_OK, "plot": FAIL}),
    "journal_link_out": (journal_link_out, ALL_FAIL),
    "wal_link_out": (wal_link_out, ALL_FAIL),
    "plots_link_out": (plots_link_out, ALL_OK),
    "png_link_out": (png_link_out, ALL_OK),
    "config_link_out": (config_link_out, ALL_OK),
    "logbook_link_out": (logbook_link_out, {**ALL_OK, "plot": FAIL}),
    "report_link_out": (report_link_out, ALL_OK),
    "export_link_out": (export_link_out, {**ALL_OK, "export": FAIL}),
    "space_file_dev_zero": (space_file_dev_zero, {**ALL_OK, "export": FAIL}),
}
#: export retrains a network: only where it must get that far (the others refuse before training)
EXPORT_TRAINS = {"damaged_config", "bad_rows"}


def _argv(command: str, folder: Path) -> list[str]:
    return [command, str(folder), *(["--epochs", "1", "--quiet"] if command == "export" else [])]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, [line for line in err.splitlines() if line.strip()], out + err


@pytest.fixture(autouse=True)
def _guard(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # plot and report write into the working directory: this test's, not the repository
    monkeypatch.setenv("EVONAS_DEBUG", "1")  # an exception reaching cli.main's last net is raised, not printed
    monkeypatch.setattr(sys, "path", list(sys.path))  # whatever a test imports leaves the import path as it was
    monkeypatch.delitem(sys.modules, "evilmod", raising=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_folder(case: str, base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    damage, expected = CASES[case]
    f = Folder(base, tmp_path)
    damage(f)
    before, folder = _hashes(f.outside), _state(f.dir)
    monkeypatch.chdir(f.dir)  # a planted module next to the working directory is not imported either
    for command in COMMANDS:
        if command == "export" and expected[command] == OK and case not in EXPORT_TRAINS:
            continue
        code, lines, text = _run(_argv(command, f.dir), capsys)
        where = f"{case}: evonas {command}: {lines}"
        assert "Traceback" not in text, where
        assert code == expected[command], where
        assert all(line.startswith("evonas:") for line in lines), where
        assert len(lines) <= 2, where  # the answer, and at most one warning (a fallback, damaged rows skipped)
        if code != OK:
            assert lines, where
        assert not f.marker.exists(), f"{where}: the planted plug-in ran"
        assert "evilmod" not in sys.modules, where
        assert str(f.dir) not in sys.path and "" not in sys.path[:1], where
        assert _hashes(f.outside) == before, f"{where}: a file outside the folder changed"
        if command != "export":
            assert _state(f.dir) == folder, f"{where}: a reader changed the run folder"
        if command == "plot" and code == OK:  # from inside the run folder: next to it
            assert (tmp_path / "run-plots" / "fitness.png").stat().st_size > 0, where
        if command == "report" and code == OK:
            assert (tmp_path / "run-report.html").is_file(), where


def test_outputs_of_a_coping_folder(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Damaged rows are skipped and said; the report and plots are still written, in the working directory (the
    run folder's own plots removed first: they are drawn anew, not copied)."""
    f = Folder(base, tmp_path)
    bad_rows(f)
    shutil.rmtree(f.dir / "plots")
    folder = _state(f.dir)
    code, lines, _ = _run(["report", str(f.dir)], capsys)
    assert code == 0 and any("6 damaged rows skipped" in line for line in lines), lines
    page = (tmp_path / "run-report.html").read_text()
    assert "Best genomes" in page and "The best network, decoded" in page
    assert 'alt="fitness.png"' in page and 'alt="diagnostics.png"' in page
    code, lines, text = _run(["best", str(f.dir)], capsys)
    assert code == 0 and text.count("damaged rows skipped") == 1
    code, lines, text = _run(["status", str(f.dir)], capsys)
    assert code == 0 and "best      val_acc=" in text
    assert _run(["plot", str(f.dir)], capsys)[0] == 0
    assert (tmp_path / "run-plots" / "fitness.png").is_file() and (tmp_path / "run-plots" / "diagnostics.png").is_file()
    assert _state(f.dir) == folder, "a reader changed the run folder"


def test_read_only_folder(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder nobody may write to is read: plot and report write into the working directory (``_guard``)."""
    f = Folder(base, tmp_path)
    for p in [f.dir, *f.dir.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        if os.access(f.dir, os.W_OK):
            pytest.skip("running as root: chmod does not stop writes, so a read-only folder cannot be made here")
        for command in ("status", "best"):
            code, lines, text = _run([command, str(f.dir)], capsys)
            assert code == 0 and "Traceback" not in text, (command, lines)
        for command in ("plot", "report"):
            code, lines, text = _run([command, str(f.dir)], capsys)
            assert code == 0 and "Traceback" not in text, (command, lines)
        assert (tmp_path / "run-plots" / "fitness.png").is_file() and (tmp_path / "run-report.html").is_file()
    finally:
        for p in [f.dir, *f.dir.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_trust_imports_the_folders_plugins_with_a_warning(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = Folder(base, tmp_path)
    code, lines, _ = _run(["report", str(f.dir)], capsys)
    assert code == 0 and not f.marker.exists()
    code, lines, _ = _run(["report", str(f.dir), "--trust"], capsys)
    assert code == 0 and f.marker.read_text() == "imported"
    assert any(line.startswith("evonas: --trust: importing the plug-ins") and "evilmod" in line for line in lines), lines


def test_plugins_by_path_are_imported(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = Folder(base, tmp_path)
    code, lines, _ = _run(["plot", str(f.dir), "--plugins", str(f.dir / "evilmod.py")], capsys)
    assert code == 0 and f.marker.read_text() == "imported", lines


def test_a_run_that_needs_its_plugin(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Its dataset comes from a plug-in: without it the report says which to pass, export refuses in one line
    naming it; ``--plugins FILE`` exports."""
    from evonas.datasets import DATASETS

    f = Folder(base, tmp_path)
    marker = f.outside / "PLUGDATA"
    (f.dir / "plugdata.py").write_text(PLUGDATA.format(marker=str(marker)))
    config = yaml.safe_load((f.dir / "config.yaml").read_text())
    config.update(plugins=["plugdata"], dataset={**config["dataset"], "name": "plugdigits"})
    (f.dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    _set_meta_config(f.journal, lambda c: c.update(plugins=["plugdata"], dataset={**c["dataset"], "name": "plugdigits"}))
    monkeypatch.delitem(sys.modules, "plugdata", raising=False)
    monkeypatch.setattr(DATASETS, "_items", dict(DATASETS._items))  # the plug-in's registration is undone after

    code, lines, _ = _run(["report", str(f.dir)], capsys)
    assert code == 0 and not marker.exists(), lines
    page = (tmp_path / "run-report.html").read_text()
    assert "unknown dataset &#x27;plugdigits&#x27;" in page and "--plugins plugdata" in page
    code, lines, _ = _run(_argv("export", f.dir), capsys)
    assert code == 2 and len(lines) == 1 and not marker.exists(), lines
    assert "plugdigits" in lines[0] and "--plugins plugdata" in lines[0] and "--trust" in lines[0]
    code, lines, text = _run([*_argv("export", f.dir), "--plugins", str(f.dir / "plugdata.py")], capsys)
    assert code == 0 and marker.exists() and "test_acc=" in text, lines
    assert (f.dir / "export" / "model.pt").is_file()


def test_the_files_a_running_run_writes_are_its_own(tmp_path: Path) -> None:
    """--overwrite of a folder a run is writing: its workers' crash-stack files and native.log.1 are evonas's (the
    lock, not 'files evonas did not write', is then what refuses it)."""
    from evonas.runfolder import foreign_entries

    for name in ("journal.sqlite", "native.log", "native.log.1", ".w0.crash", ".w12.crash", "run.lock"):
        (tmp_path / name).write_text("")
    assert foreign_entries(tmp_path) == []
    (tmp_path / ".wx.crash").write_text("")
    assert foreign_entries(tmp_path) == [".wx.crash"]
