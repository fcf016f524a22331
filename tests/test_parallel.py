"""Parallel evaluation: GPU assignment, a worker killed mid-evaluation, and the live status of a run."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import PLUGINS, toy_experiment
from evonas.config import load_experiment
from evonas.engine.backends import default_workers
from evonas.engine.pool import gpu_assignment
from evonas.engine.runner import Run
from evonas.engine.status import format_status, read_status


def test_gpu_assignment() -> None:
    assert gpu_assignment(3, 0, 1.0) == [None, None, None]  # no GPU: leave CUDA_VISIBLE_DEVICES alone
    assert gpu_assignment(4, 2, 1.0) == ["0", "1", "0", "1"]
    assert gpu_assignment(4, 2, 0.5) == ["0", "0", "1", "1"]
    assert gpu_assignment(3, 4, 0.25) == ["0", "0", "0"]
    assert gpu_assignment(2, 4, 2) == ["0,1", "2,3"]
    assert gpu_assignment(2, 2, 0) == ["", ""]  # GPUs there, but the workers are told to use none


def test_default_workers_is_one_per_core_without_gpus() -> None:
    cores = len(os.sched_getaffinity(0))
    assert default_workers() == cores
    assert default_workers(num_cpus=2) == max(1, cores // 2)


def slow_experiment(write_experiment, tmp_path: Path, name: str, **changes) -> Path:
    """An experiment whose evaluations each take ``seconds`` and log the process that ran them."""
    log = tmp_path / f"{name}-pids"
    log.mkdir()
    seconds = changes.pop("seconds", 0.6)
    strategy = changes.pop("strategy", {"name": "random", "params": {"samples": 8, "batch": 4}})
    exp = toy_experiment(
        fitness={"name": "slow", "params": {"seconds": seconds, "log_dir": str(log)}},
        plugins=["slow_fitness"],
        strategy=strategy,
        workers=2,
        **changes,
    )
    path = write_experiment(exp, name=name)
    shutil.copy(PLUGINS / "slow_fitness.py", path.parent / "slow_fitness.py")
    return path


def kill_first_evaluation(log: Path, done: threading.Event, killed: dict) -> None:
    """Background: SIGKILL the process running the first evaluation, once it has started."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not done.is_set():
        files = sorted(log.glob("*.pids"))
        if files:
            time.sleep(0.2)  # mid-evaluation
            pid = int(files[0].read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            killed.update(key=files[0].stem, pid=pid)
            return
        time.sleep(0.02)


def check_redone(out: Path, log: Path, killed: dict, evaluations: int) -> None:
    with sqlite3.connect(out / "journal.sqlite") as db:
        rows = {k: (s, w) for k, s, w in db.execute("SELECT key, status, worker FROM evaluations")}
    assert killed, "no evaluation was killed"
    assert len(rows) == evaluations and all(s == "ok" for s, _ in rows.values()), rows
    pids = (log / f"{killed['key']}.pids").read_text().split()
    assert len(pids) == 2 and int(pids[0]) == killed["pid"] != int(pids[1]), pids  # killed, then redone elsewhere
    assert rows[killed["key"]][0] == "ok"


def run_killing_the_first_evaluation(write_experiment, tmp_path: Path, name: str, **changes) -> Path:
    """Run ``slow_experiment`` while a thread SIGKILLs the process of its first evaluation mid-way; check that the
    run completed with every evaluation ok and the killed one redone by another process. Returns the run folder."""
    path = slow_experiment(write_experiment, tmp_path, name, **changes)
    out, log, killed, done = tmp_path / "runs" / name, tmp_path / f"{name}-pids", {}, threading.Event()
    killer = threading.Thread(target=kill_first_evaluation, args=(log, done, killed))
    killer.start()
    try:
        summary = Run(load_experiment(path), out, progress=False).execute()
    finally:
        done.set()
        killer.join()
    assert summary.evaluations == 8 and summary.failures == 0
    check_redone(out, log, killed, 8)
    return out


def test_worker_killed_mid_evaluation_is_replaced_and_the_evaluation_redone(write_experiment, tmp_path: Path) -> None:
    out = run_killing_the_first_evaluation(write_experiment, tmp_path, "kill")
    st = read_status(out)
    assert st["state"] == "finished" and st["live"]["restarts"] == 1
    assert "1 worker restart(s)" in format_status(st)
    # while evaluations finish, the time left; when none has for longer than that (a hang), how long it has been
    now = time.time()
    assert "about 1.0s left" in format_status({**st, "eta_s": 1.0, "last_finished_at": now - 0.5})
    assert "none finished for 2m0" in format_status({**st, "eta_s": 1.0, "last_finished_at": now - 120})
    assert "none finished for 19s" in format_status({**st, "eta_s": 1.8, "last_finished_at": now - 19.2})
    # a live entry written before its workers' last results (it is throttled): those trials read as idle
    from evonas.engine.journal import Journal

    journal = Journal(out / "journal.sqlite")
    try:
        live = dict(journal.get_meta("live"))
        live["workers"] = [{"worker": "w0", "state": "busy", "trial": 0, "since": now - 5},
                           {"worker": "w1", "state": "busy", "trial": 10_000, "since": now - 5, "safe": True}]  # fmt: skip
        journal.set_meta("live", live)
    finally:
        journal.close()
    workers = {w["worker"]: w for w in read_status(out)["live"]["workers"]}
    assert (workers["w0"]["state"], workers["w0"]["trial"]) == ("idle", None)
    assert (workers["w1"]["state"], workers["w1"]["trial"]) == ("busy", 10_000)
    shown = format_status({**read_status(out), "state": "running"})
    assert any("trial 10000" in line and "(safe mode)" in line for line in shown.splitlines()), shown
    assert "(0 failed)" in shown, shown


def test_status_while_running_and_after_a_kill(write_experiment, tmp_path: Path) -> None:
    """`evonas status` from another process: progress and busy workers while it runs; a killed run says so."""
    path = slow_experiment(write_experiment, tmp_path, "live", seconds=1.0)
    out = tmp_path / "runs" / "live"
    proc = subprocess.Popen([sys.executable, "-m", "evonas", "run", str(path), "--out", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline, st = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            if (out / "journal.sqlite").exists():
                st = read_status(out)
                if st["evaluations"] >= 2 and any(w["state"] == "busy" for w in st["live"].get("workers", [])):
                    break
            time.sleep(0.1)
        assert st is not None and st["state"] == "running", st
        assert st["expected"] == 8 and st["live"]["slots"] == 2 and st["best"] is not None
        text = subprocess.run([sys.executable, "-m", "evonas", "status", str(out)], capture_output=True, text=True, check=True).stdout
        assert "running" in text and "/8 evaluations" in text and "busy" in text and "best      val_acc=" in text, text
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    st = read_status(out)
    assert st["state"] == "stopped (its process is gone)"


def test_status_refuses_what_is_not_a_run(tmp_path: Path, capsys) -> None:
    from evonas.cli import main

    assert main(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"evonas: {tmp_path}: not a run folder (no journal.sqlite)"


@pytest.mark.parametrize("args, expected", [
    (["--backend", "local", "--address", "auto"], "evonas: --address: joins a Ray cluster; it needs the ray backend, not 'local'"),
    (["--backend", "dask"], "backend.name: unknown backend 'dask'; expected one of: local, ray"),
])  # fmt: skip
def test_backend_options_on_the_command_line(args, expected, write_experiment, tmp_path: Path, capsys) -> None:
    from evonas.cli import main

    path = write_experiment(toy_experiment())
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_a_steady_state_run_labels_generations_by_ask_order_as_its_logbook_counts(write_experiment,
                                                                                  tmp_path: Path) -> None:
    """Aging with 2 workers asks its 9th genome while the 8th of the initial population is still out: that genome
    belongs to generation 1, the logbook's second block of 8 results (it was labelled 0, the block in progress)."""
    path = slow_experiment(write_experiment, tmp_path, "aging", seconds=0.05,
                           strategy={"name": "aging", "params": {"population_size": 4, "sample_size": 2, "cycles": 12}})
    out = tmp_path / "runs" / "aging"
    Run(load_experiment(path), out, progress=False).execute()
    with sqlite3.connect(out / "journal.sqlite") as db:
        rows = db.execute("SELECT trial, generation FROM evaluations ORDER BY trial").fetchall()
    assert len(rows) == 12 and all(generation == trial // 4 for trial, generation in rows), rows
    logbook = (out / "logbook.csv").read_text().splitlines()
    assert len(logbook) == 1 + 3  # a header and three blocks of 4 results


def test_the_rate_is_this_session_s_and_not_inflated_by_a_few_results_at_once(write_experiment, tmp_path: Path) -> None:
    """Three results that finished together 10 s after the start are 0.29/s, not the 10/s their spacing says; a
    resumed session's rate leaves out the results of the one before."""
    import sqlite3

    from conftest import toy_experiment
    from evonas.config import load_experiment
    from evonas.engine.journal import Journal
    from evonas.engine.runner import Run
    from evonas.engine.status import read_status

    out = tmp_path / "run"
    Run(load_experiment(write_experiment(toy_experiment())), out, progress=False).execute()
    start = 1_000_000.0
    with sqlite3.connect(out / "journal.sqlite") as db:
        seqs = [s for (s,) in db.execute("SELECT seq FROM evaluations ORDER BY seq")]
        for i, seq in enumerate(seqs):  # the earlier session's results, then three of this one's
            at = start - 100 + i if i < len(seqs) - 3 else start + 10 + 0.1 * (i - len(seqs) + 3)
            db.execute("UPDATE evaluations SET finished_at = ? WHERE seq = ?", (at, seq))
    journal = Journal(out / "journal.sqlite")
    try:
        journal.set_meta("live", {**journal.get_meta("live"), "started_at": start, "state": "running"})
    finally:
        journal.close()
    assert read_status(out)["rate_per_s"] == pytest.approx(3 / 10.2)
    journal = Journal(out / "journal.sqlite")
    try:  # the whole run as one session: the recent pace, one result a second
        journal.set_meta("live", {**journal.get_meta("live"), "started_at": start - 200})
    finally:
        journal.close()
    with sqlite3.connect(out / "journal.sqlite") as db:
        for i, seq in enumerate(seqs):
            db.execute("UPDATE evaluations SET finished_at = ? WHERE seq = ?", (start + i, seq))
    assert read_status(out)["rate_per_s"] == pytest.approx(1.0)


def leaky_run(write_experiment, tmp_path: Path, name: str, backend: dict, samples: int = 8,
              progress: bool = False) -> tuple[Any, list[tuple]]:
    exp = toy_experiment(
        fitness={"name": "leaky", "params": {"leak_mib": 200}}, plugins=["leaky_fitness"], workers=1, cache=False,
        strategy={"name": "random", "params": {"samples": samples, "batch": 1}}, backend={"name": "local", "params": backend},
    )  # fmt: skip
    path = write_experiment(exp, name=name)
    shutil.copy(PLUGINS / "leaky_fitness.py", path.parent / "leaky_fitness.py")
    summary = Run(load_experiment(path), tmp_path / name, progress=progress).execute()
    with sqlite3.connect(tmp_path / name / "journal.sqlite") as db:
        rows = [tuple(json.loads(m)[k] for k in ("pid", "memory_gib")) for (m,) in
                db.execute("SELECT metrics FROM evaluations ORDER BY trial")]  # fmt: skip
    return summary, rows


def test_max_tasks_per_child_replaces_a_worker_after_that_many_evaluations(write_experiment, tmp_path: Path) -> None:
    summary, rows = leaky_run(write_experiment, tmp_path, "tasks", {"max_tasks_per_child": 3})
    assert summary.evaluations == 8 and summary.failures == 0
    pids = [pid for pid, _ in rows]
    assert pids == [pids[0]] * 3 + [pids[3]] * 3 + [pids[6]] * 2 and len(set(pids)) == 3, pids
    live = read_status(tmp_path / "tasks")["live"]
    assert live["recycled"] == 2 and live["restarts"] == 0  # replaced between evaluations: no crash
    assert "2 replaced between evaluations" in format_status(read_status(tmp_path / "tasks"))
    log = (tmp_path / "tasks" / "native.log").read_text()
    assert log.count("replaced by a fresh process after 3 evaluations (max_tasks_per_child)") == 2


def test_the_status_counts_replacements_over_the_run_s_sessions(write_experiment, tmp_path: Path) -> None:
    """A resumed run's status counts the replacements of its earlier sessions too, as native.log lists them."""
    leaky_run(write_experiment, tmp_path, "two", {"max_tasks_per_child": 2}, samples=4)
    assert read_status(tmp_path / "two")["live"]["recycled"] == 2
    Run.resume(tmp_path / "two", progress=False, overrides={"samples": 8}).continue_run()
    status = read_status(tmp_path / "two")
    assert status["live"]["recycled"] == 4 and status["live"]["restarts"] == 0, status["live"]
    assert "4 replaced between evaluations (max_tasks_per_child or memory_limit_gib)\n" in format_status(status) + "\n"
    assert (tmp_path / "two" / "native.log").read_text().count("replaced by a fresh process after 2 evaluations") == 4


def test_memory_limit_replaces_a_worker_that_holds_more(write_experiment, tmp_path: Path, capsys) -> None:
    """A fitness that leaks 200 MiB an evaluation: without a limit its worker grows by that each time; with one, no
    evaluation starts in a worker already over it (it was replaced after the evaluation that crossed it)."""
    summary, free = leaky_run(write_experiment, tmp_path, "free", {}, samples=6)
    grown = [m for _, m in free]
    assert len({pid for pid, _ in free}) == 1 and grown[-1] - grown[0] > 0.9, grown  # 5 leaks, nothing replaced
    limit = round(grown[0] + 0.5, 2)  # a fresh worker's memory and 2.5 leaks: replaced after every third evaluation
    capsys.readouterr()
    summary, rows = leaky_run(write_experiment, tmp_path, "limited", {"memory_limit_gib": limit}, samples=8,
                              progress=True)
    assert summary.evaluations == 8 and summary.failures == 0
    assert all(m <= limit for _, m in rows), (limit, rows)
    pids = [pid for pid, _ in rows]
    assert len(set(pids)) >= 3, pids
    err = capsys.readouterr().err
    assert err.count(f"over backend.params.memory_limit_gib = {limit:g}: it is replaced by a fresh process") == 1, err
    # written through the progress bar, which clears its line first: not glued to the end of the bar
    before = err[: err.index("evonas: worker w0 held")]
    assert before.endswith("\r") and not before[:-1].split("\r")[-1].strip(), repr(before[-150:])
    assert read_status(tmp_path / "limited")["live"]["recycled"] == len(set(pids)) - 1


def test_a_memory_limit_below_a_fresh_workers_memory_is_said_and_not_applied(write_experiment, tmp_path: Path,
                                                                              capsys) -> None:
    """A limit a worker is over as it starts would replace it after every evaluation (each fresh one no smaller):
    one line says so, and the run keeps its worker."""
    summary, rows = leaky_run(write_experiment, tmp_path, "low", {"memory_limit_gib": 0.01}, samples=4)
    assert summary.evaluations == 4 and summary.failures == 0
    assert len({pid for pid, _ in rows}) == 1, rows
    err = capsys.readouterr().err
    assert err.count("as it starts, before any evaluation, over backend.params.memory_limit_gib = 0.01: a fresh "
                     "process would be no smaller, so the limit is not applied in this session") == 1, err
    assert "it is replaced by a fresh process" not in err
    assert read_status(tmp_path / "low")["live"]["recycled"] == 0
    assert "the limit is not applied" in (tmp_path / "low" / "native.log").read_text()


@pytest.mark.parametrize(
    ("params", "expected"),
    [({"max_tasks_per_child": 0}, "max_tasks_per_child: expected an integer >= 1"),
     ({"memory_limit_gib": float("inf")}, "memory_limit_gib: expected a finite number"),
     ({"memory_limit_gib": -1}, "memory_limit_gib: expected a finite number of GiB > 0")],
)
def test_recycling_options_are_checked(params: dict, expected: str) -> None:
    from evonas.engine.pool import ProcessPoolBackend

    with pytest.raises(ValueError, match=expected):
        ProcessPoolBackend.check(**params)


def test_status_names_the_trial_an_in_process_evaluation_runs(write_experiment, tmp_path: Path) -> None:
    """With ``workers: 0`` the evaluation blocks the run's loop: the status is written as it starts, so ``evonas
    status`` names the trial in flight rather than an idle main process."""
    import status_reading_fitness

    status_reading_fitness.SEEN.clear()
    exp = toy_experiment(fitness={"name": "status_reading", "params": {"run_dir": str(tmp_path / "run")}},
                         plugins=["status_reading_fitness"], strategy={"name": "random", "params": {"samples": 3}})  # fmt: skip
    Run(load_experiment(write_experiment(exp, name="inproc")), tmp_path / "run", progress=False).execute()
    assert len(status_reading_fitness.SEEN) == 3
    for i, text in enumerate(status_reading_fitness.SEEN):
        row = next(line for line in text.splitlines() if line.strip().startswith("main"))
        assert f"busy     trial {i}" in row, text
        # no worker processes: the status says so instead of a backend's slots and worker restarts
        assert "workers   none (workers: 0): evaluations run one at a time in the run's own process" in text, text
        assert "restart" not in text, text


def test_recycling_options_said_where_they_do_nothing(write_experiment, tmp_path: Path, capsys) -> None:
    """``workers: 0`` has no worker to replace, and ``--backend ray`` takes other parameters: each is said in a line."""
    from evonas.cli import main

    exp = toy_experiment(strategy={"name": "random", "params": {"samples": 2}},
                         backend={"name": "local", "params": {"max_tasks_per_child": 2}})  # fmt: skip
    path = write_experiment(exp, name="zero")
    assert main(["run", str(path), "--out", str(tmp_path / "zero"), "--quiet"]) == 0
    assert ("evonas: backend.params.max_tasks_per_child has no effect with workers: 0 (there is no worker process to "
            "replace)") in capsys.readouterr().err  # fmt: skip
    from evonas.commands import _with_backend

    moved = _with_backend(load_experiment(path), "ray", None)
    assert moved.backend.name == "ray" and moved.backend.params == {}
    assert ("evonas: --backend ray: the local backend's parameters (max_tasks_per_child: 2) are that backend's own (a "
            "name both have may mean another thing); this session runs the ray backend with its defaults"
            ) in capsys.readouterr().err  # fmt: skip


def test_native_log_is_kept_bounded_and_its_trial_lines_start_lines(write_experiment, tmp_path: Path, monkeypatch,
                                                                  capsys) -> None:
    """A fitness that prints a lot would fill the disk through native.log: past its limit it is emptied, its tail kept
    in native.log.1, said once; a trial's line starts a line even after output that did not end one."""
    from evonas.engine import pool

    monkeypatch.setattr(pool, "LOG_LIMIT_BYTES", 100_000)
    monkeypatch.setattr(pool, "LOG_KEEP_BYTES", 20_000)
    exp = toy_experiment(fitness={"name": "chatty"}, plugins=["chatty_fitness"], workers=2,
                         strategy={"name": "random", "params": {"samples": 8}})  # fmt: skip
    path = write_experiment(exp, name="chatty")
    (path.parent / "chatty_fitness.py").write_text((PLUGINS / "chatty_fitness.py").read_text())
    out = tmp_path / "run"
    assert Run(load_experiment(path), out, progress=False).execute().evaluations == 8
    log = (out / "native.log").read_text()
    assert len(log) < 100_000 + 2 * 50_000 + 2_000, len(log)  # the limit, and what two evaluations print past it
    assert (out / "native.log.1").stat().st_size == 20_000
    assert "native.log passed 0.0953674 MiB: emptied, its last 0.0190735 MiB are in native.log.1" in log
    assert capsys.readouterr().err.count("evonas: native.log passed 0.0953674 MiB (worker processes print a lot") == 1
    markers = re.findall(r"(.?)\[\d\d:\d\d:\d\d w\d\] trial \d", log)
    assert markers and all(before in ("", "\n") for before in markers), markers


def test_a_memory_limit_every_fresh_worker_passes_in_its_first_evaluation_is_said_and_dropped(
        write_experiment, tmp_path: Path, capsys) -> None:  # fmt: skip
    """Over the limit after one evaluation, each fresh worker in turn: what an evaluation needs, not a leak. After
    FRESH_OVER_LIMIT such workers the limit is said to be too low and not applied (they were replaced every time)."""
    from evonas.engine.pool import FRESH_OVER_LIMIT

    _, free = leaky_run(write_experiment, tmp_path, "free", {}, samples=1)
    limit = round(free[0][1] + 0.1, 2)  # a fresh worker's memory and half a leak
    capsys.readouterr()
    summary, rows = leaky_run(write_experiment, tmp_path, "one", {"memory_limit_gib": limit}, samples=7)
    assert summary.evaluations == 7 and summary.failures == 0
    pids = [pid for pid, _ in rows]
    assert len(set(pids[:FRESH_OVER_LIMIT])) == FRESH_OVER_LIMIT and set(pids[FRESH_OVER_LIMIT:]) == {pids[FRESH_OVER_LIMIT - 1]}, pids
    err = capsys.readouterr().err
    assert err.count(f"{FRESH_OVER_LIMIT} fresh workers in a row held more than backend.params.memory_limit_gib = "
                     f"{limit:g} after their first evaluation") == 1, err
    assert read_status(tmp_path / "one")["live"]["recycled"] == FRESH_OVER_LIMIT - 1


def test_num_gpus_on_a_machine_without_one_is_said(write_experiment, tmp_path: Path, capsys, monkeypatch) -> None:
    from evonas.engine import pool

    monkeypatch.setattr(pool, "_cuda_count", lambda: 0)
    exp = toy_experiment(workers=1, backend={"name": "local", "params": {"num_gpus": 1}},
                         strategy={"name": "random", "params": {"samples": 2}})  # fmt: skip
    assert Run(load_experiment(write_experiment(exp)), tmp_path / "run", progress=False).execute().evaluations == 2
    assert "backend.params.num_gpus: 1, but this machine has no GPU that torch can use: the workers train on the " \
           "CPU" in capsys.readouterr().err


def test_a_script_without_the_main_guard_is_told_so_in_full(tmp_path: Path) -> None:
    """Spawned workers import the script: without `if __name__ == '__main__':` they die starting; the message that
    ends the run says why first, whole (it was cut at 300 characters before the reason)."""
    (tmp_path / "s.py").write_text(
        "from evonas.config import parse_experiment\nfrom evonas.engine.runner import Run\n"
        "exp = parse_experiment({'name': 'g', 'space': {'name': 'nb201'}, 'fitness': {'name': 'toy'}, 'workers': 2,\n"
        "                        'strategy': {'name': 'random', 'params': {'samples': 4}}})\n"
        "Run(exp, 'out', progress=False).execute()\n"
    )  # fmt: skip
    done = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert done.stderr.rstrip().endswith("a script that starts evonas workers needs `if __name__ == '__main__':` "
                                         "around its code (spawned workers import it)"), done.stderr[-600:]


SCRIPT_FITNESS = (
    "from evonas.fitness import FITNESSES, FitnessFunction\n\n"
    "@FITNESSES.register('{name}')\nclass Scored(FitnessFunction):\n"
    "    metrics = ('score',)\n    needs_dataset = False\n\n"
    "    def evaluate(self, genome, *, space, dataset, seed):\n        return {{'score': 0.5}}\n"
)
SCRIPT_RUN = (
    "    from evonas.config import parse_experiment\n    from evonas.engine.runner import Run\n"
    "    exp = parse_experiment({{'name': 's', 'space': {{'name': 'nb201'}}, 'fitness': {{'name': '{name}'}},\n"
    "                            'objectives': [{{'metric': 'score'}}], 'workers': 2,\n"
    "                            'strategy': {{'name': 'random', 'params': {{'samples': 4}}}}}})\n"
    "    print(Run(exp, 'out', progress=False).execute().evaluations)\n"
)


def test_a_fitness_a_script_imports_itself_reaches_the_workers(tmp_path: Path) -> None:
    """A script that imports its plug-in module (from a folder it puts on sys.path) without listing it under
    plugins: the workers import it too (they built the fitness by name, and knew no 'scored')."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "scored_plugin.py").write_text(SCRIPT_FITNESS.format(name="t_scored"))
    (tmp_path / "s.py").write_text("import sys\n\nif __name__ == '__main__':\n    sys.path.insert(0, 'lib')\n"
                                   "    import scored_plugin\n" + SCRIPT_RUN.format(name="t_scored"))  # fmt: skip
    done = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and done.stdout.strip() == "4", done.stderr[-1500:]


@pytest.mark.parametrize("workers", ["experiment", "Run", "toolbox"])
def test_a_fitness_defined_inside_the_main_block_is_refused_before_the_run(tmp_path: Path, workers: str) -> None:
    """Spawned workers import the script without running its main block: a fitness defined there is one line, whether
    the workers are the experiment's or given to ``Run``/``toolbox`` over an experiment's ``workers: 0``."""
    body = "\n".join("    " + line if line else "" for line in SCRIPT_FITNESS.format(name="t_inside").splitlines())
    run = SCRIPT_RUN.format(name="t_inside")
    if workers != "experiment":
        run = run.replace("'workers': 2", "'workers': 0")
        run = run.replace("Run(exp, 'out', progress=False)", "Run(exp, 'out', workers=2, progress=False)") \
            if workers == "Run" else run.replace(
                "print(Run(exp, 'out', progress=False).execute().evaluations)",
                "from evonas.engine.build import build\n    build(exp).toolbox(workers=2)\n    import os; os.mkdir('out')")
    (tmp_path / "s.py").write_text("if __name__ == '__main__':\n" + body + "\n" + run)
    done = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode != 0
    assert ("fitness.name: fitness 't_inside' is defined inside the `if __name__ == '__main__':` block of s.py (line 4), "
            "which worker processes do not run when they import the script") in done.stderr, done.stderr[-1500:]
    assert not (tmp_path / "out").exists()
