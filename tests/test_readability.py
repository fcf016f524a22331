"""Plots a person reads at a glance, `evonas best` without --where, the resolved config.yaml, exported logits.

Issue 15, part 7 and the README's claims: integer generation ticks, every axis labelled, eight operator curves
told apart, grammatical titles; `config.yaml` holds every default and `evonas resume` reads it back to the same
run; an exported TorchScript model returns logits.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from conftest import toy_experiment
from evonas.cli import main
from evonas.config import load_experiment, parse_experiment, safe_load_yaml
from evonas.engine.build import build, resolved_experiment
from evonas.engine.cache import problem_fingerprint
from evonas.engine.outputs import CONFIG_HEADER, write_config
from evonas.engine.runner import Run
from evonas.plotting import plural


# -- helpers ------------------------------------------------------------------------------------------------


def _run(tmp: Path, name: str, exp: dict[str, Any]) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    Run(load_experiment(path), tmp / name, progress=False).execute()
    return tmp / name


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every figure saved while the fixture is active, by file name (the last one saved under each name)."""
    from matplotlib.figure import Figure

    saved: dict[str, Any] = {}
    original = Figure.savefig

    def savefig(self: Figure, fname: Any, *args: Any, **kwargs: Any) -> Any:
        saved[Path(str(fname)).name] = self
        return original(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved


def _visible_ticks(axis: Any) -> list[float]:
    lo, hi = sorted(axis.get_view_interval())
    return [t for t in axis.get_majorticklocs() if lo - 1e-9 <= t <= hi + 1e-9]


def _generation_axes(fig: Any) -> list[Any]:
    """The axes (x axes and colour bars) that count generations."""
    out = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_visible() and "generation" in axis.get_label_text():
                out.append(axis)
    return out


def _unlabelled(fig: Any) -> list[str]:
    """Axes with tick labels showing but no label saying what they count."""
    fig.canvas.draw()
    missing = []
    for i, ax in enumerate(fig.axes):
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            shown = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            if axis.get_visible() and shown and not axis.get_label_text().strip():
                missing.append(f"axes {i} ({ax.get_title()!r}): {name} axis")
    return missing


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Toy GA runs of 1, 2 and 5 generations (nb201, no training; about a second each)."""
    tmp = tmp_path_factory.mktemp("toy")
    return {
        g: _run(tmp, f"g{g}", toy_experiment(strategy={"name": "ga", "params": {"population_size": 8, "generations": g}}))
        for g in (1, 2, 5)
    }


@pytest.fixture(scope="module")
def multi_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-objective toy run (NSGA-II): the Pareto plots."""
    tmp = tmp_path_factory.mktemp("multi")
    exp = toy_experiment(
        strategy={"name": "nsga2", "params": {"population_size": 8, "generations": 2}},
        objectives=[{"metric": "val_acc", "direction": "max"}, {"metric": "size", "direction": "min"}],
    )
    return _run(tmp, "multi", exp)


# -- plots ----------------------------------------------------------------------------------------------


def _plot(run: Path, out: Path) -> None:
    """``evonas plot RUN --out OUT``, in this process (so that :func:`drawn` sees the figures)."""
    assert main(["plot", str(run), "--out", str(out)]) == 0


@pytest.mark.parametrize("generations", [1, 2, 5])
def test_generation_ticks_are_whole_numbers(toy_runs: dict[int, Path], drawn: dict[str, Any], generations: int,
                                            tmp_path: Path) -> None:  # fmt: skip
    _plot(toy_runs[generations], tmp_path)
    assert {"fitness.png", "diagnostics.png"} <= set(drawn)
    for name in ("fitness.png", "diagnostics.png"):
        axes = _generation_axes(drawn[name])
        assert len(axes) == (1 if name == "fitness.png" else 3), name
        for axis in axes:
            ticks = _visible_ticks(axis)
            assert ticks, f"{name}: a generation axis without a tick"
            assert all(float(t).is_integer() for t in ticks), f"{name}: generation ticks {ticks}"
            # every generation of the run is in view, and a single generation is not squeezed into 0.96 ... 1.04
            lo, hi = sorted(axis.get_view_interval())
            assert lo < 0 and hi > generations and hi - lo >= 1, (name, lo, hi)
    panels = drawn["diagnostics.png"].axes[:1] + [drawn["diagnostics.png"].axes[1], drawn["diagnostics.png"].axes[2]]
    limits = {tuple(ax.get_xlim()) for ax in panels}
    assert len(limits) == 1, f"the diagnostics panels share one generation axis, got {limits}"


def test_pareto_plots_count_whole_generations(multi_run: Path, drawn: dict[str, Any], tmp_path: Path) -> None:
    _plot(multi_run, tmp_path)
    assert {"pareto_front.png", "pareto_fronts.png", "hypervolume.png"} <= set(drawn)
    for name in ("pareto_fronts.png", "hypervolume.png"):  # the colour bar of the fronts, the hypervolume's x axis
        axes = _generation_axes(drawn[name])
        assert axes, name
        for axis in axes:
            ticks = _visible_ticks(axis)
            assert ticks and all(float(t).is_integer() for t in ticks), f"{name}: {ticks}"


def test_every_axis_is_labelled(toy_runs: dict[int, Path], multi_run: Path, drawn: dict[str, Any], tmp_path: Path) -> None:
    from evonas.plotting import plot_runs

    _plot(toy_runs[5], tmp_path / "g5")
    _plot(multi_run, tmp_path / "multi")
    plot_runs([toy_runs[1], toy_runs[2], toy_runs[5]], tmp_path / "compare.png")
    assert {"fitness.png", "diagnostics.png", "pareto_front.png", "pareto_fronts.png", "hypervolume.png",
            "compare.png"} <= set(drawn)  # fmt: skip
    for name, fig in drawn.items():
        assert not _unlabelled(fig), f"{name}: {_unlabelled(fig)}"
    # the diversity panel: both of its y axes say what they count
    ax = drawn["diagnostics.png"].axes[1]
    twins = [a for a in drawn["diagnostics.png"].axes if a is not ax and a.get_position().bounds == ax.get_position().bounds]
    assert ax.get_ylabel() and twins and twins[0].get_ylabel()


def test_genealogy_titles_are_grammatical(toy_runs: dict[int, Path], drawn: dict[str, Any], tmp_path: Path) -> None:
    from evonas.diagnostics import diagnose
    from evonas.plotting import genealogy_title, plot_diagnostics

    assert genealogy_title(1) == "genealogy of the best genome (red): an initial sample, no ancestors"
    assert genealogy_title(2) == "genealogy of the best genome (red) and its 1 ancestor"
    assert genealogy_title(4) == "genealogy of the best genome (red) and its 3 ancestors"
    for n in range(6):
        assert not re.search(r"\b1 \w+s\b", genealogy_title(n)), genealogy_title(n)
    # the one-generation run's best is an initial sample: a genealogy of one genome, titled as such
    run = toy_runs[1]
    d = diagnose(run)
    assert len(d["genealogy"]) == 1
    plot_diagnostics(run, tmp_path / "diagnostics.png")
    titles = [ax.get_title() for ax in drawn["diagnostics.png"].axes]
    assert genealogy_title(1) in titles
    assert not any(re.search(r"\b1 \w+s\b", t) for t in titles), titles
    assert not any("1 genomes" in t or "1 children" in t for t in titles)
    legend = drawn["diagnostics.png"].axes[0].get_legend()
    assert legend is not None and all(re.search(r": \d+ of \d+ child(ren)? better \(\d+%\)$", t.get_text())
                                      for t in legend.get_texts())  # fmt: skip


def _eight_operators() -> dict[str, Any]:
    """Diagnostics of a run with eight operators whose success rates coincide (all 0 in generations 1-3)."""
    names = [f"mutation:op{i}" for i in range(6)] + ["crossover:cx0", "crossover:cx1"]
    per_gen = {g: {"better": 0, "children": 2, "rate": 0.0} for g in (1, 2, 3)}
    return {
        "objective": {"metric": "val_acc", "direction": "max"},
        "operators": {n: {"better": 0, "children": 6, "rate": 0.0, "per_generation": dict(per_gen)} for n in names},
        "diversity": {g: {"evaluated": 8, "unique_share": 1.0} for g in range(4)},
        "genealogy": [{"index": 1, "key": "a", "generation": 0, "origin": "sample", "fitness": 0.5, "parents": []}],
        "best": "a",
        "faults": {},
    }


def test_eight_operator_curves_are_told_apart(drawn: dict[str, Any]) -> None:
    from matplotlib.colors import to_hex

    from evonas.plotting import diagnostics_figure
    from evonas.plotting import line_styles

    styles = line_styles(8)
    assert len({to_hex(s["color"]) for s in styles}) == 8
    assert len({s["marker"] for s in styles}) == 8
    assert all(styles[i]["linestyle"] != styles[i + 1]["linestyle"] for i in range(7))

    fig = diagnostics_figure(_eight_operators())
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_label() and not ln.get_label().startswith("_")]
    assert len(lines) == 8
    looks = {(to_hex(ln.get_color()), ln.get_linestyle(), ln.get_marker()) for ln in lines}
    assert len(looks) == 8, "two operators drawn alike"
    assert len({to_hex(ln.get_color()) for ln in lines}) == 8 and len({ln.get_marker() for ln in lines}) == 8
    # equal rates in one generation are drawn side by side, never on top of each other
    for g in (1, 2, 3):
        xs = [x for ln in lines for x, gen in zip(ln.get_xdata(), (1, 2, 3)) if gen == g]
        assert len(set(np.round(xs, 6))) == 8 and max(xs) - min(xs) < 0.5, xs
    assert len(fig.axes[0].get_legend().get_texts()) == 8
    import matplotlib.pyplot as plt

    plt.close(fig)


# -- evonas best ------------------------------------------------------------------------------------------


def test_best_without_where_says_what_it_ranked(toy_runs: dict[int, Path], capsys: pytest.CaptureFixture) -> None:
    run = toy_runs[2]
    with sqlite3.connect(run / "journal.sqlite") as db:
        n = db.execute("SELECT COUNT(*) FROM evaluations WHERE status = 'ok' AND fidelity IS NULL").fetchone()[0]
    assert main(["best", str(run)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"ranked    best of {n} full evaluations by val_acc (max)"
    assert not any("no condition" in line for line in lines)
    assert main(["best", str(run), "--where", "val_acc > 0"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"matches   {n} of {n} full evaluations meet val_acc > 0"
    assert main(["best", str(run), "--where", "val_acc > 2"]) == 1
    # the range the metric runs over in the run is said: a percentage given for a fraction shows
    assert re.fullmatch(rf"none      no full evaluation of {n} meets val_acc > 2 \(here: val_acc from 0\.\d+ to 0\.\d+\)",
                        capsys.readouterr().out.strip())


# -- config.yaml: the resolved experiment ---------------------------------------------------------------------


def _journal(run: Path) -> list[tuple]:
    with sqlite3.connect(run / "journal.sqlite") as db:
        return db.execute("SELECT trial, key, generation, origin, parents FROM evaluations ORDER BY trial").fetchall()


def test_resolved_config_fills_every_default_and_runs_the_same(tmp_path: Path) -> None:
    exp = toy_experiment(strategy={"name": "ga", "params": {"generations": 2}})  # no operators, sizes by default
    first = _run(tmp_path, "first", exp)
    built = build(load_experiment(tmp_path / "first.yaml"))
    resolved = resolved_experiment(built)

    # every default filled in, the operators actually used listed with their probabilities
    assert resolved["strategy"]["params"]["population_size"] == 20 and resolved["strategy"]["params"]["cxpb"] == 0.3
    assert resolved["space"]["params"] == {"C": 16, "N": 5, "ops": list(built.space.ops)}
    assert resolved["fitness"]["params"] == {"sleep": 0.0}
    assert resolved["selection"]["params"]["tournsize"] == 3
    assert [(m["name"], m["prob"]) for m in resolved["mutations"]] == [("nb201_change_edge", 1.0)]
    assert [(c["name"], c["prob"]) for c in resolved["crossovers"]] == [("nb201_uniform", 1.0)]
    assert "log" not in resolved["backend"]["params"] and resolved["backend"]["params"]["retries"] == 1

    # written as config.yaml, read back as `evonas resume` reads it: the same experiment, the same run
    write_config(tmp_path / "config.yaml", resolved)
    text = (tmp_path / "config.yaml").read_text()
    assert text.startswith(CONFIG_HEADER)
    again = parse_experiment(safe_load_yaml(text, tmp_path / "config.yaml"), source=str(tmp_path / "config.yaml"))
    rebuilt = build(again)
    assert resolved_experiment(rebuilt) == resolved
    assert problem_fingerprint(rebuilt) == problem_fingerprint(built)
    second = tmp_path / "second"
    Run(again, second, progress=False).execute()
    assert _journal(second) == _journal(first)

    # a run whose config.yaml is the resolved one resumes (and extends) exactly like a run made longer from the start
    write_config(first / "config.yaml", resolved)
    Run.resume(first, progress=False, overrides={"generations": 3}).continue_run()
    longer = _run(tmp_path, "longer", toy_experiment(strategy={"name": "ga", "params": {"generations": 3}}))
    assert _journal(first) == _journal(longer)


def test_resolved_config_holds_the_dataset_split(tmp_path: Path) -> None:
    exp = {
        "name": "split", "seed": 5,
        "space": {"name": "mlp"},
        "dataset": {"name": "synthetic", "params": {"shape": [6], "n_samples": 80}},
        "fitness": {"name": "train", "params": {"epochs": 1}},
        "mutations": [{"name": "mlp_hparam", "prob": 0.5}],
        "workers": 0,
    }  # fmt: skip
    (tmp_path / "split.yaml").write_text(yaml.safe_dump(exp))
    built = build(load_experiment(tmp_path / "split.yaml"))
    resolved = resolved_experiment(built)
    params = resolved["dataset"]["params"]
    assert params["val_fraction"] == 0.2 and params["test_fraction"] == 0.2 and params["shape"] == [6]
    assert params["n_samples"] == 80 and params["standardize"] is False
    assert resolved["fitness"]["params"]["epochs"] == 1 and resolved["fitness"]["params"]["batch_size"] == 64
    # operators as the experiment named them; crossovers the space's own (the experiment named none)
    assert [(m["name"], m["prob"]) for m in resolved["mutations"]] == [("mlp_hparam", 0.5)]
    assert [c["name"] for c in resolved["crossovers"]] == ["mlp_one_point"]
    write_config(tmp_path / "config.yaml", resolved)
    rebuilt = build(parse_experiment(safe_load_yaml((tmp_path / "config.yaml").read_text(), None)))
    assert resolved_experiment(rebuilt) == resolved
    for part in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):  # the same split of the same data
        np.testing.assert_array_equal(getattr(rebuilt.dataset, part), getattr(built.dataset, part))
    assert rebuilt.fitness.settings() == built.fitness.settings()
    assert rebuilt.space.params == built.space.params


# -- exported models return logits ---------------------------------------------------------------------------


def test_exported_torchscript_returns_logits(tmp_path: Path) -> None:
    exp = {
        "name": "logits", "seed": 0,
        "space": {"name": "chain", "params": {"max_layers": 2, "widths": [8, 16]}},
        "dataset": {"name": "digits"},
        "fitness": {"name": "train", "params": {"epochs": 1, "max_train_samples": 300}},
        "strategy": {"name": "random", "params": {"samples": 2, "batch": 2}}, "workers": 0, "cache": False,
    }  # fmt: skip
    run = _run(tmp_path, "logits", exp)
    out = tmp_path / "exported"
    assert main(["export", str(run), "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    data = build(load_experiment(tmp_path / "logits.yaml")).dataset
    np.save(tmp_path / "x.npy", np.ascontiguousarray(data.x_test, dtype=np.float32))
    script = (
        "import numpy as np, torch\n"
        f"m = torch.jit.load({str(out / 'model.torchscript.pt')!r})\n"
        f"with torch.no_grad():\n    y = m(torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r})))\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, y.numpy())\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    logits = np.load(tmp_path / "y.npy").astype(np.float64)
    metrics = json.loads((out / "metrics.json").read_text())
    assert logits.shape == (len(data.y_test), 10)
    # not probabilities: rows do not sum to 1 and hold negative scores
    assert not np.allclose(logits.sum(axis=1), 1.0, atol=1e-3) and (logits < 0).any()
    # softmax turns them into probabilities; the test loss evonas reports is the cross-entropy of these logits
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    assert np.allclose(probs.sum(axis=1), 1.0)
    cross_entropy = -np.mean(np.log(probs[np.arange(len(data.y_test)), data.y_test]))
    assert math.isclose(cross_entropy, metrics["test_loss"], rel_tol=1e-3, abs_tol=1e-4)
    assert (logits.argmax(axis=1) == data.y_test).mean() == pytest.approx(metrics["test_acc"], abs=1e-9)


def test_operator_faults_have_a_place_in_the_diagnostics(toy_runs: dict[int, Path], drawn: dict[str, Any],
                                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # fmt: skip
    """The spot for the journal's per-operator fault counts: given them, the numbers and the legend say them."""
    import evonas.diagnostics as diagnostics
    from evonas.plotting import plot_diagnostics

    stats = [
        {"kind": "mutation", "name": "nb201_change_edge", "calls": 9, "failures": 3, "first_error": "ValueError: x"},
        {"kind": "mutation", "name": "broken", "calls": 4, "failures": 4, "first_error": "returned None"},
        {"kind": "crossover", "name": "nb201_uniform", "calls": 5, "failures": 0, "first_error": None},
    ]
    monkeypatch.setattr(diagnostics, "_operator_stats", lambda folder: stats)
    d = diagnostics.diagnose(toy_runs[2])
    assert d["faults"] == {"mutation:nb201_change_edge": {"failures": 3, "calls": 9, "first_error": "ValueError: x"},
                           "mutation:broken": {"failures": 4, "calls": 4, "first_error": "returned None"}}  # fmt: skip
    assert d["operators"]["mutation:broken"]["children"] == 0 and "faults" not in d["operators"]["crossover:nb201_uniform"]
    plot_diagnostics(toy_runs[2], tmp_path / "diagnostics.png")
    texts = [t.get_text() for t in drawn["diagnostics.png"].axes[0].get_legend().get_texts()]
    assert "mutation:broken: no child; failed 4 of 4 calls" in texts
    assert any(t.startswith("mutation:nb201_change_edge: ") and t.endswith("; failed 3 of 9 calls") for t in texts)


def test_resolved_config_keeps_the_cache_fingerprint_of_a_dataset_run(tmp_path: Path) -> None:
    exp = {"name": "fp", "seed": 1, "space": {"name": "mlp"}, "dataset": {"name": "synthetic", "params": {"shape": [6]}},
           "fitness": {"name": "train", "params": {"epochs": 1}}, "workers": 0}  # fmt: skip
    (tmp_path / "fp.yaml").write_text(yaml.safe_dump(exp))
    built = build(load_experiment(tmp_path / "fp.yaml"))
    rebuilt = build(parse_experiment(resolved_experiment(built)))
    assert problem_fingerprint(rebuilt) == problem_fingerprint(built)


@pytest.fixture
def faulty_ops() -> Any:
    """tests/plugins/faulty_ops.py's operators, registered for one test only: a registered operator that applies to
    nb201 joins every run that names no mutations, so other tests must not see them."""
    from evonas.operators import MUTATIONS

    yield
    for name, op in list(MUTATIONS._items.items()):  # every operator the file registered
        if getattr(op, "__module__", None) == "faulty_ops":
            MUTATIONS._items.pop(name)
    sys.modules.pop("faulty_ops", None)


def test_a_faulty_operator_is_in_the_diagnostics_of_its_run(tmp_path: Path, drawn: dict[str, Any], faulty_ops: Any) -> None:
    from evonas.diagnostics import diagnose
    from evonas.plotting import plot_diagnostics

    exp = toy_experiment(strategy={"name": "ga", "params": {"population_size": 8, "generations": 3}},
                         mutations=[{"name": "every_third"}, {"name": "bad_width", "prob": 0.5}],
                         plugins=["faulty_ops"])  # fmt: skip
    run = _run(tmp_path, "faulty", exp)
    d = diagnose(run, plugins=["faulty_ops"])
    assert set(d["faults"]) == {"mutation:every_third", "mutation:bad_width"}
    bad = d["faults"]["mutation:bad_width"]
    assert bad["failures"] == bad["calls"] > 0 and "invalid genome" in bad["first_error"]
    assert d["operators"]["mutation:bad_width"]["children"] == 0  # it never made a child, and is still listed
    plot_diagnostics(run, tmp_path / "diagnostics.png", plugins=["faulty_ops"])
    texts = [t.get_text() for t in drawn["diagnostics.png"].axes[0].get_legend().get_texts()]
    assert f"mutation:bad_width: no child; failed {bad['failures']} of {plural(bad['calls'], 'call')}" in texts
    third = d["faults"]["mutation:every_third"]
    assert any(t.startswith("mutation:every_third: ") and t.endswith(f"; failed {third['failures']} of {third['calls']} calls")
               for t in texts)  # fmt: skip


def test_whole_numbers_are_printed_in_full() -> None:
    """A table index or a parameter count read in a summary line must be the number itself (12855, not 1.286e+04)."""
    from evonas.checks import metric_text

    assert [metric_text(v) for v in (12855.0, 132298, 0.98886, 1.311, 2.5e-05, float("nan"), None, True)] == [
        "12855", "132298", "0.9889", "1.311", "2.5e-05", "nan", "?", "?"]  # fmt: skip
    assert metric_text(3e20) == "3e+20" and metric_text("x", "missing") == "missing"


def test_a_metric_below_one_is_never_shown_as_one() -> None:
    """An accuracy of 0.999962 read as ``val_acc=1`` (or ``1.0000``) claims a perfect score the run did not get."""
    from evonas.checks import decimals_text, metric_text

    assert [metric_text(v) for v in (0.999962, 0.99994, 1.0, 12345.6)] == ["0.99996", "0.9999", "1", "12345.6"]
    assert [decimals_text(v) for v in (0.999962, 0.98333, 1.0, -0.99996)] == ["0.99996", "0.9833", "1.0000", "-0.99996"]


def test_a_run_that_loads_no_data_names_no_dataset(tmp_path: Path) -> None:
    """nb201_table and toy read no data: config.yaml names none (it said digits, the default, of a CIFAR-10 table)."""
    for fitness in ("toy", "nb201_table"):
        exp = {"space": {"name": "nb201"}, "fitness": {"name": fitness}, "workers": 0}
        (tmp_path / "t.yaml").write_text(yaml.safe_dump(exp))
        assert "dataset" not in resolved_experiment(build(load_experiment(tmp_path / "t.yaml"))), fitness
