"""The ``evonas`` subcommands: one function per command, given the parsed arguments, returning the exit code.

:mod:`evonas.cli` parses the command line and dispatches here.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


@contextlib.contextmanager
def _stopping_on(*signals: signal.Signals) -> Iterator[None]:
    """Inside, each of ``signals`` raises ``KeyboardInterrupt`` (it stops the command as Ctrl-C does); the previous
    handlers are put back on the way out."""

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_term) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _fail(message: str) -> int:
    print(f"evonas: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _bar(args: argparse.Namespace) -> bool:
    """A progress bar on stderr unless ``--quiet``, or stderr is not a terminal: a log file would keep every frame
    of it (``evonas status RUN_DIR`` tells a run's progress from anywhere)."""
    try:
        terminal = sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without it, or closed
        terminal = False
    return not args.quiet and terminal


def _this_session(added: int | None) -> str:
    """`` this session (8 new)``: what a resume's time was spent on, beside the whole run's counts."""
    return " this session" + (f" ({added} new)" if isinstance(added, int) else "")


def _summary(summary: Any, objectives: Sequence[Any]) -> str:
    from evonas.checks import is_real, metric_text

    lines = []
    best = summary.best
    if best:
        metrics = best["metrics"]
        names = [o.metric for o in objectives]
        shown = names + [k for k in ("params", "train_s", "test_acc_200ep") if k not in names]
        parts = [f"{k}={metric_text(metrics[k])}" for k in shown if is_real(metrics.get(k))]
        lines.append(f"best      {'  '.join(parts)}")
        lines.append(f"genome    {best['describe']}  (key {best['key']})")
    elif summary.evaluations and summary.failures >= summary.evaluations:
        lines.append("best      none: every evaluation failed (see the journal's error column)")
    elif getattr(summary, "infeasible", 0) or getattr(summary, "violated", 0):
        lines.append("best      none: every candidate that did not fail broke a limit of the experiment's constraints "
                     "(counted under limits)")  # fmt: skip
    else:
        lines.append("best      none: no full evaluation finished successfully")
    cached = f", {summary.cached} from the evaluation cache" if summary.cached else ""
    n = summary.generations
    block = getattr(summary, "log_every", None)
    # a steady-state strategy has no generations: its logbook has a row per log_every results
    steps = (f"in {n} generation{'s' if n != 1 else ''}" if not block else
             f"steady-state, logged every {block} results ({n} logbook row{'s' if n != 1 else ''})")
    if n == 0 and not block and summary.evaluations:  # stopped (or ended) before its first generation was complete
        steps = "within its first generation, not complete (no logbook row, so no plots)"
    lines.append(
        f"evaluated {summary.evaluations} genome{'s' if summary.evaluations != 1 else ''} ({summary.failures} failed, "
        f"{summary.duplicates} repeat{'s' if summary.duplicates != 1 else ''} answered from the journal{cached}) {steps}, {summary.wall_s:.1f} s"
        + (_this_session(summary.added) if getattr(summary, "resumed", False) else "")
    )
    if getattr(summary, "ended_early", None):
        lines.append(f"ended     early: {summary.ended_early}")
    if summary.resumed and summary.added == 0 and not summary.interrupted and not summary.stopped:
        more = "--budget N" if block else "--generations N (with --budget N if the run has a budget)"
        lines.append("nothing   new this session: " + ("its search ended early again, as above" if summary.ended_early
                     else f"the run had reached its end; go on with {more}"))  # fmt: skip
    if getattr(summary, "train_steps", 0):
        from evonas.engine.status import training_line

        lines.append(f"training  {training_line(summary.train_steps, summary.train_samples, summary.pruned, summary.inherited)}")
    if summary.failure_reasons:
        from evonas.engine.journal import failure_text, more_failures

        trials = list(getattr(summary, "failed_trials", None) or []) + [[]] * len(summary.failure_reasons)
        lines.append("failures  " + "; ".join([
            *(failure_text(reason, n, t) for (reason, n), t in zip(summary.failure_reasons, trials)),
            *more_failures(summary.failures, summary.failure_reasons),
        ]))  # fmt: skip
    if summary.safe_mode:
        n = summary.safe_mode
        lines.append(f"safe mode {n} evaluation{'s' if n != 1 else ''} retried in safe mode (oneDNN off, fp32) after "
                     f"{'their workers' if n != 1 else 'its worker'} died or stalled")  # fmt: skip
    if getattr(summary, "infeasible", 0) or getattr(summary, "violated", 0):
        lines.append(
            f"limits    {summary.infeasible} candidate{'s' if summary.infeasible != 1 else ''} broke a cheap limit "
            f"(recorded as infeasible, never trained); {summary.violated} evaluation{'s' if summary.violated != 1 else ''}"
            " broke a limit after training"
            + (f"; no candidate met {'; '.join(summary.nearest)}" if getattr(summary, "nearest", None) else "")
        )  # fmt: skip
    written = [n for n in ("best.json", "journal.sqlite", "logbook.csv", "plots/") if (Path(summary.run_dir) / n).exists()]
    lines.append(f"run       {summary.run_dir}/" + (f"  ({', '.join(written)})" if written else ""))
    from evonas.engine.status import fault_lines
    from evonas.spaces.base import BUILD_FUNCTION

    stats = getattr(summary, "operator_faults", None) or []
    faults = fault_lines(stats)
    if faults:  # last: what the user must fix is what they read first
        lines.append("faults    " + "\n          ".join(faults))
        if any(f.get("failures") and f.get("kind") != BUILD_FUNCTION for f in stats):
            lines.append("          (each failed call's child was made by another operator, or is its parent where "
                         "none was left; check yours with "
                         "evonas.testing.check_mutation / check_crossover; strict: true stops at the first fault)")  # fmt: skip
        if any(f.get("failures") and f.get("kind") == BUILD_FUNCTION for f in stats):
            lines.append("          (the genomes a build function failed on count as invalid; evonas.testing.check_space "
                         "tries yours on many draws; raise InvalidGenome to refuse a combination on purpose)")  # fmt: skip
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    from evonas.config import ConfigError, from_override, load_experiment
    from evonas.engine.build import build, startup_watchdog
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
        with startup_watchdog(exp):
            built = build(exp)
    except ConfigError as exc:
        return _fail(str(from_override(exc, args.set or [])))
    run_dir = Path(args.out) if args.out else default_run_dir(exp, claim=True)
    run = Run(exp, run_dir, workers=args.workers, progress=_bar(args), built=built)
    code = _execute(lambda: run.execute(overwrite=args.overwrite), run_dir, exp, RunFolderError,
                    lambda: _draw_run_plots(run))  # fmt: skip
    if not args.out:  # the folder this command made for the run, left empty (a cluster it could not join): removed
        with contextlib.suppress(OSError):
            run_dir.rmdir()
    return code


def cmd_resume(args: argparse.Namespace) -> int:
    from evonas.config import ConfigError
    from evonas.engine.build import startup_watchdog
    from evonas.engine.runner import Run, RunFolderError

    overrides = {}
    if args.generations is not None:
        overrides["generations"] = args.generations
    if args.budget is not None:
        overrides["budget"] = args.budget
    try:
        run = Run.resume(
            args.run_dir, workers=args.workers, progress=_bar(args), overrides=overrides,
            plugins=_plugin_files(args.plugins), trust=args.trust, restart=args.restart, data_path=args.data,
        )  # fmt: skip
        run.experiment = _with_backend(run.experiment, args.backend, args.address)
        if args.no_cache:
            import dataclasses

            run.experiment = dataclasses.replace(run.experiment, cache=False)
        with startup_watchdog(run.experiment):
            run.built = run.build_experiment()  # (names the folder's config.yaml, and the plug-ins it lacks)
    except ConfigError as exc:
        return _fail(str(exc))
    except RunFolderError as exc:
        from evonas.runfolder import plugin_hint

        return _fail(str(exc) + plugin_hint(args.run_dir, exc, args.plugins, args.trust))
    return _execute(run.continue_run, Path(args.run_dir), run.experiment, RunFolderError,
                    lambda: _draw_run_plots(run))  # fmt: skip


def _plugin_files(names: Sequence[str] | None) -> list[str] | None:
    """``--plugins`` entries: module names as given, ``.py`` files in the working directory as absolute paths
    (workers import them too); other files as given, to be looked for next to the run's experiment file."""
    from evonas.engine.build import is_plugin_file

    if names is None:
        return None
    return [str(Path(n).resolve()) if is_plugin_file(n) and Path(n).expanduser().is_file() else n for n in names]


def _with_backend(exp: Any, name: str | None, address: str | None) -> Any:
    """``exp`` with the backend of ``--backend`` / ``--address`` (``--address`` alone means Ray)."""
    import dataclasses

    from evonas.config import Component, ConfigError

    if name is None and address is None:
        return exp
    name = name or ("ray" if address else exp.backend.name)
    params = dict(exp.backend.params) if name == exp.backend.name else {}
    left = {k: v for k, v in exp.backend.params.items() if v is not None} if name != exp.backend.name else {}
    if left:  # another backend takes other parameters: the ones set for this backend are not carried over
        shown = ", ".join(f"{k}: {v}" for k, v in left.items())
        print(f"evonas: --backend {name}: the {exp.backend.name} backend's parameters ({shown}) are that backend's "
              f"own (a name both have may mean another thing); this session runs the {name} backend with its "
              "defaults", file=sys.stderr)  # fmt: skip
    if address is not None:
        if name != "ray":
            raise ConfigError("--address", None, f"joins a Ray cluster; it needs the ray backend, not '{name}'")
        params["address"] = address
    return dataclasses.replace(exp, backend=Component(name, params))


def _printable(value: Any) -> Any:
    """``value`` with every string's control characters (newlines, terminal escapes) written as escapes."""
    if isinstance(value, str):
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_printable(v) for v in value)
    return value


def cmd_status(args: argparse.Namespace) -> int:
    import json
    import time

    from evonas.engine.status import StatusError, format_status, read_status

    try:
        while True:
            st = read_status(args.run_dir)
            if args.json:
                print(json.dumps(st, indent=1, default=str))
            else:  # text from a run folder never moves the cursor or colours the terminal
                print(format_status(_printable(st)), flush=True)
            if st["state"] != "running":
                return _resumable(args.run_dir)
            if not args.watch:
                return 0
            time.sleep(args.watch)
            print()
    except StatusError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 0


def _resumable(run_dir: str) -> int:
    """0, or 1 with a line saying why a resume of the stopped run in ``run_dir`` would refuse its journal (a journal
    copied without its -wal file reads as a few rows: the status alone would not say so)."""
    from evonas.engine.runner import check_resumable
    from evonas.runfolder import RunFolder, RunFolderError

    try:
        check_resumable(RunFolder(run_dir))
    except RunFolderError as exc:
        print(f"evonas: status: a resume would refuse this journal: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from evonas.checks import decimals_text
    from evonas.export import ExportError, export_run
    from evonas.runfolder import RunFolderError

    formats = tuple(dict.fromkeys(["pt", "torchscript", *(args.format or [])]))  # --format onnx: ONNX too
    try:
        result = export_run(args.run_dir, rank=args.rank, key=args.key, epochs=args.epochs, formats=formats, out=args.out,
                            progress=_bar(args), plugins=_plugin_files(args.plugins), trust=args.trust,
                            data_path=args.data)  # fmt: skip
    except ExportError as exc:
        from evonas.export import NoSuchGenome
        from evonas.runfolder import plugin_hint

        if isinstance(exc, NoSuchGenome):  # not found, as `evonas show` says it: exit code 1
            print(f"evonas: export: {exc}", file=sys.stderr)
            return 1
        return _fail(f"export: {exc}" + plugin_hint(args.run_dir, exc, args.plugins, args.trust))
    except RunFolderError as exc:
        return _fail(f"export: {exc}")
    m = result.metrics
    epochs = f"{m['epochs']} epoch{'s' if m['epochs'] != 1 else ''}"
    by = str(m.get("ranked_by") or "")
    also = f"test_{by[4:]}" if by.startswith("val_") and by != "val_acc" else ""
    scores = f"test_acc={decimals_text(m['test_acc'])}" + (f" {also}={decimals_text(m[also])}" if isinstance(m.get(also), float) else "")
    print(f"exported  rank {m['rank']} genome {result.key}: {scores} (trained {epochs} on "
          f"{m['train_size']} train+val samples, {m['train_s']:.2g} s; tested on {m['test_size']})")  # fmt: skip
    for f in result.files:
        print(f"wrote     {f}")
    return 0


def _execute(
    fn: Any,
    run_dir: Path,
    exp: Any,
    folder_error: type[BaseException],
    draw: Callable[[], None] | None = None,
) -> int:
    """Run ``fn`` (a run or a resume of experiment ``exp``) and print its summary; ``draw``: called once it has ended
    well (the plots)."""
    from evonas.engine.replay import ResumeMismatch
    from evonas.engine.runner import RunCrashed, RunInterrupted
    from evonas.runfolder import resume_command

    objectives, resume = exp.objectives, resume_command(run_dir, exp.plugins)

    # SIGTERM, SIGHUP (the terminal closed) and SIGQUIT stop a run as cleanly as Ctrl-C
    with _stopping_on(signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        try:
            summary = fn()
        except ResumeMismatch as exc:
            print(f"evonas: {exc}", file=sys.stderr)
            return 1
        except folder_error as exc:
            return _fail(str(exc))
        except RunCrashed as exc:  # what finished is journalled, the state says crashed; one line, no traceback
            import os

            if os.environ.get("EVONAS_DEBUG"):
                raise
            # raised at a line of a plug-in (a strategy's tell): a resume replays the journal into the same code
            files = [Path(p).name if str(p).endswith(".py") else f"{str(p).rsplit('.', 1)[-1]}.py" for p in exp.plugins or ()]
            fix = "fix it first (the resume replays the journal through the same code), then " if any(
                f"{f}:" in str(exc.error) for f in files) else "if it lies in a plug-in, fix that first (the resume " \
                "replays the journal through the same code), then " if files else ""  # fmt: skip
            print(f"evonas: the run crashed: {exc.error}; what finished is in the journal; {fix}resume with: "
                  f"{resume} (EVONAS_DEBUG=1 shows the traceback)", file=sys.stderr)  # fmt: skip
            return 1
        except RunInterrupted as exc:
            if getattr(exc.summary, "fault", None):  # strict: true: the first operator fault stops the run, in one line
                print(f"evonas: strict: {exc.summary.fault}; the run stopped (what finished is in the journal); fix the "
                      f"operator, then resume with: {resume}", file=sys.stderr)  # fmt: skip
                return 1
            print(_summary(exc.summary, objectives))
            if getattr(exc.summary, "finished_first", False):  # Ctrl-C while best.json was written: nothing is missing
                print(f"interrupted after the run had finished: its results are written, its plots are not (draw them "
                      f"with: evonas plot {run_dir})", file=sys.stderr)  # fmt: skip
                return EXIT_INTERRUPTED
            if exc.summary.stopped:
                print(f"evonas: stopped ({exc.summary.stopped}); what finished is in the journal; "
                      f"resume with: {resume}", file=sys.stderr)  # fmt: skip
                return 1
            print(f"interrupted: what finished is in the journal; resume with: {resume}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except KeyboardInterrupt:
            print(f"interrupted; resume with: {resume}", file=sys.stderr)
            return EXIT_INTERRUPTED
    if draw is not None:
        draw()
    print(_summary(summary, objectives))
    if (summary.evaluations or summary.infeasible) and not summary.best:  # a script sees a search that found nothing
        print("evonas: the run found no best (its summary says why); exit code 1", file=sys.stderr)
        return 1
    return 0


def draw_plots(
    folder: Any, exp: Any, space: Any, out_dir: Path, *, warn: bool = True, keep_going: bool = False
) -> list[Path]:
    """Draw a run's plots into ``out_dir`` and return the files: ``fitness.png`` (from the logbook), with several
    objectives ``pareto_front.png``, ``pareto_fronts.png`` and ``hypervolume.png``, and ``diagnostics.png``.

    ``folder``: the :class:`~evonas.runfolder.RunFolder`; ``space``: the run's search space (``None``: the
    diagnostics leave out the gene entropies); ``warn``: damaged journal rows are said in one line. A plot that
    cannot be drawn raises (``FileNotFoundError``, ``ValueError``, ``RunFolderError``: one line; a logbook or a
    journal that cannot be read, before anything is drawn), or with ``keep_going`` is left out.
    """
    # here, not at the top: the drawing modules load matplotlib, which `evonas status`, `best`, `list` and `--help`
    # do without (benchmarks/cli_startup.py)
    from evonas import plotting, plotting_pareto
    from evonas.diagnostics import diagnose_folder

    def attempt(step: Callable[[], Any]) -> Any:
        try:
            return step()
        except Exception:
            if not keep_going:
                raise
            return None

    out_dir = Path(out_dir)
    objectives, title = plotting.objectives_of(exp), plotting.run_title(exp)
    rows = attempt(lambda: plotting.logbook_rows(folder))
    numbers = attempt(lambda: diagnose_folder(folder, exp, space, warn))
    files: list[Path] = []
    if rows is not None:
        steady = plotting.steady_state(exp)
        files += attempt(lambda: [plotting.plot_fitness(rows, objectives, out_dir / "fitness.png", title=title,
                                                        steady=steady)]) or []  # fmt: skip
        if len(objectives) > 1 and folder.journal_path.exists():
            files += attempt(lambda: plotting_pareto.plot_pareto(folder.path, objectives, rows, out_dir, title)) or []
    if numbers is not None:
        files += attempt(lambda: [plotting.draw_diagnostics(numbers, out_dir / "diagnostics.png")]) or []
    return files


def plot_run(
    run_dir: str | Path, out_dir: str | Path | None = None, *, plugins: Sequence[str] | None = None, trust: bool = False
) -> list[Path]:
    """Draw a run folder's plots, as ``evonas run`` does when it ends (``Run.execute()`` draws none): ``fitness.png``,
    ``diagnostics.png`` and, with several objectives, the Pareto plots, into ``out_dir`` (default: the run's own
    ``plots/``). ``plugins``/``trust``: as for ``evonas plot`` (the space's plug-in, for the gene entropies).
    Returns the files written; raises ``RunFolderError``, ``FileNotFoundError`` or ``ValueError`` in one line."""
    from evonas.diagnostics import run_space_here
    from evonas.runfolder import RunFolder

    folder = RunFolder(run_dir)
    exp = folder.experiment(plugins=plugins, trust=trust)
    space, _, _ = run_space_here(folder.config(), exp)
    return draw_plots(folder, exp, space, Path(out_dir) if out_dir is not None else folder.inside("plots"))


def report_plots(folder: Any, exp: Any, space: Any, out_dir: Path) -> list[Path]:
    """The plots a report embeds (:func:`draw_plots`, as :func:`evonas.report.write_report` calls ``draw``): what
    cannot be drawn is left out, and damaged rows, which the report says once, are not said again."""
    return draw_plots(folder, exp, space, out_dir, warn=False, keep_going=True)


def _draw_run_plots(run: Any) -> None:
    """``RUN_DIR/plots/`` of a run that has ended well; a plot that cannot be drawn is one warning line (the run is
    done and recorded whatever happens to its plots)."""
    from evonas.diagnostics import run_space
    from evonas.engine.outputs import read_logbook
    from evonas.runfolder import RUN_DIR_FILES, RunFolder

    try:
        folder = RunFolder(run.run_dir)
        for name in sorted(RUN_DIR_FILES["plots"]):
            folder.inside(f"plots/{name}")  # a link out of the run folder is refused, never written through
        if not any(isinstance(r, dict) for r in read_logbook(folder.path)):  # the budget cut the first generation
            budget = run.experiment.budget
            print("evonas: no plots: the logbook has no generation"
                  + (f" (the budget of {budget} evaluations ended the run inside the strategy's first one: raise "
                     "the budget or ask fewer candidates per generation)" if budget else ""), file=sys.stderr)  # fmt: skip
            return
        space = run.built.space if run.built is not None else run_space(run.experiment)[0]
        draw_plots(folder, run.experiment, space, folder.inside("plots"))
    except Exception as exc:
        print(f"evonas: could not draw the plots ({type(exc).__name__}: {exc})", file=sys.stderr)


def _default_output(folder: Any, suffix: str) -> Path:
    """Where a reading command writes unless told: ``<run folder's name><suffix>`` in the working directory, or
    next to the run folder when the working directory is inside it (nothing is ever written in a run folder)."""
    root = Path(folder.root)
    here = Path.cwd().resolve()
    inside = here == root or root in here.parents
    return (root.parent if inside else Path()) / f"{root.name}{suffix}"


def cmd_plot(args: argparse.Namespace) -> int:
    # here, not at the top: the drawing modules load matplotlib (see draw_plots)
    from evonas.diagnostics import run_space_here
    from evonas.checks import decimals_text, metric_text
    from evonas.plotting import curve_name, plot_runs
    from evonas.runfolder import RunFolder, RunFolderError

    if len(args.run_dir) > 1 or (args.out and args.out.lower().endswith(".png")):  # runs compared on one plot
        out = args.out or "compare.png"
        if Path(out).is_dir():
            return _fail(f"plot: --out: {out} is a folder; expected a file name such as compare.png")
        from evonas.plotting import is_evonas_png

        if Path(out).exists() and not is_evonas_png(out):  # never replace a file of yours
            return _fail(f"plot: {out}: exists and is not a plot evonas drew; name the comparison with "
                         f"--out {'another ' if args.out else ''}FILE.png")  # fmt: skip
        try:
            data = plot_runs(args.run_dir, out, metric=args.metric, x=args.x, band=args.band, group_by=args.group_by)
        except (FileNotFoundError, ValueError, RunFolderError) as exc:
            return _fail(f"plot: {exc}")
        differ = data["problems"] if len(data["problems"]) > 1 else data["problem_settings"]  # by name, or by settings
        if differ:
            print(f"evonas: plot: these runs search different problems ({'; '.join(differ)}): their curves "
                  "are drawn together but do not compare", file=sys.stderr)  # fmt: skip
        sizes = {name: g["per_generation"] for name, g in data["groups"].items()}
        if args.x == "generations" and max(sizes.values()) > 1.5 * min(sizes.values()):
            print("evonas: plot: a generation is not the same number of evaluations in these runs ("
                  + ", ".join(f"{name} {n:.0f}" for name, n in sizes.items())
                  + "): --x evaluations puts them on one scale", file=sys.stderr)  # fmt: skip
        for name, g in data["groups"].items():
            if g.get("mixed"):  # (runs of different problems are in groups of their own, and said above)
                key = g["mixed"][0].split(":", 1)[0]
                print(f"evonas: plot: the {name} runs differ in settings ({'; '.join(g['mixed'])}): their {g['center_name']} "
                      f"mixes them (--group-by {key} draws a curve per value)", file=sys.stderr)  # fmt: skip
            cut = f" (the shortest of its runs; the longest goes to {g['longest']})" if g["longest"] > g["x"][-1] else ""
            value = g["center"][-1]
            # a count in full, a percentage as one (94.22), a fraction with 4 decimals (0.9833)
            shown = metric_text(value) if float(value).is_integer() or abs(value) >= 10 else decimals_text(value)
            where = f"after {g['x'][-1]} evaluations" if args.x == "evaluations" else f"at generation {g['x'][-1]}"
            print(f"{name:<12} {len(g['runs'])} run(s): {g['center_name']} {curve_name(data, '')} {shown} {where}{cut}")
        print(data["out"])
        return 0
    try:
        folder = RunFolder(args.run_dir[0])
        out_dir = Path(args.out) if args.out else _default_output(folder, "-plots")
        if out_dir.exists() and not out_dir.is_dir():
            return _fail(f"plot: {out_dir}: exists and is not a folder; name the folder for the plots with --out DIR")
        from evonas.plotting import is_evonas_png
        from evonas.runfolder import RUN_DIR_FILES

        theirs = [n for n in sorted(RUN_DIR_FILES["plots"]) if (out_dir / n).exists() and not is_evonas_png(out_dir / n)]
        if theirs:  # a plot's name in that folder holds a file evonas did not draw: never replaced
            return _fail(f"plot: {out_dir / theirs[0]}: exists and is not a plot evonas drew; name another folder "
                         "with --out DIR")  # fmt: skip
        exp = folder.experiment(plugins=_plugin_files(args.plugins), trust=args.trust)
        space, problem, _ = run_space_here(folder.config(), exp)
        files = draw_plots(folder, exp, space, out_dir)
    except (FileNotFoundError, ValueError, RunFolderError) as exc:
        return _fail(f"plot: {exc}")
    if space is None:  # drawn, but without what needs the space: say so, and how to have it
        print(f"evonas: plot: diagnostics.png leaves out the gene entropies: the run's space is not built here "
              f"({problem})", file=sys.stderr)  # fmt: skip
    for f in files:
        print(f)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from evonas.config import ConfigError
    from evonas.report import is_report, write_report
    from evonas.runfolder import RunFolder, RunFolderError

    try:
        out = Path(args.out) if args.out else _default_output(RunFolder(args.run_dir), "-report.html")
        if out.exists() and not out.is_dir() and not is_report(out):  # never replace a file of yours
            return _fail(f"report: {out}: exists and is not a report evonas wrote; name the page with --out "
                         f"{'another ' if args.out else ''}FILE.html")  # fmt: skip
        path = write_report(args.run_dir, out, plugins=_plugin_files(args.plugins), trust=args.trust, draw=report_plots)
    except (FileNotFoundError, ConfigError, RunFolderError) as exc:
        return _fail(f"report: {exc}")
    print(path)
    return 0


def cmd_best(args: argparse.Namespace) -> int:
    import json

    from evonas.checks import json_safe
    from evonas.choose import best_where, format_choice, format_front, front_where
    from evonas.constraints import parse_conditions

    try:
        conditions = parse_conditions(args.where) if args.where else ()
    except ValueError as exc:
        return _fail(f"best: --where: {exc}")
    show = [m.strip() for m in args.objectives.split(",") if m.strip()] if args.objectives else []
    if args.objectives is not None and not show:
        return _fail(f"best: --objectives: expected comma-separated metric names, got '{args.objectives}'")
    by = None
    if args.by is not None:
        if args.front:
            return _fail("best: --by picks one evaluation and --front lists the front: give one of them")
        metric, _, direction = args.by.strip().partition(":")
        if not metric or direction not in ("", "min", "max"):
            return _fail(f"best: --by: expected METRIC, METRIC:min or METRIC:max, got '{args.by}'")
        by = (metric, direction)
    try:
        choice = front_where(args.run_dir, conditions) if args.front else best_where(args.run_dir, conditions, by=by)
    except ValueError as exc:
        return _fail(f"best: {exc}")
    unknown = [m for m in show if m not in choice["reported"]]
    if unknown and choice["reported"]:
        return _fail(f"best: --objectives: no evaluation reports the metric '{unknown[0]}'; they report: "
                     f"{', '.join(choice['reported'])}")  # fmt: skip
    found = choice["front"] if args.front else choice["record"] is not None
    tested = sorted({m for m in [*(c.metric for c in conditions), *([by[0]] if by else [])] if m.startswith("test_")})
    if tested:  # the test split is what an export reports as held out: a choice made on it is no longer held out
        print(f"evonas: note: choosing by {', '.join(tested)} uses the test split, so its figure for the evaluation "
              "chosen is no longer a held-out estimate", file=sys.stderr)  # fmt: skip
    if args.json:
        print(json.dumps(json_safe({k: v for k, v in choice.items() if k != "config"}), indent=2, allow_nan=False))
    else:
        print(format_front(choice, conditions, show) if args.front else format_choice(choice, conditions, show))
    return 0 if found else 1


def cmd_show(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from evonas.checks import json_safe
    from evonas.choose import find_evaluations, format_evaluation

    try:
        config, records = find_evaluations(args.run_dir, args.which)
    except ValueError as exc:
        return _fail(f"show: {exc}")
    if not records:
        if args.json:  # a script reads a list either way
            print("[]")
        print(f"evonas: show: {args.run_dir}: no evaluation of trial or key '{args.which}'", file=sys.stderr)
        return 1
    keys = list(dict.fromkeys(r.key for r in records))
    if len(keys) > 1:  # a key prefix several genomes share: each is shown, and said to be one of several
        print(f"evonas: show: '{args.which}' is the start of {len(keys)} genomes' keys ({', '.join(keys)}); each is "
              "shown below (give more digits for one)", file=sys.stderr)  # fmt: skip
    if args.json:
        print(json.dumps(json_safe([dataclasses.asdict(r) for r in records]), indent=2, allow_nan=False))
    else:
        print("\n\n".join(format_evaluation(config, r) for r in records))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from evonas.listing import KINDS, format_listing

    if args.plugins:
        from evonas.engine.build import import_plugin

        sys.path.insert(0, str(Path.cwd()))
        for name in args.plugins:  # the same import as an experiment's plugins: module names or .py files
            try:
                import_plugin(name)
            except Exception as exc:
                from evonas.operators.base import describe_error  # the line of the plug-in that raised

                return _fail(f"--plugins: cannot import module '{name}' ({describe_error(exc, 300)})")
    if args.experiment:
        from evonas.config import ConfigError, load_experiment
        from evonas.engine.build import import_plugins

        try:
            import_plugins(load_experiment(args.experiment))
        except ConfigError as exc:
            return _fail(str(exc))
    if args.name and args.pattern != "*":
        return _fail(f"list: give the name either as NAME ('{args.name}') or as --pattern ('{args.pattern}'), not both")
    pattern = args.name or args.pattern
    kinds = [args.kind] if args.kind else list(KINDS)
    if pattern != "*":
        from evonas.listing import registries

        regs = registries()
        if not any(regs[kind].list(pattern) for kind in kinds):  # the registry's own matching, as the listing's
            where = " or ".join(kinds) if args.kind else "any kind"
            known = ", ".join(regs[args.kind].list()) if args.kind else "evonas list shows them all"
            return _fail(f"list: no {where} named '{pattern}' (registered: {known})")
    print(format_listing(kinds, pattern, params=args.params))
    return 0


#: the file formats matplotlib's savefig writes (its Agg, PDF, PS, SVG and PGF backends)
PLOT_FORMATS = frozenset({"png", "pdf", "svg", "svgz", "eps", "ps", "jpg", "jpeg", "tif", "tiff", "webp", "pgf", "raw", "rgba"})


def cmd_benchmark(args: argparse.Namespace) -> int:
    from evonas.benchmark import (
        BenchmarkError, BenchmarkInterrupted, BenchmarkRunFailed, format_report, run_benchmark, to_json, write_json,
    )  # fmt: skip
    from evonas.runfolder import RunFolderError

    names = [n.strip() for n in args.strategies.split(",")] if args.strategies is not None else None
    if names is not None and (not names or not all(names)):
        return _fail(f"benchmark: --strategies: expected comma-separated strategy names, got '{args.strategies}'")
    from evonas.benchmark import is_benchmark_json

    if args.plot and not Path(args.plot).suffix:  # matplotlib would write FILE.png: the name said is the one written
        args.plot = f"{args.plot}.png"
    if args.plot and Path(args.plot).suffix.lower().lstrip(".") not in PLOT_FORMATS:
        return _fail(f"benchmark: --plot: {args.plot}: not an image format matplotlib writes (.png, .pdf, .svg, ...)")
    if args.json and args.plot and Path(args.json).resolve() == Path(args.plot).resolve():
        return _fail(f"benchmark: --json and --plot name one file ({args.json}); give each its own")
    for option, out in (("--json", args.json), ("--plot", args.plot)):
        if not out:
            continue
        inside = next((p for p in Path(out).resolve().parents[:2] if (p / "journal.sqlite").is_file()), None)
        if inside is not None:  # a run's own files (plots/fitness.png) are the run's, not a benchmark's
            return _fail(f"benchmark: {option}: {out} is inside the run folder {inside}; name a file outside it")
        if Path(out).is_dir():
            return _fail(f"benchmark: {option}: {out} is a folder; expected a file name")
        if Path(out).exists():  # checked before the benchmark runs: a file of yours is never replaced
            if option == "--json" and not is_benchmark_json(out):
                return _fail(f"benchmark: --json: {out} exists and is not results evonas benchmark wrote; name another file")
            if option == "--plot":
                from evonas.plotting import is_evonas_png  # (matplotlib: only when a plot is asked for)

                if not is_evonas_png(out):
                    return _fail(f"benchmark: --plot: {out} exists and is not a plot evonas drew; name another file")
    from evonas.config import ConfigError, safe_load_yaml  # YAML with the limits an experiment file has

    strategy_params: dict[str, dict[str, Any]] = {}
    for item in args.strategy_params:
        where, eq, text = item.partition("=")
        name, dot, param = where.strip().partition(".")
        if not (eq and dot and name and param.isidentifier()):
            return _fail(f"benchmark: --set: expected STRATEGY.PARAM=VALUE such as aging.sample_size=10, got '{item}'")
        try:
            strategy_params.setdefault(name, {})[param] = safe_load_yaml(text, None, key=f"--set {where}")
        except ConfigError:
            return _fail(f"benchmark: --set {where}: cannot read the value '{text}'")
    # SIGTERM and SIGHUP stop it as Ctrl-C does: the pool's workers are stopped first (no broken pipes in them)
    with _stopping_on(signal.SIGTERM, signal.SIGHUP):
        try:
            result = run_benchmark(
                names, runs=args.runs, budget=args.budget, table=args.table, noise=args.noise, seed=args.seed,
                workers=args.workers, progress=_bar(args), plugins=args.plugins or (), target=args.target,
                strategy_params=strategy_params,
            )  # fmt: skip
        except BenchmarkError as exc:
            return _fail(f"benchmark: {exc}")
        except BenchmarkRunFailed as exc:
            print(f"evonas: benchmark: {exc}; the benchmark stopped (its table would leave that search out)",
                  file=sys.stderr)  # fmt: skip
            return 1
        except BenchmarkInterrupted as stop:  # the strategies that finished: reported and written, said as a part
            if stop.partial is None:
                print("interrupted before any strategy finished its runs", file=sys.stderr)
                return EXIT_INTERRUPTED
            result, interrupted = stop.partial, True
            print(f"interrupted: {len(result.strategies)} of {stop.planned} strategies finished their runs; the "
                  f"report{' and files' if args.json or args.plot else ''} below hold those", file=sys.stderr)  # fmt: skip
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        else:
            interrupted = False
    written = []  # the files first: a closed stdout (`| head`) loses none of them
    try:
        if args.json:
            written.append(f"json      {write_json(result, args.json)}")
        if args.plot:
            from evonas.plotting import plot_benchmark  # here: matplotlib only when a plot is asked for

            written.append(f"plot      {plot_benchmark(to_json(result), args.plot)}")
    except (OSError, RunFolderError) as exc:  # RunFolderError: the plot's write failed (save_figure says which file and why)
        print(format_report(result))  # the figures, which are not lost with the files
        print(f"evonas: benchmark: {exc if isinstance(exc, RunFolderError) else f'cannot write the results ({exc})'}",
              file=sys.stderr)  # fmt: skip
        return 1
    print("\n".join([format_report(result), *written]))
    return EXIT_INTERRUPTED if interrupted else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    import json

    from evonas.doctor import collect, format_report

    report = collect(timeout=args.timeout)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return int(report["exit_code"])
