"""The ``evonas`` command line: run | resume | status | plot | report | export | export-optuna | best | show | list | benchmark.

The parser lives here; each subcommand is a function of :mod:`evonas.commands`.

Bad input gets one line naming the file, the key and what was expected, and
exit code 2; Ctrl-C stops after recording what finished and exits 130.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from evonas.listing import KINDS, kind_name
from evonas.commands import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    cmd_benchmark,
    cmd_best,
    cmd_doctor,
    cmd_export,
    cmd_list,
    cmd_plot,
    cmd_report,
    cmd_resume,
    cmd_run,
    cmd_show,
    cmd_status,
)

__all__ = ["main", "build_parser"]

#: the exit status of a command whose output pipe closed (128 + SIGPIPE, as the shell reports it)
EXIT_BROKEN_PIPE = 141


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each command's parser, by its name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def build_parser() -> argparse.ArgumentParser:
    """The ``evonas`` command line's parser (its subcommands, arguments and help; the CLI reference is made from it)."""
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
    r.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("resume", help="continue a stopped run", description="Continue a run from its journal.")
    s.add_argument("run_dir", help="the run folder to continue")
    s.add_argument("--generations", type=_int_at_least(0), help="extend a generational run to N generations")
    s.add_argument("--budget", type=_int_at_least(1),
                   help="extend the run to N evaluations (a strategy's samples or cycles below N is raised to N; a run "
                        "its generations end first is refused: pass --generations too)")  # fmt: skip
    s.add_argument("--workers", type=_workers, help="worker processes: 'auto', N, or 0 for in-process (default: as the run had them)")
    s.add_argument("--backend", help="where evaluations run: local or ray (default: the run's)")
    s.add_argument("--address", help="join this Ray cluster; implies --backend ray")
    s.add_argument("--no-cache", action="store_true", help="do not use the evaluation cache")
    s.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")
    s.add_argument("--restart", action="store_true",
                   help="set the journal aside (renamed, kept) and start the run over from its config")  # fmt: skip
    s.add_argument("--data", metavar="PATH",
                   help="the dataset's file or folder where it is now (a run folder moved away from its data); it must "
                        "hold the data the run searched on (checked)")  # fmt: skip
    _trust_options(s)
    s.set_defaults(func=cmd_resume)

    st = sub.add_parser(
        "status", help="show a run's progress", description="Progress, best, workers and failures of a run, live."
    )
    st.add_argument("run_dir", help="the run folder to look at")
    st.add_argument("--watch", type=_float_at_least(0.1), metavar="SECONDS", help="refresh every SECONDS while it runs")
    st.add_argument("--json", action="store_true", help="print the snapshot as JSON")
    st.set_defaults(func=cmd_status)

    ex = sub.add_parser(
        "export", help="retrain and export a run's best genome",
        description="Retrain the run's K-th best genome on train+val, test it once, write weights, genome, TorchScript.",
    )  # fmt: skip
    ex.add_argument("run_dir", help="the run folder whose best genome to export")
    which = ex.add_mutually_exclusive_group()
    which.add_argument("--rank", type=_int_at_least(1), default=1, help="K-th best distinct genome (default 1)")
    which.add_argument("--key", help="the genome with this key, or its first 4+ hex digits (as `evonas best` and "
                                     "`evonas show` print it): the pick of `evonas best --where ...`")  # fmt: skip
    ex.add_argument("--epochs", type=_int_at_least(1), help="training epochs (default: the run's)")
    ex.add_argument("--format", action="append", choices=["pt", "torchscript", "onnx"],
                    help="pt (weights) and torchscript always; --format onnx adds model.onnx (needs: pip install onnx onnxscript)")  # fmt: skip
    ex.add_argument("--out", metavar="DIR", help="folder (default RUN_DIR/export)")
    ex.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")
    ex.add_argument("--data", metavar="PATH",
                    help="the dataset's file or folder where it is now (a run folder moved away from its data); it must "
                         "hold the data the run searched on (checked)")  # fmt: skip
    _trust_options(ex)
    ex.set_defaults(func=cmd_export)

    pl = sub.add_parser(
        "plot", help="draw a run's plots",
        description="Draw a run's plots (fitness, diagnostics; Pareto fronts and hypervolume with several "
                    "objectives) into ./<run folder's name>-plots/, or compare several runs on one plot; the run "
                    "folder is only read.",
    )  # fmt: skip
    pl.add_argument("run_dir", nargs="+", help="one run folder, or several to compare on one plot")
    pl.add_argument("--out", metavar="DIR|FILE.png",
                    help="one run: the folder for its plots (default ./<run folder's name>-plots); FILE.png: the runs "
                         "compared on one plot in this file (default compare.png)")  # fmt: skip
    pl.add_argument("--x", choices=["evaluations", "generations"], default="evaluations", help="comparison x axis")
    pl.add_argument("--metric", help="comparison metric (default: the first objective)")
    pl.add_argument("--band", choices=["iqr", "ci95"], default="iqr",
                    help="iqr: the median of several seeds and its interquartile range; ci95: their mean and its 95%% "
                         "confidence interval (Student's t)")  # fmt: skip
    pl.add_argument("--group-by", default="strategy", metavar="KEY",
                    help="comparison groups: strategy (default), name (the experiment's), or a setting's dotted path in "
                         "the runs' config.yaml, e.g. strategy.params.mutpb (a curve per value)")  # fmt: skip
    _trust_options(pl)
    pl.set_defaults(func=cmd_plot)

    eo = sub.add_parser(
        "export-optuna", help="write a run's evaluations into an Optuna study (optuna-dashboard)",
        description="Add each evaluation of a run, finished or still running, as a trial of an Optuna study (the "
                    "genome's categorical view as its parameters, the objectives as its values); run it again to add "
                    "only the new ones. View it with: optuna-dashboard STORAGE.",
    )  # fmt: skip
    eo.add_argument("run_dir", help="the run folder to export (finished or still running)")
    eo.add_argument("--storage", metavar="URL",
                    help="Optuna storage URL, e.g. sqlite:///runs.db (required: the run folder is only read unless "
                         "this names its optuna.db)")  # fmt: skip
    eo.add_argument("--study-name", metavar="NAME", help="the study (default: the run folder's name)")
    _trust_options(eo)
    eo.set_defaults(func=_export_optuna)

    rp = sub.add_parser("report", help="write a run's HTML report", description="One self-contained HTML page about a run.")
    rp.add_argument("run_dir", help="the run folder to report on")
    rp.add_argument("--out", metavar="FILE.html", help="default ./<run folder's name>-report.html")
    _trust_options(rp)
    rp.set_defaults(func=cmd_report)

    bs = sub.add_parser(
        "best", help="the best evaluation meeting conditions",
        description="Print the full evaluation with the best first objective that meets every --where condition.",
    )  # fmt: skip
    bs.add_argument("run_dir", help="the run folder to pick from")
    bs.add_argument("--where", action="append", metavar="COND", help="e.g. 'params<50000' or 'params<5e4 and flops<1e6' (a comma, or --where again, also means and)")
    bs.add_argument("--objectives", metavar="M1,M2", help="metrics to print (default: the run's objectives)")
    bs.add_argument("--by", metavar="METRIC[:min|max]",
                    help="pick the best value of this metric among those meeting --where, e.g. params:min (the "
                         "smallest network); default direction: the objective's, else min for sizes, times and "
                         "losses, max otherwise")  # fmt: skip
    bs.add_argument("--front", action="store_true",
                    help="list the Pareto front of the evaluations meeting --where, by the run's objectives (a row "
                         "each, best first objective first)")  # fmt: skip
    bs.add_argument("--json", action="store_true", help="print the pick (or the front) as JSON")
    bs.set_defaults(func=cmd_best)

    sh = sub.add_parser(
        "show", help="one evaluation, by trial or key",
        description="Print one evaluation of a run, whatever its status: the reason it failed, its metrics, its genome.",
    )  # fmt: skip
    sh.add_argument("run_dir", help="the run folder")
    sh.add_argument("which", help="a trial number (as the summary, status and native.log name it) or a genome key (or its first 4+ hex digits)")
    sh.add_argument("--json", action="store_true", help="print the evaluations as a JSON list (every journal field)")
    sh.set_defaults(func=cmd_show)

    ls = sub.add_parser("list", help="list registered components", description="List registered components.")
    ls.add_argument("kind", nargs="?", choices=list(KINDS), type=kind_name,
                    help="one kind (singular or plural: 'strategy' or 'strategies'); none: all")  # fmt: skip
    ls.add_argument("name", nargs="?", metavar="NAME",
                    help="only this component (a shell-style pattern too, e.g. 'chain_*'; same as --pattern)")  # fmt: skip
    ls.add_argument("--pattern", default="*", help="shell-style name filter, e.g. 'chain_*'")
    ls.add_argument("--plugins", nargs="*", action="extend", metavar="MODULE", help="import these modules (or .py files) first")
    ls.add_argument("--experiment", metavar="FILE.yaml", help="import the plug-ins this experiment file names first")
    ls.add_argument("--params", action="store_true",
                    help="each component's parameters: type, default, allowed values and what it does")  # fmt: skip
    ls.set_defaults(func=cmd_list)

    b = sub.add_parser(
        "benchmark",
        help="compare strategies on a tabular benchmark",
        description="Compare search strategies on the NAS-Bench-201 table: many seeded runs per strategy.",
    )
    b.error = _one_line_error  # type: ignore[method-assign,assignment]  # bad arguments: one line, exit 2
    b.add_argument("benchmark", choices=["nb201"], help="the benchmark (nb201: NAS-Bench-201, CIFAR-10)")
    b.add_argument(
        "--strategies", metavar="A,B,...", help="registry names (default: every strategy that runs on nb201 but grid; surrogate is the slow one)"
    )
    b.add_argument("--runs", type=_int_at_least(1), default=200, help="runs per strategy (default 200)")
    b.add_argument("--budget", type=_int_at_least(1), default=100, help="evaluations per run (default 100)")
    b.add_argument("--table", metavar="CSV", help="table file (default: the shipped CIFAR-10 table)")
    b.add_argument(
        "--noise", type=_float_at_least(0.0), default=0.0, metavar="SIGMA",
        help="Gaussian noise on the search signal, in percentage points (default 0)",
    )  # fmt: skip
    b.add_argument("--target", type=float, metavar="ACC",
                   help="count the evaluations until the best architecture's test accuracy (%%) reaches ACC (default: "
                        "94 on the shipped CIFAR-10 table, none on another)")  # fmt: skip
    b.add_argument("--set", dest="strategy_params", action="append", metavar="STRATEGY.PARAM=VALUE", default=[],
                   help="a parameter of one benchmarked strategy over its default, e.g. aging.sample_size=10 "
                        "(repeatable; the value is read as YAML)")  # fmt: skip
    b.add_argument("--seed", type=_int_at_least(0), default=0, help="base seed: run i uses seed S+i (default 0)")
    b.add_argument("--workers", type=_int_at_least(0), help="processes (default: one per core; 0: this process)")
    b.add_argument("--json", metavar="OUT", help="write every run's results to this JSON file")
    b.add_argument("--plot", metavar="OUT.png", help="draw the anytime curves to this PNG file")
    b.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")
    b.add_argument("--plugins", nargs="+", metavar="MODULE",
                   help="import these plug-in modules (names on the import path, or .py files) first: strategies they "
                        "register can be named in --strategies")  # fmt: skip
    b.set_defaults(func=cmd_benchmark)

    dr = sub.add_parser(
        "doctor", help="what evonas will use on this machine, and a self-test",
        description="Versions, devices, CPU, workers and mixed precision evonas will use here; a brief training "
                    "self-test of each built-in space, each in its own process; a one-line verdict.",
    )  # fmt: skip
    dr.add_argument("--json", action="store_true", help="print the report as JSON")
    dr.add_argument("--timeout", type=_float_at_least(1.0), default=60.0, metavar="SECONDS",
                    help="time limit of each self-test process (default 60)")  # fmt: skip
    dr.set_defaults(func=cmd_doctor)
    return p


def _export_optuna(args: argparse.Namespace) -> int:
    from evonas.optuna_export import cmd_export_optuna

    return cmd_export_optuna(args)


def _trust_options(p: argparse.ArgumentParser) -> None:
    """``--plugins`` / ``--trust``: a run folder names plug-ins, but reading it imports none unless asked."""
    p.add_argument("--plugins", nargs="+", action="extend", metavar="MODULE",
                   help="import these plug-in modules (names on the import path, or .py files) the run needs")  # fmt: skip
    p.add_argument("--trust", action="store_true",
                   help="import the plug-ins the run folder's config names (their code runs; only for folders you trust)")  # fmt: skip


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
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said with the command's own usage (argparse gives the top-level one, which lists no options)
        given = list(sys.argv[1:] if argv is None else argv)
        name = getattr(args, "command", None) or ""
        at = given.index(name) if name in given else -1
        before = at >= 0 and any(x in given[:at] for x in extra)  # `evonas --bogus run ...`: not run's
        command = parser if before else _subparsers(parser).get(name, parser)
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        code = args.func(args)
        sys.stdout.flush()  # a pipe that closed shows here, not as an error at exit
        return code
    except BrokenPipeError:  # `evonas ... | head`: the reader left; no traceback
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's recipe: no error at exit
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("evonas: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # no command calls sys.exit(): plug-in code did (a build function, an operator)
        from evonas.engine.plugins import exit_text

        print(f"evonas: {args.command}: plug-in code called {exit_text(exc)}; the command stopped there", file=sys.stderr)
        return 1
    except Exception as exc:  # the last net: one line, never a traceback (EVONAS_DEBUG=1 shows it)
        import os

        if os.environ.get("EVONAS_DEBUG"):
            raise
        text = " ".join(str(exc).split())[:300]
        print(f"evonas: {args.command}: {type(exc).__name__}: {text} (EVONAS_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
