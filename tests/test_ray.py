"""The Ray backend on a local Ray cluster: same genome keys as the local pool, a killed Ray worker's
evaluation redone, time limits and crashes recorded with their reasons."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
from pathlib import Path
from typing import Iterator

import pytest
import ray

from conftest import PLUGINS, toy_experiment
from evonas.config import load_experiment
from evonas.engine.runner import Run
from evonas.engine.status import read_status
from test_parallel import run_killing_the_first_evaluation


@pytest.fixture(scope="module", autouse=True)
def local_ray_cluster() -> Iterator[None]:
    """One local Ray instance (two CPUs) for the module; the backend joins it instead of starting its own. A new one
    (``address="local"``) even where a cluster runs on this machine (``ray start``), which ray.init would join."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def keys(run_dir: Path) -> list[str]:
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        return [r[0] for r in db.execute("SELECT key FROM evaluations ORDER BY trial")]


def test_generational_run_gives_the_same_keys_with_1_and_2_workers_and_ray(write_experiment, tmp_path: Path) -> None:
    runs = {}
    for name, changes in {
        "one": {"workers": 1},
        "two": {"workers": 2},
        "ray": {"workers": 2, "backend": {"name": "ray", "params": {"num_cpus": 1}}},
    }.items():
        out = tmp_path / "runs" / name
        Run(load_experiment(write_experiment(toy_experiment(**changes), name=name)), out, progress=False).execute()
        runs[name] = keys(out)
    assert len(runs["one"]) == 32
    assert runs["one"] == runs["two"] == runs["ray"]
    with sqlite3.connect(tmp_path / "runs" / "ray" / "journal.sqlite") as db:
        workers = {w for (w,) in db.execute("SELECT DISTINCT worker FROM evaluations")}
    assert workers and all(w.startswith("ray:") for w in workers), workers


def test_ray_worker_killed_mid_evaluation_is_retried(write_experiment, tmp_path: Path) -> None:
    out = run_killing_the_first_evaluation(write_experiment, tmp_path, "raykill", backend="ray")
    assert read_status(out)["live"]["backend"] == "ray"


def test_ray_time_limits_and_crashes_are_recorded(write_experiment, tmp_path: Path) -> None:
    """Hangs past the time limit are cancelled, processes that kill themselves retried: each recorded with its
    reason, and a fresh worker's start-up never counts against the limit."""
    from faulty_fitness import fault_kind, injected

    exp = toy_experiment(
        fitness={"name": "faulty", "params": {"every": 8, "hang": True, "crash": True}},
        plugins=["faulty_fitness"],
        strategy={"name": "random", "params": {"samples": 24, "batch": 12}},
        workers=2,
        timeout=2.0,
        backend="ray",
    )
    path = write_experiment(exp, name="rayfaults")
    shutil.copy(PLUGINS / "faulty_fitness.py", path.parent / "faulty_fitness.py")
    out = tmp_path / "runs" / "rayfaults"
    summary = Run(load_experiment(path), out, progress=False).execute()
    with sqlite3.connect(out / "journal.sqlite") as db:
        rows = db.execute("SELECT key, status, error FROM evaluations").fetchall()
    assert len(rows) == summary.evaluations == 24
    seen = set()
    for key, status, error in rows:
        kind = fault_kind(key, 8)
        seen.add(kind)
        if kind == 0:
            assert error == injected()
        elif kind == 2:
            assert error == "timed out after 2 s"
        elif kind == 3:
            assert status == "failed" and error.startswith("worker died ("), error
        elif kind != 1:
            assert status == "ok" and error is None
    assert {2, 3} <= seen, seen
    best = json.loads((out / "best.json").read_text())
    assert fault_kind(best["key"], 8) not in (0, 1, 2, 3)


def test_an_unreachable_cluster_is_one_line_before_anything_is_written(write_experiment, tmp_path: Path, capsys,
                                                                       monkeypatch) -> None:
    from evonas.cli import main

    def no_cluster(**kwargs) -> None:
        raise ConnectionError(f"Could not find any running Ray instance at {kwargs['address']}.\nmore text")

    path = write_experiment(toy_experiment(workers=2, backend={"name": "ray", "params": {"address": "auto"}}))
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    assert main(["run", str(path), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == (
        "evonas: backend ray: cannot join the Ray cluster at address 'auto' (ConnectionError: Could not find any running "
        "Ray instance at auto.); nothing was written")
    assert not (tmp_path / "r").exists()
    # a port where nothing listens: said at once (Ray itself would try it again and again until killed)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = f"127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(ray, "init", lambda **_: pytest.fail("ray.init was called for a port where nothing listens"))
    for address in (free, f"ray://{free}"):
        assert main(["run", str(path), "--out", str(tmp_path / "r"), "--address", address]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"evonas: backend ray: cannot join the Ray cluster at address '{address}': nothing "
                              f"answers at {free} (Connection refused); is the cluster's head running there"), err
        assert err.endswith("; nothing was written") and not (tmp_path / "r").exists()
    monkeypatch.undo()
    # a resume reaches the cluster before it touches the folder too
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "--workers", "0", "--quiet"]) == 0
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "r").iterdir()}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    assert main(["resume", str(tmp_path / "r"), "--workers", "2"]) == 2
    assert "cannot join the Ray cluster at address 'auto'" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "r").iterdir()} == before


def test_gpus_the_cluster_does_not_have_are_refused_before_anything_is_written(write_experiment, tmp_path: Path,
                                                                               capsys, monkeypatch) -> None:  # fmt: skip
    """num_gpus: 1 on a cluster without a GPU would leave every evaluation waiting, silently: one line, exit 2."""
    from evonas.cli import main

    path = write_experiment(toy_experiment(workers=2, backend={"name": "ray", "params": {"num_gpus": 1}}))
    assert main(["run", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("evonas: backend ray: num_gpus: 1 per evaluation, but the Ray cluster has 0 GPUs: no evaluation "
                   "could start (leave num_gpus out to use the GPUs the cluster has, or none); nothing was written"), err
    assert not (tmp_path / "r").exists()
    monkeypatch.chdir(tmp_path)  # the folder the command makes for a run without --out: not left behind, empty
    assert main(["run", str(path)]) == 2
    assert not list((tmp_path / "runs").glob("*")), list((tmp_path / "runs").glob("*"))
    import ray  # a run's own local instance, not started yet: this machine's GPUs, counted before it starts

    capsys.readouterr()
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("the local instance was started"))
    assert main(["run", str(path), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == (
        "evonas: backend ray: num_gpus: 1 per evaluation, but this machine has 0 GPUs for the local Ray instance: no "
        "evaluation could start (leave num_gpus out, or join a cluster with GPUs: address); nothing was written")
