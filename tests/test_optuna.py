"""The ``optuna`` logger and ``evonas export-optuna``: each evaluation a trial of an Optuna study, and
``optuna-dashboard`` showing a study exported while its run was still running, in headless Chromium."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from evonas.cli import main
from evonas.config import load_experiment, parse_experiment
from evonas.engine.journal import Record
from evonas.engine.runner import Run
from evonas.runfolder import RunFolder, RunFolderError
from evonas.spaces import make_space

import optuna  # an extra (evonas[optuna]); the tests' extra installs it: missing, these tests fail

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def _write(tmp: Path, name: str, **changes: Any) -> Path:
    exp: dict[str, Any] = {"name": name, "seed": 0, "space": {"name": "nb201"}, "workers": 0, "cache": False}
    exp.update(changes)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    return path


def _study(storage: str, name: str) -> Any:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=storage)


def _numbers(study: Any) -> list[int]:
    return [t.user_attrs["evonas_trial"] for t in study.get_trials(deepcopy=False)]


def test_logger_writes_each_evaluation_as_a_trial_and_a_resume_adds_only_the_rest(tmp_path: Path) -> None:
    path = _write(tmp_path, "nb201_optuna", fitness={"name": "nb201_table"}, strategy={"name": "aging"}, budget=30,
                  loggers=["optuna"])  # fmt: skip
    run = tmp_path / "run"
    Run(load_experiment(path), run, progress=False).execute()
    storage = f"sqlite:///{run.resolve()}/optuna.db"  # the default: the run folder's optuna.db, named after it
    study = _study(storage, "run")
    records = RunFolder(run).records("seq")
    assert len(records) == 30 and len(study.trials) == 30
    assert _numbers(study) == [r.trial for r in records]  # in the order the results arrived
    space = make_space("nb201", {})
    choices = {c.name: c.options for c in space.categorical()}
    for trial, rec in zip(study.trials, records):
        assert set(trial.params) == set(choices)  # the categorical view: every nb201 edge, as the space names it
        assert all(value in choices[name] for name, value in trial.params.items())
        assert [trial.params[c.name] for c in space.categorical()] == [
            c.options[i] for c, i in zip(space.categorical(), space.to_categorical(space.from_dict(rec.genome)))
        ]
        assert trial.user_attrs["key"] == rec.key and trial.user_attrs["metrics.val_acc"] == rec.metrics["val_acc"]
        assert trial.state == optuna.trial.TrialState.COMPLETE and trial.values == [rec.metrics["val_acc"]]
    best = json.loads((run / "best.json").read_text())
    assert study.best_value == best["metrics"]["val_acc"] and study.best_trial.user_attrs["key"] == best["key"]
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE]
    assert study.user_attrs["evonas_experiment"] == "nb201_optuna"
    assert study.user_attrs["evonas_run_dir"] == str(run.resolve())

    Run.resume(run, overrides={"budget": 40}, progress=False).continue_run()  # more evaluations, same study
    study = _study(storage, "run")
    assert sorted(_numbers(study)) == sorted(r.trial for r in RunFolder(run).records()) and len(study.trials) == 40


def test_multiobjective_run_gets_a_study_with_a_pareto_front(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    path = _write(tmp_path, "mo", fitness={"name": "toy"},
                  strategy={"name": "nsga2", "params": {"population_size": 8, "offspring": 8, "generations": 2}},
                  objectives=[{"metric": "val_acc", "direction": "max"}, {"metric": "size", "direction": "min"}],
                  loggers=[{"name": "optuna", "params": {"storage": storage, "study_name": "two"}}])  # fmt: skip
    run = tmp_path / "mo-run"
    Run(load_experiment(path), run, progress=False).execute()
    study = _study(storage, "two")
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert len(study.trials) == len(RunFolder(run).records()) == 24
    front = study.best_trials
    assert front and all(t.values == [t.user_attrs["metrics.val_acc"], t.user_attrs["metrics.size"]] for t in front)
    assert study.metric_names == ["val_acc", "size"]
    assert not (run / "optuna.db").exists()  # the storage it was given, not the default


def test_a_restarted_run_starts_its_study_over_and_another_run_never_writes_into_it(tmp_path: Path, capfd) -> None:
    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    path = _write(tmp_path, "again", fitness={"name": "toy"},
                  strategy={"name": "ga", "params": {"population_size": 4, "generations": 1}},
                  loggers=[{"name": "optuna", "params": {"storage": storage, "study_name": "again"}}])  # fmt: skip
    run = tmp_path / "run"
    Run(load_experiment(path), run, progress=False).execute()
    assert len(_study(storage, "again").trials) == 8
    capfd.readouterr()
    Run.resume(run, restart=True, progress=False).continue_run()  # the journal set aside: the run starts over
    assert "held 8 trials of an earlier start of this run folder" in capfd.readouterr().err
    assert sorted(_numbers(_study(storage, "again"))) == sorted(r.trial for r in RunFolder(run).records())
    # another run folder naming the same study: the logger is turned off in one line, the run goes on
    Run(load_experiment(path), tmp_path / "other", progress=False).execute()
    err = capfd.readouterr().err
    assert "logger 'optuna' failed in setup" in err and "holds 8 trials of another run" in err
    assert len(RunFolder(tmp_path / "other").records()) == 8 and len(_study(storage, "again").trials) == 8


def _experiment(**changes: Any) -> Any:
    exp = {"name": "states", "space": {"name": "nb201"}, "fitness": {"name": "toy"}}
    exp.update(changes)
    return parse_experiment(exp)


def _record(trial: int, status: str, metrics: dict[str, Any], **fields: Any) -> Record:
    genome = fields.pop("genome", {"edges": ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none"]})
    fields.setdefault("fitness", None)
    return Record(trial=trial, key=f"k{trial}", generation=0, genome=genome, status=status, metrics=metrics,
                  seq=trial, finished_at=1.8e9 + trial, wall_s=2.0, **fields)  # fmt: skip


def test_each_status_becomes_a_trial_state(tmp_path: Path) -> None:
    from evonas.loggers.optuna import StudyWriter

    State = optuna.trial.TrialState
    exp = _experiment(objectives=[{"metric": "val_acc", "direction": "max"}], constraints=["size <= 100"])
    writer = StudyWriter(f"sqlite:///{tmp_path / 's.db'}", "states", exp, make_space("nb201", {}), tmp_path)
    records = [
        _record(0, "ok", {"val_acc": 0.5, "size": 3}),
        _record(1, "pruned", {"val_acc": 0.2, "pruned_at": 0.5}, curve=((0.25, 0.1), (0.5, 0.2))),
        _record(2, "failed", {}, error="CUDA out of memory"),
        _record(3, "infeasible", {"size": 500}),
        _record(4, "violated", {"val_acc": 0.9, "size": 500}),
        _record(5, "ok", {"val_acc": math.inf}),
        _record(6, "ok", {"val_acc": math.nan}),
        _record(7, "ok", {"val_acc": 0.4}, fidelity=0.25),
        _record(8, "ok", {}),
    ]
    assert [writer.add(r) for r in records] == [True] * 9
    assert [writer.add(r) for r in records] == [False] * 9  # never twice
    trials = writer.study.get_trials()
    writer.close()
    assert [t.state for t in trials] == [State.COMPLETE, State.PRUNED, State.FAIL, State.FAIL, State.COMPLETE,
                                         State.FAIL, State.FAIL, State.PRUNED, State.FAIL]  # fmt: skip
    assert trials[1].intermediate_values == {25: 0.1, 50: 0.2} and trials[7].intermediate_values == {25: 0.4}
    assert trials[0].system_attrs["constraints"] == [0.0] and trials[4].system_attrs["constraints"] == [1.0]
    assert trials[2].user_attrs["error"] == "CUDA out of memory" and trials[5].user_attrs["metrics.val_acc"] == "inf"
    assert "not finite" in trials[5].user_attrs["note"] and trials[8].values is None
    assert trials[0].datetime_start is not None and trials[0].duration.total_seconds() == pytest.approx(2.0)
    study = _study(f"sqlite:///{tmp_path / 's.db'}", "states")
    assert study.best_trial.number == 0  # the violated 0.9 is infeasible

    # a minimised objective: the pruner's curve ("higher is better") is told back in the metric's own sign
    minimise = _experiment(objectives=[{"metric": "val_loss", "direction": "min"}])
    writer = StudyWriter(f"sqlite:///{tmp_path / 's.db'}", "loss", minimise, None, tmp_path)
    writer.params.learn([{"edges": ["none"] * 6}, {"edges": ["nor_conv_3x3"] * 6}])
    writer.add(_record(0, "pruned", {"val_loss": 2.0}, curve=((0.5, -2.0),)))
    writer.add(_record(1, "ok", {"val_loss": 1.0}, genome={"edges": ["avg_pool_3x3"] + ["none"] * 5}))
    pruned, done = writer.study.get_trials()
    writer.close()
    assert pruned.intermediate_values == {50: 2.0}
    # no space here: the genome's own values, as categories of the values seen (learnt, and those of the first
    # trial to store the name); a value the stored categories lack is kept as a user attribute
    assert pruned.params["edges[1]"] == "skip_connect" and set(pruned.params) == {f"edges[{i}]" for i in range(6)}
    assert pruned.distributions["edges[0]"].choices == ("none", "nor_conv_3x3")
    assert "edges[0]" not in done.params and done.user_attrs["param.edges[0]"] == "avg_pool_3x3"
    assert done.params["edges[1]"] == "none"


# -- a run exported while it runs -----------------------------------------------------------------------------------


def _export(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["export-optuna", *args])
    return code, out.getvalue(), err.getvalue()


def _snapshot(folder: Path) -> dict[str, Any]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A run of slow evaluations (0.2 s each) exported once in the middle, and again once it has finished."""
    tmp = tmp_path_factory.mktemp("live")
    path = _write(tmp, "slow", fitness={"name": "toy", "params": {"sleep": 0.2}},
                  strategy={"name": "ga", "params": {"population_size": 8, "generations": 3}})  # fmt: skip
    run, storage = tmp / "run", f"sqlite:///{tmp / 'runs.db'}"
    env = {**os.environ, "EVONAS_CACHE": str(tmp / "cache.sqlite")}
    proc = subprocess.Popen([sys.executable, "-m", "evonas", "run", str(path), "--out", str(run), "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline, seen = time.time() + 90, 0
        while seen < 4:
            assert proc.poll() is None, f"the run ended before it could be exported: {proc.stderr.read()}"  # type: ignore[union-attr]
            assert time.time() < deadline, "the run wrote no results in 90 s"
            time.sleep(0.2)
            try:
                seen = len(RunFolder(run).records())
            except RunFolderError:
                seen = 0
        first = _export(str(run), "--storage", storage)
        running = proc.poll() is None
        shutil.copy(tmp / "runs.db", tmp / "mid.db")  # the study as that export, made while the run ran, left it
        proc.wait(timeout=120)
        assert proc.returncode == 0, proc.stderr.read()  # type: ignore[union-attr]
        before = _snapshot(run)
        second = _export(str(run), "--storage", storage)
        third = _export(str(run), "--storage", storage)
        yield {"run": run, "storage": storage, "mid": f"sqlite:///{tmp / 'mid.db'}", "first": first, "running": running, "second": second, "third": third,
               "records": RunFolder(run).records("seq"), "untouched": before == _snapshot(run)}  # fmt: skip
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_export_of_a_running_run_then_of_the_finished_run_adds_each_trial_once(live: dict[str, Any]) -> None:
    code, out, err = live["first"]
    assert code == 0 and live["running"], err
    added_first = int(out.split()[1])
    assert 4 <= added_first < len(live["records"]) and "the run is still running" in out
    assert out.splitlines()[1] == f"view      optuna-dashboard {live['storage']}"
    code, out, _ = live["second"]
    assert code == 0 and int(out.split()[1]) == len(live["records"]) - added_first and "not running" in out
    code, out, _ = live["third"]
    assert code == 0 and out.startswith("added     0 trials")
    study = _study(live["storage"], "run")
    assert _numbers(study) == [r.trial for r in live["records"]]  # each once, in arrival order
    assert len(study.trials) == len(live["records"]) == 32
    assert live["untouched"]  # exporting read the run folder and wrote nothing into it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dashboard_command() -> list[str]:
    script = Path(sys.executable).parent / "optuna-dashboard"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from optuna_dashboard._cli import main; sys.exit(main())"]


def test_optuna_dashboard_shows_the_trials_of_a_run_exported_while_running(live: dict[str, Any], tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it): the "
                    "dashboard cannot be checked in a browser")  # fmt: skip
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail('the playwright package is not installed (pip install -e ".[test]")')
    study = _study(live["mid"], "run")  # the trials exported while the run was running
    n, best = len(study.trials), study.best_trial.number
    assert 4 <= n < len(live["records"])
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "dashboard.log").open("w")
    server = subprocess.Popen([*_dashboard_command(), live["mid"], "--port", str(port), "--host", "127.0.0.1"],
                              stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline, studies = time.time() + 60, None
        while studies is None:
            assert server.poll() is None, (tmp_path / "dashboard.log").read_text()
            assert time.time() < deadline, "optuna-dashboard did not answer in 60 s"
            try:
                with urllib.request.urlopen(f"{base}/api/studies", timeout=5) as answer:
                    studies = json.load(answer)["study_summaries"]
            except OSError:
                time.sleep(0.3)
        study_id = next(s["study_id"] for s in studies if s["study_name"] == "run")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1800})
                page.goto(f"{base}/dashboard/studies/{study_id}")
                page.get_by_text(f"Best Trial (number={best})").wait_for(timeout=60_000)  # the history page, drawn
                page.goto(f"{base}/dashboard/studies/{study_id}/trials")
                page.get_by_text(f"{n} Trials", exact=True).wait_for(timeout=60_000)  # the trial list, each listed
                listed = page.get_by_text("Trial ", exact=False).all_inner_texts()
                assert {f"Trial {i}" for i in range(n)} <= {t.strip() for t in listed}
            finally:
                browser.close()
    finally:
        server.kill()
        server.wait()
        log.close()


# -- bad input --------------------------------------------------------------------------------------------------------


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evonas: export-optuna: ") and "Traceback" not in err, err
    return lines[0]


def test_bad_input_is_one_line_and_a_non_zero_exit(live: dict[str, Any], tmp_path: Path, monkeypatch) -> None:
    run = str(live["run"])
    storage = f"sqlite:///{tmp_path / 'x.db'}"
    cases = [
        ((run,), "--storage is required"),
        ((run, "--storage", "not a url"), "is not a database URL"),
        ((run, "--storage", "mysql://nobody@nowhere/db"), "cannot open the Optuna storage"),
        ((run, "--storage", f"sqlite:///{tmp_path / 'no' / 'such' / 'x.db'}"), "no folder"),
        ((run, "--storage", f"sqlite:///{run}/journal.sqlite"), "only its optuna.db"),
        ((str(tmp_path / "nothing"), "--storage", storage), "no such run folder"),
        ((str(tmp_path), "--storage", storage), "not a run folder"),
    ]
    for args, expected in cases:
        code, _, err = _export(*args)
        assert code != 0 and expected in _one_line(err), (args, err)
    # a study of that name with other directions, or holding another run's trials
    with contextlib.redirect_stderr(io.StringIO()):
        optuna.create_study(storage=storage, study_name="min", direction="minimize")
    code, _, err = _export(run, "--storage", storage, "--study-name", "min")
    assert code != 0 and "exists with the directions minimize" in _one_line(err)
    other = _write(tmp_path, "other", fitness={"name": "toy"}, seed=5,
                   strategy={"name": "ga", "params": {"population_size": 4, "generations": 1}})  # fmt: skip
    Run(load_experiment(other), tmp_path / "other-run", progress=False).execute()
    assert _export(str(tmp_path / "other-run"), "--storage", storage, "--study-name", "mine")[0] == 0
    code, _, err = _export(run, "--storage", storage, "--study-name", "mine")
    assert code != 0 and "holds trials of another run" in _one_line(err)
    monkeypatch.setitem(sys.modules, "optuna", None)  # optuna not installed
    code, _, err = _export(run, "--storage", storage)
    assert code != 0 and 'pip install "evonas[optuna]"' in _one_line(err)


def test_a_run_with_the_logger_and_without_optuna_is_refused_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    path = _write(tmp_path, "nooptuna", fitness={"name": "toy"}, loggers=["optuna"],
                  strategy={"name": "ga", "params": {"population_size": 4, "generations": 1}})  # fmt: skip
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "--quiet"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install "evonas[optuna]"' in err
    # and the logger's module imports without optuna (it is imported inside the methods)
    code = "import sys; sys.modules['optuna'] = None; import evonas.loggers.optuna as m; print(m.OptunaLogger.requires)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "('optuna',)" in done.stdout, done.stderr


# -- parameters: the genome's own values, one form per study --------------------------------------------------


def _define_by_run(arch: Any, input_shape: tuple[int, ...], num_classes: int) -> Any:
    """A define-by-run space with a float, a log-scaled float, a large int range and categories."""
    import torch.nn as nn

    width = arch.choice("width", [4, 8])
    arch.float("dropout", 0.0, 0.5)
    arch.float("lr", 1e-4, 1e-1, log=True)
    arch.int("units", 8, 256, step=8)
    arch.choice("optimizer", ["adam", "sgd"])
    return nn.Sequential(nn.Flatten(), nn.Linear(6, width), nn.Linear(width, num_classes))


@pytest.mark.parametrize("name", ["nb201", "chain", "function"])
def test_parameters_are_the_genomes_own_values(name: str, tmp_path: Path) -> None:
    import random

    from evonas.loggers import genome_params
    from evonas.loggers.optuna import StudyWriter

    params = {"build": _define_by_run, "input_shape": [6], "num_classes": 3} if name == "function" else {}
    space = make_space(name, params)
    rng = random.Random(3)
    genomes = [space.to_dict(space.sample(rng=rng)) for _ in range(12)]
    writer = StudyWriter(f"sqlite:///{tmp_path / 'p.db'}", name, _experiment(), space, tmp_path)
    for i, genome in enumerate(genomes):
        writer.add(_record(i, "ok", {"val_acc": 0.1 * i}, genome=genome))
    trials = writer.study.get_trials()
    writer.close()
    Float, Cat = optuna.distributions.FloatDistribution, optuna.distributions.CategoricalDistribution
    for trial, genome in zip(trials, genomes):
        own = genome_params(genome)
        assert trial.params  # never stripped
        for param, value in trial.params.items():
            if name == "nb201":  # edges named by the space (edge[1<-0]): categories of the cell's operations
                assert isinstance(trial.distributions[param], Cat)
                continue
            if param in own:
                assert value == own[param] and type(value) is type(own[param]), (param, value, own[param])
        if name == "nb201":
            assert [trial.params[c.name] for c in space.categorical()] == [
                c.options[i] for c, i in zip(space.categorical(), space.to_categorical(space.from_dict(genome)))
            ]
        else:
            assert trial.params["lr"] == own["lr"] and trial.distributions["lr"].log  # not snapped to a grid
            assert isinstance(trial.distributions["lr"], Float)
            assert isinstance(trial.distributions["optimizer"], Cat)
    if name == "function":
        assert all(set(t.params) == set(genome_params(g)) for t, g in zip(trials, genomes))
        assert isinstance(trials[0].distributions["dropout"], Float) and not trials[0].distributions["dropout"].log
        assert isinstance(trials[0].distributions["units"], optuna.distributions.IntDistribution)
        assert isinstance(trials[0].distributions["width"], Cat)
        assert len({t.params["lr"] for t in trials}) == len(trials)  # a grid of 8 points would repeat
    study = _study(f"sqlite:///{tmp_path / 'p.db'}", name)
    best = max(range(len(genomes)), key=lambda i: 0.1 * i)
    if name != "nb201":
        assert study.best_params["lr"] == genome_params(genomes[best])["lr"]
    # the dashboard's importances (fANOVA) read these distributions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        importances = optuna.importance.get_param_importances(study)
    assert importances and set(importances) <= {p for t in trials for p in t.params}
    if name != "nb201":
        assert "lr" in importances


def test_a_study_written_in_one_parameter_form_refuses_the_other(live: dict[str, Any], tmp_path: Path) -> None:
    from evonas.loggers.optuna import StudyError, StudyWriter

    run = str(live["run"])
    storage = f"sqlite:///{tmp_path / 'forms.db'}"
    space = make_space("nb201", {})
    exp = RunFolder(live["run"]).experiment()
    records = RunFolder(live["run"]).records("seq")
    flat = StudyWriter(storage, "forms", exp, None, live["run"])  # as an export without the space's plug-ins
    flat.params.learn(r.genome for r in records)
    flat.describe_study()
    assert all(flat.add(r) for r in records[:5])
    flat.close()
    assert _study(storage, "forms").user_attrs["evonas_params"] == "genome"
    writer = StudyWriter(storage, "forms", exp, space, live["run"])  # the space's view now: refused, nothing added
    with pytest.raises(StudyError, match="the genomes' own values.*--plugins/--trust as before.*another study"):
        writer.describe_study()
    with pytest.raises(StudyError):
        writer.add(records[6])
    writer.close()
    code, _, err = _export(run, "--storage", storage, "--study-name", "forms")
    assert code == 2 and "--plugins/--trust as before" in _one_line(err)
    study = _study(storage, "forms")
    assert len(study.trials) == 5 and all(len(t.params) == 6 for t in study.trials)  # none stripped
    # the other way round: a study of the space's view refuses the genomes' own values
    assert _export(run, "--storage", storage, "--study-name", "view")[0] == 0
    writer = StudyWriter(storage, "view", exp, None, live["run"])
    with pytest.raises(StudyError, match="the search space's choices"):
        writer.describe_study()
    writer.close()
    # a parameter whose distribution conflicts with the study's is refused, never dropped
    with contextlib.redirect_stderr(io.StringIO()):
        other = optuna.create_study(storage=storage, study_name="clash", direction="maximize")
    clash: dict[str, Any] = {"edge[1<-0]": optuna.distributions.CategoricalDistribution(["x"])}
    trial = optuna.trial.create_trial(params={"edge[1<-0]": "x"}, distributions=clash,
                                      user_attrs={"evonas_trial": 10**6}, value=0.0)  # fmt: skip
    other.add_trial(trial)
    writer = StudyWriter(storage, "clash", exp, space, live["run"])
    with pytest.raises(StudyError, match="parameter 'edge\\[1<-0\\]'"):
        writer.add(records[0])
    writer.close()


def test_a_malformed_or_in_memory_storage_is_refused_before_the_run(tmp_path: Path, capsys) -> None:
    for url, expected in [("notaurl", "is not a database URL"), ("sqlite://", "in-memory"),
                          ("sqlite:///:memory:", "in-memory")]:  # fmt: skip
        path = _write(tmp_path, "badurl", fitness={"name": "toy"},
                      strategy={"name": "ga", "params": {"population_size": 4, "generations": 1}},
                      loggers=[{"name": "optuna", "params": {"storage": url}}])  # fmt: skip
        out = tmp_path / "r"
        assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "loggers[0].params" in err and expected in err, err
        assert not out.exists()


def test_export_refuses_an_in_memory_storage(live: dict[str, Any]) -> None:
    for url in ("sqlite://", "sqlite:///:memory:"):
        code, out, err = _export(str(live["run"]), "--storage", url)
        assert code == 2 and "in-memory" in _one_line(err) and not out
