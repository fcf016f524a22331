"""The engine end to end on cheap fitness functions: determinism, golden keys, resume, budget, failures."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conftest import toy_experiment
from evonas.config import load_experiment
from evonas.engine.runner import Run

GOLDEN = Path(__file__).parent / "golden" / "ga_nb201_toy_keys.json"


def journal_keys(run_dir: Path) -> list[str]:
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        return [r[0] for r in db.execute("SELECT key FROM evaluations ORDER BY trial")]


def run(write_experiment, tmp_path: Path, name: str, **changes) -> tuple[Path, object]:
    exp = load_experiment(write_experiment(toy_experiment(**changes), name=name))
    out = tmp_path / "runs" / name
    summary = Run(exp, out, progress=False).execute()
    return out, summary


def test_golden_three_generation_run(write_experiment, tmp_path: Path) -> None:
    """A seeded three-generation run asks for exactly the committed genome keys."""
    out, summary = run(write_experiment, tmp_path, "golden")
    keys = journal_keys(out)
    if os.environ.get("EVONAS_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(keys, indent=1) + "\n")
    assert keys == json.loads(GOLDEN.read_text())
    assert summary.generations == 4  # generation 0 + 3


def test_same_seed_same_keys_other_seed_differs(write_experiment, tmp_path: Path) -> None:
    a, _ = run(write_experiment, tmp_path, "a")
    b, _ = run(write_experiment, tmp_path, "b")
    c, _ = run(write_experiment, tmp_path, "c", seed=4)
    assert journal_keys(a) == journal_keys(b)
    assert journal_keys(a) != journal_keys(c)


def test_worker_processes_give_the_same_keys(write_experiment, tmp_path: Path) -> None:
    a, _ = run(write_experiment, tmp_path, "serial")
    b, _ = run(write_experiment, tmp_path, "pool", workers=2)
    assert journal_keys(a) == journal_keys(b)
    assert json.loads((a / "best.json").read_text())["key"] == json.loads((b / "best.json").read_text())["key"]


def test_extending_a_finished_run_equals_the_longer_run(write_experiment, tmp_path: Path) -> None:
    short, _ = run(write_experiment, tmp_path, "short")
    longer, _ = run(
        write_experiment, tmp_path, "long", strategy={"name": "ga", "params": {"population_size": 8, "generations": 5}}
    )
    resumed = Run.resume(short, progress=False, overrides={"generations": 5})
    summary = resumed.continue_run()
    assert journal_keys(short) == journal_keys(longer)
    assert summary.generations == 6
    for name in ("best.json", "population.json"):
        assert json.loads((short / name).read_text()) == json.loads((longer / name).read_text())


def test_run_folder_contents(write_experiment, tmp_path: Path) -> None:
    out, summary = run(write_experiment, tmp_path, "files")
    for name in ("config.yaml", "journal.sqlite", "logbook.csv", "logbook.json", "best.json"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "plots").exists()  # the engine draws nothing: `evonas run` does (tests/test_cli.py)
    best = json.loads((out / "best.json").read_text())
    assert set(best) >= {"genome", "key", "metrics"}
    assert 0 <= best["metrics"]["val_acc"] <= 1
    with sqlite3.connect(out / "journal.sqlite") as db:
        rows = db.execute("SELECT key, generation, genome, metrics, status, seed, wall_s FROM evaluations").fetchall()
    assert len(rows) == summary.evaluations == 32
    assert all(r[4] == "ok" and r[5] is not None and r[6] is not None for r in rows)
    assert best["metrics"]["val_acc"] == max(json.loads(r[3])["val_acc"] for r in rows)
    header = (out / "logbook.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["gen", "nevals", "evals"] and "val_acc_max" in header


def test_repeats_are_answered_from_the_journal(write_experiment, tmp_path: Path) -> None:
    """Copy-only offspring are all repeats: no evaluation beyond generation 0."""
    strategy = {"name": "ga", "params": {"population_size": 6, "generations": 3, "cxpb": 0.0, "mutpb": 0.0}}
    out, summary = run(write_experiment, tmp_path, "copies", strategy=strategy)
    assert summary.evaluations == 6
    assert summary.duplicates == 18
    assert len(set(journal_keys(out))) == 6


def test_budget_caps_evaluations(write_experiment, tmp_path: Path) -> None:
    out, summary = run(write_experiment, tmp_path, "budget", budget=13)
    assert summary.evaluations == 13 == len(journal_keys(out))


def test_random_search(write_experiment, tmp_path: Path) -> None:
    out, summary = run(
        write_experiment, tmp_path, "random", strategy={"name": "random", "params": {"samples": 25, "batch": 10}}
    )
    assert summary.evaluations == 25 and summary.generations == 3
    assert len(set(journal_keys(out))) == 25


def _run_plugin_fitness(write_experiment, tmp_path: Path, exp: dict, plugin: str, name: str,
                        columns: str) -> tuple[Path, Any, list[tuple]]:
    """Run ``exp`` with the fitness of ``tests/plugins/<plugin>.py`` copied beside its file: the run folder, the
    summary and the journal's ``columns`` of every evaluation."""
    path = write_experiment(exp, name=name)
    (path.parent / f"{plugin}.py").write_text((Path(__file__).parent / "plugins" / f"{plugin}.py").read_text())
    out = tmp_path / "runs" / name
    summary = Run(load_experiment(path), out, progress=False).execute()
    with sqlite3.connect(out / "journal.sqlite") as db:
        rows = db.execute(f"SELECT {columns} FROM evaluations").fetchall()
    return out, summary, rows


def test_failures_are_recorded_and_never_best(write_experiment, tmp_path: Path) -> None:
    exp = toy_experiment(fitness={"name": "faulty"}, plugins=["faulty_fitness"])
    out, summary, rows = _run_plugin_fitness(write_experiment, tmp_path, exp, "faulty_fitness", "faulty",
                                             "key, status, error, fitness")  # fmt: skip
    failed = [r for r in rows if r[1] == "failed"]
    assert failed and summary.failures == len(failed)
    from faulty_fitness import injected

    assert {r[2] for r in failed} == {injected(), "non-finite val_acc"}  # with the plug-in's line
    assert all(r[3] is None for r in failed)
    best = json.loads((out / "best.json").read_text())
    assert best["key"] not in {r[0] for r in failed}
    assert best["metrics"]["val_acc"] >= 2.0


def test_stop_failures_ends_a_search_whose_fitness_fails(write_experiment, tmp_path: Path, capsys) -> None:
    """``stop: {failures: N}`` (Ray Tune's ``fail_fast`` for N = 1): a fitness that fails every genome ends the search
    after N failures, naming the last, instead of spending the whole budget on failures; a resume ends there too."""
    from evonas.cli import main

    exp = toy_experiment(fitness={"name": "faulty", "params": {"every": 1}}, plugins=["faulty_fitness"],
                         strategy={"name": "random", "params": {"samples": 40}}, stop={"failures": 2})  # fmt: skip
    path = write_experiment(exp, name="failfast")
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert "evaluated 2 genomes (2 failed" in out, out
    assert "ended     early: 2 evaluations failed (stop.failures; the last, trial 1: RuntimeError: injected failure at " \
           "faulty_fitness.py:41)" in out, out
    assert "all failed" not in err  # (the stop says it)
    assert main(["resume", str(tmp_path / "r"), "--quiet"]) == 1
    assert "evaluated 2 genomes (2 failed" in capsys.readouterr().out


def test_a_run_in_which_every_evaluation_failed_exits_with_1(write_experiment, tmp_path: Path, capsys) -> None:
    from evonas.cli import main

    exp = toy_experiment(fitness={"name": "faulty", "params": {"every": 1}}, plugins=["faulty_fitness"],
                         strategy={"name": "random", "params": {"samples": 4}})  # fmt: skip
    path = write_experiment(exp, name="allfail")
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert "best      none: every evaluation failed" in out and "evaluated 4 genomes (4 failed" in out, out
    assert err.strip().splitlines() == [
        "evonas: the first 3 evaluations of this session all failed (trial 2: RuntimeError: injected failure at "
        "faulty_fitness.py:41); the run goes on, and its summary counts the failures",  # said as soon as it was so
        "evonas: the run found no best (its summary says why); exit code 1",
    ], err


@pytest.mark.parametrize("workers", [0, 1])
def test_what_a_fitness_returns_is_checked_per_evaluation(write_experiment, tmp_path: Path, workers: int) -> None:
    """A fitness that returns no dict, a metric that is no number, or calls sys.exit() fails that evaluation with
    the reason, in the run's process as in a worker (which neither dies nor is retried); numpy and torch scalars
    are numbers."""
    from odd_results_fitness import result_kind

    exp = toy_experiment(fitness={"name": "odd_results"}, plugins=["odd_results_fitness"], workers=workers,
                         strategy={"name": "random", "params": {"samples": 40, "batch": 10}})  # fmt: skip
    out, summary, rows = _run_plugin_fitness(write_experiment, tmp_path, exp, "odd_results_fitness", "odd",
                                             "key, status, error, metrics, safe_mode")  # fmt: skip
    assert len(rows) == summary.evaluations == 40 and summary.safe_mode == 0
    expected = {
        0: "TypeError: the fitness returned NoneType, not a dict of metrics such as {'val_acc': 0.93}",
        1: "TypeError: the fitness returned float, not a dict of metrics",
        4: "the objective metric 'val_acc' is True (bool), not a number",
        5: "the objective metric 'val_acc' is 'high' (str), not a number",
        6: "TypeError: the fitness returned metric 'per_class' as a ndarray of shape (3,); a metric is a number",
        7: "SystemExit: the fitness called sys.exit('bye')",
        8: "TypeError: the fitness returned a metric named 1 (int); names are strings",
    }
    kinds = set()
    for key, status, error, metrics, safe in rows:
        kind = result_kind(key)
        kinds.add(kind)
        if kind in expected:
            assert status == "failed" and error.startswith(expected[kind]), (kind, error)
        else:
            assert status == "ok" and error is None, (kind, error)
            values = json.loads(metrics)
            assert isinstance(values["val_acc"], float) and values["val_acc"] >= 2.0
            if kind == 2:
                assert values["params"] == 12.0
            if kind == 3:
                assert values["loss"] == 0.5
    assert kinds == set(range(10)), kinds  # every kind of result happened
    # the summary names the three most frequent reasons, and says how many failed for others
    from evonas.commands import _summary

    failures = next(line for line in _summary(summary, load_experiment(out / "config.yaml").objectives).splitlines()
                    if line.startswith("failures"))  # fmt: skip
    assert failures.endswith(f"; and {summary.failures - sum(n for _, n in summary.failure_reasons)} more failed for "
                             "other reasons (the journal's error column)"), failures
    assert result_kind(json.loads((out / "best.json").read_text())["key"]) not in expected
    # what the run judged failed (an objective that is no number) is never answered from the cache later
    again = Run(load_experiment(out / "config.yaml"), tmp_path / "again", progress=False).execute()
    assert again.cached == sum(1 for key, *_ in rows if result_kind(key) not in expected)


def test_fault_injection_in_worker_processes(write_experiment, tmp_path: Path) -> None:
    """Raises, NaN, hangs past the time limit, kills its own process: each recorded with its reason, the run completes."""
    from faulty_fitness import fault_kind, injected

    exp = toy_experiment(
        fitness={"name": "faulty", "params": {"every": 8, "hang": True, "crash": True}},
        plugins=["faulty_fitness"],
        strategy={"name": "random", "params": {"samples": 24, "batch": 12}},
        workers=2,
        timeout=1.0,
    )
    out, summary, rows = _run_plugin_fitness(write_experiment, tmp_path, exp, "faulty_fitness", "faults",
                                             "key, status, error")  # fmt: skip
    assert len(rows) == summary.evaluations == 24
    expected = {
        0: injected(),
        1: "non-finite val_acc",
        2: "worker timed out after 1 s and was killed, also when retried in safe mode (oneDNN off, fp32)",
        3: "worker died: killed (SIGKILL), likely out of memory, also when retried in safe mode (oneDNN off, fp32)",
    }
    kinds = {}
    for key, status, error in rows:
        kind = fault_kind(key, 8)
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind in expected:
            assert status == "failed" and error.startswith(expected[kind]), (key, kind, error)
        else:
            assert status == "ok" and error is None
    assert all(kinds.get(k) for k in expected), kinds  # every kind of fault happened
    best = json.loads((out / "best.json").read_text())
    assert fault_kind(best["key"], 8) not in expected and best["metrics"]["val_acc"] >= 2.0


def test_search_in_memory_matches_a_run(write_experiment, tmp_path: Path) -> None:
    from evonas.engine.build import build
    from evonas.engine.runner import search

    path = write_experiment(toy_experiment())
    out, _ = run(write_experiment, tmp_path, "files")
    result = search(build(load_experiment(path)))
    assert [r.key for r in result.records] == journal_keys(out)
    assert not any(p.name == "journal.sqlite" for p in Path.cwd().iterdir())


def test_a_strategy_stuck_on_repeats_stops(write_experiment, tmp_path: Path) -> None:
    """An nb201 space of two ops has 64 genomes: a very long GA runs out of new ones and the engine stops it."""
    from evonas.engine.runner import _Loop

    old = _Loop.max_repeats
    _Loop.max_repeats = 200
    try:
        out, summary = run(
            write_experiment,
            tmp_path,
            "stuck",
            space={"name": "nb201", "params": {"ops": ["none", "skip_connect"]}},
            strategy={"name": "ga", "params": {"population_size": 4, "generations": 100000}},
        )
    finally:
        _Loop.max_repeats = old
    assert summary.evaluations == len(set(journal_keys(out))) <= 2**6
    # the search ended before its plan: the summary and `evonas status` say why
    assert summary.ended_early == ("strategy 'ga' asked 200 genomes in a row that the run had already evaluated (is "
                                   "the search space used up, or does the strategy keep proposing genomes the run has "
                                   "seen? redraw() draws new ones)")  # fmt: skip
    from evonas.commands import _summary
    from evonas.engine.status import format_status, read_status

    assert f"ended     early: {summary.ended_early}" in _summary(summary, load_experiment(out / "config.yaml").objectives)
    shown = format_status(read_status(out))
    assert ": finished" in shown and f"ended     early: {summary.ended_early}" in shown and "error " not in shown


def test_a_steady_state_strategy_stuck_on_repeats_logs_its_evaluations_only(write_experiment, tmp_path: Path) -> None:
    """aging on the same 64 genomes: a logbook row per log_every distinct evaluations and a last partial one, `evals`
    the journal's count (it wrote a row per log_every repeats: hundreds of rows, evals past the engine's stop)."""
    from evonas.engine.outputs import read_logbook
    from evonas.engine.runner import _Loop

    old = _Loop.max_repeats
    _Loop.max_repeats = 200
    try:
        out, summary = run(
            write_experiment, tmp_path, "stuck_aging", space={"name": "nb201", "params": {"ops": ["none", "skip_connect"]}},
            strategy={"name": "aging", "params": {"population_size": 5, "sample_size": 2, "cycles": 100000}},
        )  # fmt: skip
    finally:
        _Loop.max_repeats = old
    assert summary.ended_early and summary.duplicates >= 200
    rows = read_logbook(out)
    n = summary.evaluations
    assert [r["evals"] for r in rows] == [*range(5, n + 1, 5), *([n] if n % 5 else [])], (n, [r["evals"] for r in rows])
    assert summary.generations == len(rows)
    from evonas.commands import _summary
    from evonas.engine.runner import Run

    _Loop.max_repeats = 200
    try:  # resumed as it is: the search ends early again, and nothing new is said, not the same summary alone
        again = Run.resume(out, progress=False).continue_run()
    finally:
        _Loop.max_repeats = old
    assert again.added == 0 and again.ended_early
    assert "nothing   new this session: its search ended early again, as above" in _summary(again, [])
    import html

    from evonas.report import write_report

    page = html.unescape(write_report(out, tmp_path / "r.html").read_text())
    assert f"<td>finished: {again.ended_early}</td>" in page  # the report says it ended early, and why


# -- a strategy's selection is checked before the run; a strategy that asks nothing is a fault ----------------


def _nsga2(**changes) -> dict:
    return toy_experiment(
        strategy={"name": "nsga2", "params": {"population_size": 6, "generations": 2}},
        objectives=[{"metric": "val_acc", "direction": "max"}, {"metric": "size", "direction": "min"}],
        cache=False,
        **changes,
    )


def test_a_selection_is_tried_before_anything_is_written(write_experiment, tmp_path: Path, capsys) -> None:
    """DEAP's selections declare no parameter types: the build tries the selection on a few made-up individuals."""
    import pytest

    from evonas.cli import main
    from evonas.config import ConfigError, parse_experiment
    from evonas.engine.build import build

    path = write_experiment(toy_experiment(selection={"name": "tournament", "params": {"tournsize": 3}}))
    for value, error in (("three", "selection.params.tournsize (from --set selection.params.tournsize): expected an "
                                   "integer, got the string 'three'"),  # (the default's type: checked by name)
                         ("0", "selection.params.tournsize (from --set selection.params.tournsize): expected an "
                               "integer >= 1, got 0")):  # fmt: skip
        out = tmp_path / f"run-{value}"
        assert main(["run", str(path), "--set", f"selection.params.tournsize={value}", "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert err.startswith(f"evonas: {path}: {error}"), err
        assert not out.exists()
    for params in ({"tournsize": 2}, {"tournsize": 50}, {}):  # good values (more than the made-up few) still build
        build(parse_experiment(toy_experiment(selection={"name": "tournament", "params": params})))
    mo = [{"metric": "val_acc", "direction": "max"}, {"metric": "size", "direction": "min"}]
    build(parse_experiment(toy_experiment(selection="spea2", objectives=mo)))
    sel = {"name": "tournament", "params": {"tournsize": -1}}
    with pytest.raises(ConfigError, match=r"selection.params.tournsize: expected an integer >= 1, got -1"):
        build(parse_experiment(toy_experiment(selection=sel)))


def test_a_multi_objective_strategy_refuses_a_selection_key(write_experiment, tmp_path: Path, capsys) -> None:
    import pytest

    from evonas.cli import main
    from evonas.config import ConfigError, parse_experiment
    from evonas.engine.build import build

    path = write_experiment(_nsga2())
    out = tmp_path / "run"
    assert main(["run", str(path), "--set", "selection=tournament", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"evonas: {path}: selection (from --set selection): strategy 'nsga2' chooses its own selection "
                   "(its params.selection: nsga2, nsga3 or spea2); remove the selection: key")  # fmt: skip
    assert not out.exists()
    for selection in ("nsga2", {"name": "spea2"}, {"name": "tournament", "params": {"tournsize": 5}}):
        with pytest.raises(ConfigError, match="selection: strategy 'nsga2' chooses its own selection"):
            build(parse_experiment(_nsga2(selection=selection)))
    build(parse_experiment(_nsga2(selection=None)))  # `selection:` left empty: the default, as if not written


def test_an_nsga2_run_resumes_from_its_config(write_experiment, tmp_path: Path, capsys) -> None:
    """config.yaml writes every default in; the selection an nsga2 run never uses is left out of it, and a run
    folder written before (with the default selection in its config.yaml) resumes as well."""
    import yaml

    from evonas.cli import main

    out, summary = run(write_experiment, tmp_path, "mo", **{k: v for k, v in _nsga2().items() if k != "name"})
    assert summary.evaluations == 18
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert "selection" not in config and config["strategy"]["params"]["selection"] == "nsga2"
    longer = Run.resume(out, progress=False, overrides={"generations": 3}).continue_run()
    assert longer.evaluations == 24 and longer.generations == 4
    assert "selection" not in yaml.safe_load((out / "config.yaml").read_text())
    # a config.yaml as evonas wrote it before: the default selection filled in
    config = yaml.safe_load((out / "config.yaml").read_text())
    config["selection"] = {"name": "tournament", "params": {"tournsize": 3}}
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["resume", str(out), "--generations", "4", "--quiet"]) == 0, capsys.readouterr().err
    assert len(journal_keys(out)) == 30


def test_a_strategy_that_asks_nothing_while_nothing_runs_stops_the_run(write_experiment, tmp_path: Path, capsys) -> None:
    """A steady-state strategy whose propose() gives None while nothing is in flight (and it is not done) would
    wait for ever: the run stops in one line naming it, never a run of 0 evaluations that ends well."""
    import pytest

    from evonas.cli import main
    from evonas.config import parse_experiment
    from evonas.engine.build import build
    from evonas.engine.loop import StrategyStalled
    from evonas.engine.runner import search

    for proposals in (0, 2):
        exp = toy_experiment(plugins=["idle_strategy"], strategy={"name": "idle", "params": {"proposals": proposals}},
                             budget=10, cache=False)  # fmt: skip
        out = tmp_path / f"run-{proposals}"
        assert main(["run", str(write_experiment(exp)), "--out", str(out), "--quiet"]) == 1
        cap = capsys.readouterr()
        err = cap.err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err and "logbook" not in err, err
        assert ("strategy 'idle' asked for nothing while no evaluation was running and it is not done "
                "(is_done() is False): the run cannot go on") in err, err  # fmt: skip
        assert len(journal_keys(out)) == proposals
        with pytest.raises(StrategyStalled, match="strategy 'idle' asked for nothing"):
            search(build(parse_experiment(exp)))


def test_the_python_api_refuses_wrong_arguments_in_one_line(write_experiment, tmp_path: Path) -> None:
    """What the command line checks, the Python API checks too, before anything is written: a negative worker
    count (it spun forever), a dict or a path instead of an Experiment, overrides of the wrong form."""
    from evonas.config import ConfigError
    from evonas.engine.build import build
    from evonas.engine.runner import search

    path = write_experiment(toy_experiment())
    exp = load_experiment(path)
    for workers, got in ((-1, "int -1"), ("x", "the string 'x'"), (2.5, "float 2.5"), (True, "True")):
        with pytest.raises(ConfigError, match=f"^workers: expected 'auto' or an integer >= 0, got {got}$"):
            Run(exp, tmp_path / "run", workers=workers)
        with pytest.raises(ConfigError, match="^workers: expected 'auto'"):
            build(exp).toolbox(workers=workers)
    assert not (tmp_path / "run").exists()
    for wrong in ({"name": "x"}, str(path)):
        with pytest.raises(TypeError, match="^Run: expected an Experiment .evonas.config.load_experiment"):
            Run(wrong, tmp_path / "run")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="^build: expected an Experiment"):
            build(wrong)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^search: expected a Built \(evonas.engine.build.build\(experiment\)\), got Experiment"):
        search(exp)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="overrides: expected a list of 'key=value' strings such as .'seed=1'., got the string"):
        load_experiment(path, overrides="seed=1")  # type: ignore[arg-type]
    Run(exp, tmp_path / "run", progress=False).execute()
    with pytest.raises(TypeError, match=r"^Run.resume: overrides is a dict such as \{'generations': 12\}"):
        Run.resume(tmp_path / "run", overrides=["generations=5"])  # type: ignore[arg-type]
    # only the run's length and the budget: another parameter would make the replay diverge, and break the folder
    from evonas.engine.runner import RunFolderError

    config = (tmp_path / "run" / "config.yaml").read_text()
    with pytest.raises(RunFolderError, match="resume extends only the run .generations. and the budget; 'mutpb' would "):
        Run.resume(tmp_path / "run", overrides={"mutpb": 0.1}, progress=False).continue_run()
    with pytest.raises(ConfigError, match="^resume's generations: expected an integer, got the string '5'$"):
        Run.resume(tmp_path / "run", overrides={"generations": "5"}, progress=False).continue_run()
    with pytest.raises(RunFolderError, match="resume's budget: expected an integer >= 1"):
        Run.resume(tmp_path / "run", overrides={"budget": "x"}, progress=False)
    assert (tmp_path / "run" / "config.yaml").read_text() == config  # nothing written
    assert Run.resume(tmp_path / "run", overrides={"generations": 4}, progress=False).continue_run().evaluations > 0


def test_default_run_folders_of_runs_started_together_never_collide(write_experiment, tmp_path: Path, monkeypatch) -> None:
    from evonas.engine.runner import default_run_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("time.strftime", lambda fmt, *a: "20260101-000000")  # the same second
    exp = load_experiment(write_experiment(toy_experiment()))
    assert default_run_dir(exp) == Path("runs/toy-20260101-000000")  # a name only
    assert not Path("runs").exists()
    claimed = [default_run_dir(exp, claim=True) for _ in range(3)]
    assert claimed == [Path("runs/toy-20260101-000000"), Path("runs/toy-20260101-000000-2"), Path("runs/toy-20260101-000000-3")]
    assert all(p.is_dir() and not any(p.iterdir()) for p in claimed)
    from evonas.cli import main

    assert main(["run", str(write_experiment(toy_experiment())), "--quiet"]) == 0  # the next one, in a claimed folder
    assert (Path("runs/toy-20260101-000000-4") / "journal.sqlite").is_file()


def test_a_timeout_with_workers_0_is_said_to_have_no_effect(write_experiment, tmp_path: Path, capsys) -> None:
    Run(load_experiment(write_experiment(toy_experiment(timeout=4))), tmp_path / "a", progress=False).execute()
    err = capsys.readouterr().err
    assert "evonas: timeout: 4 s has no effect with workers: 0 (an evaluation in the run's own process cannot be " in err
    Run(load_experiment(write_experiment(toy_experiment())), tmp_path / "b", progress=False).execute()
    assert "timeout" not in capsys.readouterr().err


def test_show_says_a_key_prefix_is_shared(write_experiment, tmp_path: Path, capsys) -> None:
    from collections import Counter

    from evonas.cli import main

    out, _ = run(write_experiment, tmp_path, "many", strategy={"name": "random", "params": {"samples": 1000}})
    prefix, n = Counter(k[:4] for k in journal_keys(out)).most_common(1)[0]
    assert n >= 2  # 1000 keys over 65,536 prefixes: some share one (the run is seeded: always the same ones)
    assert main(["show", str(out), prefix]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith(f"evonas: show: '{prefix}' is the start of {n} genomes' keys (")
    assert captured.out.count("trial     ") == n


def test_a_huge_string_metric_fails_its_evaluation_instead_of_bloating_every_file() -> None:
    from evonas.engine.backends import MAX_STRING_METRIC, plain_metrics

    assert plain_metrics({"val_acc": 0.5, "note": "x" * MAX_STRING_METRIC})["note"] == "x" * MAX_STRING_METRIC
    with pytest.raises(TypeError, match="the fitness returned metric 'log' as a string of 50,000,000 characters; a "
                                        "string metric is at most 10,000"):
        plain_metrics({"val_acc": 0.5, "log": "x" * 50_000_000})


def test_plot_run_draws_a_python_run_s_plots_into_its_folder(write_experiment, tmp_path: Path) -> None:
    """``Run.execute()`` draws no plots; ``evonas.commands.plot_run`` draws what ``evonas run`` would have."""
    from evonas.commands import plot_run
    from evonas.plotting import is_evonas_png

    out = tmp_path / "run"
    Run(load_experiment(write_experiment(toy_experiment())), out, progress=False).execute()
    assert not (out / "plots").exists()
    files = plot_run(out)
    assert {f.name for f in files} == {"fitness.png", "diagnostics.png"}
    assert all(f.parent == out / "plots" and is_evonas_png(f) for f in files)
    assert {f.name for f in plot_run(out, tmp_path / "elsewhere")} == {"fitness.png", "diagnostics.png"}


def test_run_names_a_run_dir_that_is_no_path(write_experiment) -> None:
    with pytest.raises(TypeError, match=r"Run: run_dir: expected a folder's path \(str or pathlib.Path\), got int"):
        Run(load_experiment(write_experiment(toy_experiment())), 123)  # type: ignore[arg-type]


def test_a_fitness_that_fails_its_first_evaluations_is_said_while_the_run_goes_on(write_experiment, tmp_path: Path,
                                                                                 capsys) -> None:  # fmt: skip
    """A Python run (no summary printed) whose fitness fails everything said nothing until it ended."""
    from evonas.fitness import FITNESSES, FitnessFunction

    @FITNESSES.register("t_worded")
    class Worded(FitnessFunction):
        metrics = ("score",)
        needs_dataset = False

        def evaluate(self, genome, *, space, dataset, seed):
            return {"score": "high"}

    try:
        exp = toy_experiment(fitness={"name": "t_worded"}, objectives=[{"metric": "score"}],
                             strategy={"name": "random", "params": {"samples": 5}})  # fmt: skip
        summary = Run(load_experiment(write_experiment(exp)), tmp_path / "run", progress=False).execute()
        assert summary.failures == 5
        lines = [x for x in capsys.readouterr().err.splitlines() if "evaluations of this session all failed" in x]
        assert lines == ["evonas: the first 3 evaluations of this session all failed (trial 2: the objective metric "
                         "'score' is 'high' (str), not a number); the run goes on, and its summary counts the failures"]
        Run(load_experiment(write_experiment(toy_experiment())), tmp_path / "fine", progress=False).execute()
        assert "all failed" not in capsys.readouterr().err
    finally:
        FITNESSES._items.pop("t_worded", None)


def test_the_interruption_says_how_to_go_on_with_the_plug_ins_a_new_process_needs() -> None:
    from types import SimpleNamespace

    from evonas.engine.runner import RunInterrupted

    summary = SimpleNamespace(run_dir=Path("runs/x"), stopped=None, evaluations=7)
    assert str(RunInterrupted(summary, ("my_fit.py",))) == (  # type: ignore[arg-type]
        "the run in runs/x stopped after 7 evaluations; what finished is recorded: go on with "
        "Run.resume('runs/x', plugins=['my_fit.py']).continue_run()")
    summary.finished_first = True  # the signal came while a finished run wrote its results
    assert str(RunInterrupted(summary, ())) == ("the run in runs/x had finished (7 evaluations) when the signal came, "
                                                "and its results are written")  # type: ignore[arg-type]


def test_search_result_best_is_what_best_json_of_a_run_chooses(write_experiment, tmp_path: Path) -> None:
    from evonas.engine.build import build
    from evonas.engine.runner import search

    cfg = write_experiment(toy_experiment())
    result = search(build(load_experiment(cfg)))
    Run(load_experiment(cfg), tmp_path / "run", progress=False).execute()
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert result.best is not None and (result.best.key, result.best.metrics) == (best["key"], best["metrics"])
    assert result.best.fitness[0] == max(r.fitness[0] for r in result.records if r.complete)
