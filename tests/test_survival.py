"""Runs survive what their workers do: native crashes (retried in safe mode), hangs (killed without a
``timeout:``), the death of the run's own process (no worker outlives it), and more workers than fit."""

from __future__ import annotations

import html
import json
import re
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, toy_experiment

from evonas.config import load_experiment
from evonas.engine.pool import cap_workers, default_timeout, describe_exit
from evonas.engine.runner import Run
from evonas.engine.status import format_status, read_status

PLUGINS = Path(__file__).parent / "plugins"


def native_run(write_experiment, tmp_path: Path, name: str, samples: int, **params):
    backend = params.pop("backend", None)
    exp = toy_experiment(
        fitness={"name": "native", "params": params},
        plugins=["native_fitness"],
        strategy={"name": "random", "params": {"samples": samples, "batch": samples}},
        workers=2,
    )
    if backend:
        exp["backend"] = {"name": "local", "params": backend}
    path = write_experiment(exp, name=name)
    out = tmp_path / "runs" / name
    summary = Run(load_experiment(path), out, progress=False).execute()
    with sqlite3.connect(out / "journal.sqlite") as db:
        rows = db.execute("SELECT key, status, error, safe_mode FROM evaluations").fetchall()
    return out, summary, rows


def test_native_crashes_are_retried_in_safe_mode_with_readable_reasons(write_experiment, tmp_path: Path, capfd) -> None:
    from native_fitness import native_kind

    out, summary, rows = native_run(write_experiment, tmp_path, "crashes", 12, every=11)
    kinds = {}
    for key, status, error, safe in rows:
        kind = native_kind(key, 11)
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == 0:  # crashes, but not in safe mode: the retry's result is kept, and says so
            assert (status, error, safe) == ("ok", None, 1), (key, error)
        elif kind == 1:
            assert status == "failed" and safe == 1 and error.startswith(
                "worker died: aborted in native code (SIGABRT) at native_fitness.py:40, also when retried in safe "
                "mode (oneDNN off, fp32)"  # the plug-in's line, from the Python stack the crash wrote
            ), error
            assert "native.log" in error and "evonas doctor" in error
        elif kind == 2:
            assert status == "failed" and error.startswith("worker died: segmentation fault in native code (SIGSEGV) "
                                                           "at native_fitness.py:43"), error
        else:
            assert (status, error, safe) == ("ok", None, 0)
    assert kinds.get(0) and kinds.get(1) and kinds.get(2), kinds  # each kind of crash happened
    assert "Fatal Python error: Segmentation fault" in (out / "native.log").read_text()  # the stack, for the user
    assert not list(out.glob(".*.crash"))  # the workers' own files for it are gone
    assert summary.evaluations == 12 and summary.failures == kinds[1] + kinds[2]
    assert summary.safe_mode == kinds[0] + kinds[1] + kinds[2]  # every death was retried in safe mode
    assert sum(n for _, n in summary.failure_reasons) == summary.failures
    # which genomes failed: each reason names its first trials (and the key of a lone one)
    trial_of = {}
    with sqlite3.connect(out / "journal.sqlite") as db:
        for trial, key, error in db.execute("SELECT trial, key, error FROM evaluations WHERE status = 'failed'"):
            trial_of.setdefault(error, []).append((trial, key))
    assert [sorted(trial_of[r])[:3] for r, _ in summary.failure_reasons] == summary.failed_trials
    from evonas.commands import _summary

    text = _summary(summary, load_experiment(out / "config.yaml").objectives)
    for (reason, n), first in zip(summary.failure_reasons, summary.failed_trials):
        named = f"trial {first[0][0]}, key {first[0][1]}" if n == 1 else "trials " + ", ".join(str(t) for t, _ in first)
        assert f"{n}x {reason} ({named}" in text, text
    shown = format_status(read_status(out))  # `evonas status` says it too
    assert f"{summary.safe_mode} retried in safe mode" in shown and "aborted in native code (SIGABRT)" in shown
    assert f"({'trial' if summary.failure_reasons[0][1] == 1 else 'trials'} {summary.failed_trials[0][0][0]}" in shown
    from evonas.report import write_report

    page = write_report(out, tmp_path / "report.html", plugins=load_experiment(out / "config.yaml").plugins).read_text()
    first_genome = json.loads(sqlite3.connect(out / "journal.sqlite").execute(
        "SELECT genome FROM evaluations WHERE trial = ?", (summary.failed_trials[0][0][0],)).fetchone()[0])  # fmt: skip
    assert html.escape(json.dumps(first_genome, sort_keys=True)) in page  # the genome itself, not only its key
    overview = page.split("<table>", 1)[1].split("</table>", 1)[0]  # the first table: the run's overview
    rows = dict(re.findall(r"<tr><td>(.*?)</td><td[^>]*>(.*?)</td></tr>", overview))  # a row per figure
    assert rows["retried in safe mode"] == str(summary.safe_mode)
    restarts = read_status(out)["live"]["restarts"]  # a worker replaced per death, and per safe-mode retry's death
    assert restarts >= summary.safe_mode and rows["worker restarts (last session)"] == str(restarts)
    assert "which (trial, key)" in page and f"{'trial' if summary.failure_reasons[0][1] == 1 else 'trials'} {summary.failed_trials[0][0][0]}" in page
    best = json.loads((out / "best.json").read_text())
    assert native_kind(best["key"], 11) not in (1, 2) and best["metrics"]["val_acc"] >= 2.0
    # what the dying code printed is in the run's native.log, not in the run's own output
    log = (out / "native.log").read_text()
    assert "native-fitness: corrupted heap" in log and "native-fitness: bad pointer" in log
    assert "aborted in native code (SIGABRT)" in log
    assert "native-fitness" not in capfd.readouterr().err
    # `evonas show RUN TRIAL` (or KEY) prints the failed evaluation: its reason and genome
    from evonas.cli import main

    trial, key = summary.failed_trials[0][0]
    capfd.readouterr()
    assert main(["show", str(out), str(trial)]) == 0
    shown_one = capfd.readouterr().out
    assert f"trial     {trial} " in shown_one and "status    failed: worker died" in shown_one and key in shown_one
    assert main(["show", str(out), key[:6]]) == 0 and f"trial     {trial} " in capfd.readouterr().out
    assert main(["show", str(out), "424242"]) == 1 and "no evaluation of trial or key '424242'" in capfd.readouterr().err
    assert main(["show", str(out), "x!"]) == 2


def test_a_deadlocked_evaluation_is_killed_without_a_timeout(write_experiment, tmp_path: Path) -> None:
    """A worker that sleeps forever (as one deadlocked in a native allocator does) uses no CPU time: killed."""
    from native_fitness import native_kind

    start = time.monotonic()
    out, summary, rows = native_run(
        write_experiment, tmp_path, "hang", 10, every=5, crash=False, hang=True, backend={"stall_timeout": 1.5}
    )
    assert load_experiment(out / "config.yaml").timeout is None
    hung = [r for r in rows if native_kind(r[0], 5) == 3]
    assert hung, "no genome of the hanging kind was drawn"
    for key, status, error, safe in hung:
        assert status == "failed" and error.startswith("worker stopped making progress (almost no CPU time used for 1.5 s"), error
    assert summary.evaluations == 10 and time.monotonic() - start < 120


HANGING_INIT = """
import multiprocessing, time
from evonas.fitness import FITNESSES
from evonas.fitness.toy import ToyFitness


@FITNESSES.register("hangs_in_workers")
class HangsInWorkers(ToyFitness):
    def __init__(self, **params):
        if multiprocessing.parent_process() is not None:  # built in a worker: a licence server that never answers
            time.sleep(3600)
        super().__init__(**params)
"""


def test_a_worker_that_never_finishes_starting_stops_the_run_in_one_line(write_experiment, tmp_path: Path) -> None:
    (tmp_path / "hanging_init.py").write_text(HANGING_INIT)
    exp = toy_experiment(plugins=["hanging_init.py"], fitness={"name": "hangs_in_workers"}, workers=2, timeout=5,
                         backend={"name": "local", "params": {"startup_timeout": 8}})  # fmt: skip
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "evonas.cli", "run", str(write_experiment(exp)), "--out",
                           str(tmp_path / "run"), "--quiet"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and time.monotonic() - start < 60, done.stderr
    assert "a worker process did not finish starting within 8 s (waiting at hanging_init.py:11)" in done.stderr
    assert "Traceback" not in done.stderr and not list((tmp_path / "run").glob(".*.crash"))
    assert read_status(tmp_path / "run")["state"] == "crashed"


def test_a_worker_that_dies_while_starting_under_the_command_is_not_blamed_on_a_script(write_experiment,
                                                                                      tmp_path: Path) -> None:
    (tmp_path / "aborting_init.py").write_text(HANGING_INIT.replace("time.sleep(3600)", "import os; os.abort()")
                                               .replace("hangs_in_workers", "aborts_in_workers"))  # fmt: skip
    exp = toy_experiment(plugins=["aborting_init.py"], fitness={"name": "aborts_in_workers"}, workers=1)
    done = subprocess.run([sys.executable, "-m", "evonas.cli", "run", str(write_experiment(exp)), "--out",
                           str(tmp_path / "run"), "--quiet"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "a worker process died while starting (aborted in native code (SIGABRT)): it imports the plug-ins and " \
           "builds the experiment's space, dataset and fitness, and one of them ended it" in done.stderr, done.stderr
    assert "__main__" not in done.stderr  # no script of the user's here: the hint would mislead


INTERRUPTING = """
from evonas.fitness import FITNESSES
from evonas.fitness.toy import ToyFitness


@FITNESSES.register("interrupting")
class Interrupting(ToyFitness):
    def evaluate(self, genome, *, space, dataset, seed):
        if int(space.key(genome)[:8], 16) % 3 == 0:
            raise KeyboardInterrupt  # the fitness's own code (a library that turns a timeout into one)
        return super().evaluate(genome, space=space, dataset=dataset, seed=seed)
"""


def test_a_keyboard_interrupt_raised_by_a_fitness_in_a_worker_fails_that_evaluation(write_experiment,
                                                                                     tmp_path: Path) -> None:
    (tmp_path / "interrupting.py").write_text(INTERRUPTING)
    exp = toy_experiment(plugins=["interrupting.py"], fitness={"name": "interrupting"}, workers=2,
                         strategy={"name": "random", "params": {"samples": 9}})  # fmt: skip
    out = tmp_path / "run"
    summary = Run(load_experiment(write_experiment(exp)), out, progress=False).execute()
    with sqlite3.connect(out / "journal.sqlite") as db:
        rows = db.execute("SELECT key, status, error, safe_mode FROM evaluations").fetchall()
    bad = [r for r in rows if int(r[0][:8], 16) % 3 == 0]
    assert bad and summary.evaluations == 9 and summary.safe_mode == 0, rows
    assert all(r[1:] == ("failed", "KeyboardInterrupt: raised by the fitness (a worker ignores Ctrl-C)", 0) for r in bad)


SLEEPING_MUTATION = """
import time
from evonas.operators import MUTATIONS, Mutation

CALLS = [0]


@MUTATIONS.register("falls_asleep")
class FallsAsleep(Mutation):
    spaces = ("nb201",)

    def _mutate(self, genome, *, space, rng):
        CALLS[0] += 1
        if CALLS[0] > 3:
            time.sleep(3600)  # a lock never released, a server never answering: in the run's own process
        return space.sample(rng=rng)
"""


def test_status_says_when_the_runs_own_process_hangs_in_plug_in_code(write_experiment, tmp_path: Path,
                                                                     monkeypatch) -> None:
    from evonas.engine import status

    (tmp_path / "sleepy.py").write_text(SLEEPING_MUTATION)
    exp = toy_experiment(plugins=["sleepy.py"], mutations=[{"name": "falls_asleep", "prob": 1}], crossovers=[],
                         workers=1, cache=False)  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "evonas.cli", "run", str(write_experiment(exp)), "--out",
                             str(tmp_path / "run"), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if (tmp_path / "run" / "journal.sqlite").exists() and read_status(tmp_path / "run")["evaluations"] >= 8:
                break
        time.sleep(2.5)
        monkeypatch.setattr(status, "_SILENT_S", 2.0)  # a minute in a real run
        text = format_status(read_status(tmp_path / "run"))
        assert "stalled   the run's process has written nothing for " in text, text
        assert f"`py-spy dump --pid {proc.pid}` shows where" in text, text
        # a copy of the live run's folder: its journal says running, but no process holds it
        shutil.copytree(tmp_path / "run", tmp_path / "copy")
        assert read_status(tmp_path / "run")["state"] == "running"
        copy = read_status(tmp_path / "copy")
        assert copy["state"] == "stopped (no process holds this folder: a copy?)", copy["state"]
        assert "resume    evonas resume" in format_status(copy)
    finally:
        proc.kill()
        proc.wait()


def test_a_clock_tick_now_and_then_does_not_restart_the_stall_count(monkeypatch) -> None:
    """A deadlocked worker's parent-watch thread still costs a tick now and then; training uses a core."""
    import types

    import evonas.engine.pool as pool

    cpu = {"s": 10.0}
    monkeypatch.setattr(pool, "_cpu_seconds", lambda pid: cpu["s"])
    fake = types.SimpleNamespace(stall_timeout=120.0)
    w = pool._Worker(name="w0", process=types.SimpleNamespace(pid=1), conn=None, ready_at=0.0)
    assert not pool.ProcessPoolBackend._stalled(fake, w, 0.0)  # the first look marks 10 s at t=0
    for t in range(5, 200, 5):  # two ticks (0.02 s) every 30 s: a sleeping process's watch thread
        cpu["s"] += 0.02 if t % 30 == 0 else 0.0
        if pool.ProcessPoolBackend._stalled(fake, w, float(t)):
            break
    assert t == 125, t  # killed at the limit, not 120 s after the last tick
    w = pool._Worker(name="w1", process=types.SimpleNamespace(pid=1), conn=None, ready_at=0.0)
    for t in range(0, 400, 5):  # training: most of a core
        cpu["s"] += 4.0
        assert not pool.ProcessPoolBackend._stalled(fake, w, float(t))


def test_a_replaced_worker_shows_idle_once_it_is_ready(write_experiment) -> None:
    """A replacement that gets no job at once (the run hangs elsewhere) is `idle` in states(), not `starting`."""
    from evonas.engine.pool import ProcessPoolBackend

    pool = ProcessPoolBackend(load_experiment(write_experiment(toy_experiment(workers=1))), 1)
    try:
        w = pool._workers[0]
        pool._replace(w)  # as after a death: a fresh process, no job
        assert pool.states()[0]["state"] == "starting"
        deadline = time.monotonic() + 90
        while pool.states()[0]["state"] != "idle" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pool.states()[0]["state"] == "idle" and pool.restarts == 1
        assert pool.wait(timeout=0.1) == []  # nothing pending, and the consumed "ready" breaks nothing
        import random

        from evonas.engine.backends import Job
        from evonas.engine.build import build

        space = build(load_experiment(write_experiment(toy_experiment()))).space
        pool.submit(Job(0, space.to_dict(space.sample(rng=random.Random(0))), 1))
        (result,) = pool.wait(timeout=60)
        assert result.trial == 0 and result.status == "ok", result
    finally:
        pool.close()


def test_a_spinning_evaluation_is_killed_at_the_derived_limit(write_experiment, tmp_path: Path) -> None:
    from native_fitness import native_kind

    out, summary, rows = native_run(
        write_experiment, tmp_path, "spin", 10, every=5, crash=False, spin=True,
        backend={"stall_timeout": 0, "timeout_first": 4, "timeout_floor": 4},
    )  # fmt: skip
    spun = [r for r in rows if native_kind(r[0], 5) == 4]
    assert spun, "no genome of the spinning kind was drawn"
    for key, status, error, safe in spun:
        assert status == "failed" and error.startswith(
            "worker timed out after 4 s (a limit derived from this run's evaluations; `timeout:` sets one) and was killed"
        ), error
    assert summary.evaluations == 10


def test_the_default_time_limit_follows_the_run() -> None:
    assert default_timeout([]) == 3600
    assert default_timeout([1.0, 2.0]) == 300  # the floor
    assert default_timeout([1.0, 45.0]) == 450  # ten times the slowest
    assert default_timeout([], floor=5, first=2) == 5


def test_exit_codes_in_words() -> None:
    assert describe_exit(-signal.SIGABRT) == "aborted in native code (SIGABRT)"
    assert describe_exit(-signal.SIGSEGV) == "segmentation fault in native code (SIGSEGV)"
    assert describe_exit(-signal.SIGKILL) == "killed (SIGKILL), likely out of memory"
    assert describe_exit(3) == "exited with code 3"


def test_more_workers_than_the_machine_holds_are_capped() -> None:
    n, why = cap_workers(1)
    assert n == 1 and why is None
    n, why = cap_workers(100_000)
    assert 1 <= n < 100_000 and why.startswith("100000 workers are more than this machine can hold (") and why.endswith(f"using {n}")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads worker processes from /proc")
def test_workers_exit_when_the_run_is_killed(write_experiment, tmp_path: Path) -> None:
    path = write_experiment(toy_experiment(
        fitness={"name": "native", "params": {"every": 1000, "sleep": 1.0}}, plugins=["native_fitness"],
        strategy={"name": "random", "params": {"samples": 200, "batch": 10}}, workers=2,
    ), name="killed")  # fmt: skip
    out = tmp_path / "runs" / "killed"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PLUGINS), str(REPO)]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "evonas.cli", "run", str(path), "--out", str(out), "--quiet"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        pids: list[int] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(pids) < 2:
            time.sleep(0.5)
            status = subprocess.run([sys.executable, "-m", "evonas.cli", "status", str(out), "--json"], env=env,
                                    capture_output=True, text=True)  # fmt: skip
            if status.returncode == 0:
                workers = json.loads(status.stdout).get("live", {}).get("workers", [])
                pids = [w["pid"] for w in workers if w.get("state") == "busy" and w.get("pid")]
        assert len(pids) == 2, "the run's workers never got busy"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.1)
        assert not [p for p in pids if _alive(p)], "workers outlived their run"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_workers_1000_gets_one_line(write_experiment, tmp_path: Path) -> None:
    path = write_experiment(toy_experiment(strategy={"name": "random", "params": {"samples": 6, "batch": 6}}))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-m", "evonas.cli", "run", str(path), "--out", str(tmp_path / "many"), "--workers", "1000", "--quiet"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "workers are more than this machine can hold" in line]
    assert len(lines) == 1 and lines[0].startswith("evonas: 1000 workers are more than"), done.stderr


def test_the_genomes_that_crashed_onednn_train(tmp_path: Path) -> None:
    """A first layer with a 1x1 stride-2 convolution (a residual projection, or the layer itself) on 1-channel digits
    and on 3-channel images, trained as the quickstart does, in a child process: where oneDNN's bug is present and
    the fix (evonas.spaces.layers.SubsampledConv2d) is not, the child dies (SIGABRT or SIGSEGV)."""
    code = """
import random
import torch
from evonas.config import load_experiment
from evonas.datasets import load_dataset
from evonas.engine.build import build
torch.set_num_threads(1)
b = build(load_experiment("experiments/quickstart.yaml"))
rgb = load_dataset("synthetic", seed=0, shape=[3, 16, 16], n_samples=600, num_classes=4)
firsts = [dict(kernel=3, width=16, stride=2, activation="silu", batch_norm=True, residual=True),
          dict(kernel=1, width=32, stride=2, activation="silu", batch_norm=True, residual=False)]
for dataset in (b.dataset, rgb):
    for seed, first in enumerate(firsts):
        d = b.space.to_dict(b.space.sample(rng=random.Random(seed)))
        d["layers"] = [first] + d["layers"][1:]
        m = b.fitness.evaluate(b.space.from_dict(d), space=b.space, dataset=dataset, seed=seed)
        print(dataset.name, round(m["val_acc"], 3))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (describe_exit(done.returncode), done.stderr[-2000:])
    assert len(done.stdout.split()) == 8


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_subsampled_conv2d_is_the_strided_1x1_convolution() -> None:
    import torch
    from torch import nn

    from evonas.spaces.layers import SubsampledConv2d, conv2d

    torch.manual_seed(0)
    plain = nn.Conv2d(3, 8, 1, stride=2)
    ours = conv2d(3, 8, 1, stride=2)
    assert isinstance(ours, SubsampledConv2d) and type(conv2d(3, 8, 3, stride=2, padding=1)) is nn.Conv2d
    assert type(conv2d(16, 8, 1, stride=2)) is nn.Conv2d  # wide inputs keep oneDNN's (faster) strided kernel
    ours.load_state_dict(plain.state_dict())
    for size in (7, 8, 15):
        x = torch.randn(4, 3, size, size).contiguous(memory_format=torch.channels_last)
        assert torch.allclose(ours(x), plain(x), atol=1e-6)
    scripted = torch.jit.script(ours)  # exports as TorchScript like the rest of a decoded network
    assert torch.allclose(scripted(x), plain(x), atol=1e-6)


def test_failure_reasons_differing_in_a_number_count_together(tmp_path: Path) -> None:
    """A plug-in's message holding a seed, a size or a shape is one reason, under its first text, in the summary,
    `evonas status` and the report; other line numbers and words stay apart."""
    from evonas.engine.journal import Journal, Record, failed_trials, failure_reasons

    errors = [f"fitness raised ValueError: seed {s} diverged after 1.5e{s % 3} s at fit.py:12" for s in (7, 123, 99)]
    errors += ["fitness raised ValueError: seed 5 diverged after 2 s at fit.py:40",  # another line: another reason
               "shapes (64x16 and 32x10)", "shapes (64x8 and 32x10)", "float32 input", "float64 input",
               "boom on 5dab13d616a9592c", "boom on 0e1f2a3b4c5d6e70", "defaced on cafebabe"]  # keys count together
    # fmt: skip
    with Journal(tmp_path / "journal.sqlite") as journal:
        for trial, error in enumerate(errors):
            journal.append(Record(trial=trial, key=f"{trial:016x}", generation=0, genome={}, status="failed",
                                  metrics={}, fitness=None, error=error, seq=trial))  # fmt: skip
        reasons = failure_reasons(journal._db, limit=10)
        assert reasons[0] == (errors[0], 3) and sorted(n for _, n in reasons) == [1] * 4 + [2, 2, 3]
        assert ("shapes (64x16 and 32x10)", 2) in reasons and ("float32 input", 1) in reasons
        assert ("boom on 5dab13d616a9592c", 2) in reasons
        assert failed_trials(journal._db, [r for r, _ in reasons])[0] == [(0, f"{0:016x}"), (1, f"{1:016x}"), (2, f"{2:016x}")]
