"""Multi-objective search: cheap metrics, NSGA-II with hypervolume, Pareto outputs and plots, ``evonas best``."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import toy_experiment
from evonas.cli import main
from evonas.config import load_experiment, parse_experiment
from evonas.engine.build import build
from evonas.engine.runner import search
from evonas.pareto import derive_reference, dominates, hypervolume, nondominated
from evonas.spaces import make_space
from evonas.spaces.base import SearchSpace
from evonas.spaces.cost import count_params

MO = [{"metric": "val_acc", "direction": "max"}, {"metric": "params", "direction": "min"}]


@pytest.mark.parametrize("params, n", [({}, 4), ({"C": 4, "N": 1, "ops": ["none", "skip_connect", "nor_conv_3x3", "avg_pool_3x3"]}, 25)])
def test_nb201_additive_costs_equal_decode_and_count(params: dict, n: int) -> None:
    space = make_space("nb201", params)
    rng = random.Random(7)
    for _ in range(n):
        g = space.sample(rng=rng)
        exact = SearchSpace.cost_metrics(space, g, input_shape=(3, 32, 32), num_classes=10)  # decode and count
        assert space.cost_metrics(g, input_shape=(3, 32, 32), num_classes=10) == exact
    full = space.from_dict({"edges": ["nor_conv_3x3"] * 6}) if not params else None
    if full is not None:  # the benchmark's largest cell: 1.53 M parameters, as NAS-Bench-201 reports
        assert space.cost_metrics(full, input_shape=(3, 32, 32), num_classes=10)["params"] == 1_531_546


def test_the_shipped_nb201_cost_table_is_what_torch_measures_now() -> None:
    from evonas.spaces.defaults import genomes_dir
    from evonas.spaces.nb201_cost import SHIPPED, shipped_entry

    shipped = json.loads((genomes_dir() / "benchmarks" / SHIPPED).read_text())
    assert shipped == shipped_entry(make_space("nb201"), (3, 32, 32), 10), \
        "measure it again: python -m evonas.spaces.nb201_cost"


def test_chain_cost_metrics_count_the_decoded_network() -> None:
    space = make_space("chain")
    g = space.sample(rng=random.Random(3))
    m = space.cost_metrics(g, input_shape=(1, 8, 8), num_classes=10)
    assert m["params"] == count_params(space.decode(g, input_shape=(1, 8, 8), num_classes=10)) and m["flops"] > 0


def test_pareto_helpers() -> None:
    pts = [(0.95, 80_000), (0.90, 5_000), (0.80, 90_000), (0.90, 5_000)]
    assert nondominated(pts, (1, -1)) == [0, 1]
    assert dominates(pts[1], pts[2], (1, -1)) and not dominates(pts[0], pts[1], (1, -1))
    assert hypervolume(pts, (1, -1), (0.0, 100_000)) == pytest.approx(0.95 * 20_000 + 0.90 * 75_000)
    assert derive_reference(pts, (1, -1)) == pytest.approx([0.80 - 0.015, 90_000 + 8_500])


def _nb201(strategy: dict, **changes) -> dict:
    raw = {"name": "mo", "seed": 2, "space": {"name": "nb201"}, "fitness": {"name": "nb201_table"},
           "strategy": strategy, "objectives": MO, "workers": 0}  # fmt: skip
    raw.update(changes)
    return raw


@pytest.mark.parametrize("selection", ["nsga2", "nsga3", "spea2"])
def test_nsga2_logs_a_non_decreasing_hypervolume(selection: str) -> None:
    params = {"population_size": 12, "generations": 6, "selection": selection}
    result = search(build(parse_experiment(_nb201({"name": "nsga2", "params": params}))))
    rows = list(result.strategy.logbook)
    hv = [r["hypervolume"] for r in rows]
    assert len(rows) == 7 and hv[0] > 0 and all(b >= a for a, b in zip(hv, hv[1:]))
    front = [ind.fitness.values for ind in result.strategy.hall_of_fame]
    assert rows[-1]["front_size"] == len(front) and len(nondominated(front, (1, -1))) == len(set(front))  # equal points: one
    ref = result.strategy.reference_point  # derived from generation 0: worse than all of its points
    assert hv[-1] == pytest.approx(hypervolume(front, (1, -1), ref))


def test_run_folder_front_plots_and_best(write_experiment, tmp_path: Path, capsys) -> None:
    cfg = write_experiment(_nb201({"name": "nsga2", "params": {"population_size": 12, "generations": 5}}))
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0  # the command line draws the plots
    data = json.loads((out / "pareto_front.json").read_text())
    pts = [p["fitness"] for p in data["front"]]
    assert len(pts) >= 3 and len(nondominated(pts, (1, -1), ties=True)) == len(pts)
    assert all(p["metrics"]["params"] == p["fitness"][1] for p in data["front"])
    for name in ("fitness", "pareto_front", "pareto_fronts", "hypervolume"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 10_000, name
    assert main(["plot", str(out), "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "pareto_front.png").stat().st_size > 10_000
    capsys.readouterr()

    limit = sorted(p["metrics"]["params"] for p in data["front"])[1] + 1
    assert main(["best", str(out), "--where", f"params<{limit}", "--objectives", "val_acc,params,flops"]) == 0
    text = capsys.readouterr().out
    expected = max((p for p in data["front"] if p["metrics"]["params"] < limit), key=lambda p: p["fitness"][0])
    assert f"val_acc={expected['metrics']['val_acc']:.4g}" in text and expected["key"] in text and "flops=" in text
    for bad, message in (("params<<5", "--where: expected METRIC OP NUMBER"), ("size<3", "no evaluation reports the metric 'size'")):
        assert main(["best", str(out), "--where", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert main(["best", str(out), "--where", "params<1"]) == 1
    assert "no full evaluation" in capsys.readouterr().out
    assert main(["best", str(out), "--objectives", "val_acc,param"]) == 2  # a typo: one line naming the metrics
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--objectives: no evaluation reports the metric 'param'" in err, err
    # the smallest network that is accurate enough, not the most accurate one that is small enough
    from evonas.runfolder import RunFolder

    threshold = sorted(p["metrics"]["val_acc"] for p in data["front"])[-2]
    assert main(["best", str(out), "--where", f"val_acc>={threshold}", "--by", "params"]) == 0
    text = capsys.readouterr().out
    meeting = [r for r in RunFolder(out).records() if r.status == "ok" and r.complete and r.metrics["val_acc"] >= threshold]
    smallest = min(r.metrics["params"] for r in meeting)
    assert f"params={int(smallest)}" in text and f"chosen    the lowest params of the {len(meeting)} of" in text, text
    # --front lists pareto_front.json's members, in its order; --where narrows the evaluations it is taken from
    assert main(["best", str(out), "--front"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [r.split()[1] for r in rows[1:-1]] == [p["key"] for p in data["front"]], rows
    assert rows[-1].startswith(f"front     {len(data['front'])} non-dominated evaluations of ")
    assert main(["best", str(out), "--front", "--json", "--where", f"params<{limit}"]) == 0
    small = json.loads(capsys.readouterr().out)
    everything = [r for r in RunFolder(out).records() if r.complete and r.fitness and r.metrics["params"] < limit]
    points = [r.fitness for r in everything]
    expected_keys = {everything[i].key for i in nondominated(points, (1, -1), ties=True)}
    assert {m["key"] for m in small["front"]} == expected_keys and small["matches"] == len(everything)
    assert main(["best", str(out), "--front", "--by", "params"]) == 2
    assert "--by picks one evaluation and --front lists the front" in capsys.readouterr().err
    assert main(["best", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["record"]["key"] == json.loads((out / "best.json").read_text())["key"]
    assert main(["show", str(out), "0", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [s["trial"] for s in shown] == [0] and shown[0]["status"] in ("ok", "failed", "infeasible")
    # the best (best.json, `evonas best`, `evonas status`) is on the front: ties on val_acc go to fewer params
    best = json.loads((out / "best.json").read_text())
    assert best["key"] in {p["key"] for p in data["front"]}
    assert main(["best", str(out)]) == 0
    text = capsys.readouterr().out
    assert best["key"] in text and "by val_acc (max), ties by params (min)" in text
    assert main(["status", str(out)]) == 0 and f"key {best['key']}" in capsys.readouterr().out
    # two later evaluations tie with it on val_acc, one with fewer params: `best` and `status` name that one
    import dataclasses

    from evonas.engine.journal import Journal
    from evonas.runfolder import RunFolder

    top = next(r for r in RunFolder(out).records("seq") if r.key == best["key"])
    last = max(r.trial for r in RunFolder(out).records("seq"))
    with Journal(out / "journal.sqlite") as journal:
        for n, params in ((1, top.fitness[1] + 1), (2, top.fitness[1] - 1)):
            journal.append(dataclasses.replace(top, trial=last + n, key=f"{n:016x}", fitness=(top.fitness[0], params),
                                               metrics={**top.metrics, "params": params}))  # fmt: skip
    assert main(["best", str(out)]) == 0 and f"key {2:016x}" in capsys.readouterr().out
    assert main(["status", str(out)]) == 0 and f"key {2:016x}" in capsys.readouterr().out
    # another architecture equal to that one in every objective: both are on the front (neither dominates the other)
    with Journal(out / "journal.sqlite") as journal:
        journal.append(dataclasses.replace(top, trial=last + 3, key=f"{3:016x}", fitness=(top.fitness[0], top.fitness[1] - 1),
                                           metrics={**top.metrics, "params": top.fitness[1] - 1}))  # fmt: skip
    assert main(["best", str(out), "--front", "--json"]) == 0
    keys = [m["key"] for m in json.loads(capsys.readouterr().out)["front"]]
    assert keys[:2] == [f"{2:016x}", f"{3:016x}"], keys  # ties keep the run's order: the earlier trial first


def test_ties_on_the_first_objective_go_to_the_next_ones() -> None:
    from evonas.engine.journal import Record, ranked

    def rec(trial: int, fitness: tuple) -> Record:
        return Record(trial, f"k{trial}", 0, {}, "ok", {}, fitness)

    records = [rec(0, (0.98, 71000.0)), rec(1, (0.97, 100.0)), rec(2, (0.98, 34000.0)), rec(3, (0.98, float("nan"))),
               rec(4, (0.98, 34000.0))]  # fmt: skip
    assert [r.trial for r in ranked(records, [1.0, -1.0])] == [2, 4, 0, 3, 1]  # equal fitness: the earlier trial
    assert [r.trial for r in ranked(records, 1.0)] == [0, 2, 3, 4, 1]  # one weight: trial order breaks every tie
    assert [r.trial for r in ranked(records, [-1.0, -1.0])][0] == 1


def test_shipped_multiobjective_experiments_build() -> None:
    root = Path(__file__).resolve().parents[1] / "experiments"
    for name in ("multiobjective.yaml", "nb201_multiobjective.yaml"):
        exp = load_experiment(root / name)
        assert [o.metric for o in exp.objectives][:2] == ["val_acc", "params"] and exp.strategy.name == "nsga2"
    built = build(load_experiment(root / "nb201_multiobjective.yaml"))
    assert built.make_strategy().reference_point == [0.0, 1.7e6]


def test_train_fitness_reports_flops_and_latency() -> None:
    from evonas.datasets import DATASETS
    from evonas.fitness.train import TrainFitness

    data = DATASETS.get("synthetic")(seed=0)
    space = make_space("mlp") if len(data.input_shape) == 1 else make_space("chain")
    g = space.sample(rng=random.Random(0))
    m = TrainFitness(epochs=1, latency=True, latency_repeats=3, latency_warmup=1).evaluate(g, space=space, dataset=data, seed=0)
    cheap = space.cost_metrics(g, input_shape=data.input_shape, num_classes=data.num_classes)
    assert m["flops"] == cheap["flops"] and m["params"] == cheap["params"] and m["latency_ms"] > 0
    assert "latency_ms" not in TrainFitness(epochs=1).metrics
    # an objective or a limit on latency without latency: true says what turns it on
    from evonas.config import ConfigError, parse_experiment
    from evonas.engine.build import build

    raw = {"space": {"name": "chain"}, "dataset": {"name": "digits"}, "workers": 0, "strategy": {"name": "nsga2"},
           "objectives": [{"metric": "val_acc"}, {"metric": "latency_ms", "direction": "min"}]}  # fmt: skip
    for changes, key in (({}, "objectives\\[1\\].metric"), ({"objectives": [{"metric": "val_acc"}], "constraints": ["latency_ms < 5"]}, "constraints\\[0\\]")):
        with pytest.raises(ConfigError, match=f"{key}: .*; got 'latency_ms' \\(latency_ms is reported with fitness.params.latency: true\\)$"):
            build(parse_experiment({**raw, **changes}))
    assert build(parse_experiment({**raw, "fitness": {"name": "train", "params": {"latency": True}}}))


def test_a_three_objective_front_is_drawn_as_a_projection_that_says_so(write_experiment, tmp_path: Path, monkeypatch) -> None:
    """Three objectives: the plot draws the whole front's points, the staircase only through the members
    non-dominated in the two objectives drawn (it went down between members before), and the title names the
    objective left out."""
    import matplotlib.axes

    from evonas.plotting_pareto import plot_pareto

    three = [*MO, {"metric": "flops", "direction": "max"}]  # max flops: a front far from the params x val_acc one
    cfg = write_experiment(_nb201({"name": "nsga2", "params": {"population_size": 12, "generations": 3}}, objectives=three))
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    steps, titles = [], []
    monkeypatch.setattr(matplotlib.axes.Axes, "step", lambda self, x, y, *a, **k: steps.append((list(x), list(y))))
    original = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title",
                        lambda self, text, *a, **k: (titles.append(text), original(self, text, *a, **k))[1])  # fmt: skip
    plot_pareto(out, three, [], tmp_path / "plots")
    front = json.loads((out / "pareto_front.json").read_text())["front"]
    xs, ys = steps[0]
    two = [p["fitness"][:2] for p in front]
    assert sorted(zip(xs, ys)) == sorted({(two[i][1], two[i][0]) for i in nondominated(two, (1, -1))})
    assert all(b >= a for a, b in zip(ys, ys[1:]))  # params up, val_acc never down along the staircase
    assert "flops not shown" in titles[0] and "flops not shown" in titles[1]



def test_best_where_and_front_where_take_conditions_as_strings_from_python(write_experiment, tmp_path: Path) -> None:
    """The guide's `best_where(run, "val_acc>=0.5")`: strings (one, joined by `and`, or a list) are parsed as
    `--where` is; parsed conditions still work; none gives the best of all (a string was an AttributeError)."""
    from evonas.choose import best_where, front_where
    from evonas.constraints import parse_conditions
    from evonas.engine.runner import Run

    exp = load_experiment(write_experiment(toy_experiment(
        objectives=[{"metric": "val_acc", "direction": "max"}, {"metric": "size", "direction": "min"}],
        strategy={"name": "random", "params": {"samples": 20}}, selection={"name": "nsga2"})))  # fmt: skip
    Run(exp, tmp_path / "run", progress=False).execute()
    run = tmp_path / "run"
    parsed = parse_conditions("val_acc>=0.2 and size<=200")
    assert best_where(run, "val_acc>=0.2 and size<=200") == best_where(run, parsed) == best_where(
        run, ["val_acc>=0.2", "size<=200"])  # fmt: skip
    assert 0 < best_where(run, parsed)["matches"] < 20 and best_where(run, parsed)["record"] is not None
    assert best_where(run)["matches"] == best_where(run)["evaluations"] == 20
    assert front_where(run, "size<=200") == front_where(run, parse_conditions("size<=200"))


def test_random_and_grid_search_several_objectives_without_a_multi_objective_selection(write_experiment,
                                                                                      tmp_path: Path) -> None:
    """They never rank results to choose what to ask: the default tournament is not refused for them (it is for a
    strategy that ranks), and the run's Pareto front comes from the journal."""
    from evonas.config import ConfigError

    two = [{"metric": "val_acc", "direction": "max"}, {"metric": "size", "direction": "min"}]
    exp = toy_experiment(objectives=two, strategy={"name": "random", "params": {"samples": 12}})
    assert main(["run", str(write_experiment(exp)), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert json.loads((tmp_path / "run" / "pareto_front.json").read_text())["front"]
    with pytest.raises(ConfigError, match="the default selection, 'tournament', ranks one objective"):
        build(parse_experiment(toy_experiment(objectives=two)))  # ga ranks
