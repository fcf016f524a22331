"""The ``evonas`` command: run | resume | status | plot | best | list | benchmark.

Bad input gets one line naming the file, the key and what was expected, and
exit code 2; Ctrl-C stops after recording what finished and exits 130.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main"]

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _fail(message: str) -> int:
    print(f"evonas: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _summary(summary: Any, objectives: Sequence[Any]) -> str:
    lines = []
    best = summary.best
    if best:
        metrics = best["metrics"]
        names = [o.metric for o in objectives]
        shown = names + [k for k in ("params", "train_s", "test_acc_200ep") if k not in names]
        parts = [f"{k}={metrics[k]:.4g}" for k in shown if isinstance(metrics.get(k), (int, float))]
        lines.append(f"best      {'  '.join(parts)}")
        lines.append(f"genome    {best['describe']}  (key {best['key']})")
    else:
        lines.append("best      none: every evaluation failed (see the journal's error column)")
    cached = f", {summary.cached} from the evaluation cache" if summary.cached else ""
    lines.append(
        f"evaluated {summary.evaluations} genomes ({summary.failures} failed, {summary.duplicates} repeats answered "
        f"from the journal{cached}) in {summary.generations} generations, {summary.wall_s:.1f} s"
    )
    if getattr(summary, "infeasible", 0) or getattr(summary, "violated", 0):
        lines.append(
            f"limits    {summary.infeasible} candidates broke a cheap limit (recorded as infeasible, never trained); "
            f"{summary.violated} evaluations broke a limit after training"
        )
    lines.append(f"run       {summary.run_dir}/  (best.json, journal.sqlite, logbook.csv, plots/)")
    return "\n".join(lines)


def _cmd_run(args: argparse.Namespace) -> int:
    from evonas.config import ConfigError, load_experiment
    from evonas.engine.build import build
    from evonas.engine.runner import Run, RunFolderError, default_run_dir

    try:
        exp = load_experiment(args.config, args.set or [])
        if args.workers is not None:
            import dataclasses

            exp = dataclasses.replace(exp, workers=args.workers)
        if args.no_cache:
            import dataclasses

            exp = dataclasses.replace(exp, cache=False)
        exp = _with_backend(exp, args.backend, args.address)
        built = build(exp)
    except ConfigError as exc:
        return _fail(str(exc))
    run_dir = Path(args.out) if args.out else default_run_dir(exp)
    run = Run(exp, run_dir, workers=args.workers, progress=not args.quiet, built=built)
    return _execute(lambda: run.execute(overwrite=args.overwrite), run_dir, exp.objectives, RunFolderError)


def _cmd_resume(args: argparse.Namespace) -> int:
    from evonas.config import ConfigError
    from evonas.engine.runner import Run, RunFolderError

    overrides = {}
    if args.generations is not None:
        overrides["generations"] = args.generations
    if args.budget is not None:
        overrides["budget"] = args.budget
    try:
        run = Run.resume(args.run_dir, workers=args.workers, progress=not args.quiet, overrides=overrides)
        from evonas.engine.build import build

        run.experiment = _with_backend(run.experiment, args.backend, args.address)
        if args.no_cache:
            import dataclasses

            run.experiment = dataclasses.replace(run.experiment, cache=False)
        run.built = build(run.experiment)
    except (ConfigError, RunFolderError) as exc:
        return _fail(str(exc))
    return _execute(run.continue_run, Path(args.run_dir), run.experiment.objectives, RunFolderError)


def _with_backend(exp: Any, name: str | None, address: str | None) -> Any:
    """``exp`` with the backend of ``--backend`` / ``--address`` (``--address`` alone means Ray)."""
    import dataclasses

    from evonas.config import Component, ConfigError

    if name is None and address is None:
        return exp
    name = name or ("ray" if address else exp.backend.name)
    params = dict(exp.backend.params) if name == exp.backend.name else {}
    if address is not None:
        if name != "ray":
            raise ConfigError("--address", None, f"joins a Ray cluster; it needs the ray backend, not '{name}'")
        params["address"] = address
    return dataclasses.replace(exp, backend=Component(name, params))


def _cmd_status(args: argparse.Namespace) -> int:
    import json
    import time

    from evonas.engine.status import StatusError, format_status, read_status

    try:
        while True:
            st = read_status(args.run_dir)
            if args.json:
                print(json.dumps(st, indent=1, default=str))
            else:
                print(format_status(st), flush=True)
            if not args.watch or st["state"] != "running":
                return 0
            time.sleep(args.watch)
            print()
    except StatusError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from evonas.export import ExportError, export_run

    formats = ("pt", "torchscript") if args.format is None else tuple(dict.fromkeys(["pt", *args.format]))
    try:
        result = export_run(args.run_dir, rank=args.rank, epochs=args.epochs, formats=formats, out=args.out,
                            progress=not args.quiet)  # fmt: skip
    except ExportError as exc:
        return _fail(f"export: {exc}")
    m = result.metrics
    print(f"exported  rank {m['rank']} genome {result.key}: test_acc={m['test_acc']:.4f} (trained {m['epochs']} epochs on "
          f"{m['samples']} train+val samples, {m['train_s']:.1f} s; tested on {m['test_samples']})")  # fmt: skip
    for f in result.files:
        print(f"wrote     {f}")
    return 0


def _execute(fn: Any, run_dir: Path, objectives: Sequence[Any], folder_error: type) -> int:
    from evonas.engine.replay import ResumeMismatch
    from evonas.engine.runner import RunInterrupted

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)  # SIGTERM stops a run as cleanly as Ctrl-C
    try:
        summary = fn()
    except ResumeMismatch as exc:
        print(f"evonas: {exc}", file=sys.stderr)
        return 1
    except folder_error as exc:
        return _fail(str(exc))
    except RunInterrupted as exc:
        print(_summary(exc.summary, objectives))
        if exc.summary.stopped:
            print(f"evonas: stopped ({exc.summary.stopped}); what finished is in the journal; "
                  f"resume with: evonas resume {run_dir}", file=sys.stderr)  # fmt: skip
            return 1
        print(f"interrupted: what finished is in the journal; resume with: evonas resume {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"interrupted; resume with: evonas resume {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(_summary(summary, objectives))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from evonas.plotting import plot_run

    if len(args.run_dir) > 1 or args.out:  # several runs on one plot
        from evonas.compare import plot_runs

        out = args.out or "compare.png"
        if Path(out).is_dir():
            return _fail(f"plot: --out: {out} is a folder; expected a file name such as compare.png")
        try:
            data = plot_runs(args.run_dir, out, metric=args.metric, x=args.x, band=args.band)
        except (FileNotFoundError, ValueError) as exc:
            return _fail(f"plot: {exc}")
        for name, g in data["groups"].items():
            print(f"{name:<12} {len(g['runs'])} run(s): median best {data['metric']} {g['median'][-1]:.4f} after {g['x'][-1]} {args.x}")
        print(data["out"])
        return 0
    try:
        files = plot_run(args.run_dir[0])
        from evonas.diagnostics import plot_diagnostics

        files = [*files, plot_diagnostics(args.run_dir[0])]
    except (FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    for f in files:
        print(f)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from evonas.config import ConfigError
    from evonas.report import write_report

    try:
        path = write_report(args.run_dir, args.out)
    except (FileNotFoundError, ConfigError) as exc:
        return _fail(f"report: {exc}")
    print(path)
    return 0


def _cmd_best(args: argparse.Namespace) -> int:
    from evonas.choose import best_where, format_choice
    from evonas.constraints import parse_conditions

    try:
        conditions = parse_conditions(args.where) if args.where else ()
    except ValueError as exc:
        return _fail(f"best: --where: {exc}")
    show = [m.strip() for m in args.objectives.split(",") if m.strip()] if args.objectives else []
    if args.objectives is not None and not show:
        return _fail(f"best: --objectives: expected comma-separated metric names, got '{args.objectives}'")
    try:
        choice = best_where(args.run_dir, conditions)
    except ValueError as exc:
        return _fail(f"best: {exc}")
    print(format_choice(choice, conditions, show))
    return 0 if choice["record"] is not None else 1


def _cmd_list(args: argparse.Namespace) -> int:
    from evonas.datasets import DATASETS
    from evonas.engine.backends import BACKENDS
    from evonas.evolution import SELECTIONS
    from evonas.fitness import FITNESSES
    from evonas.operators import CROSSOVERS, MUTATIONS
    from evonas.spaces import SPACES
    from evonas.strategies import STRATEGIES

    if args.plugins:
        import importlib

        sys.path.insert(0, str(Path.cwd()))
        for name in args.plugins:
            try:
                importlib.import_module(name)
            except Exception as exc:
                return _fail(f"--plugins: cannot import module '{name}' ({type(exc).__name__}: {exc})")
    kinds = {
        "spaces": SPACES,
        "mutations": MUTATIONS,
        "crossovers": CROSSOVERS,
        "strategies": STRATEGIES,
        "selections": SELECTIONS,
        "datasets": DATASETS,
        "fitness": FITNESSES,
        "backends": BACKENDS,
    }
    chosen = [args.kind] if args.kind else list(kinds)
    for kind in chosen:
        reg = kinds[kind]
        names = []
        for name in reg.list(args.pattern):
            obj = reg.get(name)
            spaces = getattr(obj, "spaces", ())
            names.append(f"{name} ({', '.join(spaces)})" if spaces else name)
        print(f"{kind}: {', '.join(names) or '-'}")
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from evonas.benchmark import BenchmarkError, format_report, plot_benchmark, run_benchmark, to_json, write_json

    names = [n.strip() for n in args.strategies.split(",")] if args.strategies is not None else None
    if names is not None and (not names or not all(names)):
        return _fail(f"benchmark: --strategies: expected comma-separated strategy names, got '{args.strategies}'")
    for option, out in (("--json", args.json), ("--plot", args.plot)):
        if out and Path(out).is_dir():
            return _fail(f"benchmark: {option}: {out} is a folder; expected a file name")
    try:
        result = run_benchmark(
            names, runs=args.runs, budget=args.budget, table=args.table, noise=args.noise, seed=args.seed,
            workers=args.workers, progress=not args.quiet,
        )  # fmt: skip
    except BenchmarkError as exc:
        return _fail(f"benchmark: {exc}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(format_report(result))
    try:
        if args.json:
            print(f"json      {write_json(result, args.json)}")
        if args.plot:
            print(f"plot      {plot_benchmark(to_json(result), args.plot)}")
    except OSError as exc:
        print(f"evonas: benchmark: cannot write the results ({exc})", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evonas", description="Evolutionary neural architecture search.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="run an experiment file", description="Run an experiment file into a run folder.")
    r.add_argument("config", help="experiment YAML file, e.g. experiments/quickstart.yaml")
    r.add_argument("--out", metavar="RUN_DIR", help="run folder (default: runs/<name>-<time>)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key, e.g. strategy.params.generations=3")
    r.add_argument("--workers", type=_workers, help="worker processes: 'auto' (default), N, or 0 for in-process")
    r.add_argument("--backend", help="where evaluations run: local (default) or ray")
    r.add_argument("--address", help="join this Ray cluster ('auto', 'host:port', 'ray://host:10001'); implies --backend ray")
    r.add_argument("--no-cache", action="store_true", help="train every genome, even those the evaluation cache holds")
    r.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_run)

    s = sub.add_parser("resume", help="continue a stopped run", description="Continue a run from its journal.")
    s.add_argument("run_dir")
    s.add_argument("--generations", type=int, help="extend a generational run to N generations")
    s.add_argument("--budget", type=int, help="extend the run to N evaluations")
    s.add_argument("--workers", type=_workers)
    s.add_argument("--backend", help="where evaluations run: local or ray (default: the run's)")
    s.add_argument("--address", help="join this Ray cluster; implies --backend ray")
    s.add_argument("--no-cache", action="store_true", help="do not use the evaluation cache")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_cmd_resume)

    st = sub.add_parser(
        "status", help="show a run's progress", description="Progress, best, workers and failures of a run, live."
    )
    st.add_argument("run_dir")
    st.add_argument("--watch", type=_float_at_least(0.1), metavar="SECONDS", help="refresh every SECONDS while it runs")
    st.add_argument("--json", action="store_true", help="print the snapshot as JSON")
    st.set_defaults(func=_cmd_status)

    ex = sub.add_parser(
        "export", help="retrain and export a run's best genome",
        description="Retrain the run's K-th best genome on train+val, test it once, write weights, genome, TorchScript.",
    )  # fmt: skip
    ex.add_argument("run_dir")
    ex.add_argument("--rank", type=_int_at_least(1), default=1, help="K-th best distinct genome (default 1)")
    ex.add_argument("--epochs", type=_int_at_least(1), help="training epochs (default: the run's)")
    ex.add_argument("--format", action="append", choices=["pt", "torchscript", "onnx"],
                    help="pt (weights) and torchscript by default; onnx needs the onnx package")  # fmt: skip
    ex.add_argument("--out", metavar="DIR", help="folder (default RUN_DIR/export)")
    ex.add_argument("--quiet", action="store_true")
    ex.set_defaults(func=_cmd_export)

    pl = sub.add_parser("plot", help="redraw a run's plots", description="Redraw RUN_DIR/plots/ (fitness; Pareto fronts and hypervolume with several objectives).")
    pl.add_argument("run_dir", nargs="+", help="one run folder, or several to compare on one plot")
    pl.add_argument("--out", metavar="FILE.png", help="compare the runs on one plot in this file")
    pl.add_argument("--x", choices=["evaluations", "generations"], default="evaluations", help="comparison x axis")
    pl.add_argument("--metric", help="comparison metric (default: the first objective)")
    pl.add_argument("--band", choices=["iqr", "ci95"], default="iqr", help="band around the median of several seeds")
    pl.set_defaults(func=_cmd_plot)

    rp = sub.add_parser("report", help="write a run's HTML report", description="One self-contained HTML page about a run.")
    rp.add_argument("run_dir")
    rp.add_argument("--out", metavar="FILE.html", help="default RUN_DIR/report.html")
    rp.set_defaults(func=_cmd_report)

    bs = sub.add_parser(
        "best", help="the best evaluation meeting conditions",
        description="Print the full evaluation with the best first objective that meets every --where condition.",
    )  # fmt: skip
    bs.add_argument("run_dir")
    bs.add_argument("--where", action="append", metavar="COND", help="e.g. 'params<50000' or 'params<5e4 and flops<1e6'")
    bs.add_argument("--objectives", metavar="M1,M2", help="metrics to print (default: the run's objectives)")
    bs.set_defaults(func=_cmd_best)

    ls = sub.add_parser("list", help="list registered components", description="List registered components.")
    ls.add_argument("kind", nargs="?", choices=["spaces", "mutations", "crossovers", "strategies", "selections", "datasets", "fitness", "backends"])
    ls.add_argument("--pattern", default="*", help="shell-style name filter, e.g. 'chain_*'")
    ls.add_argument("--plugins", nargs="*", metavar="MODULE", help="import these modules first")
    ls.set_defaults(func=_cmd_list)

    b = sub.add_parser(
        "benchmark",
        help="compare strategies on a tabular benchmark",
        description="Compare search strategies on the NAS-Bench-201 table: many seeded runs per strategy.",
    )
    b.error = _one_line_error  # type: ignore[method-assign]  # bad arguments: one line, exit 2
    b.add_argument("benchmark", choices=["nb201"], help="the benchmark (nb201: NAS-Bench-201, CIFAR-10)")
    b.add_argument(
        "--strategies", metavar="A,B,...", help="registry names (default: every strategy that runs on nb201 but grid)"
    )
    b.add_argument("--runs", type=_int_at_least(1), default=200, help="runs per strategy (default 200)")
    b.add_argument("--budget", type=_int_at_least(1), default=100, help="evaluations per run (default 100)")
    b.add_argument("--table", metavar="CSV", help="table file (default: the shipped CIFAR-10 table)")
    b.add_argument(
        "--noise", type=_float_at_least(0.0), default=0.0, metavar="SIGMA",
        help="Gaussian noise on the search signal, in percentage points (default 0)",
    )  # fmt: skip
    b.add_argument("--seed", type=_int_at_least(0), default=0, help="base seed: run i uses seed S+i (default 0)")
    b.add_argument("--workers", type=_int_at_least(0), help="processes (default: one per core; 0: this process)")
    b.add_argument("--json", metavar="OUT", help="write every run's results to this JSON file")
    b.add_argument("--plot", metavar="OUT.png", help="draw the anytime curves to this PNG file")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=_cmd_benchmark)
    return p


def _one_line_error(message: str) -> None:
    print(f"evonas: benchmark: {message}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def _int_at_least(low: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got '{text}'") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got '{text}'")
        return value

    return parse


def _float_at_least(low: float) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not value >= low or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected a number >= {low:g}, got '{text}'")
        return value

    return parse


def _workers(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or an integer >= 0, got '{text}'") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected 'auto' or an integer >= 0, got '{text}'")
    return n


def _version() -> str:
    from evonas import __version__

    return f"evonas {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
