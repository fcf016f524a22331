"""Several runs on one plot: ``evonas plot RUN_DIR RUN_DIR ... --out FILE.png``.

Runs are grouped by their strategy (several seeds of one strategy make one group). Each group
gets its median best-so-far curve and a band: the interquartile range (``band="iqr"``, default)
or a 95% bootstrap-free normal band of the mean (``band="ci95"``); a group of one run is a plain
line. The x axis is evaluations (``x="evaluations"``, from the journal in arrival order) or
generations (``x="generations"``); the y axis any metric the runs recorded (default: the first
objective), best so far in the objective's direction. Only full evaluations count.

Example::

    plot_runs(["runs/ga-s0", "runs/ga-s1", "runs/aging-s0"], "compare.png", x="evaluations")
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["run_curves", "plot_runs"]


def run_curves(run_dir: str | Path, metric: str | None = None, x: str = "evaluations") -> dict[str, Any]:
    """One run's best-so-far curve of ``metric`` against evaluations or generations.

    Raises ``ValueError`` (one line) for a folder that is not a readable run folder; no plug-in is imported.
    """
    from evonas.runfolder import RunFolder, RunFolderError

    run_dir = Path(run_dir)
    try:
        folder = RunFolder(run_dir)
        exp = folder.experiment()  # names and objectives only
        records = [r for r in folder.records("seq") if r.fidelity is None and r.status != "infeasible"]
    except RunFolderError as exc:
        raise ValueError(str(exc)) from None
    folder.warn_damaged()
    metric = metric or exp.objectives[0].metric
    direction = next((o.direction for o in exp.objectives if o.metric == metric), "max")
    sign = 1.0 if direction == "max" else -1.0
    values = []
    for r in records:
        v = r.metrics.get(metric) if r.status == "ok" else None
        values.append(float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else math.nan)
    if not any(math.isfinite(v) for v in values):
        raise ValueError(f"{run_dir}: no evaluation recorded the metric '{metric}'")
    best, curve = -math.inf, []
    for v in values:
        if math.isfinite(v):
            best = max(best, sign * v)
        curve.append(sign * best if math.isfinite(best) else math.nan)
    if x == "generations":
        per_gen: dict[int, float] = {}
        for r, c in zip(records, curve):
            per_gen[r.generation] = c  # the last value reached within each generation (arrival order)
        xs = sorted(per_gen)
        curve = [per_gen[g] for g in xs]
    elif x == "evaluations":
        xs = list(range(1, len(curve) + 1))
    else:
        raise ValueError(f"x: expected 'evaluations' or 'generations', got {x!r}")
    label = exp.strategy.name
    return {"run": str(run_dir), "group": label, "seed": exp.seed, "metric": metric,
            "direction": direction, "x": xs, "y": curve}  # fmt: skip


def plot_runs(
    run_dirs: Sequence[str | Path], out: str | Path, *, metric: str | None = None, x: str = "evaluations",
    band: str = "iqr",
) -> dict[str, Any]:
    """Overlay ``run_dirs`` in one PNG; returns the plotted data per group (median, band, runs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if band not in ("iqr", "ci95"):
        raise ValueError(f"band: expected 'iqr' or 'ci95', got {band!r}")
    curves = [run_curves(d, metric, x) for d in run_dirs]
    metric = curves[0]["metric"]
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in curves:
        groups[c["group"]].append(c)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    data: dict[str, Any] = {}
    for name, members in groups.items():
        n = min(len(c["y"]) for c in members)
        xs = members[0]["x"][:n]
        ys = np.array([c["y"][:n] for c in members], dtype=float)
        median = np.nanmedian(ys, axis=0)
        if len(members) == 1:
            ax.plot(xs, median, "-", label=f"{name} ({members[0]['run']})")
            low = high = median
        else:
            if band == "iqr":
                low, high = np.nanpercentile(ys, 25, axis=0), np.nanpercentile(ys, 75, axis=0)
            else:
                mean, sem = np.nanmean(ys, axis=0), np.nanstd(ys, axis=0, ddof=1) / math.sqrt(len(members))
                low, high = mean - 1.96 * sem, mean + 1.96 * sem
            (line,) = ax.plot(xs, median, "-", label=f"{name}: median of {len(members)} runs")
            ax.fill_between(xs, low, high, alpha=0.2, color=line.get_color(),
                            label=f"{name}: {'interquartile range' if band == 'iqr' else '95% band of the mean'}")  # fmt: skip
        data[name] = {"runs": [c["run"] for c in members], "x": list(xs), "median": median.tolist(),
                      "low": np.asarray(low).tolist(), "high": np.asarray(high).tolist()}  # fmt: skip
    from evonas.plotting import integer_axis

    integer_axis(ax, [v for d in data.values() for v in d["x"]])
    ax.set_xlabel(x)
    ax.set_ylabel(f"best {metric} so far ({'higher' if curves[0]['direction'] == 'max' else 'lower'} is better)")
    runs = len(curves)
    ax.set_title(f"best {metric} so far: {runs} run{'s' if runs != 1 else ''} in {len(groups)} "
                 f"group{'s' if len(groups) != 1 else ''} by strategy")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return {"metric": metric, "x": x, "band": band, "groups": data, "out": str(out)}
