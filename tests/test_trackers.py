"""The ``tensorboard`` and ``mlflow`` loggers, read back with the packages' own readers.

TensorBoard's ``EventAccumulator`` and its HParams plugin (the routes the HParams tab calls) read the event files;
``mlflow.tracking.MlflowClient`` reads the MLflow store. What they return is compared with ``best.json`` and the
journal (:class:`evonas.runfolder.RunFolder`).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from evonas.config import ConfigError, load_experiment
from evonas.engine.build import build
from evonas.engine.runner import Run, RunInterrupted
from evonas.runfolder import RunFolder

from conftest import digits_experiment, toy_experiment

#: a real training run: a CNN on the digits, 1 epoch on 300 samples, 12 evaluations in-process
DIGITS = digits_experiment(
    name="tracked",
    cache=False,  # module-scoped runs: never the user's evaluation cache
    loggers=["tensorboard", "mlflow"],
)
STOP_AFTER = 5


def _write(folder: Path, data: dict[str, Any], name: str = "exp") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _evaluated(run_dir: Path) -> list[Any]:
    """The journal's evaluations (what the run counts: infeasible genomes were never evaluated)."""
    return [r for r in RunFolder(run_dir).records() if r.status != "infeasible"]


def _best(run_dir: Path) -> float:
    return json.loads((run_dir / "best.json").read_text())["metrics"]["val_acc"]


def _events(run_dir: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})  # 0: keep every point
    acc.Reload()
    return acc


def _client(run_dir: Path) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{(run_dir / 'mlruns' / 'mlflow.db').resolve()}")


def _runs(run_dir: Path) -> tuple[list[Any], list[Any]]:
    """The MLflow store's parent runs and child runs (``mlflow.parentRunId``)."""
    client = _client(run_dir)
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


@pytest.fixture(scope="module")
def packages() -> None:
    """The tests' extra installs both (pip install -e ".[test]"): missing, the tests fail, they never skip."""
    import mlflow  # noqa: F401
    import tensorboard  # noqa: F401


@pytest.fixture(scope="module")
def full(packages, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One uninterrupted training run with both loggers."""
    folder = tmp_path_factory.mktemp("full")
    summary = Run(load_experiment(_write(folder, DIGITS)), folder / "run", progress=False).execute()
    return folder / "run", summary


@pytest.fixture(scope="module")
def resumed(packages, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same run stopped (as by Ctrl-C) after a few results, looked at, then resumed to its end."""
    folder = tmp_path_factory.mktemp("resumed")
    run_dir = folder / "run"
    seen: list[int] = []

    from evonas.loggers import LoggerGroup

    log_result = LoggerGroup.log_result

    def stop(self: LoggerGroup, rec: Any) -> None:  # Ctrl-C after the journal, before the loggers: the last
        seen.append(rec.trial)  # result is journalled and never logged at the stop
        if len(seen) == STOP_AFTER:
            raise KeyboardInterrupt
        log_result(self, rec)

    LoggerGroup.log_result = stop  # type: ignore[method-assign]
    try:
        with pytest.raises(RunInterrupted) as stopped:
            Run(load_experiment(_write(folder, DIGITS)), run_dir, progress=False).execute()
    finally:
        LoggerGroup.log_result = log_result  # type: ignore[method-assign]
    parents, children = _runs(run_dir)
    at_stop = {
        "evaluations": stopped.value.summary.evaluations,
        "unlogged": seen[-1],
        "parents": [(p.info.run_id, p.info.status) for p in parents],
        "children": len(children),
        "tb_evaluations": [e.value for e in _events(run_dir).Scalars("run/evaluations")],
    }
    summary = Run.resume(run_dir, progress=False).continue_run()
    return {"run_dir": run_dir, "at_stop": at_stop, "summary": summary}


# -- TensorBoard -------------------------------------------------------------------------------------
def test_tensorboard_reads_back_the_evaluation_count_and_the_best(full) -> None:
    run_dir, summary = full
    evaluated = _evaluated(run_dir)
    acc = _events(run_dir)
    assert len(evaluated) == summary.evaluations == 12
    assert [e.value for e in acc.Scalars("run/evaluations")] == [len(evaluated)]
    assert acc.Scalars("best/val_acc")[-1].value == pytest.approx(_best(run_dir), abs=1e-6)  # float32 in events
    assert acc.Scalars("run/best_val_acc")[-1].value == pytest.approx(_best(run_dir), abs=1e-6)
    # every evaluation at its trial number, with its own val_acc
    by_trial = {e.step: e.value for e in acc.Scalars("eval/val_acc")}
    assert by_trial == pytest.approx({r.trial: r.metrics["val_acc"] for r in evaluated}, abs=1e-6)
    assert {e.step for e in acc.Scalars("eval/fidelity")} == {r.trial for r in evaluated}
    assert all(e.value > 0 for e in acc.Scalars("eval/wall_s"))
    # the best so far only improves, step by step
    best = [e.value for e in sorted(acc.Scalars("best/val_acc"), key=lambda e: e.step)]
    assert best == sorted(best)
    # one point per logbook row (gen 0, 1, 2)
    logbook = json.loads((run_dir / "logbook.json").read_text())
    assert [e.step for e in acc.Scalars("generation/val_acc_max")] == [row["gen"] for row in logbook]
    assert [e.value for e in acc.Scalars("generation/val_acc_max")] == pytest.approx(
        [row["val_acc_max"] for row in logbook], abs=1e-6
    )


def test_tensorboard_hparams_tab_lists_every_complete_evaluation(full) -> None:
    """The routes TensorBoard's HParams tab calls, served by its own plugin over the run's event files."""
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import hparams_plugin
    from tensorboard.plugins.scalar import scalars_plugin
    from werkzeug.test import EnvironBuilder

    run_dir, _ = full
    logdir = str(run_dir / "tensorboard")
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    context = base_plugin.TBContext(
        logdir=logdir, multiplexer=multiplexer, data_provider=data_provider.MultiplexerDataProvider(multiplexer, logdir)
    )
    context.plugin_name_to_instance = {"scalars": scalars_plugin.ScalarsPlugin(context)}
    apps = hparams_plugin.HParamsPlugin(context).get_plugin_apps()

    def call(route: str, body: dict[str, Any]) -> Any:
        status: list[str] = []
        out = b"".join(apps[route](EnvironBuilder(method="POST", path=route, json=body).get_environ(),
                                   lambda s, h: status.append(s)))  # fmt: skip
        assert status == ["200 OK"], out[:300]
        return json.loads(out)

    experiment = call("/experiment", {"experimentName": ""})
    names = {h["name"] for h in experiment["hparamInfos"]}
    assert {"lr", "optimizer", "batch_size", "layers[0].width"} <= names, names
    assert {"tag": "hparams/val_acc", "group": ""} in [m["name"] for m in experiment["metricInfos"]]
    groups = call("/session_groups", {"experimentName": "", "allowedStatuses": ["STATUS_SUCCESS"], "colParams": [],
                                      "startIndex": 0, "sliceSize": 1000})  # fmt: skip
    complete = [r for r in _evaluated(run_dir) if r.complete]
    assert groups["totalSize"] == len(complete) > 0
    values = [{m["name"]["tag"]: m["value"] for m in g["metricValues"]} for g in groups["sessionGroups"]]
    shown = sorted(v["hparams/val_acc"] for v in values)
    assert shown == pytest.approx(sorted(r.metrics["val_acc"] for r in complete), abs=1e-6)


# -- MLflow ------------------------------------------------------------------------------------------
def test_mlflow_has_one_parent_run_with_a_child_run_per_evaluation(full) -> None:
    run_dir, summary = full
    evaluated = _evaluated(run_dir)
    client = _client(run_dir)
    parents, children = _runs(run_dir)
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.info.run_name == "run"
    assert client.get_experiment(parent.info.experiment_id).name == "tracked"
    assert parent.data.tags["evonas.run_dir"] == str(run_dir.resolve())
    assert parent.data.params["strategy.name"] == "ga" and parent.data.params["strategy.params.population_size"] == "4"
    assert parent.data.metrics["best_val_acc"] == _best(run_dir)
    assert parent.data.metrics["evaluations"] == summary.evaluations == len(evaluated)
    assert parent.data.tags["evonas.best_trial"] == str(json.loads((run_dir / "best.json").read_text())["trial"])
    # every evaluation a child of that parent, with its metrics and genome
    assert len(children) == len(evaluated)
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    journal = {str(r.trial): r for r in evaluated}
    assert sorted(c.data.params["trial"] for c in children) == sorted(journal)
    for child in children:
        rec = journal[child.data.params["trial"]]
        assert child.data.metrics["val_acc"] == rec.metrics["val_acc"]
        assert child.data.metrics["wall_s"] == pytest.approx(rec.wall_s) and child.data.metrics["fidelity"] == 1.0
        assert child.data.params["key"] == rec.key and child.data.params["status"] == rec.status
        assert child.data.params["origin"] == rec.origin and child.data.params["worker"] == rec.worker
        assert child.data.params["genome.lr"] == json.dumps(rec.genome["lr"])
        assert child.data.params["genome.layers.0.width"] == str(rec.genome["layers"][0]["width"])
        assert child.info.status == "FINISHED"
    # the logbook: one point per generation
    history = client.get_metric_history(parent.info.run_id, "generation/val_acc_max")
    logbook = json.loads((run_dir / "logbook.json").read_text())
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (row["gen"], row["val_acc_max"]) for row in logbook
    ]


# -- resume ------------------------------------------------------------------------------------------
def test_a_resumed_run_reuses_its_parent_run(resumed) -> None:
    run_dir, at_stop, summary = resumed["run_dir"], resumed["at_stop"], resumed["summary"]
    # stopped: one parent, KILLED; each evaluation the run journalled but the one whose on_result stopped it
    assert len(at_stop["parents"]) == 1 and at_stop["parents"][0][1] == "KILLED"
    assert at_stop["evaluations"] == STOP_AFTER
    assert at_stop["children"] == STOP_AFTER - 1  # MLflow logs that one when the run resumes
    assert at_stop["tb_evaluations"] == [STOP_AFTER]
    # resumed to the end: the same parent, FINISHED, a child per evaluation of the whole run (none twice)
    evaluated = _evaluated(run_dir)
    parents, children = _runs(run_dir)
    assert [(p.info.run_id, p.info.status) for p in parents] == [(at_stop["parents"][0][0], "FINISHED")]
    assert len(children) == len(evaluated) == summary.evaluations == 12
    assert sorted(int(c.data.params["trial"]) for c in children) == sorted(r.trial for r in evaluated)
    assert parents[0].data.metrics["best_val_acc"] == _best(run_dir)
    assert parents[0].data.metrics["evaluations"] == 12
    acc = _events(run_dir)
    assert [e.value for e in acc.Scalars("run/evaluations")] == [STOP_AFTER, 12]
    assert acc.Scalars("best/val_acc")[-1].value == pytest.approx(_best(run_dir), abs=1e-6)
    # TensorBoard: every evaluation but the one journalled and not logged when the run was stopped
    assert {e.step for e in acc.Scalars("eval/val_acc")} == {r.trial for r in evaluated} - {at_stop["unlogged"]}


# -- bad input, missing packages, failures -------------------------------------------------------------
def test_a_missing_package_is_one_line(write_experiment, tmp_path: Path, monkeypatch, capsys) -> None:
    from evonas.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    cfg = write_experiment(toy_experiment(loggers=["tensorboard", "mlflow"]))
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "loggers[1].name" in err[0] and "mlflow" in err[0] and 'pip install "evonas[mlflow]"' in err[0]
    assert not (tmp_path / "run").exists()
    # mlflow-skinny alone, without the SQLAlchemy and Alembic its default SQLite store needs
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "alembic" else real(name, *a))
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "logger 'mlflow' needs the package alembic: pip install \"evonas[mlflow]\"" in err[0], err


@pytest.mark.parametrize(
    "logger, where, says",
    [
        ({"name": "mlflow", "params": {"tracking_uri": ""}}, "loggers[0].params", "tracking_uri"),
        ({"name": "mlflow", "params": {"tracking_uri": "./mlruns"}}, "loggers[0].params", "folder store"),
        ({"name": "mlflow", "params": {"experiment_name": " "}}, "loggers[0].params", "experiment_name"),
        ({"name": "mlflow", "params": {"log_every_evaluation": "yes please"}}, "loggers[0].params.log_every_evaluation",
         "expected"),
        ({"name": "mlflow", "params": {"uri": "sqlite:///x.db"}}, "loggers[0].params.uri", "unknown parameter"),
        ({"name": "mlflow", "params": {"tags": {"team": [1, 2]}}}, "loggers[0].params", "tags.team"),
        ({"name": "mlflow", "params": {"tags": ["team"]}}, "loggers[0].params.tags", "expected"),
        ({"name": "tensorboard", "params": {"log_dir": ""}}, "loggers[0].params", "log_dir"),
        ({"name": "tensorboard", "params": {"hparams": "no"}}, "loggers[0].params.hparams", "expected"),
        ({"name": "tensorboard", "params": {"log_dir": 3}}, "loggers[0].params.log_dir", "expected"),
    ],
)  # fmt: skip
def test_bad_logger_params_are_one_line_naming_the_key(write_experiment, logger, where, says) -> None:
    cfg = write_experiment(toy_experiment(loggers=[logger]))
    with pytest.raises(ConfigError) as err:
        build(load_experiment(cfg))
    text = str(err.value)
    assert "\n" not in text and f"{cfg}: {where}" in text and says in text, text


def _failing(monkeypatch, tmp_path: Path, how: str) -> dict[str, Any]:
    """A toy run with both loggers, one of which fails as ``how`` says."""
    loggers: list[Any] = ["tensorboard", "mlflow"]
    if how == "mlflow store cannot be written":
        (tmp_path / "a-file").write_text("")
        loggers[1] = {"name": "mlflow", "params": {"tracking_uri": f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}"}}
    elif how == "mlflow fails mid-run":
        from mlflow.tracking import MlflowClient

        calls: list[int] = []
        real = MlflowClient.log_batch

        def flaky(self, run_id, *args, **kwargs):
            calls.append(1)
            if len(calls) > 6:
                raise RuntimeError("the tracking server went away")
            return real(self, run_id, *args, **kwargs)

        monkeypatch.setattr(MlflowClient, "log_batch", flaky)
    elif how == "tensorboard folder cannot be made":
        (tmp_path / "a-file").write_text("")
        loggers[0] = {"name": "tensorboard", "params": {"log_dir": str(tmp_path / "a-file")}}
    exp = toy_experiment(loggers=loggers, strategy={"name": "ga", "params": {"population_size": 6, "generations": 4}})
    cfg = _write(tmp_path, exp)
    summary = Run(load_experiment(cfg), tmp_path / "run", progress=False).execute()
    return {"summary": summary, "run_dir": tmp_path / "run"}


@pytest.mark.parametrize(
    "how, failed", [("mlflow store cannot be written", "mlflow"), ("mlflow fails mid-run", "mlflow"),
                    ("tensorboard folder cannot be made", "tensorboard")],
)  # fmt: skip
def test_a_failing_logger_says_one_line_and_the_run_goes_on(
    packages, monkeypatch, tmp_path: Path, capsys, how, failed
) -> None:
    out = _failing(monkeypatch, tmp_path, how)
    run_dir, summary = out["run_dir"], out["summary"]
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "logger" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"evonas: logger '{failed}' failed in ") and "off for the rest of the run" in lines[0]
    assert "Traceback" not in err
    assert summary.evaluations == len(_evaluated(run_dir)) > 6 and (run_dir / "best.json").is_file()
    if failed == "mlflow":  # the other logger went on to the end
        assert [e.value for e in _events(run_dir).Scalars("run/evaluations")] == [summary.evaluations]
    else:
        parents, children = _runs(run_dir)
        assert len(parents) == 1 and len(children) == summary.evaluations


def test_mlflow_without_child_runs_logs_the_parent_only(packages, tmp_path: Path) -> None:
    params = {"log_every_evaluation": False, "experiment_name": "mine", "tags": {"team": "vision", "sprint": 12}}
    exp = toy_experiment(loggers=[{"name": "mlflow", "params": params}])
    summary = Run(load_experiment(_write(tmp_path, exp)), tmp_path / "run", progress=False).execute()
    parents, children = _runs(tmp_path / "run")
    assert len(parents) == 1 and children == []
    assert _client(tmp_path / "run").get_experiment(parents[0].info.experiment_id).name == "mine"
    assert parents[0].data.metrics["evaluations"] == summary.evaluations
    assert parents[0].data.metrics["best_val_acc"] == _best(tmp_path / "run")
    assert parents[0].data.tags["team"] == "vision" and parents[0].data.tags["sprint"] == "12"


def test_the_modules_import_without_the_packages() -> None:
    """``evonas.loggers.tensorboard`` and ``.mlflow`` import nothing of their package until a run starts."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['tensorboard'] = None; sys.modules['mlflow'] = None; "
        "sys.modules['torch.utils.tensorboard'] = None; "
        "import evonas.loggers.tensorboard, evonas.loggers.mlflow; "
        "from evonas.loggers import LOGGERS; print(LOGGERS.get('tensorboard').extra, LOGGERS.get('mlflow').extra)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["tensorboard", "mlflow"], done.stderr


def test_a_resume_finds_its_parent_run_by_its_tag_without_the_pointer_file(packages, tmp_path: Path) -> None:
    """The run folder's pointer to its parent run is gone (copied without it, say): the resume finds the parent
    by its ``evonas.run_dir`` tag, and still makes no second one."""
    run_dir = tmp_path / "run"
    seen: list[int] = []

    def stop(rec: Any) -> None:
        seen.append(rec.trial)
        if len(seen) == 5:
            raise KeyboardInterrupt

    cfg = _write(tmp_path, toy_experiment(loggers=["mlflow"]))
    with pytest.raises(RunInterrupted):
        Run(load_experiment(cfg), run_dir, progress=False, on_result=stop).execute()
    (run_dir / "mlruns" / "evonas_parent_run.json").unlink()
    summary = Run.resume(run_dir, progress=False).continue_run()
    parents, children = _runs(run_dir)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == summary.evaluations == len(_evaluated(run_dir))
    assert json.loads((run_dir / "mlruns" / "evonas_parent_run.json").read_text())["run_id"] == parents[0].info.run_id


def test_runs_sharing_a_log_dir_each_get_their_own_folder(packages, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    shared = tmp_path / "tb"
    for name in ("first", "second"):
        exp = toy_experiment(loggers=[{"name": "tensorboard", "params": {"log_dir": str(shared), "hparams": False}}])
        Run(load_experiment(_write(tmp_path, exp, name)), tmp_path / name, progress=False).execute()
    multiplexer = EventMultiplexer(size_guidance={"scalars": 0})
    multiplexer.AddRunsFromDirectory(str(shared))
    multiplexer.Reload()
    assert sorted(multiplexer.Runs()) == ["first", "second"]  # hparams: false: no trials/ runs
    for name in ("first", "second"):
        count = [e.value for e in multiplexer.Scalars(name, "run/evaluations")]
        assert count == [len(_evaluated(tmp_path / name))]
    assert not (tmp_path / "first" / "tensorboard").exists()


@pytest.mark.parametrize("killed", ["after create_run", "after log_batch"])
def test_a_resume_after_a_kill_leaves_one_finished_child_per_evaluation(packages, tmp_path: Path, killed) -> None:
    """``kill -9`` while the MLflow thread logs a child: that child stays RUNNING (made, perhaps filled, never
    ended) and so does the parent. The resume ends and deletes it and logs the evaluation again, once: each
    evaluation of the journal has one child, none RUNNING, and no complete child is logged twice."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    from evonas.loggers import LoggerGroup

    run_dir = tmp_path / "run"
    state: dict[str, Any] = {"name": None, "run_id": None, "dead": False}
    seen: list[int] = []
    real = {name: getattr(MlflowClient, name) for name in ("create_run", "log_batch", "set_terminated", "set_tag")}

    def create_run(self, experiment_id, *args, **kwargs):
        if state["dead"]:  # the process is gone: nothing more reaches MLflow
            return None
        run = real["create_run"](self, experiment_id, *args, **kwargs)
        if kwargs.get("run_name") == state["name"]:
            state["run_id"] = run.info.run_id
            state["dead"] = killed == "after create_run"
        return run

    def log_batch(self, run_id, *args, **kwargs):
        if state["dead"]:
            return None
        real["log_batch"](self, run_id, *args, **kwargs)
        state["dead"] = run_id == state["run_id"] and killed == "after log_batch"

    def dead_or(name: str) -> Any:
        return lambda self, *args, **kwargs: None if state["dead"] else real[name](self, *args, **kwargs)

    log_result = LoggerGroup.log_result

    def stop(self: LoggerGroup, rec: Any) -> None:  # the kill: right after the 5th result reached the logger
        seen.append(rec.trial)
        if len(seen) == 5:
            state["name"] = f"trial-{rec.trial}"
        log_result(self, rec)
        if len(seen) == 5:
            raise KeyboardInterrupt

    cfg = _write(tmp_path, toy_experiment(loggers=["mlflow"]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LoggerGroup, "log_result", stop)
        patch.setattr(MlflowClient, "create_run", create_run)
        patch.setattr(MlflowClient, "log_batch", log_batch)
        patch.setattr(MlflowClient, "set_terminated", dead_or("set_terminated"))
        patch.setattr(MlflowClient, "set_tag", dead_or("set_tag"))
        with pytest.raises(RunInterrupted):
            Run(load_experiment(cfg), run_dir, progress=False).execute()
    parents, children = _runs(run_dir)
    assert state["dead"] and [p.info.status for p in parents] == ["RUNNING"]
    assert len(children) == 5 and [c.info.run_name for c in children if c.info.status == "RUNNING"] == [state["name"]]
    assert [c.info.status for c in children].count("FINISHED") == 4

    summary = Run.resume(run_dir, progress=False).continue_run()
    evaluated = _evaluated(run_dir)
    parents, children = _runs(run_dir)
    assert [(p.info.status, p.data.metrics["evaluations"]) for p in parents] == [("FINISHED", summary.evaluations)]
    assert len(children) == len(evaluated) == summary.evaluations > 5
    assert sorted(int(c.data.params["trial"]) for c in children) == sorted(r.trial for r in evaluated)
    journal = {str(r.trial): r for r in evaluated}
    for child in children:
        assert child.info.status == "FINISHED" and child.info.end_time is not None
        assert child.data.metrics["val_acc"] == journal[child.data.params["trial"]].metrics["val_acc"]
    # the half-made child: ended and deleted, not left RUNNING among the deleted runs either
    every = _client(run_dir).search_runs([parents[0].info.experiment_id], run_view_type=ViewType.ALL)
    assert "RUNNING" not in {r.info.status for r in every}
    assert [r.info.run_id for r in every if r.info.lifecycle_stage == "deleted"] == [state["run_id"]]


def test_an_unreachable_tracking_server_is_one_line_within_seconds(write_experiment, tmp_path: Path, capsys) -> None:
    """A refused port: MLflow's client would retry for minutes; the logger asks once, says so in one line naming
    itself and the URI, and the run goes on to its end."""
    import socket
    import time

    from evonas.cli import main

    with socket.socket() as sock:  # bound, never listening: connections to it are refused
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        cfg = write_experiment(toy_experiment(loggers=[{"name": "mlflow", "params": {"tracking_uri": uri}}]))
        began = time.monotonic()
        code = main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"])
        took = time.monotonic() - began
    err = capsys.readouterr().err
    assert code == 0 and took < 30, (code, took, err)
    lines = [line for line in err.splitlines() if "logger" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("evonas: logger 'mlflow' failed in ") and uri in lines[0], lines[0]
    assert "no answer from the tracking server" in lines[0] and "off for the rest of the run" in lines[0]
    assert (tmp_path / "run" / "best.json").is_file()
