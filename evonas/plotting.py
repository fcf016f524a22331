"""Plots of run folders and benchmark results. Reads only files and plain data; never imports torch.

``plot_run(RUN_DIR)`` draws ``plots/fitness.png``: for each objective, the best,
mean and worst of the population per generation, the min-max spread shaded,
and the best so far. With several objectives it also draws the Pareto front, the fronts
over generations and the hypervolume (:mod:`evonas.plotting_pareto`).

Every plot is meant to be read at a glance: generations (and evaluations) are counted in whole numbers on
their axes (:func:`integer_axis`), every axis says what it shows, and curves that share a plot differ in
colour, line style and marker both (:func:`line_styles`), so eight operators stay apart in print and in grey.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from evonas.runfolder import RunFolder, RunFolderError

__all__ = ["plot_run", "plot_all", "plot_fitness", "plot_benchmark", "integer_axis", "line_styles", "plural"]

#: markers and dash patterns of :func:`line_styles`, in the order they are handed out
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
_DASHES = ("-", "--", "-.", ":")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 genome"``, ``"3 genomes"`` (``many``: the plural where it is not ``word + "s"``)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def integer_axis(ax: Any, values: Sequence[float], which: str = "x") -> None:
    """Ticks at whole numbers only on ``ax``'s ``which`` axis (generations, evaluations), and limits that show
    ``values`` with half a step (or 4% of the range) to spare: one generation gets one tick, not 0.96 ... 1.04."""
    from matplotlib.ticker import MaxNLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    finite = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if finite:
        lo, hi = min(finite), max(finite)
        margin = max(0.5, 0.04 * (hi - lo))
        (ax.set_xlim if which == "x" else ax.set_ylim)(lo - margin, hi + margin)


def line_styles(n: int) -> list[dict[str, Any]]:
    """``n`` keyword sets for ``ax.plot`` (``color``, ``linestyle``, ``marker``): up to ten curves differ pairwise
    in colour and in marker (twelve markers), and neighbours in line style too (four dash patterns), so eight
    operators are told apart even where their lines lie on top of each other or the page is grey."""
    import matplotlib

    colors = matplotlib.colormaps["tab10" if n <= 10 else "tab20"].colors
    return [
        {"color": colors[i % len(colors)], "marker": _MARKERS[i % len(_MARKERS)], "linestyle": _DASHES[i % len(_DASHES)]}
        for i in range(n)
    ]


def _objectives(exp: Any) -> list[dict[str, str]]:
    """The run's objectives as the plots take them: ``[{"metric": ..., "direction": ...}, ...]``."""
    return [{"metric": o.metric, "direction": o.direction} for o in exp.objectives]


def _number(v: Any) -> float:
    """``v`` as a float; anything else (missing, text, damaged) is NaN, a gap in the line."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return float("nan")
    try:
        return float(v)
    except OverflowError:
        return float("nan")


def _series(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [_number(r.get(key)) for r in rows]


def plot_fitness(rows: list[dict[str, Any]], objectives: list[dict[str, str]], out: Path, title: str = "") -> Path:
    """Draw fitness over generations to ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(objectives)
    fig, axes = plt.subplots(n, 1, figsize=(7, 3.6 * n), squeeze=False)
    gens = [_number(r.get("gen")) for r in rows]
    for ax, obj in zip(axes[:, 0], objectives):
        m, maximise = obj["metric"], obj.get("direction", "max") == "max"
        hi, lo, avg = _series(rows, f"{m}_max"), _series(rows, f"{m}_min"), _series(rows, f"{m}_avg")
        best, worst = (hi, lo) if maximise else (lo, hi)
        ax.fill_between(gens, lo, hi, alpha=0.2, color="tab:blue", label="population spread")
        so_far = _series(rows, f"{m}_best_so_far")
        if any(math.isfinite(v) for v in so_far):  # wide and pale, under the population's best it often equals
            ax.plot(gens, so_far, "-", color="tab:green", lw=4, alpha=0.45, label="best so far", zorder=2)
        ax.plot(gens, best, "-o", color="tab:blue", ms=3, label="best of the population", zorder=3)
        ax.plot(gens, avg, "--", color="tab:orange", label="mean", zorder=3)
        ax.plot(gens, worst, ":", color="tab:gray", label="worst", zorder=3)
        ax.set_xlabel("generation")
        ax.set_ylabel(f"{m} ({'higher' if maximise else 'lower'} is better)")
        integer_axis(ax, gens)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if maximise else "upper right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, out)


def save_figure(fig: Any, out: Path) -> Path:
    """Save ``fig`` to ``out`` (its folder made) and close it; a write that fails is one :class:`RunFolderError` line."""
    import matplotlib.pyplot as plt

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    except OSError as exc:
        raise RunFolderError(f"{out}: cannot write the plot ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
    return out


def plot_run(run_dir: str | Path) -> list[Path]:
    """(Re)draw the plots of a run folder; returns the files written.

    Raises ``FileNotFoundError`` (no logbook), ``ValueError`` (an empty or damaged one) or ``RunFolderError``
    (a folder that cannot be read, or whose ``plots`` leads out of it), each one line.
    """
    return _plot_run(RunFolder(run_dir, need_journal=False))


def plot_all(run_dir: str | Path, *, plugins: Sequence[str] | None = None, trust: bool = False) -> list[Path]:
    """``plot_run`` and then ``plots/diagnostics.png`` (:func:`evonas.diagnostics.plot_diagnostics`), reading the
    folder once (a warning about it is printed once); ``plugins`` / ``trust`` as for ``plot_diagnostics``."""
    from evonas.diagnostics import _plot_diagnostics, _space

    folder = RunFolder(run_dir)
    files = _plot_run(folder)
    exp = folder.experiment(plugins=plugins, trust=trust)
    return [*files, _plot_diagnostics(folder, exp, _space(exp))]


def _plot_run(folder: RunFolder) -> list[Path]:
    from evonas.engine.outputs import read_logbook

    run_dir = folder.path
    if not folder.inside("logbook.json").exists():
        raise FileNotFoundError(f"{run_dir}: not a finished run folder (no logbook.json)")
    rows = [r for r in read_logbook(run_dir) if isinstance(r, dict)]
    if not rows:
        raise ValueError(f"{run_dir}: the logbook is empty or unreadable (no generation to draw)")
    exp = folder.experiment()  # names and objectives only: no plug-in is imported
    title = f"{exp.name}: {exp.strategy.name} on {exp.space.name}"
    objectives = _objectives(exp)
    folder.inside("plots")
    files = [plot_fitness(rows, objectives, folder.inside("plots/fitness.png"), title=title)]
    if len(objectives) > 1 and folder.journal_path.exists():
        from evonas.plotting_pareto import plot_pareto

        files += plot_pareto(run_dir, objectives, rows, title=title)
    return files


def plot_benchmark(data: dict[str, Any], out: str | Path) -> Path:
    """Anytime curves from :func:`to_json` data: mean best-so-far test accuracy per evaluation, 95% band.

    The band is the 95% confidence interval of the mean over runs; the optimum and the published
    figures are reference lines. Example: ``plot_benchmark(json.load(open("nb201.json")), "nb201.png")``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    budget = int(data["budget"])
    xs = np.arange(1, budget + 1)
    fig, ax = plt.subplots(figsize=(8, 5))
    colors: dict[str, str] = {}
    floor = data["optimum"]
    for i, (name, s) in enumerate(data["strategies"].items()):
        curves = np.array([_pad(r["curve"], budget) for r in s["per_run"]], dtype=float)
        mean = np.nanmean(curves, axis=0)
        half = 1.96 * np.nanstd(curves, axis=0, ddof=1) / np.sqrt(len(curves)) if len(curves) > 1 else 0 * mean
        colors[name] = color = f"C{i}"
        ax.plot(xs, mean, color=color, lw=1.6, label=f"{name}: {s['mean']:.2f} ± {s['std']:.2f} ({s['runs']} runs)")
        ax.fill_between(xs, mean - half, mean + half, color=color, alpha=0.2, lw=0)
        floor = min(floor, float(np.nanmin(mean[max(0, budget // 10 - 1) :])))
    ax.axhline(data["optimum"], color="black", ls="--", lw=1, label=f"optimum {data['optimum']:.2f}")
    styles = [":", "-.", (0, (1, 3)), (0, (6, 3))]
    for i, (key, pub) in enumerate(data["published"].items()):
        label = f"{pub['method']}, published: {pub['mean']:.2f}"
        ax.axhline(pub["mean"], color=colors.get(key, "gray"), ls=styles[i % len(styles)], lw=1.2, label=label)
    ax.set_ylim(floor - 0.4, data["optimum"] + 0.2)
    integer_axis(ax, [1, budget])
    ax.set_xlim(1, budget)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("test accuracy (%) of the best architecture so far")
    ax.set_title(f"NAS-Bench-201 CIFAR-10, noise {data['noise']:g}: mean and 95% confidence band")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _pad(curve: list[float | None], n: int) -> list[float]:
    """``curve`` as floats, cut or carried forward to ``n`` points (a search that stopped keeps its best)."""
    vals = [math.nan if v is None else float(v) for v in curve[:n]]
    return vals + [vals[-1] if vals else math.nan] * (n - len(vals))
