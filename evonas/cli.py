"""The ``evonas`` command: run | resume | plot | list.

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
        shown = [o.metric for o in objectives] + [k for k in ("params", "train_s") if k not in [o.metric for o in objectives]]
        parts = [f"{k}={metrics[k]:.4g}" for k in shown if isinstance(metrics.get(k), (int, float))]
        lines.append(f"best      {'  '.join(parts)}")
        lines.append(f"genome    {best['describe']}  (key {best['key']})")
    else:
        lines.append("best      none: every evaluation failed (see the journal's error column)")
    lines.append(
        f"evaluated {summary.evaluations} genomes ({summary.failures} failed, {summary.duplicates} repeats answered "
        f"from the journal) in {summary.generations} generations, {summary.wall_s:.1f} s"
    )
    lines.append(f"run       {summary.run_dir}/  (best.json, journal.sqlite, logbook.csv, plots/fitness.png)")
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

        run.built = build(run.experiment)
    except (ConfigError, RunFolderError) as exc:
        return _fail(str(exc))
    return _execute(run.continue_run, Path(args.run_dir), run.experiment.objectives, RunFolderError)


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

    try:
        files = plot_run(args.run_dir)
    except (FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    for f in files:
        print(f)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from evonas.datasets import DATASETS
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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evonas", description="Evolutionary neural architecture search.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="run an experiment file", description="Run an experiment file into a run folder.")
    r.add_argument("config", help="experiment YAML file, e.g. experiments/quickstart.yaml")
    r.add_argument("--out", metavar="RUN_DIR", help="run folder (default: runs/<name>-<time>)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key, e.g. strategy.params.generations=3")
    r.add_argument("--workers", type=_workers, help="worker processes: 'auto' (default), N, or 0 for in-process")
    r.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_run)

    s = sub.add_parser("resume", help="continue a stopped run", description="Continue a run from its journal.")
    s.add_argument("run_dir")
    s.add_argument("--generations", type=int, help="extend a generational run to N generations")
    s.add_argument("--budget", type=int, help="extend the run to N evaluations")
    s.add_argument("--workers", type=_workers)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_cmd_resume)

    pl = sub.add_parser("plot", help="redraw a run's plots", description="Redraw RUN_DIR/plots/fitness.png.")
    pl.add_argument("run_dir")
    pl.set_defaults(func=_cmd_plot)

    ls = sub.add_parser("list", help="list registered components", description="List registered components.")
    ls.add_argument("kind", nargs="?", choices=["spaces", "mutations", "crossovers", "strategies", "selections", "datasets", "fitness"])
    ls.add_argument("--pattern", default="*", help="shell-style name filter, e.g. 'chain_*'")
    ls.add_argument("--plugins", nargs="*", metavar="MODULE", help="import these modules first")
    ls.set_defaults(func=_cmd_list)
    return p


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
