"""Runs survive anything: SIGKILL at random moments, damaged files, extension of finished runs."""

from __future__ import annotations

import json
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, toy_experiment
from evonas.config import load_experiment
from evonas.engine.runner import Run


def rows(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        return db.execute("SELECT trial, key, status, metrics FROM evaluations ORDER BY trial").fetchall()


def outcome(run_dir: Path) -> dict:
    return {
        "journal": [(t, k, s) for t, k, s, _ in rows(run_dir)],
        **{name: json.loads((run_dir / name).read_text()) for name in ("best.json", "population.json", "hall_of_fame.json")},
    }


def _default_sigint() -> None:
    # A test suite started in the background (`cmd &` in a script) runs with SIGINT ignored, and an ignored
    # signal stays ignored across exec: give the run the default disposition, as a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def evonas(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "evonas", *args, "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, preexec_fn=_default_sigint)  # fmt: skip


def test_sigkill_at_ten_random_moments_then_resume(write_experiment, tmp_path: Path) -> None:
    """Kill -9 the run ten times at random moments; each resume continues; the end equals the uninterrupted run."""
    exp = toy_experiment(
        fitness={"name": "toy", "params": {"sleep": 0.025}},
        strategy={"name": "ga", "params": {"population_size": 10, "generations": 30}},
    )
    cfg = write_experiment(exp)
    reference = tmp_path / "reference"
    Run(load_experiment(cfg), reference, progress=False).execute()
    expected = outcome(reference)

    out = tmp_path / "killed"
    rng = random.Random(20261128)
    seen_counts = []
    for i in range(10):
        before = len(rows(out)) if (out / "journal.sqlite").exists() else 0
        proc = evonas("run", str(cfg), "--out", str(out)) if i == 0 else evonas("resume", str(out))
        if i % 2:  # anywhere in start-up, replay or the first new evaluations
            time.sleep(rng.uniform(0.2, 1.5))
        else:  # after a few new evaluations: the kill lands between, or in the middle of, journal writes
            wanted = before + rng.randint(1, 12)
            deadline = time.time() + 60
            while time.time() < deadline and proc.poll() is None and not (
                (out / "journal.sqlite").exists() and len(rows(out)) >= wanted
            ):
                time.sleep(0.005)
        assert proc.poll() is None, f"kill {i} came after the run had ended: the test must kill it mid-run"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen_counts.append(len(rows(out)) if (out / "journal.sqlite").exists() else 0)
    assert seen_counts[-1] < len(expected["journal"]), seen_counts  # the tenth kill still interrupted the run
    final = subprocess.run([sys.executable, "-m", "evonas", "resume", str(out), "--quiet"], capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    got = outcome(out)
    assert got["journal"] == expected["journal"]  # zero lost, zero repeated, same order
    assert len({k for _, k, _ in got["journal"]}) == len(got["journal"])
    for name in ("best.json", "population.json", "hall_of_fame.json"):
        assert got[name] == expected[name], name
    assert len(set(seen_counts)) >= 3, seen_counts  # the kills really landed at different points


def test_ctrl_c_records_and_exits_130(write_experiment, tmp_path: Path) -> None:
    exp = toy_experiment(
        fitness={"name": "toy", "params": {"sleep": 0.05}},
        strategy={"name": "ga", "params": {"population_size": 10, "generations": 20}},
    )
    cfg = write_experiment(exp)
    out = tmp_path / "run"
    proc = evonas("run", str(cfg), "--out", str(out))
    deadline = time.time() + 60
    while (not (out / "journal.sqlite").exists() or len(rows(out)) < 5) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"evonas resume {out}" in err.decode()
    assert (out / "best.json").exists() and len(rows(out)) >= 5
    done = subprocess.run([sys.executable, "-m", "evonas", "resume", str(out), "--quiet"], capture_output=True)
    assert done.returncode == 0
    reference = tmp_path / "reference"
    Run(load_experiment(cfg), reference, progress=False).execute()
    assert [r[:3] for r in rows(out)] == [r[:3] for r in rows(reference)]


def test_damaged_config_falls_back_to_the_journal_copy(write_experiment, tmp_path: Path) -> None:
    cfg = write_experiment(toy_experiment())
    out = tmp_path / "run"
    Run(load_experiment(cfg), out, progress=False).execute()
    (out / "config.yaml").write_text("name: [unclosed\n")
    summary = Run.resume(out, progress=False, overrides={"generations": 4}).continue_run()
    assert summary.generations == 5
    assert yaml.safe_load((out / "config.yaml").read_text())["strategy"]["params"]["generations"] == 4


def test_damaged_journal_rows_are_set_aside_and_redone(write_experiment, tmp_path: Path) -> None:
    cfg = write_experiment(toy_experiment())
    reference = tmp_path / "reference"
    Run(load_experiment(cfg), reference, progress=False).execute()
    out = tmp_path / "run"
    Run(load_experiment(cfg), out, progress=False).execute()
    with sqlite3.connect(out / "journal.sqlite") as db:  # garble one result in the middle
        db.execute("UPDATE evaluations SET metrics = '{not json' WHERE seq = 20")
    summary = Run.resume(out, progress=False).continue_run()
    assert summary.discarded == 12  # row 20 and every row after it (the strategy may have learnt from them)
    assert [r[:3] for r in rows(out)] == [r[:3] for r in rows(reference)]
    with sqlite3.connect(out / "journal.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM discarded").fetchone()[0] == 12


def test_resume_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    from evonas.engine.runner import RunFolderError

    (tmp_path / "journal.sqlite").write_text("this is not a database")
    try:
        Run.resume(tmp_path, progress=False)
    except RunFolderError as exc:
        assert "not an SQLite database" in str(exc)
    else:
        raise AssertionError("expected RunFolderError")


def test_nothing_in_a_run_folder_is_a_pickle(write_experiment, tmp_path: Path) -> None:
    out = tmp_path / "run"
    Run(load_experiment(write_experiment(toy_experiment())), out, progress=False).execute()
    for path in out.rglob("*"):
        if path.is_file():
            assert not path.read_bytes().startswith(b"\x80"), path  # pickle protocol 2+ magic
            assert path.suffix in {".json", ".yaml", ".csv", ".sqlite", ".png", ".lock"}, path
    assert json.loads((out / "run.lock").read_text())["pid"] > 0  # the lock names its last holder, as JSON


def test_full_disk_stops_cleanly_and_resumes(write_experiment, tmp_path: Path, monkeypatch) -> None:
    """The journal cannot be written (disk full): the run stops keeping what was committed; resume finishes it."""
    import sqlite3 as sq

    from evonas.engine.journal import Journal
    from evonas.engine.runner import RunInterrupted

    cfg = write_experiment(toy_experiment())
    reference = tmp_path / "reference"
    Run(load_experiment(cfg), reference, progress=False).execute()
    out = tmp_path / "run"
    real_append = Journal.append
    calls = {"n": 0}

    def append(self, rec):
        calls["n"] += 1
        if calls["n"] > 11:
            raise sq.OperationalError("database or disk is full")
        return real_append(self, rec)

    monkeypatch.setattr(Journal, "append", append)
    from evonas.engine import outputs

    real_write_json = outputs.write_json

    def no_room(*args, **kwargs):  # the disk is still full when the run writes best.json and the rest
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "write_json", no_room)
    try:
        Run(load_experiment(cfg), out, progress=False).execute()
    except RunInterrupted as exc:
        assert exc.summary.stopped == "OperationalError: database or disk is full"
        assert exc.summary.evaluations == 11
        assert str(exc) == (f"the run in {out} stopped (OperationalError: database or disk is full) after 11 "
                            f"evaluations; what finished is recorded: go on with Run.resume('{out}').continue_run()")
        # its best is the journal's, though best.json could not be written (it said 'none' of 11 evaluations)
        best = min((-json.loads(m)["val_acc"], t) for t, _, s, m in rows(out) if s == "ok")  # ties: the earliest
        assert exc.summary.best is not None and exc.summary.best["trial"] == best[1], exc.summary.best
    else:
        raise AssertionError("expected the run to stop")
    monkeypatch.setattr(outputs, "write_json", real_write_json)
    monkeypatch.setattr(Journal, "append", real_append)
    Run.resume(out, progress=False).continue_run()
    assert [r[:3] for r in rows(out)] == [r[:3] for r in rows(reference)]


def test_extend_by_budget_equals_the_larger_budget(write_experiment, tmp_path: Path) -> None:
    small = tmp_path / "small"
    Run(load_experiment(write_experiment(toy_experiment(budget=13), name="small")), small, progress=False).execute()
    big = tmp_path / "big"
    Run(load_experiment(write_experiment(toy_experiment(budget=27), name="big")), big, progress=False).execute()
    Run.resume(small, progress=False, overrides={"budget": 27}).continue_run()
    assert [r[:3] for r in rows(small)] == [r[:3] for r in rows(big)]
    assert len(rows(small)) == 27


def _folder_bytes(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


STEADY_RUN_LENGTHS = [
    ("reinforce", {"samples": 32}, "samples"),
    ("aging", {"population_size": 8, "sample_size": 4, "cycles": 32}, "cycles"),
    ("random", {"samples": 32, "batch": 10}, "samples"),
]


@pytest.mark.parametrize("name, params, length", STEADY_RUN_LENGTHS, ids=[s[0] for s in STEADY_RUN_LENGTHS])
def test_budget_beyond_samples_raises_them(write_experiment, tmp_path: Path, name, params, length) -> None:
    """--budget 40 on a finished run of 32 samples (cycles) goes on to 40: the run length is raised with it."""
    cfg = write_experiment(toy_experiment(strategy={"name": name, "params": params}))
    out = tmp_path / "run"
    Run(load_experiment(cfg), out, progress=False).execute()
    before = [r[1] for r in rows(out)]
    assert len(before) == 32
    summary = Run.resume(out, progress=False, overrides={"budget": 40}).continue_run()
    assert summary.evaluations == 40
    after = [r[1] for r in rows(out)]
    assert len(after) == 40 and after[:32] == before
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["budget"] == 40 and config["strategy"]["params"][length] == 40
    longer = tmp_path / "longer"  # the same as a run asked for 40 from the start
    exp = toy_experiment(strategy={"name": name, "params": {**params, length: 40}}, budget=40)
    Run(load_experiment(write_experiment(exp, name="longer")), longer, progress=False).execute()
    assert after == [r[1] for r in rows(longer)]


def test_budget_a_generational_run_cannot_reach_is_refused(write_experiment, tmp_path: Path) -> None:
    """--budget beyond what ga's generations allow: one line naming generations and what to pass, exit 2, the run
    folder untouched; with --generations too the run goes on to the budget."""
    cfg = write_experiment(toy_experiment(strategy={"name": "ga", "params": {"population_size": 16, "generations": 1}}))
    out = tmp_path / "run"
    Run(load_experiment(cfg), out, progress=False).execute()
    before = _folder_bytes(out)
    refused = subprocess.run([sys.executable, "-m", "evonas", "resume", str(out), "--budget", "40", "--quiet"],
                             capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert refused.stdout == "" and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "--budget 40: the run ends after generations: 1 (at most 32 evaluations) first" in refused.stderr
    assert "pass --generations 2 as well (each generation adds up to 16 evaluations)" in refused.stderr
    assert _folder_bytes(out) == before
    summary = Run.resume(out, progress=False, overrides={"budget": 40, "generations": 2}).continue_run()
    assert summary.evaluations == 40 and summary.resumed
    from evonas.commands import _summary

    assert re.search(r"evaluated 40 genomes .*, \d+\.\d s this session \(8 new\)\n", _summary(summary, [])), _summary(summary, [])
    assert summary.added == 8 and "nothing   new" not in _summary(summary, [])
    again = Run.resume(out, progress=False).continue_run()  # at its end already: said, not silently the same summary
    assert again.added == 0 and again.evaluations == 40
    assert "nothing   new this session: the run had reached its end; go on with --generations N" in _summary(again, [])
    # the budget of 40, now the run's, is spent: more generations alone would add nothing, and are refused
    before = _folder_bytes(out)
    refused = subprocess.run([sys.executable, "-m", "evonas", "resume", str(out), "--generations", "5", "--quiet"],
                             capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 2 and refused.stderr == (
        f"evonas: {out}: the run's budget of 40 evaluations is spent, so a longer generations adds none; pass "
        "--budget N as well\n"), refused.stderr
    assert _folder_bytes(out) == before
    assert Run.resume(out, progress=False, overrides={"budget": 56, "generations": 3}).continue_run().evaluations == 56


def test_budget_extends_a_generational_run_its_budget_cut(write_experiment, tmp_path: Path) -> None:
    """A ga run cut by its budget before its generations ended: --budget alone extends it (nothing is raised)."""
    cfg = write_experiment(toy_experiment(budget=13))  # 8 + 3 * 8 = 32 evaluations before generations end it
    out = tmp_path / "run"
    Run(load_experiment(cfg), out, progress=False).execute()
    assert Run.resume(out, progress=False, overrides={"budget": 32}).continue_run().evaluations == 32
    assert yaml.safe_load((out / "config.yaml").read_text())["strategy"]["params"]["generations"] == 3


def test_budget_beyond_a_strategy_without_run_length_is_refused(write_experiment, tmp_path: Path) -> None:
    """grid has no run length: a --budget beyond the space is refused in one line, the folder untouched."""
    from evonas.engine.runner import RunFolderError

    space = {"name": "nb201", "params": {"ops": ["none", "skip_connect"]}}
    cfg = write_experiment(toy_experiment(space=space, strategy={"name": "grid", "params": {"batch": 10}}, budget=20))
    out = tmp_path / "run"
    Run(load_experiment(cfg), out, progress=False).execute()
    before = _folder_bytes(out)
    with pytest.raises(RunFolderError, match=r"--budget 100000: strategy 'grid' ends the run after at most \d+ "
                                             r"evaluations and declares no run length to extend") as caught:  # fmt: skip
        Run.resume(out, progress=False, overrides={"budget": 100000}).continue_run()
    assert "\n" not in str(caught.value)
    assert _folder_bytes(out) == before


def test_a_python_resume_without_the_plug_in_says_which_to_import(write_experiment, tmp_path) -> None:
    import sys

    import pytest

    from conftest import toy_experiment
    from evonas.config import ConfigError, load_experiment
    from evonas.engine.runner import Run
    from evonas.strategies import STRATEGIES

    (tmp_path / "resumed_hill.py").write_text("from evonas.strategies import STRATEGIES\n"
                                             "from evonas.strategies.random_search import RandomSearch\n\n"
                                             "@STRATEGIES.register('resumed_hill')\nclass Hill(RandomSearch):\n"
                                             "    pass\n")  # fmt: skip
    exp = write_experiment(toy_experiment(plugins=["resumed_hill.py"], strategy={"name": "resumed_hill",
                                                                                   "params": {"samples": 4}}))  # fmt: skip
    Run(load_experiment(exp), tmp_path / "run", progress=False).execute()
    STRATEGIES._items.pop("resumed_hill", None)
    sys.modules.pop("resumed_hill", None)
    with pytest.raises(ConfigError) as caught:
        Run.resume(tmp_path / "run", progress=False, overrides={"budget": 6}).continue_run()
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / 'run' / 'config.yaml'}: strategy.name: unknown strategy 'resumed_hill'"), text
    assert "the run names the plug-ins resumed_hill.py" in text and "pass --plugins resumed_hill.py" in text


def test_a_resume_on_other_data_is_refused_before_anything_is_written(write_experiment, tmp_path, monkeypatch,
                                                                       capsys) -> None:
    """A relative data path resolves against the working directory: resumed elsewhere, or after the file was
    regenerated, it finds other data. The run would mix two problems: one line, exit 2, the journal untouched."""
    import sqlite3

    from test_cache import _npz_experiment

    from evonas.cli import main

    path = _npz_experiment(write_experiment, tmp_path / "a", labels_seed=1)
    monkeypatch.chdir(tmp_path / "a")
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--quiet", "--no-cache"]) == 0
    capsys.readouterr()
    _npz_experiment(write_experiment, tmp_path / "b", labels_seed=2)  # another data.npz, in another folder
    monkeypatch.chdir(tmp_path / "b")
    before = (tmp_path / "run" / "journal.sqlite").read_bytes()
    assert main(["resume", str(tmp_path / "run"), "--budget", "6", "--quiet", "--no-cache"]) == 2
    # (the small data's own warning aside: its validation split has under 30 samples)
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("evonas: warning:")]
    assert len(err) == 1 and "the dataset 'npz' (path: data.npz) as loaded here is not the data the run " \
                              "was started on" in err[0], err  # fmt: skip
    assert (tmp_path / "run" / "journal.sqlite").read_bytes() == before
    # an export there would train and test on other data than the search saw: refused too, before any training
    assert main(["export", str(tmp_path / "run"), "--epochs", "1", "--quiet"]) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("evonas: warning:")]
    assert len(err) == 1 and "as loaded here is not the data the run was started on" in err[0] and \
        err[0].endswith("export where the data is as it was, name a copy of the run's data with --data PATH, or start a new run"), err  # fmt: skip
    assert not (tmp_path / "run" / "export").exists()
    monkeypatch.chdir(tmp_path / "a")  # where the data is as it was: it goes on
    assert main(["resume", str(tmp_path / "run"), "--budget", "6", "--quiet", "--no-cache"]) == 0
    with sqlite3.connect(tmp_path / "run" / "journal.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 6


def test_status_of_a_resumed_run_says_when_it_started_and_when_it_was_resumed(tmp_path: Path, capsys) -> None:
    from evonas.cli import main
    from evonas.engine.journal import Journal

    out = tmp_path / "run"
    assert main(["run", str(REPO / "experiments" / "nb201_toy.yaml"), "--out", str(out), "--quiet"]) == 0
    with Journal(out / "journal.sqlite") as journal:  # as if the run had started an hour ago
        journal.set_meta("created_at", time.time() - 3600)
    assert main(["resume", str(out), "--generations", "12", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["status", str(out)]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert re.search(r", started (59m\d+s|1h\d*m?\d*s?) ago, resumed \d+\.\ds ago$", head), head


def test_a_resume_that_trains_in_another_precision_says_so_and_status_tells_the_sessions_apart(
    write_experiment, tmp_path: Path, capsys, monkeypatch
) -> None:
    """amp: auto is bf16 on a CPU with native bf16 and fp32 under ONEDNN_MAX_CPU_ISA=AVX2 (or on another CPU): the
    journal notes each session's device, precision and kernels, a resume that differs says so, status and the report
    show it. On a CPU without native bf16 both sessions train in fp32, on other kernels: that is said too."""
    from evonas.cli import main
    from evonas.engine.status import runtime_text
    from evonas.fitness import FITNESSES

    raw = {"name": "p", "space": {"name": "mlp"}, "workers": 0, "cache": False,
           "dataset": {"name": "synthetic", "params": {"n_samples": 80, "shape": [6], "num_classes": 3}},
           "fitness": {"name": "train", "params": {"epochs": 1}},
           "strategy": {"name": "ga", "params": {"population_size": 4, "offspring": 4, "generations": 1}}}  # fmt: skip
    out = tmp_path / "run"
    assert main(["run", str(write_experiment(raw)), "--out", str(out), "--quiet"]) == 0
    first = FITNESSES.get("train")(epochs=1).runtime()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    second = FITNESSES.get("train")(epochs=1).runtime()
    capsys.readouterr()
    assert main(["resume", str(out), "--generations", "2", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert main(["status", str(out)]) == 0
    shown = [line for line in capsys.readouterr().out.splitlines() if line.startswith("trained on")]
    assert first != second  # oneDNN capped: other kernels (and, on a CPU with native bf16, fp32 for bf16)
    assert f"this session trains with {runtime_text(second)}; the run trained with {runtime_text(first)} until now" \
        in err, err
    assert shown == [f"trained on {runtime_text(first)} (evaluations 0-7); {runtime_text(second)} (from evaluation 8)"]
    assert runtime_text(second).endswith("/oneDNN AVX2"), second


def test_a_plug_in_strategy_run_is_extended_by_its_own_run_length(write_experiment, tmp_path: Path) -> None:
    """``evonas resume --generations N --plugins my_ga.py``: the plug-in's run length is known once it is imported
    (it was looked up before, so every plug-in's was unknown and the extension refused)."""
    (tmp_path / "my_ga.py").write_text("from evonas.strategies import STRATEGIES\nfrom evonas.strategies.ga import GeneticAlgorithm\n\n"
                                       "@STRATEGIES.register('my_ga')\nclass MyGA(GeneticAlgorithm):\n    pass\n")  # fmt: skip
    cfg = write_experiment(toy_experiment(plugins=["my_ga.py"], strategy={"name": "my_ga", "params": {
        "population_size": 8, "generations": 1}}))  # fmt: skip
    out = tmp_path / "run"

    def evonas(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "evonas", *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    assert evonas("run", str(cfg), "--out", str(out), "--quiet").returncode == 0
    done = evonas("resume", str(out), "--generations", "3", "--plugins", "my_ga.py", "--quiet")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(out / "journal.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 32, done.stderr  # 8 per generation


def test_a_resume_refuses_a_config_that_changes_what_the_run_computes(write_experiment, tmp_path: Path) -> None:
    """config.yaml edited between sessions: a seed, an objective or a fitness parameter changes the results the journal
    holds; refused in one line naming the key, before anything is written. How the run is carried out may change."""
    from evonas.engine.runner import RunFolderError

    cfg = write_experiment(toy_experiment(strategy={"name": "random", "params": {"samples": 6}}))
    out = tmp_path / "run"
    Run(load_experiment(cfg), out, progress=False).execute()
    config = (out / "config.yaml").read_text()
    before = _folder_bytes(out)
    for old, new, said in (("seed: 3", "seed: 7", "config.yaml's seed is 7, the run started with 3"),
                           ("direction: max", "direction: min", "config.yaml's objectives is [{\"metric\": \"val_acc\", "
                                                                "\"direction\": \"min\"}], the run started with")):  # fmt: skip
        assert old in config
        (out / "config.yaml").write_text(config.replace(old, new))
        with pytest.raises(RunFolderError, match=re.escape(said)) as caught:
            Run.resume(out, progress=False).continue_run()
        assert "restore " in str(caught.value) and "\n" not in str(caught.value)
        assert "(a damaged config.yaml: delete it, and the resume takes the journal's copy of the experiment)" in \
            str(caught.value)
        (out / "config.yaml").write_text(config)
        assert _folder_bytes(out) == before
    (out / "config.yaml").write_text(config.replace("workers: 0", "workers: 1").replace("strict: false", "strict: true"))
    assert Run.resume(out, progress=False, overrides={"budget": 8}).continue_run().evaluations == 8


def test_a_plug_in_fitness_edited_between_sessions_is_said(write_experiment, tmp_path: Path) -> None:
    """Its file's hash is in the journal: a resume goes on (a fix may be why it resumes) and says it in a line."""
    code = ("from evonas.fitness import FITNESSES\nfrom evonas.fitness.toy import ToyFitness\n\n"
            "@FITNESSES.register('edited_fit')\nclass Edited(ToyFitness):\n    pass\n")  # fmt: skip
    (tmp_path / "edited_fit.py").write_text(code)
    cfg = write_experiment(toy_experiment(plugins=["edited_fit.py"], fitness={"name": "edited_fit"},
                                          strategy={"name": "random", "params": {"samples": 4}}))  # fmt: skip

    def evonas(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "evonas", *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    assert evonas("run", str(cfg), "--out", "run", "--quiet").returncode == 0
    (tmp_path / "edited_fit.py").write_text(code + "# fixed\n")
    done = evonas("resume", "run", "--budget", "6", "--plugins", "edited_fit.py", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "evonas: warning: the code of fitness edited_fit.Edited changed since the run started" in done.stderr


def test_a_resume_may_change_how_the_fitness_runs_on_this_machine(write_experiment, tmp_path: Path) -> None:
    """The device, threads or scoring batch size in config.yaml (another machine) are no change of what the run
    computes; epochs is."""
    from evonas.engine.runner import RunFolderError

    exp = {"name": "m", "seed": 0, "space": {"name": "mlp", "params": {"max_layers": 1, "widths": [8]}},
           "dataset": {"name": "synthetic", "params": {"shape": [4], "n_samples": 60}},
           "fitness": {"name": "train", "params": {"epochs": 1}}, "workers": 0, "cache": False,
           "strategy": {"name": "random", "params": {"samples": 2}}}  # fmt: skip
    out = tmp_path / "run"
    Run(load_experiment(write_experiment(exp)), out, progress=False).execute()
    config = (out / "config.yaml").read_text()
    edited = config.replace("device: auto", "device: cpu").replace("threads: 1", "threads: 2")
    edited = edited.replace("eval_batch_size: 1024", "eval_batch_size: 256")
    assert edited.count("cpu") > config.count("cpu") and "threads: 2" in edited and "eval_batch_size: 256" in edited
    (out / "config.yaml").write_text(edited)
    assert Run.resume(out, progress=False, overrides={"budget": 3}).continue_run().evaluations == 3
    (out / "config.yaml").write_text((out / "config.yaml").read_text().replace("epochs: 1", "epochs: 2"))
    with pytest.raises(RunFolderError, match="config.yaml's fitness.params.epochs is 2, the run started with 1"):
        Run.resume(out, progress=False, overrides={"budget": 4}).continue_run()


@pytest.mark.parametrize("workers", [0, 2])
def test_run_stop_from_on_result_ends_the_search_early_and_resume_goes_on(write_experiment, tmp_path: Path, workers: int) -> None:
    """``Run.stop()`` (Optuna's ``study.stop()``): no new evaluation starts, the running ones finish, the run ends
    finished with the reason as ``ended_early`` and its results written; a resume goes on to the journal of a run
    that was never stopped."""
    from evonas.engine.status import read_status

    cfg = write_experiment(toy_experiment(workers=workers, strategy={"name": "ga", "params": {"population_size": 8,
                                                                                                "generations": 4}}))
    reference = tmp_path / "reference"
    Run(load_experiment(cfg), reference, progress=False).execute()
    seen: list[int] = []

    def on_result(record) -> None:
        seen.append(record.trial)
        if len(seen) == 11:
            run.stop(f"11 results in (trial {record.trial})")
            run.stop("a second call keeps the first reason")

    out = tmp_path / "stopped"
    run = Run(load_experiment(cfg), out, progress=False, on_result=on_result)
    summary = run.execute()
    assert summary.ended_early == f"11 results in (trial {seen[10]})" and not summary.interrupted
    assert 11 <= summary.evaluations <= 11 + workers  # at most the evaluations running when it was called
    assert (out / "best.json").is_file() and read_status(out)["state"] == "finished"
    assert read_status(out)["error"] == summary.ended_early
    resumed = Run.resume(out, progress=False).continue_run()
    assert resumed.ended_early is None and resumed.evaluations == len(rows(reference))
    if workers == 0:  # in-process: the same evaluations in the same order
        assert [r[:3] for r in rows(out)] == [r[:3] for r in rows(reference)]
    with pytest.raises(TypeError, match="Run.stop: reason: expected a non-empty str"):
        run.stop("")
    other = Run(load_experiment(cfg), tmp_path / "other", progress=False)
    other.stop("line one\nline two " + "x" * 400)  # status and the summary show it on one line
    assert other.stop_reason is not None and other.stop_reason.startswith("line one line two x")
    assert len(other.stop_reason) == 300 and other.stop_reason.endswith("...")


def test_a_search_stopped_in_its_first_generation_keeps_a_hall_of_fame_and_says_so(write_experiment, tmp_path: Path) -> None:
    """A ga stopped before its first generation is complete: hall_of_fame.json holds the results so far (a generation
    updates it; none was complete), and the summary says why the logbook has no row and no plots are drawn."""
    from evonas.commands import _summary

    cfg = write_experiment(toy_experiment(strategy={"name": "ga", "params": {"population_size": 8, "generations": 4}}))
    exp = load_experiment(cfg)

    def on_result(record) -> None:
        if record.trial == 3:
            run.stop("three results")

    out = tmp_path / "run"
    run = Run(exp, out, progress=False, on_result=on_result)
    summary = run.execute()
    hall = json.loads((out / "hall_of_fame.json").read_text())
    assert summary.evaluations == len(hall) == 4 and json.loads((out / "best.json").read_text())["key"] == hall[0]["key"]
    assert "within its first generation, not complete (no logbook row, so no plots)" in _summary(summary, exp.objectives)


@pytest.mark.parametrize(("stop", "reason"), [
    ({"val_acc": 0.9}, r"val_acc 0\.9\d* >= 0\.9 \(stop\.val_acc\) at trial \d+"),
    ({"patience": 6}, r"no better val_acc in 6 complete evaluations \(stop\.patience; best 0\.\d+\)"),
    ({"time_budget_s": 0.4}, r"stop\.time_budget_s: 0\.4 s of searching spent"),
])  # fmt: skip
def test_the_experiment_s_stop_rule_ends_the_search_and_a_resume_meets_it_again(
    write_experiment, tmp_path: Path, stop: dict, reason: str
) -> None:
    """``stop:`` (Ray Tune's ``stop`` / ``time_budget_s``): a target reached, no better best in ``patience``
    evaluations, or the seconds of searching spent end the search as finished; a resume replays the journal to the
    same point (the time summed over sessions) and adds nothing."""
    from evonas.engine.runner import RunFolderError
    from evonas.engine.status import read_status

    exp = toy_experiment(fitness={"name": "toy", "params": {"sleep": 0.02}}, stop=stop,
                         strategy={"name": "ga", "params": {"population_size": 8, "generations": 30}})  # fmt: skip
    out = tmp_path / "run"
    summary = Run(load_experiment(write_experiment(exp)), out, progress=False).execute()
    assert summary.ended_early is not None and re.fullmatch(reason, summary.ended_early), summary.ended_early
    assert summary.evaluations < 8 * 31 and read_status(out)["state"] == "finished"
    records = [r for r in rows(out)]
    values = [json.loads(m)["val_acc"] for _, _, s, m in records]
    if "val_acc" in stop:  # the last result told reached it, and none before
        assert values[-1] >= 0.9 and max(values[:-1]) < 0.9
    if "patience" in stop:
        best_at = values.index(max(values))
        assert len(values) - 1 - best_at == 6
    again = Run.resume(out, progress=False).continue_run()
    assert again.added == 0 and again.ended_early == summary.ended_early and rows(out) == records
    config_text = (out / "config.yaml").read_text()
    with pytest.raises(RunFolderError) as refused:  # a larger budget would end at the same place: said, nothing changed
        Run.resume(out, overrides={"budget": 400}, progress=False)
    assert f"the run's stop: ended its search ({summary.ended_early}) and would end a longer one" in str(refused.value)
    assert f"raise or remove stop in {out / 'config.yaml'}, then resume" in str(refused.value)
    assert (out / "config.yaml").read_text() == config_text and rows(out) == records
    if "val_acc" in stop:  # a higher target in config.yaml: the resume goes on to it
        config = yaml.safe_load((out / "config.yaml").read_text())
        higher = round(max(values) + 0.001, 3)  # above every result so far
        config["stop"] = {"val_acc": higher}
        (out / "config.yaml").write_text(yaml.safe_dump(config))
        further = Run.resume(out, progress=False).continue_run()
        assert further.added and rows(out)[: len(records)] == records
        assert further.ended_early is None or f"{higher:g} (stop.val_acc)" in further.ended_early


@pytest.mark.parametrize(("stop", "expected"), [
    ({"val_ac": 0.9}, "stop.val_ac: not an objective (did you mean 'val_acc'?)"),
    ({"val_acc": "high"}, "stop.val_acc: expected the metric's target (a number), got the string 'high'"),
    ({"patience": 0}, "stop.patience: expected an integer >= 1"),
    ({"time_budget_s": -1}, "stop.time_budget_s: expected a number of seconds > 0"),
    ([1], "stop: expected a mapping such as {METRIC: TARGET, patience: N, time_budget_s: SECONDS, failures: N}"),
])  # fmt: skip
def test_a_bad_stop_rule_is_one_line(write_experiment, tmp_path: Path, stop, expected: str) -> None:

    cfg = write_experiment(toy_experiment(stop=stop))
    done = subprocess.run([sys.executable, "-m", "evonas", "run", str(cfg), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
    assert not (tmp_path / "run").exists()


def test_plugins_given_as_one_string_are_a_type_error(write_experiment, tmp_path: Path) -> None:
    """``plugins="space.py"`` was taken letter by letter ("cannot import module 's'")."""
    from evonas.export import export_run

    out = tmp_path / "run"
    Run(load_experiment(write_experiment(toy_experiment())), out, progress=False).execute()
    for call in (lambda: Run.resume(out, plugins="space.py"), lambda: export_run(out, plugins="space.py")):
        with pytest.raises(TypeError, match=r"^plugins: expected a list of module names or \.py files \(plugins="
                                            r"\['space.py'\]\), got 'space.py'$"):  # fmt: skip
            call()


def test_a_stopped_search_with_inherit_still_confirms_its_best_from_scratch(write_experiment, tmp_path: Path) -> None:
    """With ``inherit:``, best.json is made of complete evaluations: the confirmations of the best inherited genomes
    still run after ``Run.stop()`` (the search's own candidates do not)."""
    from conftest import digits_experiment

    exp = digits_experiment(inherit={"confirm": 2}, strategy={"name": "ga", "params": {"population_size": 4,
                                                                                       "offspring": 4, "generations": 20}})  # fmt: skip
    seen: list[int] = []

    def on_result(record) -> None:
        seen.append(record.trial)
        if sum(1 for _ in seen) == 14:
            run.stop("14 results")

    run = Run(load_experiment(write_experiment(exp)), tmp_path / "run", progress=False, on_result=on_result)
    summary = run.execute()
    with sqlite3.connect(tmp_path / "run" / "journal.sqlite") as db:
        origins = [o for (o,) in db.execute("SELECT origin FROM evaluations ORDER BY trial")]
    assert summary.ended_early == "14 results" and summary.best is not None
    assert origins[:14].count("confirm") == 0 and 1 <= origins[14:].count("confirm") == len(origins) - 14 <= 2, origins
