"""Plots of run folders and benchmark results. Reads only files and plain data; never imports torch.

``plot_run(RUN_DIR)`` draws ``plots/fitness.png``: for each objective, the best,
mean and worst of the population per generation, the min-max spread shaded,
and the best so far. With several objectives it also draws the Pareto front, the fronts
over generations and the hypervolume (:mod:`evonas.plotting_pareto`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

__all__ = ["plot_run", "plot_fitness", "plot_benchmark"]


def _objectives(run_dir: Path) -> list[dict[str, str]]:
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    return cfg.get("objectives") or [{"metric": "val_acc", "direction": "max"}]


def _series(rows: list[dict[str, Any]], key: str) -> list[float]:
    out = []
    for r in rows:
        v = r.get(key)
        out.append(float("nan") if v is None else float(v))
    return out


def plot_fitness(rows: list[dict[str, Any]], objectives: list[dict[str, str]], out: Path, title: str = "") -> Path:
    """Draw fitness over generations to ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(objectives)
    fig, axes = plt.subplots(n, 1, figsize=(7, 3.6 * n), squeeze=False)
    gens = [r["gen"] for r in rows]
    for ax, obj in zip(axes[:, 0], objectives):
        m, maximise = obj["metric"], obj.get("direction", "max") == "max"
        hi, lo, avg = _series(rows, f"{m}_max"), _series(rows, f"{m}_min"), _series(rows, f"{m}_avg")
        best, worst = (hi, lo) if maximise else (lo, hi)
        ax.fill_between(gens, lo, hi, alpha=0.2, color="tab:blue", label="population spread")
        ax.plot(gens, best, "-o", color="tab:blue", ms=3, label="best")
        ax.plot(gens, avg, "--", color="tab:orange", label="mean")
        ax.plot(gens, worst, ":", color="tab:gray", label="worst")
        so_far = _series(rows, f"{m}_best_so_far")
        if any(math.isfinite(v) for v in so_far):
            ax.plot(gens, so_far, "-", color="tab:green", lw=1.2, label="best so far")
        ax.set_xlabel("generation")
        ax.set_ylabel(f"{m} ({'max' if maximise else 'min'})")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if maximise else "upper right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_run(run_dir: str | Path) -> list[Path]:
    """(Re)draw the plots of a run folder; returns the files written."""
    run_dir = Path(run_dir)
    logbook = run_dir / "logbook.json"
    if not logbook.exists() or not (run_dir / "config.yaml").exists():
        raise FileNotFoundError(f"{run_dir}: not a finished run folder (no logbook.json / config.yaml)")
    rows = json.loads(logbook.read_text())
    if not rows:
        raise ValueError(f"{run_dir}: the logbook is empty (no generation finished)")
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    title = f"{cfg.get('name', run_dir.name)}: {cfg.get('strategy', {}).get('name', '')} on {cfg.get('space', {}).get('name', '')}"
    objectives = _objectives(run_dir)
    files = [plot_fitness(rows, objectives, run_dir / "plots" / "fitness.png", title=title)]
    if len(objectives) > 1 and (run_dir / "journal.sqlite").exists():
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
