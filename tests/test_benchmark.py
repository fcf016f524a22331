"""``evonas benchmark nb201`` and the experiment ``experiments/nb201_aging.yaml``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO
from evonas.benchmark import TARGET, _strategy_params, default_strategies, run_benchmark, run_once, to_json
from evonas.cli import main
from evonas.fitness.table import load_table
from evonas.strategies import STRATEGIES


def _check_run(run: dict[str, Any], budget: int) -> None:
    """A run's curve follows its incumbents: each one better by the search signal, the curve their test accuracy."""
    by_index = {r.index: r for r in load_table()}
    assert run["evaluations"] == budget and len(run["curve"]) == budget
    incumbents = run["incumbents"]
    assert incumbents[0][0] == 1 and [e for e, _ in incumbents] == sorted({e for e, _ in incumbents})
    vals = [by_index[i].val_acc_12ep for _, i in incumbents]
    assert vals == sorted(vals) and len(set(vals)) == len(vals)  # the search signal only goes up (noise 0)
    for n, (start, index) in enumerate(incumbents):
        stop = incumbents[n + 1][0] if n + 1 < len(incumbents) else budget + 1
        assert run["curve"][start - 1 : stop - 1] == [by_index[index].test_acc_200ep] * (stop - start)
    chosen = by_index[incumbents[-1][1]]
    assert (run["index"], run["arch"], run["test_acc_200ep"]) == (chosen.index, chosen.arch_str, chosen.test_acc_200ep)
    assert run["signal"] == pytest.approx(chosen.val_acc_12ep / 100)
    reach = next((i + 1 for i, v in enumerate(run["curve"]) if v >= TARGET), None)
    assert run["evals_to_target"] == reach


def test_cli_writes_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, png = tmp_path / "nb201.json", tmp_path / "nb201.png"
    argv = ["benchmark", "nb201", "--strategies", "random,ga", "--runs", "4", "--budget", "30", "--seed", "7"]
    assert main([*argv, "--workers", "2", "--json", str(out), "--plot", str(png), "--quiet"]) == 0
    report = capsys.readouterr().out
    assert "random search" in report and "optimum" in report and "93.70 ± 0.36" in report
    data = json.loads(out.read_text())
    assert data["table"] == str(load_table().path) and round(data["optimum"], 2) == 94.37 and data["target"] == TARGET
    assert data["dataset"] == "CIFAR-10"
    assert data["published"]["aging"] == {"method": "REA", "mean": 93.92, "std": 0.30, "runs": 500}
    assert list(data["strategies"]) == ["random", "ga"]
    for s in data["strategies"].values():
        assert 80 <= s["mean"] <= 95 and 0 <= s["std"] < 5
        assert (s["runs"], s["budget"], s["noise"]) == (4, 30, 0.0)
        assert [r["seed"] for r in s["per_run"]] == [7, 8, 9, 10]
        for run in s["per_run"]:
            _check_run(run, 30)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same runs in this process: results do not depend on the number of workers
    again = to_json(run_benchmark(["random", "ga"], runs=4, budget=30, seed=7, workers=0))
    for name, s in data["strategies"].items():
        drop = lambda runs: [{k: v for k, v in r.items() if k != "wall_s"} for r in runs]  # noqa: E731
        assert drop(s["per_run"]) == drop(again["strategies"][name]["per_run"])


def test_another_table_is_measured_against_its_own_optimum_and_no_cifar10_figures(tmp_path: Path, capsys) -> None:
    """A table of another dataset (here the shipped one with every accuracy x 0.8): its optimum is its own, no
    published CIFAR-10 figure or target is shown beside it, and --target counts the evaluations to one."""
    lines = (REPO / "genomes" / "benchmarks" / "nb201_cifar10.csv").read_text().splitlines()
    rows = [line.rsplit(",", 2) for line in lines[1:]]
    table = tmp_path / "my_c100.csv"
    table.write_text("\n".join([lines[0], *(f"{a},{float(v) * 0.8:.4f},{float(t) * 0.8:.4f}" for a, v, t in rows)]) + "\n")
    argv = ["benchmark", "nb201", "--table", str(table), "--strategies", "random", "--runs", "3", "--budget", "20",
            "--workers", "0", "--quiet"]  # fmt: skip
    assert main([*argv, "--json", str(tmp_path / "c.json"), "--plot", str(tmp_path / "c.png")]) == 0
    report = capsys.readouterr().out
    best = max(float(t) for _, _, t in rows) * 0.8
    assert f"optimum       {best:.2f}   (of my_c100.csv; published figures are CIFAR-10's, not shown)" in report, report
    assert "93.70" not in report and "REA" not in report and "evals to target: pass --target ACC" in report
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["published"] == {} and data["target"] is None and data["dataset"] == "my_c100.csv"
    assert data["optimum"] == pytest.approx(best, abs=1e-3)
    assert all(r["evals_to_target"] is None for r in data["strategies"]["random"]["per_run"])
    assert main([*argv, "--target", "70", "--json", str(tmp_path / "t.json")]) == 0
    assert "evals to 70" in capsys.readouterr().out
    runs = json.loads((tmp_path / "t.json").read_text())["strategies"]["random"]["per_run"]
    assert [r["evals_to_target"] for r in runs] == [next((i + 1 for i, v in enumerate(r["curve"]) if v >= 70), None)
                                                    for r in runs]  # fmt: skip
    assert main([*argv, "--target", "170"]) == 2
    assert "--target: expected a test accuracy in percent (0 to 100], got 170.0" in capsys.readouterr().err


def test_set_runs_a_strategy_with_other_parameters(tmp_path: Path, capsys) -> None:
    argv = ["benchmark", "nb201", "--strategies", "aging,random", "--runs", "3", "--budget", "100", "--workers", "0",
            "--quiet"]  # fmt: skip
    # sample_size 10 is aging's default: only population_size is another set-up
    assert main([*argv, "--set", "aging.sample_size=10", "--set", "aging.population_size=12", "--json",
                 str(tmp_path / "b.json")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "aging: run with population_size=12 (--set), not its defaults" in out
    assert "(REA, other set-up)" in out and "(random search)" in out and "(random search, other" not in out, out
    assert main([*argv, "--set", "aging.sample_size=10"]) == 0  # the default: the published set-up, said as such
    out = capsys.readouterr().out
    assert "(REA)" in out and "other set-up" not in out and "not its defaults" not in out, out
    assert main([a if a != "100" else "40" for a in argv]) == 0  # fewer evaluations than the published runs had
    out = capsys.readouterr().out
    assert "(random search, other set-up)" in out
    assert "other set-up: the published figures are of 100 evaluations on the table's exact values; this benchmark " \
           "ran with --budget 40" in out, out
    # a run length shorter than the budget ends the runs first: said as that, not as a strategy out of genomes
    assert main(["benchmark", "nb201", "--strategies", "ga", "--runs", "2", "--budget", "100", "--workers", "0",
                 "--set", "ga.generations=2", "--quiet"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "ga: 2 of 2 runs ended before 100 evaluations (fewest 60): its run length (generations=2) ended them " \
           "first; --budget caps a run, it does not lengthen it" in out and "asked only genomes" not in out, out
    assert main([*argv, "--set", "aging.sample_size=3", "--set", "aging.population_size=8", "--json",
                 str(tmp_path / "b.json")]) == 0  # fmt: skip
    capsys.readouterr()
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["overrides"] == {"aging": {"sample_size": 3, "population_size": 8}}
    assert data["strategies"]["aging"]["params"]["sample_size"] == 3
    direct = run_once("aging", 0, budget=40, params=data["strategies"]["aging"]["params"])  # what the run was
    assert data["strategies"]["aging"]["per_run"][0]["test_acc_200ep"] == direct.test_acc_200ep
    for bad, message in ((["--set", "aging.sample_sz=3"], "--set aging: strategy.params.sample_sz: unknown parameter"),
                         (["--set", "ga.mutpb=0.5"], "--set ga: 'ga' is not among the strategies benchmarked"),
                         (["--set", "sample_size=3"], "--set: expected STRATEGY.PARAM=VALUE")):  # fmt: skip
        assert main([*argv, *bad]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err, err


def test_noise_changes_the_signal_not_the_table() -> None:
    clean, noisy = run_once("random", 3, budget=25), run_once("random", 3, budget=25, noise=2.0)
    assert noisy.curve == run_once("random", 3, budget=25, noise=2.0).curve  # deterministic per seed
    row = load_table().lookup(noisy.arch)
    assert noisy.test_acc_200ep == row.test_acc_200ep and noisy.signal != pytest.approx(row.val_acc_12ep / 100)
    assert clean.signal == pytest.approx(load_table().lookup(clean.arch).val_acc_12ep / 100)


def test_strategy_lengths_fill_the_budget() -> None:
    assert _strategy_params("random", budget=100, table=None, noise=0.0) == {}
    assert _strategy_params("random", budget=150, table=None, noise=0.0) == {"samples": 200}
    assert _strategy_params("ga", budget=300, table=None, noise=0.0) == {"generations": 20}
    assert run_once("random", 0, budget=120, params={"samples": 200}).evaluations == 120
    names = default_strategies()
    assert {"random", "ga"} <= set(names) and "grid" not in names


@pytest.mark.parametrize(
    "args, message",
    [
        (["nb301"], "argument benchmark: invalid choice: 'nb301'"),
        (["nb201", "--strategies", "random,nope"], "--strategies: unknown strategy 'nope'; expected some of: "),
        (["nb201", "--strategies", "random,,ga"], "--strategies: expected comma-separated strategy names"),
        (["nb201", "--table", "missing.csv"], "--table: "),
        (["nb201", "--runs", "0"], "argument --runs: expected an integer >= 1, got '0'"),
        (["nb201", "--budget", "1.5"], "argument --budget: expected an integer >= 1, got '1.5'"),
        (["nb201", "--noise", "-1"], "argument --noise: expected a number >= 0, got '-1'"),
        (["nb201", "--noise", "nan"], "argument --noise: expected a number >= 0, got 'nan'"),
        (["nb201", "--seed", "-3"], "argument --seed: expected an integer >= 0, got '-3'"),
        (["nb201", "--workers", "two"], "argument --workers: expected an integer >= 0, got 'two'"),
        (["nb201", "--json", "."], "--json: . is a folder; expected a file name"),
    ],
)
def test_bad_arguments_get_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(["benchmark", *args, "--runs", "1", "--quiet"] if "--runs" not in args else ["benchmark", *args])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("evonas: benchmark: ") and message in err, err


def test_a_table_without_every_architecture_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = tmp_path / "short.csv"
    short.write_text("\n".join((REPO / "genomes" / "benchmarks" / "nb201_cifar10.csv").read_text().splitlines()[:51]) + "\n")
    assert main(["benchmark", "nb201", "--table", str(short), "--strategies", "aging", "--runs", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"evonas: benchmark: --table: {short} has no row for 15575 of the 15625 architectures of the "
                          "nb201 space (the first: |none~0|"), err


def test_missing_table_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark", "nb201", "--table", str(tmp_path / "t.csv"), "--quiet"]) == 2
    assert capsys.readouterr().err == f"evonas: benchmark: --table: {tmp_path / 't.csv'}: no such table file\n"


def test_plotting_never_imports_torch(tmp_path: Path) -> None:
    data = to_json(run_benchmark(["random"], runs=2, budget=12, workers=0))
    (tmp_path / "b.json").write_text(json.dumps(data))
    code = (
        "import json, sys; from evonas.plotting import plot_benchmark; "
        f"plot_benchmark(json.load(open({str(tmp_path / 'b.json')!r})), {str(tmp_path / 'b.png')!r}); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    assert (tmp_path / "b.png").stat().st_size > 1000


def test_aging_experiment_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    strategy = "aging" if "aging" in STRATEGIES else "ga"  # the experiment's strategy, once registered
    run_dir = tmp_path / "run"
    config = str(REPO / "experiments" / "nb201_aging.yaml")
    argv = ["run", config, "--out", str(run_dir), "--quiet", "--set", "budget=40"]
    assert main([*argv, "--set", f"strategy.name={strategy}"]) == 0
    assert "best      val_acc=0.8" in capsys.readouterr().out
    best = json.loads((run_dir / "best.json").read_text())
    row = load_table().lookup(best["describe"])
    assert best["metrics"]["val_acc"] == pytest.approx(row.val_acc_12ep / 100)
    assert (best["metrics"]["test_acc_200ep"], best["metrics"]["index"]) == (row.test_acc_200ep, row.index)
    assert (run_dir / "plots" / "fitness.png").is_file()
    assert "journal.sqlite" in {p.name for p in run_dir.iterdir()}


def test_sigterm_stops_the_pool_in_one_line(tmp_path: Path) -> None:
    """SIGTERM (as from a scheduler) stops the benchmark's workers first: one line, no traceback, no process left."""
    import os
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "evonas.cli", "benchmark", "nb201", "--runs", "400", "--workers", "2", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    time.sleep(8)  # the pool is up and running
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    # one line: no strategy finished yet, or (a fast machine) the ones that did are reported
    assert proc.returncode == 130 and len(err.strip().splitlines()) == 1, err[-2000:]
    assert err.startswith(("interrupted before any strategy finished its runs", "interrupted: ")), err[-2000:]
    deadline = time.monotonic() + 10  # the forkserver and resource tracker see the main process gone, and exit
    while (left := subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()):
        if time.monotonic() > deadline:
            print(subprocess.run(["ps", "-o", "pid,stat,args", "-s", str(proc.pid)], capture_output=True, text=True).stdout)
            break
        time.sleep(0.2)
    for pid in left:
        os.kill(int(pid), signal.SIGKILL)
    assert not left, "processes of the benchmark lived on"


STUCK_CLIMBER = '''
from evonas.strategies import STRATEGIES, SteadyState


@STRATEGIES.register("bench_climber")
class Climber(SteadyState):
    """Mutates the best so far; without restarts it runs out of new neighbours on nb201 (restart_after: 0)."""

    run_length = "samples"

    def __init__(self, ctx, *, restart_after: int = 20, **common):
        super().__init__(ctx, **common)
        self.restart_after, self.parent, self.failures = restart_after, None, 0

    def propose(self):
        if self.parent is None:
            return self.sample()
        return self.redraw(lambda: (self.ctx.variation.mutate(self.parent.genome, rng=self.rng)[0], "mutation",
                                    (self.parent.key,)))

    def learn(self, candidate, individual):
        if self.parent is None or individual.fitness >= self.parent.fitness:
            self.parent, self.failures = individual, 0
        else:
            self.failures += 1
        if self.restart_after and self.failures >= self.restart_after:
            self.parent, self.failures = None, 0


@STRATEGIES.register("bench_stuck")
class Stuck(Climber):
    def __init__(self, ctx, *, restart_after: int = 0, **common):
        super().__init__(ctx, restart_after=restart_after, **common)
'''


@pytest.mark.parametrize("workers", [0, 2])
def test_a_plug_in_strategy_is_benchmarked_and_runs_it_cut_short_are_said(tmp_path: Path, monkeypatch, capsys,
                                                                          workers: int) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bench_climber.py").write_text(STUCK_CLIMBER)
    try:
        assert main(["benchmark", "nb201", "--strategies", "bench_climber", "--runs", "2", "--budget", "30",
                     "--workers", str(workers), "--plugins", "bench_climber.py", "--quiet"]) == 0  # fmt: skip
        out, err = capsys.readouterr()
        assert "bench_climber " in out and "ended before" not in out and err == "", (out, err)
        # without restarts the climber asks only what its run has seen: those runs are said to be short, once
        monkeypatch.setattr("evonas.engine.loop.Loop.max_repeats", 300)  # this process only: workers=0
        result = run_benchmark(["bench_stuck"], runs=2, budget=200, workers=0, plugins=["bench_climber.py"])
        short = [r.evaluations for r in result.strategies[0].runs]
        assert max(short) < 200, short
        from evonas.benchmark import format_report

        assert (f"bench_stuck: 2 of 2 runs ended before 200 evaluations (fewest {min(short)}): the strategy asked only "
                "genomes its run had evaluated") in format_report(result)  # fmt: skip
        assert capsys.readouterr().err == ""  # said in the report, not once per run
    finally:
        STRATEGIES._items.pop("bench_climber", None)
        STRATEGIES._items.pop("bench_stuck", None)
        sys.modules.pop("bench_climber", None)
    assert main(["benchmark", "nb201", "--strategies", "random", "--runs", "1", "--plugins", "no_such.py"]) == 2
    assert capsys.readouterr().err.strip() == ("evonas: benchmark: --plugins: cannot import 'no_such.py' "
                                               "(FileNotFoundError: no such file: no_such.py)")  # fmt: skip


def test_a_plug_in_operator_that_joins_a_built_in_strategy_is_said(tmp_path: Path, monkeypatch) -> None:
    """Every mutation registered for nb201 joins the built-in strategies' variation: a plug-in's changed aging's
    figures silently; the table and the JSON say it (and not for random, which mutates nothing)."""
    from evonas.benchmark import format_report, run_benchmark, to_json
    from evonas.operators import MUTATIONS

    (tmp_path / "t_nb201_ops.py").write_text(
        "from evonas.operators import MUTATIONS, Mutation\n\n\n@MUTATIONS.register('t_resample')\nclass Resample(Mutation):\n"
        "    spaces = ('nb201',)\n\n    def _mutate(self, genome, *, space, rng):\n        return space.sample(rng=rng)\n"
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    try:
        result = run_benchmark(["aging", "random"], runs=2, budget=100, workers=0, plugins=["t_nb201_ops.py"])
    finally:
        MUTATIONS._items.pop("t_resample", None)
        sys.modules.pop("t_nb201_ops", None)
    report, data = format_report(result), to_json(result)["strategies"]
    assert "aging: searched with the plug-in operator t_resample too" in report and "random: searched" not in report
    rows = {line.split()[0]: line for line in report.splitlines()[2:4]}
    assert rows["aging"].endswith("(REA, other set-up)") and rows["random"].endswith("(random search)"), report
    assert data["aging"]["plugin_operators"] == ["t_resample"] and "nb201_change_edge" in data["aging"]["operators"]
    assert data["random"]["operators"] == [] and data["random"]["plugin_operators"] == []


def test_a_faulty_plug_in_operator_is_counted_over_a_benchmark_s_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    """Its faults were said once per run on stderr and counted nowhere: the report and the JSON count them."""
    from evonas.benchmark import format_report, run_benchmark, to_json
    from evonas.operators import MUTATIONS

    (tmp_path / "t_bad_ops.py").write_text(
        "from evonas.operators import MUTATIONS, Mutation\n\n\n@MUTATIONS.register('t_sometimes')\nclass Sometimes(Mutation):\n"
        "    spaces = ('nb201',)\n\n    def _mutate(self, genome, *, space, rng):\n        if rng.random() < 0.5:\n"
        "            raise ValueError('boom')\n        return space.sample(rng=rng)\n"
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    try:
        result = run_benchmark(["aging"], runs=3, budget=30, workers=0, plugins=["t_bad_ops.py"])
    finally:
        MUTATIONS._items.pop("t_sometimes", None)
        sys.modules.pop("t_bad_ops", None)
    assert "t_sometimes" not in capsys.readouterr().err  # not a line per run
    (fault,) = to_json(result)["strategies"]["aging"]["operator_faults"]
    per_run = [f["failures"] for r in result.strategies[0].runs for f in r.faults]
    assert fault["name"] == "t_sometimes" and fault["failures"] == sum(per_run) > 0 and fault["runs"] == len(per_run)
    assert fault["first_error"] == "ValueError: boom at t_bad_ops.py:10"
    assert f"aging: mutation 't_sometimes' failed {fault['failures']} of {fault['calls']} calls in" in format_report(result)


def test_a_file_of_yours_is_never_replaced_and_the_benchmark_not_run(tmp_path: Path, monkeypatch, capsys) -> None:
    """--json and --plot naming files evonas did not write: refused before the benchmark runs; its own are replaced."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.json").write_text('{"mine": 1}')
    (tmp_path / "fig.png").write_text("my figure")
    args = ["benchmark", "nb201", "--strategies", "random", "--runs", "1", "--budget", "10", "--quiet"]
    assert main([*args, "--json", "notes.json"]) == 2
    assert capsys.readouterr().err == ("evonas: benchmark: --json: notes.json exists and is not results evonas "
                                       "benchmark wrote; name another file\n")  # fmt: skip
    assert main([*args, "--plot", "fig.png"]) == 2
    assert "--plot: fig.png exists and is not a plot evonas drew" in capsys.readouterr().err
    assert (tmp_path / "notes.json").read_text() == '{"mine": 1}' and (tmp_path / "fig.png").read_text() == "my figure"
    for bad, said in ((["--json", "same.png", "--plot", "same.png"], "--json and --plot name one file (same.png)"),
                      (["--plot", "fig.xyz"], "--plot: fig.xyz: not an image format matplotlib writes"),
                      (["--plot", "run/plots/fitness.png"], "is inside the run folder")):  # fmt: skip
        (tmp_path / "run" / "plots").mkdir(parents=True, exist_ok=True)
        (tmp_path / "run" / "journal.sqlite").write_text("")
        assert main([*args, *bad]) == 2, bad
        assert said in capsys.readouterr().err, bad
    for _ in range(2):  # written, then replaced
        assert main([*args, "--json", "out.json", "--plot", "out.png"]) == 0
    assert json.loads((tmp_path / "out.json").read_text())["benchmark"] == "nb201"


def test_an_interrupted_benchmark_keeps_the_strategies_that_finished(tmp_path: Path, monkeypatch, capsys) -> None:
    """Ctrl-C in the second strategy: the first one's runs are reported and written, exit 130."""
    import evonas.benchmark as bench

    real = bench._run_task

    def stop_in_aging(task: Any) -> Any:
        if task[0] == "aging":
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(bench, "_run_task", stop_in_aging)
    monkeypatch.chdir(tmp_path)
    args = ["benchmark", "nb201", "--strategies", "random,aging", "--runs", "2", "--budget", "20", "--workers", "0",
            "--quiet", "--json", "part.json"]  # fmt: skip
    assert main(args) == 130
    out, err = capsys.readouterr()
    assert "interrupted: 1 of 2 strategies finished their runs; the report and files below hold those" in err, err
    assert out.splitlines()[2].startswith("random ") and "aging " not in out, out
    assert list(json.loads((tmp_path / "part.json").read_text())["strategies"]) == ["random"]
    monkeypatch.setattr(bench, "_run_task", lambda task: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(args) == 130
    assert capsys.readouterr().err == "interrupted before any strategy finished its runs\n"
