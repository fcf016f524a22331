"""Plug-in faults are loud, never fatal, never silent; a run's state is told truthfully (issue 15, parts 1 and 2).

A mutation operator that raises, or returns something that is not a valid genome, does not end the run: the
child is made by another operator and the fault is counted per operator (calls, failures, the first error with
the plug-in's own line) in the summary, ``evonas status``, the report and the journal. ``strict: true`` stops
at the first fault in one line, and the run resumes once the operator is fixed. ``evonas status`` says
``finished`` only of a run that wrote its end: a killed run and a crashed one say so.
"""

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

from conftest import PLUGINS, toy_experiment
from evonas.cli import main
from evonas.config import ConfigError, load_experiment, parse_experiment
from evonas.engine.runner import Run, RunInterrupted
from evonas.engine.status import format_status, operator_faults, read_status
from evonas.report import write_report
from evonas.evolution import SELECTIONS, OperatorFault, Variation
from evonas.operators import CROSSOVERS, MUTATIONS, Crossover
from evonas.spaces import make_space
from evonas.testing import check_crossover, check_mutation

BOOM_LINE = next(i for i, line in enumerate((PLUGINS / "faulty_ops.py").read_text().splitlines(), 1) if 'raise ValueError("boom")' in line)
BOOM = f"ValueError: boom at faulty_ops.py:{BOOM_LINE}"
INVALID = "returned an invalid genome: nb201: edge 1<-0 has op 'conv_7x7', not in the op set"


@pytest.fixture(autouse=True)
def _plugins_of_this_file():
    """The faulty operators are registered for this file's tests only: a registered operator that applies to
    nb201 joins every run that names no mutations (``Variation.default``), so other tests must not see them."""
    import faulty_ops  # noqa: F401  (tests/plugins, on sys.path by conftest)

    yield
    for name, op in list(MUTATIONS._items.items()):  # every operator the file registered
        if getattr(op, "__module__", None) == "faulty_ops":
            MUTATIONS._items.pop(name)
    SELECTIONS._items.pop("explode", None)
    sys.modules.pop("faulty_ops", None)
    sys.modules.pop("crashing_selection", None)


def faulty_experiment(**changes) -> dict:
    exp = toy_experiment(
        plugins=["faulty_ops"],
        mutations=[{"name": "every_third", "prob": 0.5}, {"name": "bad_width", "prob": 0.5}],
        cache=False,
    )
    exp.update(changes)
    return exp


def journal_rows(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        return db.execute("SELECT trial, key, origin, status FROM evaluations ORDER BY trial").fetchall()


@pytest.fixture
def fixed_ops(monkeypatch: pytest.MonkeyPatch):
    def fix() -> None:
        monkeypatch.setenv("EVONAS_TEST_OPS_FIXED", "1")

    monkeypatch.delenv("EVONAS_TEST_OPS_FIXED", raising=False)
    return fix


def test_faulty_operators_do_not_end_the_run_and_are_reported(write_experiment, tmp_path: Path, capsys, fixed_ops) -> None:
    """Done when: one plug-in raises on every third call, one always returns an invalid genome: exit 0 with best.json,
    the last lines name both with their failure counts and first errors, no traceback."""
    out = tmp_path / "run"
    assert main(["run", str(write_experiment(faulty_experiment())), "--out", str(out), "--quiet"]) == 0
    cap = capsys.readouterr()
    assert "Traceback" not in cap.out + cap.err
    assert (out / "best.json").is_file()
    lines = cap.out.strip().splitlines()
    tail = "\n".join(lines[-3:])
    found = {m.group(1): (int(m.group(2)), int(m.group(3)), m.group(4))
             for m in re.finditer(r"mutation '(\w+)' failed (\d+) of (\d+) calls \(first: (.*)\)", tail)}  # fmt: skip
    assert set(found) == {"every_third", "bad_width"}, cap.out
    failed, calls, first = found["every_third"]
    assert first == BOOM and 0 < failed < calls and failed >= calls // 3 - 1, found
    failed, calls, first = found["bad_width"]
    assert first.startswith(INVALID) and failed == calls > 0, found
    assert lines[-3].startswith("faults    mutation '")
    # one warning line per faulty operator while the run went on
    warnings = [line for line in cap.err.splitlines() if line.startswith("evonas: mutation '")]
    assert len(warnings) == 2 and all("the run goes on" in w for w in warnings), cap.err

    # the journal keeps the counts: the same in `evonas status`, its JSON and the reader the diagnostics use
    faults = {f["name"]: f for f in operator_faults(out)}
    assert {n: (f["failures"], f["calls"]) for n, f in faults.items()} == {n: v[:2] for n, v in found.items()}
    assert main(["status", str(out)]) == 0
    status = capsys.readouterr().out
    assert ": finished," in status.splitlines()[0]
    assert f"mutation 'every_third' failed {found['every_third'][0]} of {found['every_third'][1]} calls (first: {BOOM})" in status
    assert "mutation 'bad_width' failed" in status
    # children of the always-invalid operator were made another way: none of the journal's rows claims it
    origins = {origin for _, _, origin, _ in journal_rows(out)}
    assert "mutation:bad_width" not in origins and "mutation:every_third" in origins

    # the report has a section
    assert main(["report", str(out), "--out", str(tmp_path / "report.html")]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Faulty operators</h2>" in page and "every_third" in page and "bad_width" in page
    assert "boom at faulty_ops.py" in page


def test_none_and_dict_are_faults_too(write_experiment, tmp_path: Path, capsys) -> None:
    exp = faulty_experiment(mutations=[{"name": "returns_none", "prob": 1}, {"name": "returns_dict", "prob": 1},
                                       {"name": "nb201_change_edge", "prob": 1}])  # fmt: skip
    out = tmp_path / "run"
    assert main(["run", str(write_experiment(exp)), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"mutation 'returns_none' failed (\d+) of \1 calls \(first: returned None\)", text), text
    assert re.search(r"mutation 'returns_dict' failed (\d+) of \1 calls \(first: returned a dict, not a genome\)", text), text
    assert "nb201_change_edge" not in text.split("faults")[1]  # the healthy one is not a faulty operator


def test_strict_stops_in_one_line_and_resumes_after_the_fix(write_experiment, tmp_path: Path, capsys, fixed_ops) -> None:
    cfg = write_experiment(faulty_experiment(strict=True))
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 1
    cap = capsys.readouterr()
    assert cap.out == ""
    err = cap.err.strip().splitlines()
    assert len(err) == 1, cap.err
    assert re.match(r"evonas: strict: mutation '(every_third|bad_width)' (raised ValueError: boom|returned an invalid genome)", err[0])
    assert f"evonas resume {out}" in err[0]
    done = journal_rows(out)
    assert len(done) == 8  # the first generation (sampled) is journalled; the fault came in the second's asks
    st = read_status(out)
    assert st["state"] == "stopped" and "finished" not in format_status(st)
    assert st["error"].startswith("strict: mutation '")

    fixed_ops()
    assert main(["resume", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "faults" not in text and (out / "best.json").is_file()
    assert read_status(out)["state"] == "finished"
    # exactly the run that the fixed operators make from the start
    reference = tmp_path / "reference"
    assert main(["run", str(cfg), "--out", str(reference), "--quiet"]) == 0
    capsys.readouterr()
    assert journal_rows(out) == journal_rows(reference)
    assert json.loads((out / "best.json").read_text()) == json.loads((reference / "best.json").read_text())


def test_resume_rebuilds_the_fault_counts_exactly(write_experiment, tmp_path: Path, fixed_ops) -> None:
    cfg = write_experiment(faulty_experiment(strategy={"name": "ga", "params": {"population_size": 8, "generations": 4}}))
    reference = tmp_path / "reference"
    Run(load_experiment(cfg), reference, progress=False).execute()
    expected = operator_faults(reference, every=True)
    assert {f["name"] for f in expected if f["failures"]} == {"every_third", "bad_width"}

    seen = []

    def stop(rec) -> None:
        seen.append(rec)
        if len(seen) == 13:  # in the middle of the second generation
            raise KeyboardInterrupt

    out = tmp_path / "cut"
    with pytest.raises(RunInterrupted) as info:
        Run(load_experiment(cfg), out, progress=False, on_result=stop).execute()
    assert 0 < sum(f["failures"] for f in info.value.summary.operator_faults)
    assert read_status(out)["state"] == "interrupted"
    summary = Run.resume(out, progress=False).continue_run()
    assert journal_rows(out) == journal_rows(reference)
    assert operator_faults(out, every=True) == expected
    assert summary.operator_faults == operator_faults(reference)


def test_variation_makes_the_child_another_way() -> None:
    space = make_space("nb201", {"C": 4, "N": 1})
    good, bad = MUTATIONS.get("nb201_change_edge")(), MUTATIONS.get("bad_width")()
    var = Variation(space, [(bad, 1.0), (good, 1.0)])
    rng = random.Random(0)
    for _ in range(30):
        parent = space.sample(rng=rng)
        child, name = var.mutate(parent, rng=rng)
        assert name == "nb201_change_edge" and space.is_valid(child) and child != parent
    stats = {s["name"]: s for s in var.operator_stats()}
    assert stats["bad_width"]["failures"] == stats["bad_width"]["calls"] > 0
    assert stats["nb201_change_edge"]["failures"] == 0 and stats["nb201_change_edge"]["calls"] == 30
    # no operator left: the parent is kept, named "none"
    alone = Variation(space, [(bad, 1.0)])
    parent = space.sample(rng=rng)
    assert alone.mutate(parent, rng=rng) == (parent, "none")
    # strict: the first fault raises, in one line naming the operator and the error
    with pytest.raises(OperatorFault, match=r"^mutation 'bad_width' returned an invalid genome: nb201: edge"):
        alone.fresh(strict=True).mutate(parent, rng=rng)
    assert alone.fresh().operator_stats() == []


def test_check_mutation_says_what_was_wrong() -> None:
    space = make_space("nb201", {"C": 4, "N": 1})
    with pytest.raises(AssertionError, match=re.escape(f"every_third raised {BOOM} in 16 of 50 calls")):
        check_mutation(MUTATIONS.get("every_third")(), space, n=50)
    with pytest.raises(AssertionError, match=re.escape(f"bad_width {INVALID}") + r".* in 50 of 50 calls"):
        check_mutation(MUTATIONS.get("bad_width")(), space, n=50)
    with pytest.raises(AssertionError, match=r"^returns_none returned None in 50 of 50 calls$"):
        check_mutation(MUTATIONS.get("returns_none")(), space, n=50)
    with pytest.raises(AssertionError, match=r"^returns_dict returned a dict, not a genome in 50 of 50 calls$"):
        check_mutation(MUTATIONS.get("returns_dict")(), space, n=50)
    check_mutation(MUTATIONS.get("nb201_change_edge")(), space, n=50)
    check_crossover(CROSSOVERS.get("nb201_uniform")(), space, n=50)

    class Forgetful(Crossover):
        name = "forgetful"

        def _crossover(self, a, b, *, space, rng):
            return None

    with pytest.raises(AssertionError, match=r"^forgetful returned None, not a pair of genomes in 20 of 20 calls$"):
        check_crossover(Forgetful(), space, n=20)


def test_strict_is_an_experiment_key(write_experiment) -> None:
    exp = load_experiment(write_experiment(faulty_experiment(strict=True)))
    assert exp.strict is True and exp.to_dict()["strict"] is True
    assert load_experiment(write_experiment(toy_experiment(), "plain")).to_dict()["strict"] is False
    with pytest.raises(ConfigError, match="strict: expected true or false"):
        parse_experiment(toy_experiment(strict="yes"))


def test_a_crashed_run_says_crashed_not_finished(write_experiment, tmp_path: Path, capsys) -> None:
    """An exception escaping the loop (a plug-in selection's bug): one line, exit 1, status says crashed and why."""
    exp = toy_experiment(plugins=["crashing_selection"], selection={"name": "explode"}, cache=False,
                         mutations=[{"name": "nb201_change_edge", "prob": 1}])  # fmt: skip
    out = tmp_path / "run"
    assert main(["run", str(write_experiment(exp)), "--out", str(out), "--quiet"]) == 1
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err and len(cap.err.strip().splitlines()) == 1, cap.err
    assert "the run crashed: ZeroDivisionError: selection exploded at crashing_selection.py:" in cap.err
    # raised in the plug-in: the resume would replay into it again, so the line says to fix it first
    assert f"in the journal; fix it first (the resume replays the journal through the same code), then resume with: " \
           f"evonas resume {out}" in cap.err
    st = read_status(out)
    assert st["state"] == "crashed" and st["error"].startswith("ZeroDivisionError: selection exploded at crashing_selection.py:")
    text = format_status(st)
    assert "finished" not in text and "error     ZeroDivisionError: selection exploded" in text
    assert len(journal_rows(out)) == 16  # what finished is journalled
    # the journal was closed: resume goes as far as the bug again, and says so again
    assert main(["resume", str(out), "--quiet"]) == 1
    assert "the run crashed: ZeroDivisionError" in capsys.readouterr().err
    assert read_status(out)["state"] == "crashed"


def test_plug_in_code_that_fails_after_the_last_result_or_calls_sys_exit_is_a_crash(write_experiment, tmp_path: Path,
                                                                                      capsys, monkeypatch) -> None:
    """Plug-in code that raises while best.json is written (a build function describing a genome) leaves the run
    crashed, not finished; a sys.exit() in plug-in code is one line and exit 1, never a silent exit 0."""
    from evonas.engine import outputs

    def broken(*args, **kwargs):
        raise ValueError("head=64 is not one of [8, 32]")

    monkeypatch.setattr(outputs, "write_results", broken)
    out = tmp_path / "run"
    assert main(["run", str(write_experiment(toy_experiment())), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "the run crashed: while writing best.json and the logbook: ValueError: head=64 is not one of [8, 32]" in err
    st = read_status(out)
    assert st["state"] == "crashed" and "while writing best.json" in st["error"], st
    monkeypatch.undo()

    def leave(*args, **kwargs):
        sys.exit(0)

    monkeypatch.setattr(outputs, "write_results", leave)
    assert main(["run", str(write_experiment(toy_experiment(), name="e2")), "--out", str(tmp_path / "r2"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "the run crashed: while writing best.json and the logbook: SystemExit: plug-in code called sys.exit(0) at " \
           "test_plugin_faults.py:" in err, err
    monkeypatch.undo()
    monkeypatch.setattr("evonas.cli.cmd_run", lambda args: sys.exit(3))  # anywhere in a command: one line, 1
    assert main(["run", "x.yaml"]) == 1
    assert capsys.readouterr().err.startswith("evonas: run: plug-in code called sys.exit(3) at test_plugin_faults.py:")


def test_a_search_stuck_because_every_mutation_fails_names_the_operator(write_experiment, tmp_path: Path,
                                                                          monkeypatch) -> None:
    from evonas.engine import loop

    monkeypatch.setattr(loop.Loop, "max_repeats", 50)  # the default 10,000, reached sooner
    exp = faulty_experiment(mutations=[{"name": "returns_none", "prob": 1}], crossovers=[],
                            strategy={"name": "aging", "params": {"population_size": 4, "sample_size": 2, "cycles": 10}})
    summary = Run(load_experiment(write_experiment(exp)), tmp_path / "run", progress=False).execute()
    assert summary.ended_early == ("strategy 'aging' asked 50 genomes in a row that the run had already evaluated "
                                   "(every call of mutation 'returns_none' failed, so each child was its parent: see "
                                   "the faults)"), summary.ended_early


def test_a_mutation_that_always_gives_back_its_parent_is_said(write_experiment, tmp_path: Path, capsys) -> None:
    """No fault (its answer is a valid genome), but every child repeats its parent: the summary, status and report
    say so instead of nothing."""
    exp = faulty_experiment(mutations=[{"name": "returns_parent", "prob": 0.6}, {"name": "nb201_change_edge", "prob": 0.4}])
    out = tmp_path / "run"
    assert main(["run", str(write_experiment(exp)), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    line = next((x for x in text.splitlines() if "returns_parent" in x), "")
    assert re.search(r"mutation 'returns_parent' gave back its parent unchanged in all \d+ calls \(its children "
                     r"repeat their parents", line), text
    assert "nb201_change_edge" not in text  # a healthy operator is not listed
    assert main(["status", str(out)]) == 0 and "gave back its parent unchanged" in capsys.readouterr().out
    assert "gave back its parent unchanged in every call" in write_report(out, tmp_path / "r.html").read_text()


def test_a_crossover_that_always_gives_back_its_parents_is_said(write_experiment, tmp_path: Path, capsys) -> None:
    """As for a mutation: two different parents back as they were, in every call, is said; check_crossover fails it."""
    exp = faulty_experiment(mutations=[{"name": "nb201_change_edge", "prob": 1}], plugins=["lazy_crossover"],
                            crossovers=[{"name": "returns_parents", "prob": 1}])  # fmt: skip
    exp["strategy"] = {"name": "ga", "params": {"population_size": 8, "offspring": 8, "generations": 4, "cxpb": 1.0,
                                                "mutpb": 0.0}}  # fmt: skip
    out = tmp_path / "run"
    try:
        assert main(["run", str(write_experiment(exp)), "--out", str(out), "--quiet"]) == 0
        text = capsys.readouterr().out
        assert re.search(r"crossover 'returns_parents' gave back its parents unchanged in all \d+ calls", text), text
        with pytest.raises(AssertionError, match=r"returns_parents gave back its two parents unchanged in (\d+) of \1 "):
            check_crossover(CROSSOVERS.get("returns_parents")(), make_space("nb201"))  # registered by the plug-in
    finally:
        CROSSOVERS._items.pop("returns_parents", None)
        sys.modules.pop("lazy_crossover", None)


def test_a_killed_run_is_not_finished_and_its_faults_are_kept(write_experiment, tmp_path: Path) -> None:
    exp = faulty_experiment(fitness={"name": "toy", "params": {"sleep": 0.05}},
                            strategy={"name": "ga", "params": {"population_size": 8, "generations": 30}})  # fmt: skip
    cfg = write_experiment(exp)
    out = tmp_path / "run"
    env = {**__import__("os").environ, "PYTHONPATH": str(PLUGINS)}
    env.pop("EVONAS_TEST_OPS_FIXED", None)
    proc = subprocess.Popen([sys.executable, "-m", "evonas", "run", str(cfg), "--out", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (out / "journal.sqlite").exists() and len(journal_rows(out)) >= 12 and operator_faults(out):
                break
            time.sleep(0.05)
        st = read_status(out)
        assert st["state"] == "running", st
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    st = read_status(out)
    assert st["state"] == "stopped (its process is gone)"
    text = format_status(st)
    assert "finished" not in text and "faults    mutation '" in text and f"evonas resume {out}" in text


def test_the_deap_toolbox_says_operator_faults_and_strict_stops(write_experiment, capsys) -> None:
    """Through build(...).toolbox() a faulty operator is said in one line, as `evonas run` says it, and counted in
    toolbox.operator_stats(); with strict: true its first fault raises OperatorFault."""
    from evonas.engine.build import build

    exp = load_experiment(write_experiment(faulty_experiment(mutations=[{"name": "returns_none", "prob": 1.0}])))
    with build(exp).toolbox(workers=0) as tb:
        pop = tb.population(n=4)
        children = [tb.mutate(tb.clone(p))[0] for p in pop]
    assert [c.key for c in children] == [p.key for p in pop]  # every try failed: the parent, as documented
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("evonas: mutation")]
    assert len(err) == 1 and err[0].startswith("evonas: mutation 'returns_none' failed (returned None)"), err
    assert "the search goes on (strict: true stops instead)" in err[0]
    stats = tb.operator_stats()
    assert [(s["name"], s["calls"], s["failures"]) for s in stats] == [("returns_none", 4, 4)]
    strict = load_experiment(write_experiment(faulty_experiment(mutations=[{"name": "returns_none", "prob": 1.0}],
                                                                strict=True), name="strict"))  # fmt: skip
    with build(strict).toolbox(workers=0, quiet=True) as tb:
        with pytest.raises(OperatorFault, match="mutation 'returns_none'"):
            tb.mutate(tb.population(n=1)[0])
    assert capsys.readouterr().err == ""  # quiet: no line


def test_the_deap_toolbox_says_a_mutation_that_always_gives_back_its_parent(write_experiment, capsys) -> None:
    """A DEAP loop has no summary: the toolbox says an operator idle in its first 10 calls, once."""
    from evonas.engine.build import build

    exp = load_experiment(write_experiment(faulty_experiment(mutations=[{"name": "returns_parent", "prob": 1.0}])))
    with build(exp).toolbox(workers=0) as tb:
        pop = tb.population(n=4)
        for _ in range(5):
            for p in pop:
                tb.mutate(tb.clone(p))
    err = [line for line in capsys.readouterr().err.splitlines() if "returns_parent" in line]
    assert err == ["evonas: mutation 'returns_parent' gave back its parent unchanged in all 10 calls (its children "
                   "repeat their parents: does it return the genome it changed?); the search goes on"], err


def test_a_plug_in_that_fails_to_import_is_named_with_its_line(write_experiment, tmp_path: Path, capsys) -> None:
    (tmp_path / "fails_on_import.py").write_text("x = 1\ny = 1 / 0\n")
    exp = write_experiment(toy_experiment(plugins=["fails_on_import.py"]))
    assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("plugins[0]: cannot import module 'fails_on_import.py' (ZeroDivisionError: division by zero at "
                        "fails_on_import.py:2)"), err
    assert main(["list", "--plugins", str(tmp_path / "fails_on_import.py")]) == 2
    assert "(ZeroDivisionError: division by zero at fails_on_import.py:2)" in capsys.readouterr().err
    sys.modules.pop("fails_on_import", None)


HANGING_FITNESS = '''
import time
from evonas.fitness import FITNESSES
from evonas.fitness.toy import ToyFitness


@FITNESSES.register("hang_on_build")
class HangOnBuild(ToyFitness):
    def __init__(self, **params):
        time.sleep(10**6)  # waits on a server that never answers
        super().__init__(**params)
'''


def test_a_fitness_constructor_that_hangs_ends_the_command_in_one_line(tmp_path: Path) -> None:
    """The command builds the experiment (plug-ins, space, dataset, fitness) before any worker starts: a
    constructor that never returns hung `evonas run` silently; it ends after backend.params.startup_timeout, in one
    line naming its file and line, exit 2, with no run folder made."""
    (tmp_path / "hangfit.py").write_text(HANGING_FITNESS)
    exp = tmp_path / "exp.yaml"
    exp.write_text("name: h\nseed: 0\nplugins: [hangfit.py]\nspace: {name: nb201}\nfitness: {name: hang_on_build}\n"
                   "strategy: {name: random, params: {samples: 4}}\nworkers: 1\n"
                   "backend: {name: local, params: {startup_timeout: 2}}\n")  # fmt: skip
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "evonas", "run", str(exp), "--out", str(tmp_path / "run"), "--quiet"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "the experiment did not finish building within 2 s (waiting at hangfit.py:10)" in lines[0]
    assert "backend.params.startup_timeout sets the limit" in lines[0]
    assert not (tmp_path / "run").exists() and time.monotonic() - start < 60


BROKEN_STRATEGIES = '''
from evonas.strategies import STRATEGIES
from evonas.strategies.base import SteadyState


@STRATEGIES.register("t_init_raises")
class InitRaises(SteadyState):
    def __init__(self, ctx, *, samples: int | None = None, **common):
        super().__init__(ctx, samples=samples, **common)
        raise RuntimeError("bad init")

    def propose(self):
        return self.sample()

    def learn(self, candidate, individual):
        pass


@STRATEGIES.register("t_no_learn")
class NoLearn(SteadyState):
    def propose(self):
        return self.sample()


@STRATEGIES.register("t_raises_mid")
class RaisesMid(SteadyState):
    def propose(self):
        if self.evaluated >= 3:
            raise ValueError("strategy exploded")
        return self.sample()

    def learn(self, candidate, individual):
        pass
'''


@pytest.fixture
def broken_strategies(tmp_path: Path):
    (tmp_path / "t_strats.py").write_text(BROKEN_STRATEGIES)
    yield tmp_path / "t_strats.py"
    from evonas.strategies import STRATEGIES

    for name in ("t_init_raises", "t_no_learn", "t_raises_mid"):
        STRATEGIES._items.pop(name, None)
    sys.modules.pop("t_strats", None)


def test_a_plug_in_strategy_that_cannot_be_built_is_named_with_its_line(tmp_path: Path, broken_strategies, capsys) -> None:
    """A strategy whose __init__ raises: its name, error and line (it was `run: RuntimeError: bad init`, exit 1);
    one missing a method: strategy.name, not strategy.params; a bad value is still the parameters' mistake."""
    for name, params, expected in (
        ("t_init_raises", {}, "strategy: the plug-in strategy 't_init_raises' raised RuntimeError: bad init at "
                              "t_strats.py:10 while it was built"),
        ("t_no_learn", {}, "strategy.name: strategy 't_no_learn': Can't instantiate abstract class NoLearn"),
        ("t_init_raises", {"samples": -1}, "strategy.params.samples: expected an integer >= 1, got -1"),
    ):  # fmt: skip
        exp = tmp_path / f"{name}.yaml"
        exp.write_text(yaml.safe_dump({"name": "x", "seed": 0, "plugins": ["t_strats.py"], "space": {"name": "nb201"},
                                       "fitness": {"name": "toy"}, "strategy": {"name": name, "params": params},
                                       "budget": 5, "workers": 0}))  # fmt: skip
        assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
        assert not (tmp_path / "run").exists()


def test_a_plug_in_strategy_that_raises_in_a_benchmark_is_named_with_its_seed(tmp_path: Path, broken_strategies,
                                                                              capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["benchmark", "nb201", "--plugins", "t_strats.py", "--strategies", "t_raises_mid", "--runs", "2",
            "--workers", "0", "--quiet"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["evonas: benchmark: strategy 't_raises_mid', seed 0: ValueError: strategy exploded at t_strats.py:29; "
                   "the benchmark stopped (its table would leave that search out)"], err


def test_an_idle_built_in_operator_is_blamed_on_the_space_not_on_its_code() -> None:
    """mlp_add_layer with max_layers: 1 can change nothing: the line says why, not 'does it return the genome'."""
    from evonas.engine.status import fault_lines

    stats = {"kind": "mutation", "name": "mlp_add_layer", "calls": 20, "failures": 0, "first_error": None,
             "unchanged": 20}  # fmt: skip
    assert fault_lines([{**stats, "builtin": True}])[0].endswith(
        "(its children repeat their parents: the space's parameters leave it nothing to change, e.g. max_layers: 1 "
        "for one that adds layers: leave it out of the mutations)")  # fmt: skip
    assert fault_lines([stats])[0].endswith("does it return the genome it changed?)")


def test_a_plug_in_mutation_that_changes_its_genome_in_place_never_changes_the_parent() -> None:
    """It is given its own copy (as DEAP's algorithms clone before mutating): the parent, whose key the journal holds,
    stays as it was, and the child counts as changed."""
    import random

    from evonas.evolution import Variation
    from evonas.operators import MUTATIONS
    from evonas.spaces import SPACES

    sys.path.insert(0, str(PLUGINS))
    try:
        import list_genome_space
    finally:
        sys.path.remove(str(PLUGINS))
    try:
        space = list_genome_space.ListGenomeSpace()
        variation = Variation(space, [(list_genome_space.InPlace(), 1.0)])
        rng = random.Random(0)
        for _ in range(20):
            parent = space.sample(rng=rng)
            before, key = list(parent.widths), space.key(parent)
            child, name = variation.mutate(parent, rng=rng)
            assert name == "t_list_in_place" and parent.widths == before and space.key(parent) == key
            assert child.widths != before
        assert variation.stats[("mutation", "t_list_in_place")].unchanged == 0
    finally:
        SPACES._items.pop("t_list_genome", None)
        MUTATIONS._items.pop("t_list_in_place", None)
        sys.modules.pop("list_genome_space", None)
