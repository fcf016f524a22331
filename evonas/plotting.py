"""The drawings: plots of run folders, comparisons of runs and benchmark results; only the command line calls them.

The numbers come from the modules that compute them (:mod:`evonas.diagnostics`, :mod:`evonas.compare`, the run's
logbook); these functions draw them into the files they are given. ``evonas run`` draws ``RUN_DIR/plots/`` at the
end of a run, ``evonas plot`` into a folder of its own (see :mod:`evonas.commands`):

- ``fitness.png`` (:func:`plot_logbook`): for each objective, the best, mean and worst of the population per
  generation, the min-max spread shaded, and the best so far;
- ``diagnostics.png`` (:func:`plot_diagnostics`): operator success, diversity, genealogy of the best;
- with several objectives, the Pareto front, the fronts over generations and the hypervolume
  (:mod:`evonas.plotting_pareto`).

Every plot is meant to be read at a glance: generations (and evaluations) are counted in whole numbers on
their axes (:func:`integer_axis`), every axis says what it shows, and curves that share a plot differ in
colour, line style and marker both (:func:`line_styles`), so eight operators stay apart in print and in grey.
Never imports torch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from evonas.compare import compare_runs
from evonas.diagnostics import diagnose
from evonas.engine.outputs import read_logbook
from evonas.runfolder import RunFolder, RunFolderError

__all__ = [
    "plot_logbook", "plot_fitness", "plot_diagnostics", "draw_diagnostics", "diagnostics_figure", "plot_runs",
    "plot_benchmark", "integer_axis", "line_styles", "plural", "save_figure", "run_title", "objectives_of",
    "logbook_rows", "genealogy_title", "steady_state",
]  # fmt: skip

#: markers and dash patterns of :func:`line_styles`, in the order they are handed out
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
_DASHES = ("-", "--", "-.", ":")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 genome"``, ``"3 genomes"`` (``many``: the plural where it is not ``word + "s"``)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def integer_axis(ax: Any, values: Sequence[float], which: str = "x") -> None:
    """Ticks at whole numbers only on ``ax``'s ``which`` axis (generations, evaluations), and limits that show
    ``values`` with half a step (or 4% of the range) to spare: one generation gets one tick, not 0.96 ... 1.04."""
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
    colors = getattr(matplotlib.colormaps["tab10" if n <= 10 else "tab20"], "colors")  # a ListedColormap
    return [
        {"color": colors[i % len(colors)], "marker": _MARKERS[i % len(_MARKERS)], "linestyle": _DASHES[i % len(_DASHES)]}
        for i in range(n)
    ]


#: the PNG text chunk evonas signs its plots with (:func:`is_evonas_png`)
_SIGNATURE = b"Software\x00evonas"


def is_evonas_png(path: str | Path) -> bool:
    """Whether ``path`` is a PNG evonas drew (signed ``Software: evonas`` by :func:`save_figure`), which a new plot
    may replace unasked."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return head.startswith(b"\x89PNG") and _SIGNATURE in head


def save_figure(fig: Any, out: Path) -> Path:
    """Save ``fig`` to ``out`` (its folder made) and close it, a PNG signed as evonas's (:func:`is_evonas_png`); a
    write that fails is one :class:`RunFolderError` line."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        signed = {"metadata": {"Software": "evonas"}} if out.suffix.lower() == ".png" else {}
        fig.savefig(out, dpi=110, **signed)
    except OSError as exc:
        raise RunFolderError(f"{out}: cannot write the plot ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
    return out


# -- one run ---------------------------------------------------------------------------------------------------


def run_title(exp: Any) -> str:
    """The title of a run's plots: ``"quickstart: ga on chain"``."""
    return f"{exp.name}: {exp.strategy.name} on {exp.space.name}"


def objectives_of(exp: Any) -> list[dict[str, str]]:
    """The run's objectives as the plots take them: ``[{"metric": ..., "direction": ...}, ...]``."""
    return [{"metric": o.metric, "direction": o.direction} for o in exp.objectives]


def logbook_rows(folder: RunFolder) -> list[dict[str, Any]]:
    """The rows of the run's ``logbook.json``. Raises ``FileNotFoundError`` (no logbook), ``ValueError`` (an empty
    or damaged one) or ``RunFolderError`` (one linked out of the folder), each one line."""
    run_dir = folder.path
    if not folder.inside("logbook.json").exists():
        from evonas.runfolder import lock_held

        if lock_held(run_dir):  # a run still going writes its logbook as it ends
            raise FileNotFoundError(f"{run_dir}: the run is still going: its logbook.json and plots are written when it "
                                    f"ends; `evonas status {run_dir}` shows its progress, `evonas report` and `best` "
                                    "read it as it is")  # fmt: skip
        raise FileNotFoundError(f"{run_dir}: no logbook.json yet: the run was stopped before it wrote one (killed, "
                                f"or copied while it ran); `evonas resume {run_dir}` writes it (and the plots), and "
                                "`evonas report`, `status` and `best` read the run as it is")  # fmt: skip
    rows = [r for r in read_logbook(run_dir) if isinstance(r, dict)]
    if not rows:
        raise ValueError(f"{run_dir}: the logbook is empty or unreadable (no generation to draw)")
    return rows


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


def steady_state(exp: Any) -> bool:
    """Whether the run's strategy is steady-state (its logbook rows are blocks of evaluations, not generations);
    ``False`` when it cannot be told without importing a plug-in."""
    from evonas.strategies import STRATEGIES

    try:
        return STRATEGIES.get(exp.strategy.name).generational is False
    except Exception:
        return False


def plot_fitness(rows: list[dict[str, Any]], objectives: list[dict[str, str]], out: Path, title: str = "",
                 steady: bool = False) -> Path:  # fmt: skip
    """Draw fitness over generations (logbook ``rows``) to ``out`` (PNG); a ``steady``-state run's rows over the
    evaluations they end at (its rows are blocks of evaluations, not generations)."""
    n = len(objectives)
    fig, axes = plt.subplots(n, 1, figsize=(7, 3.6 * n), squeeze=False)
    x = "evals" if steady and all(isinstance(r.get("evals"), int) for r in rows) else "gen"
    gens = [_number(r.get(x)) for r in rows]
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
        ax.set_xlabel("evaluations (steady-state: the population after each block)" if x == "evals" else "generation")
        ax.set_ylabel(f"{m} ({'higher' if maximise else 'lower'} is better)")
        integer_axis(ax, gens)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if maximise else "upper right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, out)


def plot_logbook(run_dir: str | Path, out: str | Path) -> Path:
    """Draw the run's ``fitness.png`` (from its logbook) to ``out``; names and objectives only, no plug-in imported.

    Raises as :func:`logbook_rows` does, or ``RunFolderError`` for a folder that cannot be read.
    """
    folder = RunFolder(run_dir, need_journal=False)
    rows = logbook_rows(folder)
    exp = folder.experiment()
    return plot_fitness(rows, objectives_of(exp), Path(out), title=run_title(exp), steady=steady_state(exp))


def plot_diagnostics(
    run_dir: str | Path, out: str | Path, *, plugins: Sequence[str] | None = None, trust: bool = False
) -> Path:
    """Draw :func:`~evonas.diagnostics.diagnose`'s numbers of a run (operator success, diversity, genealogy of the
    best) to ``out``; ``plugins`` / ``trust`` as for ``diagnose``."""
    return draw_diagnostics(diagnose(run_dir, plugins=plugins, trust=trust), Path(out))


def draw_diagnostics(d: dict[str, Any], out: Path) -> Path:
    """Draw the numbers of :func:`~evonas.diagnostics.diagnose` to ``out`` (``diagnostics.png``)."""
    return save_figure(diagnostics_figure(d), out)


def genealogy_title(n: int) -> str:
    """The genealogy panel's title for a line of ``n`` genomes (the best and its ancestors)."""
    if n == 0:
        return "genealogy of the best genome: no successful evaluation"
    if n == 1:
        return "genealogy of the best genome (red): an initial sample, no ancestors"
    return f"genealogy of the best genome (red) and its {plural(n - 1, 'ancestor')}"


def _operator_label(name: str, op: dict[str, Any]) -> str:
    if op["children"]:
        label = f"{name}: {op['better']} of {plural(op['children'], 'child', 'children')} better ({op['rate']:.0%})"
    else:
        label = f"{name}: no child"
    faults = op.get("faults")
    if faults:  # from the journal's per-operator fault counts (see evonas.diagnostics._operator_stats)
        label += f"; failed {faults['failures']} of {plural(faults['calls'], 'call')}"
    return label


def diagnostics_figure(d: dict[str, Any]) -> Any:
    """The three panels of ``plots/diagnostics.png`` for :func:`~evonas.diagnostics.diagnose`'s numbers, on one
    generation axis."""
    gens_all = sorted({*d["diversity"], *(g for op in d["operators"].values() for g in op["per_generation"]),
                       *(n["generation"] for n in d["genealogy"])})  # fmt: skip
    fig, axes = plt.subplots(3, 1, figsize=(10, 11), layout="constrained")
    legend = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "fontsize": 7, "frameon": False, "borderaxespad": 0}

    # operator success: one style per operator; points of one generation side by side, not on top of each other
    ax = axes[0]
    names = list(d["operators"])
    styles = line_styles(len(names))
    width = 0.24 if len(names) > 1 else 0.0
    for i, (name, style) in enumerate(zip(names, styles)):
        op = d["operators"][name]
        gens = list(op["per_generation"])
        shift = (i / (len(names) - 1) - 0.5) * width if len(names) > 1 else 0.0
        ax.plot([g + shift for g in gens], [op["per_generation"][g]["rate"] for g in gens], ms=5, lw=1.3,
                alpha=0.9, label=_operator_label(name, op), **style)  # fmt: skip
    ax.set_title("operator success per generation")
    ax.set_xlabel("generation")
    ax.set_ylabel("share of children better\nthan their parent")
    ax.set_ylim(-0.04, 1.04)
    if names:
        ax.legend(**legend)
    else:
        ax.text(0.5, 0.5, "no child of a mutation or crossover in this run", ha="center", va="center",
                transform=ax.transAxes, color="gray")  # fmt: skip

    # diversity: distinct genomes (left axis) and mean gene entropy (right axis), one legend
    ax = axes[1]
    gens = list(d["diversity"])
    handles = ax.plot(gens, [d["diversity"][g]["unique_share"] for g in gens], "-o", ms=4, color="tab:blue",
                      label="distinct genomes / evaluated (left)")  # fmt: skip
    if any("mean_entropy" in d["diversity"][g] for g in gens):
        ax2 = ax.twinx()
        handles += ax2.plot(gens, [d["diversity"][g].get("mean_entropy", math.nan) for g in gens], "--s", ms=4,
                            color="tab:orange", label="mean gene entropy, bits (right)")  # fmt: skip
        ax2.set_ylabel("mean gene entropy (bits)")
    ax.set_ylim(0, 1.05)
    ax.set_title("population diversity per generation")
    ax.set_xlabel("generation")
    ax.set_ylabel("share of distinct genomes")
    right = len(handles) > 1  # the right axis's tick labels and label come first
    ax.legend(handles=handles, **{**legend, "bbox_to_anchor": (1.14, 1.0) if right else legend["bbox_to_anchor"]})

    # genealogy: parent -> child edges, the ancestors in blue, the best in red
    ax = axes[2]
    nodes = {n["key"]: n for n in d["genealogy"]}
    for n in d["genealogy"]:
        for p in n["parents"]:
            if p in nodes and nodes[p]["fitness"] is not None and n["fitness"] is not None:
                ax.plot([nodes[p]["generation"], n["generation"]], [nodes[p]["fitness"], n["fitness"]], "-", color="gray", lw=0.8)
    pts = [n for n in d["genealogy"] if n["fitness"] is not None]
    ax.scatter([n["generation"] for n in pts], [n["fitness"] for n in pts], s=22, zorder=3,
               c=["tab:red" if n["key"] == d["best"] else "tab:blue" for n in pts])  # fmt: skip
    ax.set_title(genealogy_title(len(d["genealogy"])))
    ax.set_xlabel("generation")
    ax.set_ylabel(f"{d['objective']['metric']} ({'higher' if d['objective']['direction'] == 'max' else 'lower'} is better)")
    if pts:
        marks = [Line2D([], [], ls="", marker="o", color="tab:red", label="the best genome")]
        if len(pts) > 1:
            marks += [Line2D([], [], ls="", marker="o", color="tab:blue", label="an ancestor"),
                      Line2D([], [], color="gray", lw=0.8, label="parent to child")]  # fmt: skip
        ax.legend(handles=marks, **legend)
    for ax in axes:
        integer_axis(ax, gens_all)
        ax.grid(alpha=0.3)
    return fig


# -- several runs -----------------------------------------------------------------------------------------------


def curve_name(data: dict[str, Any], when: str = " so far") -> str:
    """What a comparison's curves follow: ``best val_acc so far``, or for a metric that is no objective
    ``test_acc of the best val_acc so far``."""
    return f"{data['metric']} of the best {data['of']}{when}" if data.get("of") else f"best {data['metric']}{when}"


def plot_runs(
    run_dirs: Sequence[str | Path], out: str | Path, *, metric: str | None = None, x: str = "evaluations",
    band: str = "iqr", group_by: str = "strategy",
) -> dict[str, Any]:
    """Overlay ``run_dirs`` in one PNG (:func:`~evonas.compare.compare_runs`'s groups: a median best-so-far curve
    and a band per strategy, or per ``group_by``); returns the plotted data, with ``"out"``."""
    data = compare_runs(run_dirs, metric=metric, x=x, band=band, group_by=group_by)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    # a line style each: runs of one seed share their first samples, so their curves lie on each other at first
    for i, (name, g) in enumerate(data["groups"].items()):
        style = _DASHES[i % len(_DASHES)]
        if len(g["runs"]) == 1:
            ax.plot(g["x"], g["median"], style, label=f"{name} ({g['runs'][0]})")
            continue
        (line,) = ax.plot(g["x"], g["center"], style, label=f"{name}: {g['center_name']} of {len(g['runs'])} runs")
        spread = "interquartile range" if band == "iqr" else "95% confidence interval of the mean"
        ax.fill_between(g["x"], g["low"], g["high"], alpha=0.2, color=line.get_color(), label=f"{name}: {spread}")
    metric = data["metric"]
    integer_axis(ax, [v for g in data["groups"].values() for v in g["x"]])
    ax.set_xlabel(x)
    followed = curve_name(data)
    better = f" ({'higher' if data['direction'] == 'max' else 'lower'} is better)"
    ax.set_ylabel(followed + better if len(followed) < 40 else followed)
    ax.set_title(f"{followed}: {plural(data['runs'], 'run')} in {plural(len(data['groups']), 'group')} by {group_by}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = save_figure(fig, Path(out))
    return {"metric": metric, "of": data["of"], "x": x, "band": band, "group_by": group_by, "groups": data["groups"],
            "problems": data["problems"], "problem_settings": data["problem_settings"], "out": str(out)}


# -- benchmarks -------------------------------------------------------------------------------------------------


def plot_benchmark(data: dict[str, Any], out: str | Path) -> Path:
    """Anytime curves from :func:`to_json` data: mean best-so-far test accuracy per evaluation, 95% band.

    The band is the 95% confidence interval of the mean over runs; the optimum and the published
    figures are reference lines. Example: ``plot_benchmark(json.load(open("nb201.json")), "nb201.png")``.
    """
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
        given = data.get("overrides", {}).get(name)  # --set: not the strategy's defaults
        shown = f"{name} ({', '.join(f'{k}={v}' for k, v in given.items())})" if given else name
        ax.plot(xs, mean, color=color, lw=1.6, label=f"{shown}: {s['mean']:.2f} ± {s['std']:.2f} ({s['runs']} runs)")
        ax.fill_between(xs, mean - half, mean + half, color=color, alpha=0.2, lw=0)
        floor = min(floor, float(np.nanmin(mean[max(0, budget // 10 - 1) :])))
    ax.axhline(data["optimum"], color="black", ls="--", lw=1, label=f"optimum {data['optimum']:.2f}")
    if data.get("target") is not None and data["target"] != data["optimum"]:
        ax.axhline(data["target"], color="gray", ls="-", lw=0.6, label=f"target {data['target']:g}")
        floor = min(floor, float(data["target"]))
    styles = [":", "-.", (0, (1, 3)), (0, (6, 3))]
    for i, (key, pub) in enumerate(data["published"].items()):
        label = f"{pub['method']}, published: {pub['mean']:.2f}"
        ax.axhline(pub["mean"], color=colors.get(key, "gray"), ls=styles[i % len(styles)], lw=1.2, label=label)
    ax.set_ylim(floor - 0.4, data["optimum"] + 0.2)
    integer_axis(ax, [1, budget])
    ax.set_xlim(1, budget)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("test accuracy (%) of the best architecture so far")
    ax.set_title(f"NAS-Bench-201 {data.get('dataset', 'CIFAR-10')}, noise {data['noise']:g}: mean and 95% confidence band")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, Path(out))


def _pad(curve: list[float | None], n: int) -> list[float]:
    """``curve`` as floats, cut or carried forward to ``n`` points (a search that stopped keeps its best)."""
    vals = [math.nan if v is None else float(v) for v in curve[:n]]
    return vals + [vals[-1] if vals else math.nan] * (n - len(vals))
