"""Constraints: parsing, cheap limits never trained (recorded as infeasible), limits after training, resume."""

from __future__ import annotations

import json
import math
import sqlite3
import sys
from pathlib import Path

import pytest

from conftest import toy_experiment
from evonas.cli import main
from evonas.config import load_experiment
from evonas.constraints import Constraint, parse_conditions, parse_constraint
from evonas.engine.build import build
from evonas.engine.runner import Run, RunInterrupted
from evonas.engine.status import format_status, read_status

LIMIT = 300_000  # parameters: about half of nb201's cells are over it (at the default C=16, N=5)


def journal(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        return db.execute("SELECT trial, key, status, genome, metrics, fitness, worker FROM evaluations ORDER BY trial").fetchall()


def test_parse() -> None:
    assert parse_constraint("params <= 1e5") == Constraint("params", "<=", 100_000.0)
    assert parse_constraint("latency_ms<5").holds(4.9) and not parse_constraint("latency_ms<5").holds(5)
    assert parse_constraint("val_acc >= 0.9").holds(0.9) and not parse_constraint("val_acc >= 0.9").holds(None)
    assert [c.metric for c in parse_conditions("params<50000 and flops<1e6, val_acc>0.5")] == ["params", "flops", "val_acc"]
    with pytest.raises(ValueError, match="'or' is not supported, got 'val_acc > 0.8 or params < 5'"):
        parse_conditions("val_acc > 0.8 or params < 5")
    with pytest.raises(ValueError, match="'or' is not supported"):
        parse_conditions("val_acc > 0.8 OR params < 5")
    assert len(parse_conditions("val_acc > 0.8 AND params < 5")) == 2
    for bad in ("params", "params <= x", "params == 5", "<= 5", "params <= inf"):
        with pytest.raises(ValueError):
            parse_constraint(bad)


def _constrained(write_experiment, strategy: dict, constraints: list[str], **changes) -> Path:
    return write_experiment(toy_experiment(strategy=strategy, constraints=constraints, **changes))


def _check_never_trained_over(run_dir: Path, limit: float) -> dict[str, int]:
    exp = load_experiment(run_dir / "config.yaml")
    built = build(exp)
    counts: dict[str, int] = {}
    for trial, key, status, genome, metrics, fitness, worker in journal(run_dir):
        counts[status] = counts.get(status, 0) + 1
        params = built.space.cost_metrics(built.space.from_dict(json.loads(genome)), input_shape=(3, 32, 32), num_classes=10)["params"]
        if status == "infeasible":  # recorded, never trained: no worker, no fitness, its cheap metrics
            assert params > limit and json.loads(metrics)["params"] == params and fitness is None and worker is None
        else:
            assert params <= limit, (trial, status, params)
    return counts


def test_engine_never_trains_a_cheap_violation(write_experiment, tmp_path: Path) -> None:
    """aging told not to redraw (max_retries: 0): the engine records infeasible genomes and trains none of them."""
    aging = {"name": "aging", "params": {"population_size": 10, "sample_size": 3, "max_retries": 0}}
    cfg = _constrained(write_experiment, aging, [f"params <= {LIMIT}"], budget=40)
    summary = Run(load_experiment(cfg), tmp_path / "run", progress=False).execute()
    counts = _check_never_trained_over(tmp_path / "run", LIMIT)
    assert counts.get("infeasible", 0) > 0 and summary.infeasible == counts["infeasible"]
    # aging stops after 40 told candidates (its own count includes the infeasible ones it is told about)
    assert summary.evaluations == counts["ok"] and counts["ok"] + counts["infeasible"] == 40
    st = read_status(tmp_path / "run")
    assert st["infeasible"] == counts["infeasible"] and f"{counts['infeasible']} infeasible" in format_status(st)
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["metrics"].get("size") is not None  # the best is a trained (toy-scored) genome


def test_infeasible_candidates_cost_no_budget(write_experiment, tmp_path: Path) -> None:
    ga = {"name": "ga", "params": {"population_size": 10, "generations": 10, "max_retries": 0}}  # no redraws
    cfg = _constrained(write_experiment, ga, [f"params <= {LIMIT}"], budget=25)
    summary = Run(load_experiment(cfg), tmp_path / "run", progress=False).execute()
    counts = _check_never_trained_over(tmp_path / "run", LIMIT)
    assert summary.evaluations == counts["ok"] == 25 and summary.infeasible == counts["infeasible"] > 0


def test_ga_redraws_infeasible_children(write_experiment, tmp_path: Path) -> None:
    """ga asks SearchContext.feasible and redraws: far fewer infeasible candidates than aging's blind proposals."""
    cfg = _constrained(write_experiment, {"name": "ga", "params": {"population_size": 10, "generations": 4}},
                       [f"params <= {LIMIT}"])  # fmt: skip
    Run(load_experiment(cfg), tmp_path / "run", progress=False).execute()
    counts = _check_never_trained_over(tmp_path / "run", LIMIT)
    assert counts.get("infeasible", 0) <= 2 and counts["ok"] >= 40


@pytest.mark.parametrize("strategy", [
    {"name": "aging", "params": {"population_size": 10, "sample_size": 3}},
    {"name": "local_search", "params": {"initial_samples": 5}},
    {"name": "surrogate", "params": {"initial_samples": 5, "pool": 30, "trees": 10}},
    {"name": "reinforce", "params": {}},
])  # fmt: skip
def test_steady_state_strategies_redraw_infeasible_genomes(strategy, write_experiment, tmp_path: Path) -> None:
    """With redraws (the default) the steady-state strategies rarely propose an infeasible genome."""
    cfg = _constrained(write_experiment, strategy, [f"params <= {LIMIT}"], budget=40)
    Run(load_experiment(cfg), tmp_path / "run", progress=False).execute()
    counts = _check_never_trained_over(tmp_path / "run", LIMIT)
    assert counts.get("infeasible", 0) <= 2 and counts["ok"] >= 38, counts


def test_limit_after_training_is_violated_with_worst_fitness(write_experiment, tmp_path: Path) -> None:
    cfg = _constrained(write_experiment, {"name": "ga", "params": {"population_size": 8, "generations": 3}}, ["val_acc >= 0.5"])
    Run(load_experiment(cfg), tmp_path / "run", progress=False).execute()
    rows = journal(tmp_path / "run")
    violated = [r for r in rows if r[2] == "violated"]
    assert violated and all(json.loads(r[4])["val_acc"] < 0.5 and r[5] is None for r in violated)
    assert all(json.loads(r[4])["val_acc"] >= 0.5 for r in rows if r[2] == "ok")
    pop = json.loads((tmp_path / "run" / "population.json").read_text())
    assert all(p["metrics"]["val_acc"] >= 0.5 for p in pop[:4])  # feasible genomes rank first


@pytest.mark.parametrize("strategy", [
    {"name": "aging", "params": {"population_size": 10, "sample_size": 3}},
    {"name": "nsga2", "params": {"population_size": 8, "generations": 4}},
])  # fmt: skip
def test_resume_with_infeasible_rows_is_exact(write_experiment, tmp_path: Path, strategy: dict) -> None:
    objectives = [{"metric": "val_acc"}, {"metric": "size", "direction": "min"}] if strategy["name"] == "nsga2" else None
    extra = {"objectives": objectives} if objectives else {}
    cfg = _constrained(write_experiment, strategy, [f"params <= {LIMIT}"], budget=30, **extra)
    Run(load_experiment(cfg), tmp_path / "ref", progress=False).execute()
    seen = 0

    def stop(rec) -> None:
        nonlocal seen
        seen += 1
        if seen == 13:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        Run(load_experiment(cfg), tmp_path / "cut", progress=False, on_result=stop).execute()
    Run.resume(tmp_path / "cut", progress=False).continue_run()
    strip = lambda rows: [r[:3] for r in rows]  # noqa: E731
    assert strip(journal(tmp_path / "cut")) == strip(journal(tmp_path / "ref"))
    for name in ("best.json", "population.json", "hall_of_fame.json"):
        assert (tmp_path / "cut" / name).read_text() == (tmp_path / "ref" / name).read_text(), name


def test_cli_summary_counts_infeasible(write_experiment, tmp_path: Path, capsys) -> None:
    aging = {"name": "aging", "params": {"population_size": 10, "sample_size": 3, "max_retries": 0}}  # no redraws
    cfg = _constrained(write_experiment, aging, [f"params <= {LIMIT}"], budget=20)
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    out = capsys.readouterr().out
    n = sum(1 for r in journal(tmp_path / "run") if r[2] == "infeasible")
    assert f"limits    {n} candidates broke a cheap limit" in out
    # a steady-state strategy has no generations: the summary says how its logbook counts
    evaluated = next(line for line in out.splitlines() if line.startswith("evaluated "))
    assert "steady-state, logged every 10 results (" in evaluated and "generation" not in evaluated, evaluated


def test_limits_no_value_meets_are_refused_and_a_run_with_nothing_feasible_says_so(write_experiment, tmp_path: Path,
                                                                                   capsys) -> None:
    from evonas.constraints import parse_constraints

    with pytest.raises(ValueError, match="^'params >= 1e\\+06' and 'params <= 100': no value of params meets both$"):
        parse_constraints(["params <= 100", "params >= 1e6"])
    with pytest.raises(ValueError, match="'params >= 5' and 'params < 5'"):
        parse_constraints(["params < 5", "params >= 5"])
    assert len(parse_constraints(["params <= 5", "params >= 5", "flops < 1"])) == 3  # params = 5 meets both
    with pytest.raises(ValueError, match="^'params <= -5': params is a count, never below 0, so no candidate meets it$"):
        parse_constraints(["params <= -5"])  # a single limit no value meets
    with pytest.raises(ValueError, match="^'flops < 0': flops is a count"):
        parse_constraints(["flops < 0"])
    assert parse_constraints(["val_acc <= -1"])  # a plug-in's metric may be negative: only evonas's counts are known
    # toy scores are below 0.999999: a limit inside the declared range [0, 1] that no candidate meets
    cfg = _constrained(write_experiment, {"name": "random", "params": {"samples": 4}}, ["val_acc > 0.9999995"], budget=4)
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 1  # no best: a script can tell
    out, err = capsys.readouterr()
    assert err.strip() == "evonas: the run found no best (its summary says why); exit code 1", err
    assert "best      none: every candidate that did not fail broke a limit of the experiment's constraints" in out, out
    assert main(["status", str(tmp_path / "run")]) == 0  # finished: none, not "none yet"
    shown = capsys.readouterr().out
    assert "best      none\n" in shown + "\n" and "none yet" not in shown, shown


def test_a_limit_outside_the_range_the_fitness_declares_is_refused(write_experiment, tmp_path: Path, capsys) -> None:
    """val_acc >= 95 on a fitness that reports a fraction: one line before any run folder, exit 2."""
    for limit, hint in (("val_acc >= 95", " (a fraction, not a percentage)"), ("val_acc > 1", ""), ("size < 0", "")):
        cfg = _constrained(write_experiment, {"name": "random", "params": {"samples": 4}}, [limit], budget=4)
        assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        metric = limit.split()[0]
        low, high = {"val_acc": ("0", "1"), "size": ("0", "inf")}[metric]
        assert err.endswith(
            f"constraints[0]: '{limit}': fitness 'toy' reports {metric} from {low} to {high}, so no result meets it{hint}"
        ), err
        assert not (tmp_path / "run").exists()
    cfg = _constrained(write_experiment, {"name": "random", "params": {"samples": 4}}, ["val_acc >= 1"], budget=4)
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 1  # met by 1 only: allowed


def test_the_table_fitness_declares_val_acc_only_without_noise() -> None:
    from evonas.fitness.table import NB201TableFitness

    plain = NB201TableFitness()
    best = plain.table.best()
    assert plain.metric_ranges["test_acc_200ep"][1] == best.test_acc_200ep > 94  # the table's own range
    low, high = plain.metric_ranges["val_acc"]
    assert 0.0 <= low < high <= 1.0 and high == max(r.val_acc_12ep for r in plain.table) / 100
    assert "val_acc" not in NB201TableFitness(noise=0.5).metric_ranges  # noise may take it past the table's values
    assert "val_acc" in NB201TableFitness().metric_ranges


def test_a_malformed_metric_range_of_a_plugin_fitness_is_named() -> None:
    from types import SimpleNamespace

    from evonas.config import ConfigError
    from evonas.engine.build import metric_ranges

    exp = SimpleNamespace(source="e.yaml", fitness=SimpleNamespace(name="mine"))
    fitness_list = SimpleNamespace(metric_ranges=[("acc", (0, 1))])
    with pytest.raises(ConfigError, match=r"fitness 'mine': metric_ranges must be a dict such as \{'val_acc': \(0\.0, "
                                          r"1\.0\)\}, got list"):  # fmt: skip
        metric_ranges(exp, fitness_list)  # type: ignore[arg-type]
    for bad in (1.0, (1.0,), (1.0, 0.0), ("0", "1"), (True, 2)):
        fitness = SimpleNamespace(metric_ranges={"acc": bad})
        with pytest.raises(ConfigError, match=r"fitness 'mine': metric_ranges\['acc'\] must be \(low, high\) numbers"):
            metric_ranges(exp, fitness)  # type: ignore[arg-type]
    assert metric_ranges(exp, SimpleNamespace(metric_ranges={"acc": (0, 100)})) == {"acc": (0.0, 100.0)}  # type: ignore[arg-type]
    assert metric_ranges(exp, SimpleNamespace(metric_ranges={})) == {}  # type: ignore[arg-type]


def test_a_result_outside_the_range_its_fitness_declares_fails_saying_so() -> None:
    """metric_ranges is checked against what the fitness returns, as it is against the constraints."""
    from evonas.engine.backends import _check_ranges

    _check_ranges({"val_acc": 0.5, "loss": 3.0, "note": "x"}, {"val_acc": (0.0, 1.0), "loss": (0.0, math.inf)})
    _check_ranges({"val_acc": float("nan")}, {"val_acc": (0.0, 1.0)})  # non-finite: the objective check's to say
    _check_ranges({"val_acc": 87.5}, None)  # nothing declared
    with pytest.raises(ValueError, match=r"^the fitness returned val_acc=87\.5, outside the range its metric_ranges "
                                         r"declares \(0 to 1\)$"):  # fmt: skip
        _check_ranges({"val_acc": 87.5}, {"val_acc": (0.0, 1.0)})


def test_a_metric_range_for_a_metric_the_fitness_does_not_report_is_refused(tmp_path: Path, write_experiment,
                                                                            capsys) -> None:
    """A typo in metric_ranges would leave the metric it meant unchecked."""
    (tmp_path / "typo_fitness.py").write_text(
        "from evonas.fitness import FITNESSES, FitnessFunction\n\n\n@FITNESSES.register('t_typo')\n"
        "class Typo(FitnessFunction):\n    needs_dataset = False\n    metrics = ('score',)\n"
        "    metric_ranges = {'scroe': (0.0, 100.0)}\n\n    def evaluate(self, genome, *, space, dataset, seed):\n"
        "        return {'score': 50.0}\n"
    )  # fmt: skip
    exp = toy_experiment(plugins=["typo_fitness.py"], fitness={"name": "t_typo"},
                         objectives=[{"metric": "score", "direction": "max"}])  # fmt: skip
    try:
        assert main(["run", str(write_experiment(exp)), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    finally:
        from evonas.fitness import FITNESSES

        FITNESSES._items.pop("t_typo", None)
        sys.modules.pop("typo_fitness", None)
    assert capsys.readouterr().err.strip().endswith(
        "fitness 't_typo': metric_ranges names 'scroe', which it does not report (it reports score)")


def test_a_limit_no_candidate_met_is_said_with_the_nearest_value(write_experiment, tmp_path: Path, capsys) -> None:
    """Every candidate broke ``params <= 10``: the summary says how near the search came, not only that it failed."""
    cfg = _constrained(write_experiment, {"name": "random", "params": {"samples": 4}}, ["params <= 10"])
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 1
    out = capsys.readouterr().out
    nearest = min(json.loads(row[4])["params"] for row in journal(tmp_path / "run"))
    assert f"limits    4 candidates broke a cheap limit (recorded as infeasible, never trained); 0 evaluations broke " \
           f"a limit after training; no candidate met params <= 10: nearest params={nearest}" in out, out


def test_a_params_limit_alone_counts_no_flops(monkeypatch) -> None:
    """FLOPs take a forward pass under torch's FlopCounterMode (about 10x the parameter count's time): counted only
    when a constraint names them; a space's own cost_metrics is asked as before."""
    import random

    from evonas.constraints import ConstraintChecker
    from evonas.spaces import make_space
    from evonas.spaces import cost

    space = make_space("mlp")
    genome = space.sample(rng=random.Random(0))
    full = space.cost_metrics(genome, input_shape=(6,), num_classes=3)
    monkeypatch.setattr(cost, "count_flops", lambda *a, **k: pytest.fail("FLOPs counted for a params limit"))
    params_only = ConstraintChecker([parse_constraint("params <= 1e9")], space, (6,), 3)
    assert params_only.cheap_metrics(genome) == {"params": full["params"]}
    monkeypatch.undo()
    both = ConstraintChecker([parse_constraint("params <= 1e9"), parse_constraint("flops <= 1e12")], space, (6,), 3)
    assert both.cheap_metrics(genome) == full
