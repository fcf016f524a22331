"""``evonas benchmark nb201``: search strategies compared on the NAS-Bench-201 table.

Each run is a real search through the same code path as ``evonas run`` (an experiment dict with
space ``nb201``, fitness ``nb201_table``, the strategy with its defaults, a budget and a seed ->
:func:`~evonas.config.parse_experiment` -> :func:`~evonas.engine.build.build` ->
:func:`~evonas.engine.runner.search`), in memory. The architecture with the best search signal
(``val_acc``, the 12-epoch validation accuracy) among the run's evaluations is chosen and its
200-epoch test accuracy reported, as in the benchmark's protocol (Dong & Yang, ICLR 2020). Runs are
spread over worker processes; run ``i`` uses seed ``seed + i``, so results do not depend on the
number of workers.

Nothing here imports torch or the engine at import time; :func:`evonas.plotting.plot_benchmark` draws
:func:`to_json`'s data (a saved JSON too) without them.

Example::

    result = run_benchmark(["random", "ga"], runs=20, budget=100)
    print(format_report(result))
    json.dump(to_json(result), open("nb201.json", "w"))
"""

from __future__ import annotations

import contextlib
import dataclasses
import filecmp
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from evonas.checks import json_safe

__all__ = [
    "OPTIMUM", "PUBLISHED", "TARGET", "BenchmarkError", "BenchmarkResult", "RunResult", "StrategyResult",
    "default_strategies", "format_report", "run_benchmark", "run_once", "to_json", "write_json",
]  # fmt: skip

#: the best CIFAR-10 test accuracy (%) in the space (200 epochs).
OPTIMUM = 94.37
#: the test accuracy (%) whose "evaluations to reach" is reported.
TARGET = 94.0
#: the evaluations each run of the published results had
PUBLISHED_BUDGET = 100

#: published results (500 runs, 100 evaluations): registry name -> (method, mean, std).
PUBLISHED: dict[str, tuple[str, float, float]] = {
    "aging": ("REA", 93.92, 0.30),
    "reinforce": ("REINFORCE", 93.85, 0.37),
    "random": ("random search", 93.70, 0.36),
    "bohb": ("BOHB", 93.61, 0.52),
}
#: registered strategies left out of the default list (exhaustive enumeration is no search).
_NOT_DEFAULT = ("grid",)


class BenchmarkError(ValueError):
    """A bad benchmark argument: unknown strategy, unreadable table, bad number."""


@dataclasses.dataclass
class RunResult:
    """One search: the chosen architecture (accuracies in percent) and its anytime curve."""

    seed: int
    arch: str
    index: int
    val_acc_12ep: float
    test_acc_200ep: float
    signal: float  #: the chosen architecture's search signal as the search saw it (a fraction; noisy with noise)
    evaluations: int
    evals_to_target: int | None  #: evaluations until the best-by-signal architecture has test acc >= TARGET
    incumbents: list[list[int]]  #: ``[evaluation, table index]`` each time the best-by-signal architecture changed
    curve: list[float]  #: test accuracy of the best-by-signal architecture after each evaluation
    wall_s: float
    #: the operators that failed in the search: ``{kind, name, calls, failures, first_error}`` each
    faults: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: why the search ended before its budget and its run length (it asked only genomes it had evaluated), if it did
    ended_early: str | None = None


@dataclasses.dataclass
class StrategyResult:
    """All runs of one strategy, sorted by seed."""

    name: str
    params: dict[str, Any]
    runs: list[RunResult]
    wall_s: float
    #: the mutations and crossovers its runs used (every one registered for nb201: plug-ins' too), and which of
    #: them are plug-ins'
    operators: list[str] = dataclasses.field(default_factory=list)
    plugin_operators: list[str] = dataclasses.field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(r.test_acc_200ep for r in self.runs)

    def faults(self) -> list[dict[str, Any]]:
        """Each operator that failed in any run: its calls and failures summed over the runs, the first error."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for run in self.runs:
            for f in run.faults:
                seen = out.setdefault((f["kind"], f["name"]), {**f, "calls": 0, "failures": 0, "runs": 0})
                seen["calls"] += f.get("calls") or 0
                seen["failures"] += f["failures"]
                seen["runs"] += 1
        return list(out.values())

    @property
    def std(self) -> float:
        """Population standard deviation (``numpy.std``'s default, as in the published figures)."""
        return statistics.pstdev(r.test_acc_200ep for r in self.runs)

    @property
    def reached(self) -> list[int]:
        """Evaluations to TARGET of the runs that got there within the budget."""
        return [r.evals_to_target for r in self.runs if r.evals_to_target is not None]

    @property
    def evals_per_s(self) -> float:
        """Evaluations per second of one process (time inside runs: no start-up)."""
        busy = sum(r.wall_s for r in self.runs)
        return sum(r.evaluations for r in self.runs) / busy if busy > 0 else math.nan


@dataclasses.dataclass
class BenchmarkResult:
    """A whole benchmark: the settings and each strategy's runs."""

    table: str
    budget: int
    noise: float
    seed: int
    workers: int
    strategies: list[StrategyResult]
    wall_s: float = 0.0
    #: the test accuracy (%) whose evaluations-to-reach are counted (``None``: not counted)
    target: float | None = TARGET
    #: the best test accuracy (%) in the table
    optimum: float = OPTIMUM
    #: what the table holds: ``CIFAR-10`` for the shipped one, else the file's name
    dataset: str = "CIFAR-10"
    #: the published figures the results are shown beside (the shipped CIFAR-10 table's only)
    published: dict[str, tuple[str, float, float]] = dataclasses.field(default_factory=lambda: dict(PUBLISHED))
    #: strategy parameters set by the user (``--set aging.sample_size=10``), by strategy
    overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


# -- one run -----------------------------------------------------------------------------------------


def _build(strategy: str, seed: int, budget: int, table: str | None, noise: float, params: dict[str, Any]) -> Any:
    """Parse and build the experiment of one run, exactly as ``evonas run`` would from a file."""
    from evonas.config import parse_experiment
    from evonas.engine.build import build

    fitness: dict[str, Any] = {"noise": noise} if table is None else {"noise": noise, "table": table}
    raw = {
        "name": f"nb201-{strategy}", "seed": seed, "space": {"name": "nb201"},
        "fitness": {"name": "nb201_table", "params": fitness}, "strategy": {"name": strategy, "params": dict(params)},
        "budget": budget, "workers": 0,
    }  # fmt: skip
    return build(parse_experiment(raw))


def run_once(
    strategy: str, seed: int, *, budget: int = 100, table: str | None = None, noise: float = 0.0,
    params: dict[str, Any] | None = None, target: float | None = TARGET,
) -> RunResult:  # fmt: skip
    """One search of ``budget`` evaluations with ``strategy`` and ``seed``, in this process (``target``: the test
    accuracy whose evaluations-to-reach it counts; ``None``: none).

    Example::

        r = run_once("random", 0)
        r.test_acc_200ep, r.evals_to_target
    """
    from evonas.engine.runner import search

    start = time.perf_counter()
    built = _build(strategy, seed, budget, table, noise, params or {})
    result = search(built, quiet=True)
    records = result.records
    space, fitness = built.space, built.fitness
    best, chosen = -math.inf, None
    curve: list[float] = []
    incumbents: list[list[int]] = []
    for rec in records:
        if rec.status == "ok" and float(rec.metrics["val_acc"]) > best:
            best = float(rec.metrics["val_acc"])
            chosen = fitness.lookup(space.to_arch_str(space.from_dict(rec.genome)))  # the table: no noise
            incumbents.append([len(curve) + 1, chosen.index])
        curve.append(chosen.test_acc_200ep if chosen is not None else math.nan)
    if chosen is None:
        first = next((r.error for r in records if r.status == "failed"), None)
        raise RuntimeError(f"{strategy}, seed {seed}: no successful evaluation"
                           + (f" (the first: {first})" if first else ""))  # fmt: skip
    reach = None if target is None else next((i + 1 for i, acc in enumerate(curve) if acc >= target), None)
    return RunResult(
        seed, chosen.arch_str, chosen.index, chosen.val_acc_12ep, chosen.test_acc_200ep, best, len(records), reach,
        incumbents, curve, time.perf_counter() - start, result.operator_faults, result.ended_early,
    )  # fmt: skip


class BenchmarkInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a benchmark: ``partial`` holds the strategies that finished all their runs (``None``:
    none had), of ``planned``."""

    def __init__(self, partial: "BenchmarkResult | None", planned: int) -> None:
        super().__init__()
        self.partial, self.planned = partial, planned


class BenchmarkRunFailed(RuntimeError):
    """One search of the benchmark failed (a plug-in strategy raised): which, with which seed, what and where."""


def _operators(strategy: str, seed: int, budget: int, table: str | None, noise: float,
               params: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The names of the mutations and crossovers a run of ``strategy`` uses, and those of them plug-ins registered
    (they join a built-in strategy's variation too: the benchmark says so)."""
    from evonas.registry import is_plugin

    built = _build(strategy, seed, budget, table, noise, params)
    if not built.strategy_cls.mutates:  # random, grid, reinforce: no operator
        return [], []
    ops = [op for op, _ in (*built.variation.mutations, *built.variation.crossovers)]
    return [op.name for op in ops], [op.name for op in ops if is_plugin(type(op))]


def _run_task(task: tuple[str, int, int, str | None, float, dict[str, Any], float | None]) -> RunResult:
    strategy, seed, budget, table, noise, params, target = task
    try:
        return run_once(strategy, seed, budget=budget, table=table, noise=noise, params=params, target=target)
    except Exception as exc:  # said with the strategy, seed and line; the benchmark stops (its table would lie)
        from evonas.engine.runner import RunCrashed
        from evonas.operators.base import describe_error

        text = exc.error if isinstance(exc, RunCrashed) else describe_error(exc, 300)
        raise BenchmarkRunFailed(f"strategy '{strategy}', seed {seed}: {text}") from None


def _import_plugins(plugins: Sequence[str]) -> None:
    """Import the plug-in modules (module names, or ``.py`` files as absolute paths) that register strategies;
    raises :class:`BenchmarkError` naming the one that failed."""
    from evonas.engine.plugins import import_plugin
    from evonas.operators.base import describe_error

    if plugins and os.getcwd() not in sys.path:  # module names are looked for in the working directory too
        sys.path.insert(0, os.getcwd())
    for name in plugins:
        try:
            import_plugin(name)
        except Exception as exc:
            raise BenchmarkError(f"--plugins: cannot import '{name}' ({describe_error(exc)})") from None


def _init_worker(table: str | None, in_pool: bool = False, plugins: Sequence[str] = (), cwd: str | None = None) -> None:
    """Worker start-up: the plug-ins imported, the engine imported, the table read and one short search run once
    (what a first search imports late, torch among it: seconds that would count against the first strategy's
    timing), then one intra-op thread. Ctrl-C is the main process's to handle (it stops the pool), so a worker
    ignores it."""
    import signal

    import evonas.engine.runner  # noqa: F401

    if in_pool:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cwd is not None and cwd not in sys.path:
        sys.path.insert(0, cwd)
    _import_plugins(plugins)
    from evonas.fitness.table import load_table

    load_table(table)
    run_once("random", 0, budget=2, table=table)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


# -- strategies --------------------------------------------------------------------------------------


def _strategy_params(
    name: str, *, budget: int, table: str | None, noise: float, given: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``name``'s defaults overridden by ``given``, with its run-length parameter (``run_length``, unless ``given``
    sets it) doubled until they fill ``budget``.

    Raises :class:`BenchmarkError` if the strategy is unknown or cannot run on nb201 (or with ``given``).
    """
    import inspect

    from evonas.config import ConfigError
    from evonas.strategies import STRATEGIES

    if name not in STRATEGIES:
        known = ", ".join(STRATEGIES.list())
        raise BenchmarkError(f"--strategies: unknown strategy '{name}'; expected some of: {known}")
    given = dict(given or {})
    defaults = {
        p.name: p.default
        for p in inspect.signature(STRATEGIES.get(name).__init__).parameters.values()
        if p.name == STRATEGIES.get(name).run_length and type(p.default) is int and p.default > 0 and p.name not in given
    }
    params: dict[str, Any] = dict(given)
    for _ in range(32):
        try:
            built = _build(name, 0, budget, table, noise, params)
        except ConfigError as exc:
            if given:
                raise BenchmarkError(f"--set {name}: {exc}") from None
            if exc.key == "strategy":  # a plug-in strategy's own code raised: not a matter of the space
                raise BenchmarkError(f"--strategies: {exc.message}") from None
            raise BenchmarkError(f"--strategies: strategy '{name}' cannot run on nb201 ({exc})") from None
        expected = built.make_strategy().expected_evaluations()
        if expected is None or expected >= budget or not defaults:
            break
        params = {**params, **{p: 2 * params.get(p, d) for p, d in defaults.items()}}
    return params


def default_strategies() -> list[str]:
    """Every registered strategy that builds on nb201, except exhaustive ones (``grid``)."""
    from evonas.strategies import STRATEGIES

    names = []
    for name in STRATEGIES.list():
        with contextlib.suppress(BenchmarkError):
            if name not in _NOT_DEFAULT:
                _strategy_params(name, budget=1, table=None, noise=0.0)
                names.append(name)
    return names


# -- the benchmark -----------------------------------------------------------------------------------


def run_benchmark(
    strategies: Sequence[str] | None = None, *, runs: int = 200, budget: int = 100, table: str | Path | None = None,
    noise: float = 0.0, seed: int = 0, workers: int | None = None, progress: bool = False,
    plugins: Sequence[str] = (), target: float | None = None, strategy_params: dict[str, dict[str, Any]] | None = None,
) -> BenchmarkResult:  # fmt: skip
    """``runs`` searches of ``budget`` evaluations per strategy, over ``workers`` processes (0: this one).

    ``strategies`` default to :func:`default_strategies`; ``workers`` to one per core. ``plugins``: modules or
    ``.py`` files that register strategies, imported here and in every worker. ``target``: the test accuracy (%)
    whose evaluations-to-reach are counted (default: :data:`TARGET` on the shipped CIFAR-10 table, none on another
    table, whose optimum is its own and which has no published figures). ``strategy_params``: parameters of the
    named strategies (``{"aging": {"sample_size": 10}}``) over their defaults. Raises :class:`BenchmarkError` for
    bad arguments before any run starts.

    Example::

        result = run_benchmark(["random", "ga"], runs=50, workers=2)
        [(s.name, s.mean, s.std) for s in result.strategies]
    """
    from evonas.fitness.table import default_table_path

    checks = (("--runs", runs, 1), ("--budget", budget, 1), ("--seed", seed, 0), ("--workers", workers, 0))
    for what, value, low in checks:
        if value is not None and (type(value) is not int or value < low):
            raise BenchmarkError(f"{what}: expected an integer >= {low}, got {value!r}")
    if type(noise) not in (int, float) or not 0 <= noise < math.inf:
        raise BenchmarkError(f"--noise: expected a number >= 0, got {noise!r}")
    plugins = [str(Path(p).resolve()) if p.endswith(".py") and Path(p).is_file() else p for p in plugins]
    _import_plugins(plugins)
    if target is not None and (type(target) not in (int, float) or not 0 < target <= 100):
        raise BenchmarkError(f"--target: expected a test accuracy in percent (0 to 100], got {target!r}")
    table_path = str(Path(table).resolve()) if table is not None else None
    optimum, shipped = _check_table(table_path)
    if target is None and shipped:
        target = TARGET
    names = list(dict.fromkeys(strategies)) if strategies else default_strategies()
    if not names:
        raise BenchmarkError("--strategies: no registered strategy runs on nb201")
    strategy_params = dict(strategy_params or {})
    unused = sorted(set(strategy_params) - set(names))
    if unused:
        raise BenchmarkError(f"--set {unused[0]}: '{unused[0]}' is not among the strategies benchmarked "
                             f"({', '.join(names)})")  # fmt: skip
    params = {n: _strategy_params(n, budget=budget, table=table_path, noise=float(noise), given=strategy_params.get(n))
              for n in names}  # fmt: skip
    n_workers = min(_default_workers() if workers is None else workers, runs)
    start = time.perf_counter()
    results: list[StrategyResult] = []
    shown = table_path or str(default_table_path())

    def result() -> BenchmarkResult:
        return BenchmarkResult(shown, budget, float(noise), seed, n_workers, results, time.perf_counter() - start,
                               target=None if target is None else float(target), optimum=optimum,
                               dataset="CIFAR-10" if shipped else Path(shown).name,
                               published=dict(PUBLISHED) if shipped else {}, overrides=strategy_params)  # fmt: skip

    try:
        with _pool(n_workers, table_path, plugins) as imap:
            for name in names:
                t0 = time.perf_counter()
                tasks = [(name, seed + i, budget, table_path, float(noise), params[name], target) for i in range(runs)]
                done = sorted(_progress(imap(tasks), runs, name, progress), key=lambda r: r.seed)
                ops, plugged = _operators(name, seed, budget, table_path, float(noise), params[name])
                results.append(StrategyResult(name, params[name], done, time.perf_counter() - t0, ops, plugged))
    except KeyboardInterrupt:  # the strategies done so far are kept: minutes of surrogate are not thrown away
        raise BenchmarkInterrupted(result() if results else None, len(names)) from None
    return result()


def _check_table(table_path: str | None) -> tuple[float, bool]:
    """The table's best test accuracy, and whether it is the shipped CIFAR-10 table; :class:`BenchmarkError` for a
    table that cannot be read or lacks a row for an architecture of the space (a benchmark searches them all)."""
    from evonas.fitness.table import default_table_path, load_table
    from evonas.spaces.nb201 import NB201Space

    try:
        loaded = load_table(table_path)
    except ValueError as exc:
        raise BenchmarkError(f"--table: {exc}") from None
    space = NB201Space()
    missing = [a for a in map(space.to_arch_str, space.all_genomes()) if a not in loaded]
    if missing:
        raise BenchmarkError(f"--table: {loaded.path} has no row for {len(missing)} of the {space.size} architectures "
                             f"of the nb201 space (the first: {missing[0]}); a benchmark searches them all")  # fmt: skip
    shipped = table_path is None or filecmp.cmp(table_path, default_table_path(), shallow=False)
    return max(r.test_acc_200ep for r in loaded.rows), shipped


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _pool(workers: int, table: str | None, plugins: Sequence[str] = ()) -> Iterator[Callable[[list], Iterable[RunResult]]]:
    """``imap(tasks)``: in this process (0 workers) or over a pool (forkserver where there is one, else spawn)."""
    if workers == 0:
        _init_worker(table, plugins=plugins)
        yield lambda tasks: map(_run_task, tasks)
        return
    import multiprocessing as mp

    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":  # workers fork from a server that has imported the engine once
        ctx.set_forkserver_preload(["evonas.engine.runner", "evonas.fitness.table"])
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=(table, True, tuple(plugins), os.getcwd()))
    try:
        # the workers start together; a short task each waits out their start-up, which would otherwise count
        # against the first strategy's wall time
        pool.map(time.sleep, [0.2] * workers, chunksize=1)
        yield lambda tasks: pool.imap_unordered(_run_task, tasks, chunksize=max(1, min(8, len(tasks) // (4 * workers))))
    except BaseException:
        pool.terminate()
        raise
    else:
        pool.close()
    finally:
        pool.join()


def _progress(items: Iterable[RunResult], total: int, name: str, show: bool) -> Iterator[RunResult]:
    if not show:
        yield from items
        return
    from tqdm.auto import tqdm

    accs: list[float] = []
    with tqdm(total=total, desc=name, unit="run", dynamic_ncols=True, file=sys.stderr) as bar:
        for r in items:
            accs.append(r.test_acc_200ep)
            bar.set_postfix(test_acc=f"{statistics.fmean(accs):.2f}", refresh=False)
            bar.update(1)
            yield r


# -- reports -----------------------------------------------------------------------------------------


def _changed(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The parameters of ``given`` (``--set``) whose values differ from strategy ``name``'s defaults."""
    import inspect

    from evonas.strategies import STRATEGIES

    try:
        params = inspect.signature(STRATEGIES.get(name).__init__).parameters
    except Exception:  # not registered here: every value counts as a change
        return dict(given)
    return {k: v for k, v in given.items() if k not in params or params[k].default != v}


def format_report(result: BenchmarkResult) -> str:
    """The results as a text table, published figures beside them."""
    n = len(result.strategies[0].runs) if result.strategies else 0
    target, published = result.target, result.published
    w = max([12, *(len(s.name) for s in result.strategies)])  # a plug-in's longer name keeps the columns
    lines = [
        f"nb201: {n} runs x {result.budget} evaluations, noise {result.noise:g}, "
        f"seeds {result.seed}..{result.seed + n - 1}, {result.workers or 'no'} worker processes, table {result.table}",
        f"{'strategy':<{w}} {'test acc (%)':<15} {f'evals to {target:g}' if target is not None else 'evals to target':<24} "
        f"{'eval/s/proc':>11} {'wall':>8}   published",
    ]
    for s in result.strategies:
        reached, pub = s.reached, published.get(s.name)
        to_target = f"{statistics.fmean(reached):.0f}" if reached else "-"
        to_target += f" ({len(reached)}/{len(s.runs)} reach it)" if target is not None else " (no --target)"
        # the published method ran with the built-in operators, the strategy's defaults, 100 evaluations and exact
        # table values: another set-up is named
        other = (s.plugin_operators or _changed(s.name, result.overrides.get(s.name, {}))
                 or result.budget != PUBLISHED_BUDGET or result.noise)  # fmt: skip
        lines.append(
            f"{s.name:<{w}} {s.mean:6.2f} ± {s.std:4.2f}   {to_target:<24} {s.evals_per_s:11.0f} {s.wall_s:7.1f}s   "
            + (f"{pub[1]:.2f} ± {pub[2]:.2f} ({pub[0]}{', other set-up' if other else ''})" if pub else "-")
        )
    lines.append(f"{'optimum':<{w}} {result.optimum:6.2f}" + ("" if published else f"   (of {result.dataset}; published "
                                                                                  "figures are CIFAR-10's, not shown)"))
    compared = [s.name for s in result.strategies if s.name in published]
    if compared and (result.budget != PUBLISHED_BUDGET or result.noise):  # why "other set-up", where it is this
        ran = [*([f"--budget {result.budget}"] if result.budget != PUBLISHED_BUDGET else []),
               *([f"--noise {result.noise:g}"] if result.noise else [])]  # fmt: skip
        lines.append(f"other set-up: the published figures are of {PUBLISHED_BUDGET} evaluations on the table's exact "
                     f"values; this benchmark ran with {' and '.join(ran)}")  # fmt: skip
    for name, given in result.overrides.items():  # not the defaults the published figures use: say so
        changed = _changed(name, given)
        if changed:
            lines.append(f"{name}: run with {', '.join(f'{k}={v}' for k, v in changed.items())} (--set), not its "
                         "defaults")  # fmt: skip
    for s in result.strategies:  # a plug-in's operator changes a built-in strategy (aging is no longer REA): say so
        if s.plugin_operators:
            lines.append(f"{s.name}: searched with the plug-in operator{'s' if len(s.plugin_operators) > 1 else ''} "
                         f"{', '.join(s.plugin_operators)} too (every operator registered for nb201 joins; "
                         "without --plugins, the built-in ones alone)")  # fmt: skip
    for s in result.strategies:  # a faulty operator: its children were made by another, in every run it failed in
        for f in s.faults():
            calls = f" of {f['calls']} calls" if f["calls"] else ""
            lines.append(f"{s.name}: {f['kind']} '{f['name']}' failed {f['failures']}{calls} in {f['runs']} of "
                         f"{len(s.runs)} runs (first: {f.get('first_error')}); another operator made those children")  # fmt: skip
    for s in result.strategies:  # a run its strategy ended before the budget is averaged with the others: say so
        stuck = [r.evaluations for r in s.runs if r.evaluations < result.budget and r.ended_early]
        if stuck:
            lines.append(f"{s.name}: {len(stuck)} of {len(s.runs)} runs ended before {result.budget} evaluations "
                         f"(fewest {min(stuck)}): the strategy asked only genomes its run had evaluated")  # fmt: skip
        short = [r.evaluations for r in s.runs if r.evaluations < result.budget and not r.ended_early]
        if short:  # its own run length (generations, samples, cycles) ended it first
            length = _run_length_text(s.name, s.params)
            lines.append(f"{s.name}: {len(short)} of {len(s.runs)} runs ended before {result.budget} evaluations "
                         f"(fewest {min(short)}): its run length{length} ended them first; --budget caps a "
                         "run, it does not lengthen it")  # fmt: skip
    names = [s.name for s in result.strategies]
    others = [f"{label} {m:.2f} ± {sd:.2f}" for key, (label, m, sd) in published.items() if key not in names]
    if others:
        lines.append("published (500 runs): " + ", ".join(others))
    reach = (f"evals to {target:g}: mean over the runs whose best architecture so far reaches {target:g} within the "
             "budget; the others are counted apart (k/N)" if target is not None else
             "evals to target: pass --target ACC to count them")  # fmt: skip
    lines.append(
        "test acc: 200-epoch test accuracy of the architecture with the best 12-epoch validation accuracy, mean ± std "
        f"over runs. {reach}. total wall {result.wall_s:.1f} s."
    )
    return "\n".join(lines)


def _run_length_text(name: str, params: dict[str, Any]) -> str:
    """`` (generations=2)``: the strategy's run-length parameter and its value, or ``""`` when unknown."""
    from evonas.strategies import STRATEGIES

    try:
        length = getattr(STRATEGIES.get(name), "run_length", "")
    except Exception:
        return ""
    return f" ({length}={params[length]})" if length and length in params else ""


def to_json(result: BenchmarkResult) -> dict[str, Any]:
    """The results as plain data (what ``--json`` writes; what :func:`evonas.plotting.plot_benchmark` draws)."""
    strategies = {
        s.name: {
            "mean": s.mean, "std": s.std, "runs": len(s.runs), "budget": result.budget, "noise": result.noise,
            "params": s.params, "operators": s.operators, "plugin_operators": s.plugin_operators,
            "operator_faults": s.faults(),
            "reached_target": len(s.reached),
            "evals_to_target_mean": statistics.fmean(s.reached) if s.reached else None,
            "wall_s": s.wall_s, "evals_per_s_per_process": s.evals_per_s,
            "per_run": [json_safe(dataclasses.asdict(r)) for r in s.runs],
        }
        for s in result.strategies
    }  # fmt: skip
    published = {k: {"method": label, "mean": m, "std": sd, "runs": 500}
                 for k, (label, m, sd) in result.published.items()}  # fmt: skip
    return {
        "benchmark": "nb201", "table": result.table, "dataset": result.dataset, "budget": result.budget,
        "noise": result.noise, "seed": result.seed, "workers": result.workers, "target": result.target,
        "optimum": result.optimum, "published": published, "overrides": result.overrides, "wall_s": result.wall_s,
        "strategies": strategies,
    }  # fmt: skip


def is_benchmark_json(path: str | Path) -> bool:
    """Whether ``path`` holds what :func:`write_json` writes (which a new benchmark may replace)."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read(64 << 20))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("benchmark") == "nb201" and isinstance(data.get("strategies"), dict)


def write_json(result: BenchmarkResult, out: str | Path) -> Path:
    """Write :func:`to_json` to ``out``; returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(to_json(result), indent=1) + "\n")
    return out
