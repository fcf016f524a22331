"""The ``tensorboard``, ``mlflow`` and ``wandb`` loggers, read back with the packages' own readers.

TensorBoard's ``EventAccumulator`` and its HParams plugin (the routes the HParams tab calls) read the event files;
``mlflow.tracking.MlflowClient`` reads the MLflow store; W&B's offline run file (``RUN/wandb/offline-run-*/
run-*.wandb``: W&B's record log, each entry a ``wandb.proto.wandb_internal_pb2.Record``) is read with W&B's own
protobuf classes. What they return is compared with ``best.json`` and the journal
(:class:`evonas.runfolder.RunFolder`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
import time
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
    loggers=["tensorboard", "mlflow", {"name": "wandb", "params": {"mode": "offline", "tags": ["digits"]}}],
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


def _wandb_records(path: Path) -> list[Any]:
    """The records of a W&B run file: W&B's record log (LevelDB's log format: a 7-byte header ``:W&B``, version;
    32 KiB blocks of chunks, each ``crc32 (4) | length (2) | type (1: full, 2: first, 3: middle, 4: last)``)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:7]
    out, parts, pos = [], [], 7
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:  # the block's zero padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:
            pos += left
            continue
        if pos + 7 + length > len(data):  # being written
            break
        parts.append(data[pos + 7 : pos + 7 + length])
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(parts))
            out.append(record)
            parts = []
    return out


def _wandb_key(item: Any) -> str:
    return item.key or ".".join(item.nested_key)


def _wandb_run(folder: Path, wait_s: float = 10.0) -> dict[str, Any]:
    """One offline W&B run folder, as what its records say: the run (id, name, project, tags), its config, the
    history rows in order, the summary at its end, the metric definitions, the exit code and the files. W&B's
    service may still be writing the file as ``finish()`` returns: read until it ends (the exit record)."""
    (path,) = folder.glob("run-*.wandb")
    began = time.monotonic()
    while True:
        out = _wandb_read(path)
        if out["exit"] is not None or time.monotonic() - began > wait_s:
            return out
        time.sleep(0.2)


def _wandb_read(path: Path) -> dict[str, Any]:
    folder = path.parent
    out: dict[str, Any] = {"history": [], "summary": {}, "metrics": {}, "config": {}, "exit": None, "folder": folder}
    if path.stat().st_size < 7:  # not written yet
        return out
    for record in _wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            out.update(id=run.run_id, name=run.display_name, project=run.project, tags=list(run.tags))
            out["config"].update({_wandb_key(u): json.loads(u.value_json) for u in run.config.update})
        elif kind == "config":
            out["config"].update({_wandb_key(u): json.loads(u.value_json) for u in record.config.update})
        elif kind == "history":
            out["history"].append({_wandb_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            out["summary"].update({_wandb_key(u): json.loads(u.value_json) for u in record.summary.update})
        elif kind == "metric":
            out["metrics"][record.metric.name or record.metric.glob_name] = record.metric.step_metric
        elif kind == "exit":
            out["exit"] = record.exit.exit_code
    return out


def _wandb_runs(run_dir: Path) -> list[dict[str, Any]]:
    """The run folder's offline W&B runs (one per session), oldest first."""
    return [_wandb_run(f) for f in sorted((run_dir / "wandb").glob("offline-run-*"))]


def _wandb_table(run: dict[str, Any]) -> dict[str, Any]:
    path = run["folder"] / "files" / run["summary"]["evaluations_table.path"]
    return json.loads(path.read_text())


def _column(rows: list[dict[str, Any]], key: str) -> list[tuple[int, Any]]:
    """``(trial, value)`` of each history row holding ``key``, in the order they were logged."""
    return [(row["trial"], row[key]) for row in rows if key in row]


@pytest.fixture(scope="module")
def packages() -> None:
    """The tests' extra installs them all (pip install -e ".[test]"): missing, the tests fail, they never skip."""
    import mlflow  # noqa: F401
    import tensorboard  # noqa: F401
    import wandb  # noqa: F401


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
        "wandb": _wandb_runs(run_dir),
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


# -- Weights & Biases --------------------------------------------------------------------------------
def test_wandb_has_one_run_with_every_evaluation_the_best_and_the_table(full) -> None:
    run_dir, summary = full
    evaluated = _evaluated(run_dir)
    complete = [r for r in evaluated if r.complete]
    (run,) = _wandb_runs(run_dir)
    kept = json.loads((run_dir / "wandb" / "evonas_run.json").read_text())
    assert (run["id"], run["name"], run["project"], run["tags"]) == (kept["id"], "run", "tracked", ["digits"])
    # its config: the run's settings as config.yaml records them
    settings = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert {k: run["config"][k] for k in settings} == settings
    assert run["config"]["strategy"]["params"]["population_size"] == 4
    # trial the x axis of eval/ and best/, gen of generation/
    assert run["metrics"]["eval/*"] == run["metrics"]["best/*"] == "trial"
    assert run["metrics"]["generation/*"] == "gen"
    # one eval/val_acc per evaluation, at its trial, with its own value
    history = run["history"]
    assert len(evaluated) == summary.evaluations == 12 and len(complete) == 12
    assert _column(history, "eval/val_acc") == [(r.trial, r.metrics["val_acc"]) for r in evaluated]
    assert [t for t, _ in _column(history, "eval/fidelity")] == [r.trial for r in evaluated]
    assert all(v > 0 for _, v in _column(history, "eval/wall_s"))
    # the best so far never goes down, and ends on best.json's
    best = [v for _, v in _column(history, "best/val_acc")]
    assert len(best) == 12 and best == sorted(best) and best[-1] == _best(run_dir)
    # the logbook: one row per generation
    logbook = json.loads((run_dir / "logbook.json").read_text())
    rows = [row for row in history if "generation/val_acc_max" in row]
    assert [(r["gen"], r["generation/val_acc_max"]) for r in rows] == [(g["gen"], g["val_acc_max"]) for g in logbook]
    # the end: the summary, the table of complete evaluations, exit code 0
    found = json.loads((run_dir / "best.json").read_text())
    end = run["summary"]
    assert (end["evaluations"], end["best_trial"]) == (12, found["trial"])
    assert end["best_val_acc"] == found["metrics"]["val_acc"]
    assert end["interrupted"] is False and run["exit"] == 0
    table = _wandb_table(run)
    assert table["columns"][:5] == ["trial", "key", "generation", "status", "wall_s"]
    assert {"lr", "layers[0].width", "val_acc"} <= set(table["columns"])
    by_trial = {row[0]: dict(zip(table["columns"], row)) for row in table["data"]}
    assert sorted(by_trial) == sorted(r.trial for r in complete)
    for rec in complete:
        assert by_trial[rec.trial]["val_acc"] == rec.metrics["val_acc"] and by_trial[rec.trial]["key"] == rec.key
        assert by_trial[rec.trial]["lr"] == rec.genome["lr"]
        assert by_trial[rec.trial]["layers[0].width"] == rec.genome["layers"][0]["width"]


def test_wandb_leaves_a_scripts_own_run_alone(packages, tmp_path: Path) -> None:
    """The logger makes a W&B run of its own: ``wandb.run`` (a script's run) stays active and gets none of it."""
    import wandb

    own = wandb.init(mode="offline", dir=str(tmp_path), project="mine", settings=wandb.Settings(silent=True))
    try:
        exp = toy_experiment(loggers=[{"name": "wandb", "params": {"mode": "offline", "project": "evo"}}])
        summary = Run(load_experiment(_write(tmp_path, exp)), tmp_path / "run", progress=False).execute()
        assert wandb.run is own
        own.log({"mine": 1.0})
    finally:
        own.finish()
    (mine,) = [_wandb_run(f) for f in (tmp_path / "wandb").glob("offline-run-*")]
    (evo,) = _wandb_runs(tmp_path / "run")
    assert mine["id"] != evo["id"] and (mine["project"], evo["project"]) == ("mine", "evo")
    assert [row["mine"] for row in mine["history"]] == [1.0]
    assert not any(key.startswith(("eval/", "best/", "generation/")) for row in mine["history"] for key in row)
    assert len(_column(evo["history"], "eval/val_acc")) == summary.evaluations


def test_wandb_ends_a_run_whose_logger_failed_with_exit_code_1(packages, monkeypatch, tmp_path: Path, capsys) -> None:
    """A logger that fails is closed with no summary: its W&B run ends with exit code 1 (W&B: failed), and what it
    logged before stays; the search goes on."""
    from evonas.loggers.wandb import WandbLogger

    real = WandbLogger.log_generation

    def fails_later(self: WandbLogger, row: Any) -> None:
        if row.get("gen") == 2:
            raise RuntimeError("the tracker went away")
        real(self, row)

    monkeypatch.setattr(WandbLogger, "log_generation", fails_later)
    exp = toy_experiment(loggers=[{"name": "wandb", "params": {"mode": "offline"}}])
    summary = Run(load_experiment(_write(tmp_path, exp)), tmp_path / "run", progress=False).execute()
    lines = [line for line in capsys.readouterr().err.splitlines() if "logger" in line]
    assert len(lines) == 1 and lines[0].startswith("evonas: logger 'wandb' failed in log_generation"), lines
    (run,) = _wandb_runs(tmp_path / "run")
    assert run["exit"] == 1 and "evaluations" not in run["summary"]
    assert [row["gen"] for row in run["history"] if "gen" in row] == [0, 1]
    assert 0 < len(_column(run["history"], "eval/val_acc")) < summary.evaluations


def test_wandb_never_waits_longer_than_finish_timeout_for_the_upload(packages, monkeypatch, tmp_path: Path) -> None:
    """W&B's ``finish()`` blocks while it uploads (a network that went away: for ever); the logger's ``close``
    gives up after ``finish_timeout`` with one line naming the folder ``wandb sync`` uploads later. From W&B 0.27
    W&B's own ``finish_timeout`` setting is set too."""
    import wandb

    from evonas.loggers import wandb as wandb_logger

    class Uploading:
        dir = str(tmp_path / "wandb" / "run-20261201_101500-abc" / "files")
        summary: dict[str, Any] = {}

        def finish(self, exit_code: int = 0) -> None:
            time.sleep(60)

    monkeypatch.setattr(wandb_logger, "_FINISH_SLACK_S", 0.0)
    logger = wandb_logger.WandbLogger(mode="offline", finish_timeout=0.5)
    logger.run = Uploading()
    began = time.monotonic()
    with pytest.raises(TimeoutError) as err:
        logger.close(None)
    assert time.monotonic() - began < 5 and logger.run is None
    said = str(err.value)
    assert "within 0.5 s" in said and f"wandb sync {tmp_path / 'wandb' / 'run-20261201_101500-abc'}" in said, said
    if "finish_timeout" in getattr(wandb.Settings, "model_fields", {}):
        assert logger._settings(wandb).finish_timeout == 0.5


def _run_without_network(
    tmp_path: Path, params: dict[str, Any], env: dict[str, str], terminal: bool = False
) -> dict[str, Any]:
    """``evonas run`` of a toy experiment with the wandb logger in a fresh process: no W&B settings or
    credentials of this machine (its own HOME), W&B's mode and key as ``env`` says; stdin closed, or with
    ``terminal`` stdin, stdout and stderr a terminal (a pseudo-terminal: where W&B would ask for an API key)."""
    exp = toy_experiment(loggers=[{"name": "wandb", "params": params}])
    cfg = _write(tmp_path, exp)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k not in ("NETRC", "HOME")}
    (tmp_path / "home").mkdir()
    clean.update(HOME=str(tmp_path / "home"), **env)
    command = [sys.executable, "-m", "evonas", "run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]
    began = time.monotonic()
    if not terminal:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240, env=clean
        )  # fmt: skip
        return {"code": done.returncode, "err": done.stderr, "all": done.stdout + done.stderr,
                "took": time.monotonic() - began, "run_dir": tmp_path / "run"}  # fmt: skip
    import pty
    import select

    main_fd, child_fd = pty.openpty()
    proc = subprocess.Popen(command, stdin=child_fd, stdout=child_fd, stderr=child_fd, env=clean)
    os.close(child_fd)
    seen = b""
    try:
        while time.monotonic() - began < 90:  # a prompt waits for input for ever: this gives up
            if select.select([main_fd], [], [], 1.0)[0]:
                try:
                    chunk = os.read(main_fd, 65536)
                except OSError:  # the process closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        code = proc.wait(timeout=60)
        os.close(main_fd)
    text = seen.decode(errors="replace").replace("\r\n", "\n")
    return {"code": code, "err": text, "all": text, "took": time.monotonic() - began, "run_dir": tmp_path / "run"}


@pytest.mark.parametrize("terminal", [False, True], ids=["stdin-closed", "terminal"])
def test_wandb_without_an_api_key_logs_offline_with_one_line(packages, tmp_path: Path, terminal: bool) -> None:
    """W&B's default mode (online) and no API key anywhere: never a prompt for one (on a terminal W&B itself would
    ask, and wait), one line saying so, and the run logged offline (``wandb sync`` uploads it later)."""
    out = _run_without_network(tmp_path, {"project": "evo"}, {}, terminal=terminal)
    run_dir = out["run_dir"]
    assert out["code"] == 0 and out["took"] < 120, (out["took"], out["all"][-2000:])
    assert "Enter your choice" not in out["all"] and "W&B account" not in out["all"], out["all"][-2000:]
    lines = [line for line in out["err"].splitlines() if "wandb:" in line or "evonas: logger" in line]
    assert len(lines) == 1 and lines[0].startswith("evonas: logger 'wandb' logs offline: W&B finds no API key"), lines
    (run,) = _wandb_runs(run_dir)
    # the command names every session's folder of this run id (a resume adds one): a shell glob
    assert f"wandb sync {run_dir / 'wandb'}/offline-run-*-{run['id']}`" in lines[0], lines[0]
    if not terminal:
        assert [line for line in out["err"].splitlines() if line.strip()] == lines
    assert len(_column(run["history"], "eval/val_acc")) == len(_evaluated(run_dir)) and run["exit"] == 0
    assert json.loads((run_dir / "wandb" / "evonas_run.json").read_text())["mode"] == "offline"


@pytest.mark.parametrize("server", ["refuses connections", "answers errors"])
def test_wandb_with_a_server_that_does_not_work_logs_offline_with_one_line(packages, tmp_path: Path, server) -> None:
    """An API key, and a W&B server that refuses connections (the logger asks it once before W&B starts a run:
    W&B would retry for ``init_timeout``) or answers every request with an error (W&B gives up after
    ``init_timeout``): the run is logged offline, one line saying why, and the run goes on to its end."""
    import http.server
    import socket
    import threading

    import wandb

    version = tuple(int(n) for n in wandb.__version__.split(".")[:3] if n.isdigit())
    if server == "answers errors" and version < (0, 28, 2):  # W&B's own: it waits at exit for the run it gave up on
        pytest.skip(f"W&B {wandb.__version__} waits at exit for a run it failed to start (fixed in 0.28.2)")

    class Failing(http.server.BaseHTTPRequestHandler):
        def _fail(self) -> None:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_HEAD = do_PUT = _fail

        def log_message(self, *args: Any) -> None:
            pass

    params = {"init_timeout": 3}
    env = {"WANDB_API_KEY": "x" * 40, "WANDB_MODE": "online"}
    if server == "refuses connections":
        with socket.socket() as sock:  # bound, never listening: connections to it are refused
            sock.bind(("127.0.0.1", 0))
            env["WANDB_BASE_URL"] = f"http://127.0.0.1:{sock.getsockname()[1]}"
            out = _run_without_network(tmp_path, params, env)
        says = "no answer from the W&B server (http://127.0.0.1:"
    else:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            env["WANDB_BASE_URL"] = f"http://127.0.0.1:{httpd.server_address[1]}"
            # W&B's own error reports go to that server too, and its exit retries them for 25 s: not the logger's
            env["WANDB_ERROR_REPORTING"] = "false"
            out = _run_without_network(tmp_path, params, env)
        finally:
            httpd.shutdown()
            httpd.server_close()
        says = "W&B did not start the run online ("
    run_dir = out["run_dir"]
    assert out["code"] == 0 and out["took"] < 120, (out["took"], out["err"][-2000:])
    lines = [line for line in out["err"].splitlines() if "evonas" in line]
    assert len(lines) == 1 and lines[0].startswith(f"evonas: logger 'wandb' logs offline: {says}"), lines
    assert "Traceback" not in out["err"] and (run_dir / "best.json").is_file()
    (run,) = _wandb_runs(run_dir)
    assert run["summary"]["evaluations"] == len(_evaluated(run_dir)) and run["exit"] == 0


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


def test_a_resumed_run_goes_on_in_the_same_wandb_run(resumed) -> None:
    run_dir, at_stop, summary = resumed["run_dir"], resumed["at_stop"], resumed["summary"]
    evaluated = _evaluated(run_dir)
    # stopped: one W&B run, ended (exit code 0, interrupted), every evaluation logged but the unlogged one
    (first,) = at_stop["wandb"]
    assert first["exit"] == 0 and first["summary"]["interrupted"] is True
    assert first["summary"]["evaluations"] == STOP_AFTER
    assert [t for t, _ in _column(first["history"], "eval/val_acc")] == list(range(STOP_AFTER - 1))
    # resumed: a second offline session of the same run id, logging what it evaluated itself, nothing twice
    sessions = _wandb_runs(run_dir)
    assert len(sessions) == 2 and sessions[0]["history"] == first["history"]
    kept = json.loads((run_dir / "wandb" / "evonas_run.json").read_text())
    assert sessions[0]["id"] == sessions[1]["id"] == kept["id"]
    trials = [t for s in sessions for t, _ in _column(s["history"], "eval/val_acc")]
    assert sorted(trials) == sorted({r.trial for r in evaluated} - {at_stop["unlogged"]})
    best = [v for s in sessions for _, v in _column(s["history"], "best/val_acc")]
    assert best == sorted(best) and best[-1] == _best(run_dir)
    last = sessions[1]
    assert (last["summary"]["evaluations"], last["summary"]["best_val_acc"]) == (summary.evaluations, _best(run_dir))
    assert last["exit"] == 0 and last["summary"]["interrupted"] is False
    # the table of the whole run: every complete evaluation, those of the first session among them
    table = _wandb_table(last)
    assert sorted(row[0] for row in table["data"]) == sorted(r.trial for r in evaluated if r.complete)


def test_a_run_stopped_before_its_first_result_resumes_in_the_same_wandb_run(
    packages, write_experiment, tmp_path: Path, monkeypatch
) -> None:
    from evonas.loggers import LOGGERS, Logger

    monkeypatch.setenv("WANDB_MODE", "offline")
    seen: list[bool] = []

    class StopAtSetup(Logger):
        def setup(self, info):
            seen.append(info.resumed)
            if len(seen) == 1:  # the first session stops (Ctrl-C) before any evaluation finishes
                raise KeyboardInterrupt

        def log_result(self, record):
            pass

    monkeypatch.setitem(LOGGERS._items, "stop_at_setup_test", StopAtSetup)

    cfg = write_experiment(toy_experiment(loggers=["wandb", "stop_at_setup_test"]))
    run_dir = tmp_path / "run"
    with pytest.raises((KeyboardInterrupt, RunInterrupted)):
        Run(load_experiment(cfg), run_dir, progress=False).execute()
    assert not _evaluated(run_dir)
    first = json.loads((run_dir / "wandb" / "evonas_run.json").read_text())["id"]
    summary = Run.resume(run_dir, progress=False).continue_run()
    # a resume, though the journal held nothing: the loggers go on with what they began, the summary says resumed
    assert seen == [False, True] and summary.resumed
    assert json.loads((run_dir / "wandb" / "evonas_run.json").read_text())["id"] == first
    assert {s["id"] for s in _wandb_runs(run_dir)} == {first}


# -- bad input, missing packages, failures -------------------------------------------------------------
@pytest.mark.parametrize("package", ["mlflow", "wandb"])
def test_a_missing_package_is_one_line(write_experiment, tmp_path: Path, monkeypatch, capsys, package) -> None:
    from evonas.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a))
    cfg = write_experiment(toy_experiment(loggers=["tensorboard", package]))
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "loggers[1].name" in err[0] and package in err[0] and f'pip install "evonas[{package}]"' in err[0]
    assert not (tmp_path / "run").exists()
    if package != "mlflow":
        return
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
        ({"name": "wandb", "params": {"mode": "cloud"}}, "loggers[0].params.mode", "expected 'online'"),
        ({"name": "wandb", "params": {"project": "team/search"}}, "loggers[0].params", "project"),
        ({"name": "wandb", "params": {"entity": " "}}, "loggers[0].params", "entity"),
        ({"name": "wandb", "params": {"tags": ["x" * 65]}}, "loggers[0].params", "tags"),
        ({"name": "wandb", "params": {"tags": "vision"}}, "loggers[0].params.tags", "expected"),
        ({"name": "wandb", "params": {"tags": [1, 2]}}, "loggers[0].params.tags", "expected a list of strings or null"),
        ({"name": "wandb", "params": {"finish_timeout": 0}}, "loggers[0].params", "finish_timeout"),
        ({"name": "wandb", "params": {"init_timeout": "soon"}}, "loggers[0].params.init_timeout", "expected"),
        ({"name": "wandb", "params": {"api_key": "abc"}}, "loggers[0].params.api_key", "unknown parameter"),
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
    """``evonas.loggers.tensorboard``, ``.mlflow`` and ``.wandb`` import nothing of their package until a run
    starts."""
    code = (
        "import sys; sys.modules['tensorboard'] = None; sys.modules['mlflow'] = None; sys.modules['wandb'] = None; "
        "sys.modules['torch.utils.tensorboard'] = None; "
        "import evonas.loggers.tensorboard, evonas.loggers.mlflow, evonas.loggers.wandb; "
        "from evonas.loggers import LOGGERS; print(*(LOGGERS.get(n).extra for n in ('tensorboard', 'mlflow', 'wandb')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["tensorboard", "mlflow", "wandb"], done.stderr


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
