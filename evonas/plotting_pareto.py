"""Plots of multi-objective runs: the final Pareto front, the fronts over generations, the hypervolume.

Read from the run folder only (journal, read-only; the logbook rows the caller passes), drawn into the folder the
caller names; never imports torch. With more than two objectives the fronts are drawn over the first two (the
front itself is computed over all of them).

Example::

    plot_pareto("runs/multiobjective", objectives, rows, Path("multiobjective-plots"))
    # -> [pareto_front.png, pareto_fronts.png, hypervolume.png] in that folder
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from evonas.pareto import derive_reference, hypervolume, nondominated
from evonas.plotting import integer_axis, save_figure
from evonas.runfolder import RunFolder

__all__ = ["plot_pareto", "read_points"]


def read_points(run_dir: Path) -> list[tuple[int, list[float]]]:
    """``(generation, fitness)`` of every successful full evaluation in the run's journal, in trial order
    (damaged rows skipped: the diagnostics drawn with these plots say how many; raises ``RunFolderError`` for a
    journal that cannot be read)."""
    records = RunFolder(run_dir).records("trial", where="status = 'ok' AND fitness IS NOT NULL")
    out = []
    for r in records:
        if r.complete and r.fitness and all(math.isfinite(v) for v in r.fitness):
            out.append((r.generation, list(r.fitness)))
    return out


def _hypervolumes(
    rows: list[dict[str, Any]], points: list[tuple[int, list[float]]], weights: list[float]
) -> tuple[list[tuple[int, float]], list[float] | None]:
    """Per generation: the logbook's ``hypervolume`` if the strategy logged it (reference ``None``: the strategy's),
    else computed from the journal (front of everything evaluated up to that generation) from a reference point
    derived from the first generation, returned with it."""
    logged = [(int(r["gen"]), float(r["hypervolume"])) for r in rows
              if all(isinstance(r.get(k), (int, float)) and math.isfinite(r[k]) for k in ("gen", "hypervolume"))]  # fmt: skip
    if logged:
        return logged, None
    gens = sorted({g for g, _ in points})
    if not gens:
        return [], None
    ref = derive_reference([p for g, p in points if g == gens[0]], weights)
    return [(g, hypervolume([p for h, p in points if h <= g], weights, ref)) for g in gens], list(ref)


def plot_pareto(
    run_dir: str | Path, objectives: list[dict[str, str]], rows: list[dict[str, Any]], out_dir: Path, title: str = ""
) -> list[Path]:
    """Draw ``pareto_front.png``, ``pareto_fronts.png`` and ``hypervolume.png`` into ``out_dir``; returns them.

    ``rows``: the run's logbook rows (its logged hypervolume, if any). Raises ``ValueError`` for a run without a
    successful evaluation, ``RunFolderError`` for a journal it cannot read or a file it cannot write (one line).
    """
    weights = [1.0 if o.get("direction", "max") == "max" else -1.0 for o in objectives]
    folder = RunFolder(run_dir)
    points = [(g, p) for g, p in read_points(folder.path) if len(p) == len(objectives)]  # one value per objective
    if not points:
        raise ValueError(f"{run_dir}: no successful evaluation to draw a Pareto front from")
    out_dir = Path(out_dir)
    ys, xs = objectives[0]["metric"], objectives[1]["metric"]
    label = {m: f"{o['metric']} ({o.get('direction', 'max')})" for m, o in ((ys, objectives[0]), (xs, objectives[1]))}
    allx = [p[1] for _, p in points]
    logx = min(allx) > 0 and max(allx) / min(allx) > 20

    def front_of(pts: list[list[float]]) -> list[list[float]]:  # every member, as pareto_front.json lists them
        return sorted((pts[i] for i in nondominated(pts, weights, ties=True)), key=lambda p: p[1])

    more = [o["metric"] for o in objectives[2:]]  # not drawn: the points are the front over every objective

    def stairs(ax: Any, front: list[list[float]], **style: Any) -> None:
        """The staircase over the members non-dominated in the two objectives drawn (with more objectives, a member
        may be dominated in this view: it is drawn as a point only)."""
        shown = front if not more else front_of_two(front)
        ax.step([p[1] for p in shown], [p[0] for p in shown], where="post" if weights[1] < 0 else "pre", **style)

    def front_of_two(pts: list[list[float]]) -> list[list[float]]:
        return sorted((pts[i] for i in nondominated([q[:2] for q in pts], weights[:2])), key=lambda p: p[1])

    projection = f"\n(projected on {ys} and {xs}; {', '.join(more)} not shown)" if more else ""

    def axes(ax: Any) -> None:
        ax.set_xlabel(label[xs])
        ax.set_ylabel(label[ys])
        if logx:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)

    files = []
    # the final front
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.scatter(allx, [p[0] for _, p in points], s=10, color="lightgray", label=f"evaluated ({len(points)})")
    front = front_of([p for _, p in points])
    stairs(ax, front, color="tab:red", lw=1)
    over = f" over all {len(objectives)} objectives" if more else ""
    ax.scatter([p[1] for p in front], [p[0] for p in front], s=30, color="tab:red", zorder=3,
               label=f"Pareto front{over} ({len(front)})")  # fmt: skip
    axes(ax)
    ax.legend(fontsize=8)
    ax.set_title((title or "Pareto front") + projection, fontsize=10 if more else None)
    files.append(_save(fig, out_dir / "pareto_front.png"))
    # fronts over generations
    gens = sorted({g for g, _ in points})
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(7, 5))
    for g in gens:
        f = front_of([p for h, p in points if h <= g])
        color = cmap(g / max(1, gens[-1]))
        stairs(ax, f, color=color, lw=0.8, alpha=0.8)
        ax.scatter([p[1] for p in f], [p[0] for p in f], s=14, color=color, zorder=3)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(gens[0], gens[-1] if gens[-1] > gens[0] else gens[0] + 1))
    bar = fig.colorbar(sm, ax=ax, label="generation")
    bar.locator = MaxNLocator(integer=True)  # whole generations on the colour bar too
    bar.update_ticks()
    axes(ax)
    ax.set_title("Pareto front after each generation" + projection, fontsize=10 if more else None)
    files.append(_save(fig, out_dir / "pareto_fronts.png"))
    # hypervolume
    hv, ref = _hypervolumes(rows, points, weights)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot([g for g, _ in hv], [v for _, v in hv], "-o", ms=3, color="tab:blue")
    ax.set_xlabel("generation")
    ax.set_ylabel("hypervolume of the front")
    # the figure depends on the reference point: said, so runs measured from different ones are not compared
    where = ("from the strategy's reference point" if ref is None else
             f"from ({', '.join(f'{v:.4g}' for v in ref)}), derived from generation 0: not comparable across runs")  # fmt: skip
    ax.set_title(f"hypervolume of the Pareto front after each generation\n({where})", fontsize=10)
    integer_axis(ax, [g for g, _ in hv])
    ax.grid(alpha=0.3)
    files.append(_save(fig, out_dir / "hypervolume.png"))
    return files


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    return save_figure(fig, path)
