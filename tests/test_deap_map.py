"""The DEAP toolbox built from an experiment evaluates through evonas's isolated workers.

A plug-in fitness (written next to each experiment) scores a genome by its key, logs which process
evaluated which key, and reads ``control.json`` from its log folder at each evaluation: it aborts the
process (``os.abort()``, as a native crash in training does), raises, or sleeps on the keys named there.
"""

from __future__ import annotations

import gc
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deap import algorithms, tools

from conftest import toy_experiment
from evonas.config import load_experiment
from evonas.engine.build import build

PLUGIN = '''
import json, os, time
from pathlib import Path
from evonas.fitness import FITNESSES, FitnessFunction


@FITNESSES.register("probe")
class ProbeFitness(FitnessFunction):
    needs_dataset = False
    metrics = ("val_acc",)

    def __init__(self, log_dir: str) -> None:
        self.params = {"log_dir": log_dir}

    def evaluate(self, genome, *, space, dataset, seed):
        key, folder = space.key(genome), Path(self.params["log_dir"])
        with open(folder / "evaluations.log", "a") as fh:
            fh.write(f"{key} {os.getpid()}\\n")
        control = json.loads((folder / "control.json").read_text()) if (folder / "control.json").exists() else {}
        if key in control.get("abort", []):
            os.abort()
        if key in control.get("raise", []):
            raise RuntimeError("injected failure")
        time.sleep(control.get("sleep", {}).get(key, 0))
        return {"val_acc": int(key, 16) % 1000 / 1000}
'''


def score(key: str) -> float:
    return int(key, 16) % 1000 / 1000


def probe_experiment(write_experiment, tmp_path: Path, workers: int, **changes) -> Path:
    log = tmp_path / "log"
    log.mkdir()
    (tmp_path / "probe_fitness.py").write_text(PLUGIN)
    fitness = {"name": "probe", "params": {"log_dir": str(log)}}
    exp = toy_experiment(fitness=fitness, plugins=["probe_fitness"], workers=workers, **changes)
    return write_experiment(exp, name="probe")


def control(tmp_path: Path, **entries) -> None:
    (tmp_path / "log" / "control.json").write_text(json.dumps(entries))


def evaluations(tmp_path: Path) -> list[tuple[str, int]]:
    """(key, pid) of every evaluation so far, in the order they started."""
    path = tmp_path / "log" / "evaluations.log"
    if not path.exists():
        return []
    return [(k, int(p)) for k, p in (line.split() for line in path.read_text().splitlines())]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_gone(pids: set[int], seconds: float = 15.0) -> set[int]:
    """The pids still alive after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if alive(p)}


def distinct(tb, n: int) -> list:
    out, seen = [], set()
    for ind in tb.population(n=4 * n):
        if ind.key not in seen:
            seen.add(ind.key)
            out.append(ind)
    return out[:n]


def test_a_native_crash_does_not_kill_eaMuPlusLambda(write_experiment, tmp_path: Path, capfd) -> None:
    """One genome aborts its worker, one hangs past the time limit: both get the worst fitness with
    their reason, the test process lives on, and the hall of fame holds the best of the others."""
    path = probe_experiment(write_experiment, tmp_path, workers=2, timeout=2)
    random.seed(0)
    with build(load_experiment(path)).toolbox(rng=random.Random(0)) as tb:
        pop = distinct(tb, 8)
        crash, hang = pop[2].key, pop[5].key
        control(tmp_path, abort=[crash], sleep={hang: 60})
        initial = list(pop)
        hof = tools.HallOfFame(1)
        pop, log = algorithms.eaMuPlusLambda(pop, tb, mu=8, lambda_=12, cxpb=0.3, mutpb=0.6, ngen=3, halloffame=hof, verbose=False)
        failures = {f.key: f for f in tb.failures}
    assert len(log) == 4 and len(pop) == 8
    assert set(failures) == {crash, hang}
    assert failures[crash].status == "failed" and "worker died" in failures[crash].error
    assert failures[hang].status == "failed" and "timed out after 2 s" in failures[hang].error
    by_key = {ind.key: ind for ind in initial}
    assert by_key[crash].fitness.values == (-math.inf,) and by_key[hang].fitness.values == (-math.inf,)
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("evonas: genome ")]
    assert sorted(lines) == sorted(f"evonas: genome {k} failed ({failures[k].error}); it gets the worst fitness" for k in failures)
    done = evaluations(tmp_path)
    crashed = [pid for key, pid in done if key == crash]
    assert len(crashed) == 2 and crashed[0] != crashed[1]  # retried once, on a fresh worker
    assert os.getpid() not in {pid for _, pid in done}  # never in this process
    best = max(score(k) for k, _ in done if k not in (crash, hang))
    assert math.isfinite(hof[0].fitness.values[0]) and hof[0].fitness.values == (best,)
    assert hof[0].metrics == {"val_acc": best}


def test_map_keeps_the_order_and_evaluates_duplicates_once(write_experiment, tmp_path: Path) -> None:
    path = probe_experiment(write_experiment, tmp_path, workers=2)
    tb = build(load_experiment(path)).toolbox()
    try:
        a, b, c, d = distinct(tb, 4)
        control(tmp_path, sleep={a.key: 1.5})  # the first result arrives last
        items = [a, b, a, c, d, b]
        values = tb.map(tb.evaluate, items)
        assert values == [(score(i.key),) for i in items]
        done = evaluations(tmp_path)
        assert sorted(k for k, _ in done) == sorted({a.key, b.key, c.key, d.key})
        pids = {pid for _, pid in done}
        assert len(pids) == 2 and os.getpid() not in pids  # both workers, not this process
        assert all(i.metrics == {"val_acc": score(i.key)} for i in items)
        assert not tb.failures
        # toolbox.evaluate called directly goes to a worker too; a key evaluated before is not evaluated again
        e = distinct(tb, 5)[4]
        assert tb.evaluate(e) == (score(e.key),) and evaluations(tmp_path)[-1][1] in pids
        before = len(evaluations(tmp_path))
        again = [tb.clone(d), tb.clone(e)]
        assert tb.map(tb.evaluate, again) == [(score(d.key),), (score(e.key),)]
        assert len(evaluations(tmp_path)) == before and again[1].metrics == {"val_acc": score(e.key)}
        # any other function is mapped in this process, lazily, as the built-in map does
        assert list(tb.map(str.upper, ["x", "y"])) == ["X", "Y"]
    finally:
        tb.close()


def test_workers_stop_on_close_and_when_the_toolbox_is_collected(write_experiment, tmp_path: Path) -> None:
    path = probe_experiment(write_experiment, tmp_path, workers=2)
    tb = build(load_experiment(path)).toolbox(cache=False)
    pop = distinct(tb, 4)
    tb.map(tb.evaluate, pop[:2])
    first = {pid for _, pid in evaluations(tmp_path)}
    assert len(first) == 2 and all(alive(p) for p in first)
    tb.close()
    assert not wait_gone(first, seconds=0)  # close() waits for them
    tb.map(tb.evaluate, pop[2:])  # a later evaluation starts fresh workers
    second = {pid for _, pid in evaluations(tmp_path)} - first
    assert len(second) == 2 and all(alive(p) for p in second)
    del tb, pop
    gc.collect()
    assert not wait_gone(second, seconds=0)


SCRIPT = """
import sys
from evonas.config import load_experiment
from evonas.engine.build import build

if __name__ == "__main__":
    tb = build(load_experiment(sys.argv[1])).toolbox()
    tb.map(tb.evaluate, tb.population(n=2))
    print("evaluated", flush=True)
    if sys.argv[2] == "hang":
        sys.stdin.read()
"""


@pytest.mark.parametrize("end", ["exit", "killed"])
def test_workers_never_outlive_the_process(write_experiment, tmp_path: Path, end: str) -> None:
    """The process exits without close(), or is killed outright: its workers go too."""
    path = probe_experiment(write_experiment, tmp_path, workers=2)
    script = tmp_path / "user.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path), "exit" if end == "exit" else "hang"],
        cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "evaluated"
        pids = {pid for _, pid in evaluations(tmp_path)}
        assert len(pids) == 2 and proc.pid not in pids
        if end == "killed":
            assert all(alive(p) for p in pids)
            proc.kill()
        assert proc.wait(timeout=60) == (0 if end == "exit" else -signal.SIGKILL)
        assert not wait_gone(pids)
    finally:
        proc.kill()
        proc.wait()


def test_workers_0_evaluates_in_this_process(write_experiment, tmp_path: Path, capfd) -> None:
    path = probe_experiment(write_experiment, tmp_path, workers=0)
    random.seed(1)
    with build(load_experiment(path)).toolbox(rng=random.Random(1)) as tb:
        pop = distinct(tb, 6)
        bad = pop[1].key
        control(tmp_path, **{"raise": [bad]})
        initial = list(pop)
        hof = tools.HallOfFame(1)
        algorithms.eaSimple(pop, tb, cxpb=0.3, mutpb=0.6, ngen=2, halloffame=hof, verbose=False)
        assert tb.map(tb.evaluate, [tb.clone(i) for i in initial[:2]])[1] == (-math.inf,)  # known: not tried again
    done = evaluations(tmp_path)
    assert {pid for _, pid in done} == {os.getpid()} and [k for k, _ in done].count(bad) == 1
    failure = "RuntimeError: injected failure at probe_fitness.py:23"  # the line of the fitness that raised
    assert [(f.key, f.status, f.error) for f in tb.failures] == [(bad, "failed", failure)]
    assert next(i for i in initial if i.key == bad).fitness.values == (-math.inf,)
    assert capfd.readouterr().err.count(f"evonas: genome {bad} failed ({failure})") == 1
    assert hof[0].fitness.values == (max(score(k) for k, _ in done if k != bad),)


def test_loggers_are_said_to_be_unused(write_experiment, tmp_path: Path, capfd) -> None:
    """The experiment's loggers follow a run's journal: the toolbox says in one line that it does not use them."""
    built = build(load_experiment(probe_experiment(write_experiment, tmp_path, workers=0, loggers=["tensorboard"])))
    with built.toolbox():
        pass
    err = capfd.readouterr().err
    assert err.count("evonas: loggers (tensorboard) log runs of `evonas run`; the DEAP toolbox does not use them") == 1
    with built.toolbox(quiet=True):
        pass
    assert "loggers" not in capfd.readouterr().err


@pytest.mark.parametrize("how", ["default", "toolbox(cache=False)", "cache: false"])
def test_the_evaluation_cache(write_experiment, tmp_path: Path, how: str) -> None:
    """On by default ($EVONAS_CACHE, private to each test): a genome evaluated once is never evaluated
    again, even by another toolbox; off with the experiment's ``cache: false`` or ``toolbox(cache=False)``
    (a toolbox still evaluates each key once, as a run does with --no-cache)."""
    path = probe_experiment(write_experiment, tmp_path, workers=0, **({"cache": False} if how == "cache: false" else {}))
    built = build(load_experiment(path))
    for _ in range(2):
        with built.toolbox(**({"cache": False} if how == "toolbox(cache=False)" else {})) as tb:
            pop = distinct(tb, 3)
            assert tb.map(tb.evaluate, pop) == [(score(i.key),) for i in pop]
            assert tb.map(tb.evaluate, [tb.clone(i) for i in pop]) == [(score(i.key),) for i in pop]
    assert len(evaluations(tmp_path)) == (3 if how == "default" else 6)
    assert Path(os.environ["EVONAS_CACHE"]).exists() == (how == "default")


def test_a_pickled_evaluate_runs_where_it_is_unpickled(write_experiment, tmp_path: Path) -> None:
    """What a DEAP user's own process pool would receive: it evaluates there, without a pool of its own."""
    import pickle

    path = probe_experiment(write_experiment, tmp_path, workers=2)
    with build(load_experiment(path)).toolbox() as tb:
        ind = distinct(tb, 1)[0]
        evaluate = pickle.loads(pickle.dumps(tb.evaluate))
        assert evaluate(ind) == (score(ind.key),)
        assert tb.isolated._workers.backend is None  # the toolbox's own workers never started
    assert evaluations(tmp_path) == [(ind.key, os.getpid())]


def test_the_experiment_seed_makes_a_deap_search_repeatable(write_experiment, tmp_path: Path) -> None:
    """DEAP's algorithms draw from Python's ``random``: the toolbox seeds it with the experiment's seed."""
    path = probe_experiment(write_experiment, tmp_path, workers=0)

    def search(noise: int) -> list[str]:
        random.seed(noise)  # whatever the script's module state was
        with build(load_experiment(path)).toolbox(cache=False) as tb:
            pop = tb.population(n=8)
            pop, _ = algorithms.eaMuPlusLambda(pop, tb, mu=8, lambda_=8, cxpb=0.3, mutpb=0.6, ngen=3, verbose=False)
        return [ind.key for ind in pop]

    assert search(1) == search(2)
    random.seed(5)
    with build(load_experiment(path)).toolbox(rng=random.Random(0), cache=False):
        assert random.random() == random.Random(5).random()  # with rng=, the module is left as it was


def test_an_nsga2_experiment_s_toolbox_selects_by_its_own_multi_objective_selection() -> None:
    """eaMuPlusLambda's survival is toolbox.select: for nsga2 it is the strategy's selNSGA2 (or nsga3, spea2), not the
    experiment's single-objective tournament, which would rank by the first objective alone."""
    import deap.tools

    from evonas.evolution import Individual

    repo = Path(__file__).resolve().parents[1]
    exp = load_experiment(repo / "experiments" / "nb201_multiobjective.yaml")
    tb = build(exp).toolbox(workers=0)
    weights = exp.weights
    assert len(weights) == 2
    space = build(exp).space
    rng = random.Random(0)
    inds = []
    for i in range(12):
        g = space.sample(rng=rng)
        ind = Individual(g, space.key(g), weights)
        ind.fitness.values = (float(i % 4), float(10 - i)) if weights[1] < 0 else (float(i % 4), float(i))
        inds.append(ind)
    chosen = tb.select(inds, 5)
    expected = deap.tools.selNSGA2(list(inds), 5)
    assert sorted(i.key for i in chosen) == sorted(i.key for i in expected)
    tb.close()
