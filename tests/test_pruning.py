"""Pruning (``pruner:``) for every strategy, weight inheritance (``inherit:``), and what a run spent."""

from __future__ import annotations

import json
import math
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from evonas.config import ConfigError, parse_experiment
from evonas.engine.build import build
from evonas.engine.journal import ranked
from evonas.engine.runner import Run, search
from evonas.engine.weights import WeightStore
from evonas.evolution import Fitness
from evonas.pruners import PRUNERS, History, Curve, MedianPruner, SuccessiveHalvingPruner
from evonas.runfolder import RunFolder
from evonas.strategies import STRATEGIES
from test_define_by_run import small_build  # noqa: F401  (the function space's build function, by name)
from test_strategies import PARAMS

DATA = {"name": "synthetic", "params": {"n_samples": 160, "num_classes": 3, "shape": [6], "noise": 1.0}}
SPACE = {"name": "function", "params": {"build": "test_define_by_run:small_build", "input_shape": [6], "num_classes": 3}}
ASHA = {"name": "asha", "params": {"min_resource": 0.25, "reduction_factor": 2}}


def experiment(name: str = "aging", **changes: Any) -> dict[str, Any]:
    exp: dict[str, Any] = {
        "name": "prune", "seed": 5, "workers": 0, "budget": 14, "cache": False,
        "space": SPACE, "dataset": DATA,
        "fitness": {"name": "train", "params": {"epochs": 2, "batch_size": 16, "lr": 0.02}},
        "strategy": {"name": name, "params": dict(PARAMS.get(name, {}))},
        "pruner": ASHA,
    }  # fmt: skip
    if name == "nsga2":
        exp["objectives"] = [{"metric": "val_acc", "direction": "max"}, {"metric": "params", "direction": "min"}]
    exp.update(changes)
    return exp


# -- the pruners ------------------------------------------------------------------------------------------------
def test_median_pruner_stops_what_is_below_the_completed_median() -> None:
    pruner = MedianPruner(n_startup_trials=3, interval=0.25)
    assert pruner.points() == (0.25, 0.5, 0.75)
    done = History(tuple(Curve({0.25: v}) for v in (0.5, 0.6, 0.7)))
    assert pruner.prune(0.25, {0.25: 0.55}, done)  # below the median 0.6
    assert not pruner.prune(0.25, {0.25: 0.65}, done)
    assert not pruner.prune(0.25, {0.25: 0.1}, History(done.curves[:2]))  # fewer than n_startup_trials completed
    pruned_only = History(tuple(Curve({0.25: v}, complete=False) for v in (0.9, 0.9, 0.9)) + done.curves)
    assert not pruner.prune(0.25, {0.25: 0.65}, pruned_only)  # pruned evaluations are not in the median


def test_asha_keeps_the_best_share_of_each_rung() -> None:
    pruner = SuccessiveHalvingPruner(min_resource=1 / 9, reduction_factor=3)
    assert pruner.points() == (0.111111, 0.333333)
    assert not pruner.prune(0.111111, {0.111111: 0.1}, History())  # alone at its rung: it goes on
    rung = History(tuple(Curve({0.111111: v}, complete=False) for v in (0.2, 0.3, 0.4, 0.5, 0.6)))
    # six values at the rung: the best 6 // 3 = 2 go on (0.6 and this one, or not)
    assert not pruner.prune(0.111111, {0.111111: 0.55}, rung)
    assert pruner.prune(0.111111, {0.111111: 0.45}, rung)


def test_pruner_parameters_are_checked_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"pruner\.params.*reduction_factor"):
        build(parse_experiment(experiment(pruner={"name": "asha", "params": {"reduction_factor": 1}})))
    with pytest.raises(ConfigError, match=r"pruner\.name"):
        build(parse_experiment(experiment(pruner={"name": "no_such_pruner"})))
    with pytest.raises(ConfigError, match=r"pruner\.name: .*fitness 'toy' reports no learning curve"):
        build(parse_experiment(experiment(fitness={"name": "toy"})))
    with pytest.raises(ConfigError, match=r"inherit: .*fitness 'toy' trains no weights"):
        build(parse_experiment(experiment(fitness={"name": "toy"}, pruner="none", inherit=True)))
    with pytest.raises(ConfigError, match=r"inherit\.fidelity"):
        parse_experiment(experiment(inherit={"fidelity": 0}))
    assert set(PRUNERS.list()) >= {"none", "median", "percentile", "asha"}


def test_a_pruned_fitness_ranks_below_every_complete_one_and_above_a_failure() -> None:
    complete, pruned, failed = Fitness((0.1,), (1.0,)), Fitness((0.9,), (1.0,)), Fitness((-math.inf,), (1.0,))
    pruned.pruned = True
    assert failed < pruned < complete and max([pruned, failed, complete]) is complete
    assert complete.dominates(pruned) and not pruned.dominates(complete)


# -- every strategy ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", STRATEGIES.list())
def test_every_strategy_runs_with_a_pruner(strategy: str) -> None:
    built = build(parse_experiment(experiment(strategy)))
    result = search(built)
    records = result.records
    assert len(records) == 14 or strategy == "grid"
    pruned = [r for r in records if r.status == "pruned"]
    assert pruned and any(r.status == "ok" for r in records)
    full_steps = max(r.metrics["train_steps"] for r in records if r.status == "ok")
    for r in pruned:  # stopped at a rung, with the metrics there and what it reported
        assert r.curve and r.metrics["pruned_at"] in (0.25, 0.5) and r.metrics["train_steps"] < full_steps
        assert r.fitness is not None and not r.complete
        built.space.validate(built.space.from_dict(r.genome))
    best = ranked(records, built.experiment.objectives[0].weight)
    assert best and best[0].status == "ok"
    hof = result.strategy.hall_of_fame
    if len(built.experiment.objectives) == 1:  # the strategy's own ranking puts a complete evaluation first
        assert not hof[0].fitness.pruned


# -- inheritance -------------------------------------------------------------------------------------------------
def test_children_start_from_their_parents_weights_and_are_never_reported_as_full(tmp_path: Path) -> None:
    exp = parse_experiment(experiment(budget=24, pruner="none", inherit={"fidelity": 0.5, "confirm": 2},
                                      strategy={"name": "aging", "params": {"population_size": 6, "sample_size": 3}}))  # fmt: skip
    summary = Run(exp, tmp_path / "run", progress=False).execute()
    with sqlite3.connect(tmp_path / "run" / "journal.sqlite") as db:
        rows = db.execute("SELECT trial, key, origin, inherited, status, metrics FROM evaluations ORDER BY trial").fetchall()
    inherited = [r for r in rows if r[3] is not None]
    assert inherited and summary.inherited == len(inherited)
    keys = {r[1] for r in rows[:-2]}
    for _, _, origin, parent, _, metrics in inherited:
        assert origin.startswith(("mutation:", "crossover:")) and parent in keys
        m = json.loads(metrics)
        assert m["inherited_tensors"] > 0 and m["epochs"] == 1.0  # half of the 2 epochs
    confirms = rows[-2:]  # after the search: the best inherited genomes, trained from scratch
    assert [r[2] for r in confirms] == ["confirm", "confirm"] and all(r[3] is None for r in confirms)
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    complete = {r[1] for r in rows if r[3] is None and r[4] == "ok"}
    assert best["key"] in complete and best["metrics"]["epochs"] == 2
    hof = json.loads((tmp_path / "run" / "hall_of_fame.json").read_text())
    assert hof and all(h["key"] in complete and h["metrics"]["epochs"] == 2 for h in hof)
    assert list((tmp_path / "run" / "weights").glob("*.safetensors"))
    assert summary.train_steps == sum(json.loads(r[5]).get("train_steps", 0) for r in rows) > 0


def test_the_weight_store_stays_under_its_bound_on_a_500_evaluation_run(tmp_path: Path) -> None:
    bound_mb = 0.01  # a few of this space's networks (0.5 to 1.5 KiB each)
    exp = parse_experiment(experiment(
        budget=500, pruner="none", inherit={"fidelity": 0.5, "max_mb": bound_mb, "confirm": 0},
        strategy={"name": "aging", "params": {"population_size": 10, "sample_size": 3}},
        fitness={"name": "train", "params": {"epochs": 1, "batch_size": 64}},
    ))  # fmt: skip
    store = WeightStore(tmp_path / "run" / "weights")
    sizes: list[int] = []
    Run(exp, tmp_path / "run", progress=False, on_result=lambda rec: sizes.append(store.size())).execute()
    # measured as each result is journalled (before the store is trimmed for it), and at the end
    sizes.append(store.size())
    assert len(sizes) == 501 and max(sizes) <= bound_mb * 2**20, max(sizes)
    assert len(store.files()) >= 3  # the bound is used, not emptied


def test_a_run_with_a_pruner_and_inheritance_resumes_exactly_after_sigkill(write_experiment, tmp_path: Path) -> None:
    exp = experiment(budget=40, inherit={"fidelity": 0.5, "confirm": 2},
                     strategy={"name": "aging", "params": {"population_size": 8, "sample_size": 3}})  # fmt: skip
    plugin = str(Path(__file__).with_name("test_define_by_run.py"))
    exp["plugins"] = [plugin]
    exp["space"] = {**SPACE, "params": {**SPACE["params"], "build": "test_define_by_run:small_build"}}
    cfg = write_experiment(exp)

    def journal(run: Path) -> list[tuple]:
        # evonas's own reader: it never changes the folder (a plain connection, the last one to close after the
        # SIGKILL, would checkpoint and delete the -wal file the resume needs)
        return [(r.trial, r.key, r.status, r.inherited) for r in RunFolder(run).records("trial")]

    run = [sys.executable, "-m", "evonas"]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    subprocess.run([*run, "run", str(cfg), "--out", str(reference), "--quiet"], check=True, capture_output=True)
    proc = subprocess.Popen([*run, "run", str(cfg), "--out", str(killed), "--quiet"], stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not ((killed / "journal.sqlite").exists() and len(journal(killed)) >= 15):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 15 <= len(journal(killed)) < 42
    done = subprocess.run([*run, "resume", str(killed), "--quiet", "--plugins", plugin], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert journal(killed) == journal(reference)
    assert any(r[2] == "pruned" for r in journal(reference)) and any(r[3] for r in journal(reference))
    best = [json.loads((d / "best.json").read_text()) for d in (reference, killed)]
    assert best[0]["key"] == best[1]["key"] and best[0]["metrics"]["val_acc"] == best[1]["metrics"]["val_acc"]


def test_config_yaml_records_the_pruner_and_inheritance(tmp_path: Path) -> None:
    exp = parse_experiment(experiment("random", budget=4, inherit=True))
    Run(exp, tmp_path / "run", progress=False).execute()
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["pruner"] == {"name": "asha", "params": {"min_resource": 0.25, "reduction_factor": 2,
                                                           "min_early_stopping_rate": 0}}  # fmt: skip
    assert config["inherit"] == {"fidelity": pytest.approx(1 / 3), "max_mb": 1024.0, "confirm": 3}
    assert parse_experiment(config).inherit == exp.inherit


def test_status_report_summary_and_logbook_say_what_the_run_spent(tmp_path: Path) -> None:
    from evonas.commands import _summary
    from evonas.engine.status import format_status, read_status
    from evonas.report import write_report

    exp = parse_experiment(experiment(budget=12, plugins=[str(Path(__file__).with_name("test_define_by_run.py"))]))
    summary = Run(exp, tmp_path / "run", progress=False).execute()
    with sqlite3.connect(tmp_path / "run" / "journal.sqlite") as db:
        steps = int(sum(json.loads(m).get("train_steps", 0) for (m,) in db.execute("SELECT metrics FROM evaluations")))
        pruned = db.execute("SELECT COUNT(*) FROM evaluations WHERE status = 'pruned'").fetchone()[0]
    assert summary.train_steps == steps > 0 and summary.pruned == pruned > 0 and summary.train_samples > steps
    line = f"training  {steps:,} optimizer steps, {summary.train_samples:,} samples seen ({pruned} evaluations pruned early)"
    assert line in _summary(summary, exp.objectives)
    assert line in format_status(read_status(tmp_path / "run"))
    page = write_report(tmp_path / "run", tmp_path / "report.html", plugins=exp.plugins).read_text()
    assert f"<td>{steps:,}</td>" in page and "pruned" in page
    logbook = json.loads((tmp_path / "run" / "logbook.json").read_text())
    assert logbook[-1]["train_steps"] <= steps and logbook[-1]["train_steps"] > 0


def test_a_confirmed_run_refuses_an_extension_before_writing_anything(tmp_path: Path) -> None:
    from evonas.runfolder import RunFolderError

    exp = parse_experiment(experiment(budget=10, pruner="none", inherit={"fidelity": 0.5, "confirm": 1},
                                      strategy={"name": "aging", "params": {"population_size": 4, "sample_size": 2}}))  # fmt: skip
    Run(exp, tmp_path / "run", progress=False).execute()
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    with pytest.raises(RunFolderError, match="search is over.*cannot be extended"):
        Run.resume(tmp_path / "run", overrides={"budget": 20}, plugins=[])
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()} == before


def test_with_inheritance_the_cache_is_not_read(tmp_path: Path, monkeypatch) -> None:
    """A parent from the cache would have no trained weights for its children: the run trains everything."""
    monkeypatch.setenv("EVONAS_CACHE", str(tmp_path / "cache.sqlite"))
    plain = parse_experiment(experiment(budget=8, pruner="none", cache=True))
    Run(plain, tmp_path / "a", progress=False).execute()
    again = Run(plain, tmp_path / "b", progress=False).execute()
    assert again.cached == 8
    inherit = parse_experiment(experiment(budget=8, pruner="none", cache=True, inherit={"confirm": 0}))
    summary = Run(inherit, tmp_path / "c", progress=False).execute()
    assert summary.cached == 0 and summary.inherited > 0


def test_a_pruner_that_raises_fails_its_evaluations_saying_so() -> None:
    from evonas.pruners import Pruner

    @PRUNERS.register("broken_for_test")
    class Broken(Pruner):
        name = "broken_for_test"

        def points(self) -> tuple[float, ...]:
            return (0.5,)

        def prune(self, share: float, curve: Any, history: History) -> bool:
            raise KeyError("oops")

    try:
        records = search(build(parse_experiment(experiment("random", budget=3, pruner="broken_for_test")))).records
    finally:
        PRUNERS._items.pop("broken_for_test", None)
    assert [r.status for r in records] == ["failed"] * 3
    assert all(r.error == "RuntimeError: pruner 'broken_for_test' raised KeyError: 'oops'" for r in records)
