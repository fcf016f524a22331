"""Run diagnostics, comparison plots across runs, and the HTML report in a real headless browser."""

from __future__ import annotations

import shutil
import subprocess
import json
from pathlib import Path

import matplotlib.image
import pytest

from evonas.commands import report_plots
from evonas.compare import run_curves
from evonas.config import load_experiment
from evonas.diagnostics import diagnose
from evonas.engine.runner import Run
from evonas.plotting import plot_diagnostics, plot_runs
from evonas.report import write_report
from evonas.runfolder import RunFolder

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Three small real runs on digits: two GA seeds and one aging run."""
    import yaml

    tmp = tmp_path_factory.mktemp("runs")
    out = {}
    for name, seed, strategy in (("ga0", 0, {"name": "ga", "params": {"population_size": 6, "generations": 3}}),
                                 ("ga1", 1, {"name": "ga", "params": {"population_size": 6, "generations": 3}}),
                                 ("aging", 0, {"name": "aging", "params": {"population_size": 6, "sample_size": 3}})):  # fmt: skip
        exp = {
            "name": name, "seed": seed, "strategy": strategy, "budget": 24, "workers": 0, "cache": False,
            "space": {"name": "chain", "params": {"max_layers": 2, "widths": [8, 16]}},
            "fitness": {"name": "train", "params": {"epochs": 1, "max_train_samples": 300}},
        }  # fmt: skip
        (tmp / f"{name}.yaml").write_text(yaml.safe_dump(exp))
        Run(load_experiment(tmp / f"{name}.yaml"), tmp / name, progress=False).execute()
        out[name] = tmp / name
    return out


def test_diagnostics_numbers_and_plot(runs: dict[str, Path], tmp_path: Path) -> None:
    d = diagnose(runs["ga0"])
    assert d["operators"], "a GA run has mutation and crossover children"
    for name, op in d["operators"].items():
        assert name.split(":")[0] in ("mutation", "crossover")
        assert 0 <= op["better"] <= op["children"] and op["rate"] == op["better"] / op["children"]
        assert sum(g["children"] for g in op["per_generation"].values()) == op["children"]
    assert sorted(d["diversity"]) == [0, 1, 2, 3]
    for g in d["diversity"].values():
        assert 0 < g["unique_share"] <= 1 and g["mean_entropy"] >= 0
    lineage = d["genealogy"]
    assert lineage and lineage[0]["key"] == d["best"]  # the DEAP History starts at the best
    keys = {n["key"] for n in lineage}
    assert all(p in keys for n in lineage for p in n["parents"])
    assert all(n["origin"] in ("sample", "saved") for n in lineage if not n["parents"])  # roots are initial genomes
    png = plot_diagnostics(runs["ga0"], tmp_path / "diagnostics.png")
    assert png.stat().st_size > 10_000 and matplotlib.image.imread(png).shape[2] in (3, 4)


def test_comparison_of_seeds_and_strategies(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "compare.png"
    data = plot_runs([runs["ga0"], runs["ga1"], runs["aging"]], out, x="evaluations")
    assert out.stat().st_size > 10_000
    assert set(data["groups"]) == {"ga", "aging"} and len(data["groups"]["ga"]["runs"]) == 2
    ga = data["groups"]["ga"]
    assert len(ga["x"]) == 24 and all(lo <= m <= hi for lo, m, hi in zip(ga["low"], ga["median"], ga["high"]))
    assert all(a <= b for a, b in zip(ga["median"], ga["median"][1:]))  # best so far never drops
    gens = plot_runs([runs["ga0"], runs["ga1"]], tmp_path / "gens.png", x="generations", band="ci95", metric="val_loss")
    assert gens["groups"]["ga"]["x"] == [0, 1, 2, 3] and gens["metric"] == "val_loss"
    # the 95% interval of the mean of 2 runs: mean ± t(0.975, 1 dof) × standard error, around the mean line
    g = gens["groups"]["ga"]
    assert g["center_name"] == "mean" and all(lo <= c <= hi for lo, c, hi in zip(g["low"], g["center"], g["high"]))
    ys = [run_curves(runs[r], "val_loss", "generations")["y"][-1] for r in ("ga0", "ga1")]
    half = 12.706 * abs(ys[0] - ys[1]) / 2  # sd of two values is |a - b| / sqrt(2); sem divides by sqrt(2) again
    assert g["center"][-1] == pytest.approx(sum(ys) / 2) and g["high"][-1] - g["center"][-1] == pytest.approx(half, rel=1e-3)
    # a metric that is no objective: its value on the best evaluation so far by val_acc (not its own best, which
    # for a test accuracy would be an oracle on the test split)
    loss = run_curves(runs["ga0"], "val_loss", "evaluations")
    records = [r for r in RunFolder(runs["ga0"]).records("seq") if r.fidelity is None]
    incumbents = [max(records[: i + 1], key=lambda r: r.metrics["val_acc"]) for i in range(len(records))]
    assert loss["of"] == "val_acc" and loss["y"] == [r.metrics["val_loss"] for r in incumbents]
    assert loss["y"] != sorted(loss["y"], reverse=True)  # the run's own best val_loss would only drop
    twice = plot_runs([runs["ga0"], runs["ga0"]], tmp_path / "twice.png")  # one folder named twice: one run
    assert twice["groups"]["ga"]["runs"] == [twice["groups"]["ga"]["runs"][0]]


def test_the_default_comparison_never_replaces_a_file_of_yours(runs: dict[str, Path], tmp_path: Path, monkeypatch,
                                                             capsys) -> None:
    from evonas.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "compare.png").write_text("my thesis figure")
    assert main(["plot", str(runs["ga0"]), str(runs["ga1"])]) == 2
    assert capsys.readouterr().err.strip() == ("evonas: plot: compare.png: exists and is not a plot evonas drew; name "
                                               "the comparison with --out FILE.png")  # fmt: skip
    assert (tmp_path / "compare.png").read_text() == "my thesis figure"
    assert main(["plot", str(runs["ga0"]), str(runs["ga1"]), "--out", "compare.png"]) == 2  # named, and still yours
    assert capsys.readouterr().err.strip().endswith("name the comparison with --out another FILE.png")
    assert (tmp_path / "compare.png").read_text() == "my thesis figure"
    (tmp_path / "compare.png").unlink()
    assert main(["plot", str(runs["ga0"]), str(runs["ga1"])]) == 0  # drawn, signed
    assert main(["plot", str(runs["ga0"]), str(runs["aging"])]) == 0  # its own plot: replaced unasked
    assert (tmp_path / "compare.png").read_bytes().startswith(b"\x89PNG")
    assert "different problems" not in capsys.readouterr().err  # chain on digits, all three


def test_comparing_runs_of_different_problems_is_said(runs: dict[str, Path], tmp_path: Path, write_experiment,
                                                      capsys) -> None:
    from conftest import toy_experiment
    from evonas.cli import main

    Run(load_experiment(write_experiment(toy_experiment())), tmp_path / "toy", progress=False).execute()
    assert main(["plot", str(runs["ga0"]), str(tmp_path / "toy"), "--out", str(tmp_path / "c.png")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["evonas: plot: these runs search different problems (space chain, dataset digits, fitness train; "
                   "space nb201, fitness toy): their curves are drawn together but do not compare"]


def test_no_curve_pools_runs_of_different_problems_or_hides_a_cut(runs: dict[str, Path], tmp_path: Path,
                                                                  write_experiment, capsys) -> None:
    import yaml

    from conftest import toy_experiment
    from evonas.cli import main

    random = {"name": "random", "params": {"samples": 32, "batch": 16}}  # 16 evaluations a generation
    Run(load_experiment(write_experiment(toy_experiment(strategy=random))), tmp_path / "toy", progress=False).execute()
    short = yaml.safe_load((runs["ga1"] / "config.yaml").read_text())
    short.update(budget=12, name="short")
    Run(load_experiment(write_experiment(short, name="short")), tmp_path / "short", progress=False).execute()
    argv = ["plot", str(runs["ga0"]), str(tmp_path / "short"), str(tmp_path / "toy"), str(runs["aging"])]
    assert main([*argv, "--out", str(tmp_path / "c.png"), "--x", "generations", "--group-by", "name"]) == 0
    out, err = capsys.readouterr()
    assert "a generation is not the same number of evaluations in these runs (ga0 6, short 6, toy 16, aging 6): " \
           "--x evaluations puts them on one scale" in err, err
    data = plot_runs(argv[1:], tmp_path / "d.png", group_by="space.name")
    assert list(data["groups"]) == ["space=chain", "space=nb201"]
    data = plot_runs(argv[1:], tmp_path / "d.png", group_by="workers")  # chain and nb201 runs: never one median
    chain = "workers=0 (space chain, dataset digits, fitness train)"
    assert list(data["groups"]) == [chain, "workers=0 (space nb201, fitness toy)"], list(data["groups"])
    assert data["groups"][chain]["runs"] == [str(runs["ga0"]), str(tmp_path / "short"), str(runs["aging"])]
    assert main([*argv[:3], "--out", str(tmp_path / "e.png")]) == 0
    ga = plot_runs(argv[1:3], tmp_path / "e.png")["groups"]["ga"]
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == (f"ga           2 run(s): median best val_acc {ga['median'][-1]:.4f} after 12 "
                                   "evaluations (the shortest of its runs; the longest goes to 24)"), out


def test_runs_of_one_strategy_that_differ_in_more_than_their_seed_are_said(runs: dict[str, Path], tmp_path: Path,
                                                                          capsys) -> None:
    """Seeds of one search pool quietly; a run of the same strategy with other settings (here 2 epochs, not 1) is
    named in one line, with the settings that differ."""
    import yaml

    from evonas.cli import main

    other = tmp_path / "ga-2ep"
    shutil.copytree(runs["ga1"], other)
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["fitness"]["params"]["epochs"] = 2
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["plot", str(runs["ga0"]), str(runs["ga1"]), "--out", str(tmp_path / "seeds.png")]) == 0
    assert "differ in settings" not in capsys.readouterr().err
    # another problem (2 epochs, not 1): a curve of its own, and said
    assert main(["plot", str(runs["ga0"]), str(other), "--out", str(tmp_path / "mixed.png")]) == 0
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == ["evonas: plot: these runs search different problems (fitness.params.epochs: "
                                        "1, 2): their curves are drawn together but do not compare"], err
    assert "ga (epochs=1) 1 run(s)" in out and "ga (epochs=2) 1 run(s)" in out, out
    # the same problem, another strategy setting: pooled, and said, with the way to split them
    tuned = tmp_path / "ga-cx"
    shutil.copytree(runs["ga1"], tuned)
    config = yaml.safe_load((tuned / "config.yaml").read_text())
    config["strategy"]["params"]["cxpb"] = 0.9
    (tuned / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["plot", str(runs["ga0"]), str(tuned), "--out", str(tmp_path / "cx.png")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the ga runs differ in settings (strategy.params.cxpb: " in err[0], err
    assert "--group-by strategy.params.cxpb draws a curve per value" in err[0]
    # grouped by the setting: a curve per value, and nothing mixed
    assert main(["plot", str(runs["ga0"]), str(runs["ga1"]), str(other), "--out", str(tmp_path / "by.png"),
                 "--group-by", "fitness.params.epochs"]) == 0  # fmt: skip
    out, err = capsys.readouterr()
    assert err == "" and "epochs=1     2 run(s)" in out and "epochs=2     1 run(s)" in out, out
    # runs of different strategies on another problem: said, with the settings that make it another
    assert main(["plot", str(runs["ga0"]), str(runs["aging"]), str(other), "--out", str(tmp_path / "p.png"),
                 "--group-by", "name"]) == 0  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["evonas: plot: these runs search different problems (fitness.params.epochs: 1, 2): their curves are "
                   "drawn together but do not compare"], err
    data = plot_runs([runs["ga0"], tuned, runs["aging"]], tmp_path / "n.png", group_by="strategy.name")
    assert sorted(data["groups"]) == ["strategy=aging", "strategy=ga"] and data["group_by"] == "strategy.name"
    by_name = plot_runs([runs["ga0"], runs["ga1"], runs["aging"]], tmp_path / "e.png", group_by="name")
    assert sorted(by_name["groups"]) == ["aging", "ga0", "ga1"]
    unset = plot_runs([runs["ga0"], runs["aging"]], tmp_path / "m.png", group_by="strategy.params.sample_size")
    assert sorted(unset["groups"]) == ["sample_size=3", "sample_size=unset"]  # a run without the setting: its own group
    assert main(["plot", str(runs["ga0"]), str(other), "--out", str(tmp_path / "x.png"), "--group-by", "fitness.epoch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no run's config.yaml has the setting 'fitness.epoch'" in err[0] and "fitness.params.epochs" in err[0]
    assert main(["plot", str(runs["ga0"]), str(other), "--out", str(tmp_path / "x.png"), "--group-by", "fitness.params"]) == 2
    assert "'fitness.params' holds several settings; name one of them, e.g. fitness.params." in capsys.readouterr().err


def test_report_renders_in_headless_chromium(runs: dict[str, Path], tmp_path: Path) -> None:
    page = write_report(runs["ga0"], tmp_path / "report.html", draw=report_plots)
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # nothing fetched from anywhere
    assert "Best genomes" in text and "The best network, decoded" in text and "Configuration" in text
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    n = text.count("<img ")
    assert n >= 2 and f'data-images-loaded="{n}/{n}"' in dom, "the browser did not decode every image"
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1200,2000", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2000, 1200) and pixels.std() > 0.05  # a page with content, not a blank


def test_plot_and_report_commands(runs: dict[str, Path], tmp_path: Path, capsys, monkeypatch) -> None:
    from evonas.cli import main

    out = tmp_path / "cmp.png"
    assert main(["plot", str(runs["ga0"]), str(runs["ga1"]), "--out", str(out), "--x", "generations"]) == 0
    printed = capsys.readouterr().out
    assert "ga           2 run(s): median best val_acc" in printed and out.stat().st_size > 10_000
    monkeypatch.chdir(tmp_path)  # one run's plots and report go to the working directory, named after the run
    assert main(["plot", str(runs["aging"])]) == 0
    assert capsys.readouterr().out.split() == ["aging-plots/fitness.png", "aging-plots/diagnostics.png"]
    assert (tmp_path / "aging-plots" / "diagnostics.png").stat().st_size > 10_000
    assert main(["plot", str(runs["aging"]), "--out", str(tmp_path / "mine")]) == 0
    assert (tmp_path / "mine" / "fitness.png").is_file()
    capsys.readouterr()
    assert main(["report", str(runs["aging"])]) == 0 and capsys.readouterr().out == "aging-report.html\n"
    assert (tmp_path / "aging-report.html").read_text().count("<img ") >= 2
    assert main(["report", str(runs["aging"])]) == 0  # its own earlier page is replaced
    capsys.readouterr()
    assert main(["report", str(runs["aging"]), "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().count("<img ") >= 2
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["plot", str(runs["ga0"]), str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2


def test_the_best_genomes_table_shows_what_the_run_recorded(tmp_path: Path, write_experiment) -> None:
    """A table run records no training time but a held-out test accuracy: the table shows that, not a '-' column."""
    exp = {"name": "t", "space": {"name": "nb201"}, "fitness": {"name": "nb201_table"}, "workers": 0,
           "strategy": {"name": "random", "params": {"samples": 5}}}  # fmt: skip
    Run(load_experiment(write_experiment(exp)), tmp_path / "run", progress=False).execute()
    text = write_report(tmp_path / "run", tmp_path / "r.html").read_text()
    table = text[text.index("Best genomes") : text.index("</table>", text.index("Best genomes"))]
    assert "<th>test_acc_200ep</th>" in table and "<th>params</th>" in table and "train_s" not in table, table[:600]


def test_plot_of_a_run_stopped_before_its_logbook_says_what_writes_it(runs: dict[str, Path], tmp_path: Path,
                                                                      capsys) -> None:
    from evonas.cli import main

    stopped = tmp_path / "stopped"
    shutil.copytree(runs["aging"], stopped)
    (stopped / "logbook.json").unlink()  # as a run killed (or copied) before it wrote one
    assert main(["plot", str(stopped), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"no logbook.json yet" in err and f"`evonas resume {stopped}` writes it" in err


def test_a_steady_state_run_s_fitness_plot_is_over_evaluations(monkeypatch, tmp_path: Path) -> None:
    """Its logbook rows are blocks of evaluations, not generations: the x axis says evaluations, at each block's end."""
    import evonas.plotting as plotting

    drawn = []
    monkeypatch.setattr(plotting, "save_figure", lambda fig, out: drawn.append(fig) or Path(out))
    rows = [{"gen": i, "evals": 20 * (i + 1), "val_acc_max": 0.5, "val_acc_min": 0.1, "val_acc_avg": 0.3} for i in range(4)]
    rows[-1]["evals"] = 70  # the last, partial block
    objectives = [{"metric": "val_acc", "direction": "max"}]
    plotting.plot_fitness(rows, objectives, tmp_path / "f.png", steady=True)
    plotting.plot_fitness(rows, objectives, tmp_path / "g.png")
    (steady,), (generational,) = drawn[0].axes, drawn[1].axes
    assert steady.get_xlabel().startswith("evaluations") and list(steady.lines[0].get_xdata()) == [20, 40, 60, 70]
    assert generational.get_xlabel() == "generation" and list(generational.lines[0].get_xdata()) == [0, 1, 2, 3]


def test_report_and_plot_never_replace_a_file_of_yours_even_when_named(runs: dict[str, Path], tmp_path: Path,
                                                                       capsys) -> None:  # fmt: skip
    """report --out FILE and plot --out DIR name a file evonas did not write: refused, the file kept."""
    from evonas.cli import main

    notes = tmp_path / "notes.html"
    notes.write_text("my notes")
    assert main(["report", str(runs["ga0"]), "--out", str(notes)]) == 2
    assert capsys.readouterr().err.strip().endswith("exists and is not a report evonas wrote; name the page with "
                                                    "--out another FILE.html")  # fmt: skip
    assert notes.read_text() == "my notes"
    figures = tmp_path / "figs"
    figures.mkdir()
    (figures / "fitness.png").write_text("my figure")
    assert main(["plot", str(runs["ga0"]), "--out", str(figures)]) == 2
    assert f"{figures / 'fitness.png'}: exists and is not a plot evonas drew" in capsys.readouterr().err
    assert (figures / "fitness.png").read_text() == "my figure"
    (figures / "fitness.png").unlink()
    for _ in range(2):  # drawn, then its own plots replaced
        assert main(["plot", str(runs["ga0"]), "--out", str(figures)]) == 0


def test_plotting_a_run_still_going_says_so(runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    import shutil

    from evonas.cli import main
    from evonas.runfolder import RunLock

    live = tmp_path / "live"
    shutil.copytree(runs["ga0"], live)
    (live / "logbook.json").unlink()
    with RunLock(live):  # as the run's process holds it
        assert main(["plot", str(live), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "the run is still going: its logbook.json and plots are written when it ends" in err, err
    assert main(["plot", str(live), "--out", str(tmp_path / "p")]) == 2  # no process: stopped before it wrote one
    assert "the run was stopped before it wrote one" in capsys.readouterr().err


def test_a_multi_objective_report_lists_the_pareto_front_and_folds_a_long_network(tmp_path: Path,
                                                                                   write_experiment) -> None:  # fmt: skip
    """The front's members as pareto_front.json has them, with its hypervolume; a cell network's hundreds of modules
    are folded; a single-objective report has no front."""
    exp = {"name": "t", "space": {"name": "nb201"}, "fitness": {"name": "nb201_table"}, "workers": 0,
           "objectives": [{"metric": "val_acc"}, {"metric": "params", "direction": "min"}],
           "strategy": {"name": "nsga2", "params": {"population_size": 8, "generations": 3}}}  # fmt: skip
    Run(load_experiment(write_experiment(exp)), tmp_path / "run", progress=False).execute()
    text = write_report(tmp_path / "run", tmp_path / "r.html").read_text()
    saved = json.loads((tmp_path / "run" / "pareto_front.json").read_text())
    section = text[text.index("<h2>Pareto front</h2>") : text.index("<h2>The best network")]
    assert f"<p>{len(saved['front'])} of " in section and "Its hypervolume is " in section
    assert all(m["key"] in section for m in saved["front"]) and section.count("<tr>") == len(saved["front"]) + 1
    assert "<details><summary>its " in text  # the decoded cell network: folded
    exp.update(objectives=[{"metric": "val_acc"}], strategy={"name": "random", "params": {"samples": 4}})
    Run(load_experiment(write_experiment(exp, name="one")), tmp_path / "one", progress=False).execute()
    assert "Pareto front" not in write_report(tmp_path / "one", tmp_path / "one.html").read_text()
