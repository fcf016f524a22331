"""Several runs compared: the numbers ``evonas plot RUN_DIR RUN_DIR ... --out FILE.png`` draws.

Runs are grouped by their strategy (several seeds of one strategy make one group; a folder named
twice counts once), or by their experiment's ``name``, or by any setting of their config named by its
dotted path (``group_by="strategy.params.mutpb"``: one group per value, labelled ``mutpb=0.7``). Each group gets its median best-so-far curve and the interquartile range
(``band="iqr"``, default), or its mean and the 95% confidence interval of the mean (``band="ci95"``,
Student's t with n - 1 degrees of freedom, which is wide for few seeds); a group of one run is a plain
line. The x axis is evaluations (``x="evaluations"``, from the journal in arrival order) or
generations (``x="generations"``); the y axis any metric the runs recorded (default: the first
objective): an objective's best so far in its direction; a metric that is not an objective, its value on
the run's incumbent (the best evaluation so far by the first objective: the test accuracy of what the
search would return, not the best test accuracy seen). Runs of different problems are never pooled: a
group holding several is split by problem. Only full evaluations count.
:func:`evonas.plotting.plot_runs` draws them.

Example::

    data = compare_runs(["runs/ga-s0", "runs/ga-s1", "runs/aging-s0"], x="evaluations")
    data["groups"]["ga"]["median"][-1]
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from evonas.checks import is_real
from evonas.runfolder import RunFolder, RunFolderError

__all__ = ["run_curves", "compare_runs", "mixed_settings", "LOWER_IS_BETTER"]

#: metrics evonas reports for which lower is better: their direction when the run does not have them as objectives
#: (any other metric that is not an objective is taken as higher is better)
LOWER_IS_BETTER: tuple[str, ...] = ("val_loss", "train_loss", "test_loss", "params", "flops", "latency_ms", "train_s",
                                    "train_steps", "train_samples")  # fmt: skip


def run_curves(
    run_dir: str | Path, metric: str | None = None, x: str = "evaluations", group_by: str = "strategy"
) -> dict[str, Any]:
    """One run's best-so-far curve of ``metric`` against evaluations or generations, with its group's label
    (see :func:`compare_runs`'s ``group_by``).

    Raises ``ValueError`` (one line) for a folder that is not a readable run folder; no plug-in is imported.
    """
    run_dir = Path(run_dir)
    try:
        folder = RunFolder(run_dir)
        exp = folder.experiment()  # names and objectives only
        records = [r for r in folder.records("seq") if r.fidelity is None and r.status != "infeasible"]
    except RunFolderError as exc:
        raise ValueError(str(exc)) from None
    folder.warn_damaged()
    metric = metric or exp.objectives[0].metric
    own = next((o for o in exp.objectives if o.metric == metric), None)
    # a metric that is no objective (a test accuracy, a size) is followed on the run's incumbent: the best
    # evaluation so far by its first objective, what the search would return then (the best test accuracy seen
    # would be an oracle on the test split)
    chosen = own or exp.objectives[0]
    direction = own.direction if own else ("min" if metric in LOWER_IS_BETTER else "max")

    def real(r: Any, name: str) -> float:
        v: Any = r.metrics.get(name) if r.complete else None  # pruned or inherited results are never the best
        return float(v) if is_real(v) else math.nan

    values = [real(r, metric) for r in records]
    if not any(math.isfinite(v) for v in values):
        recorded = sorted({k for r in records if r.complete for k, v in r.metrics.items() if is_real(v)})
        raise ValueError(f"{run_dir}: no evaluation recorded the metric '{metric}'"
                         + (f"; they record: {', '.join(recorded)}" if recorded else ""))  # fmt: skip
    sign = 1.0 if chosen.direction == "max" else -1.0
    best, shown, curve = -math.inf, math.nan, []
    for r, v in zip(records, values):
        score = real(r, chosen.metric)
        if math.isfinite(score) and sign * score > best:
            best, shown = sign * score, v
        curve.append(shown)
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
    problem = f"space {exp.space.name}, {_dataset_part(exp)}fitness {exp.fitness.name}"
    config = folder.config()
    if group_by == "strategy":
        label: str | None = exp.strategy.name
    elif group_by == "name":
        label = exp.name
    else:  # a setting by its dotted path: the label is its last part and the value (None: this run has no such key)
        value = _flat(config).get(group_by)
        label = None if value is None else _setting_label(group_by, _text(value))
    settings = _flat({k: config.get(k) for k in _SETTINGS if k in config})
    per_generation = len(records) / max(1, len({r.generation for r in records}))
    return {"run": str(run_dir), "group": label, "group_by": group_by, "seed": exp.seed, "metric": metric,
            "direction": direction, "of": None if own else chosen.metric, "x": xs, "y": curve, "problem": problem,
            "settings": settings, "per_generation": per_generation}  # fmt: skip


def _dataset_part(exp: Any) -> str:
    """``dataset digits, `` for a fitness that reads a dataset; nothing for one that does not (a table, ``toy``), or
    one whose plug-in is not imported here."""
    from evonas.fitness import FITNESSES  # here: the registry of fitness functions imports torch

    try:
        needs = getattr(FITNESSES.get(exp.fitness.name), "needs_dataset", True)
    except Exception:  # a plug-in fitness not imported here: say the dataset, as a fitness does by default
        needs = True
    return f"dataset {exp.dataset.name}, " if needs is not False else ""


#: the keys of a run's config that make the problem it searches (the rest of :data:`_SETTINGS` make the search)
_PROBLEM = ("space", "dataset", "fitness", "objectives", "constraints")
#: the keys of a run's config whose values make its search what it is: runs of one strategy that differ in any of
#: them are more than seeds of one search (the seed, workers, backend, loggers and names are left out)
_SETTINGS = ("space", "dataset", "fitness", "objectives", "constraints", "budget", "strategy", "selection",
             "mutations", "crossovers", "initial_population", "pruner", "inherit")  # fmt: skip


def _flat(value: Any, prefix: str = "") -> dict[str, str]:
    """``{"fitness.params.epochs": "2", ...}``: a config's leaves by dotted path (lists by index), as text."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return {k: v for i, item in enumerate(value) for k, v in _flat(item, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): json.dumps(value, sort_keys=True)}


def _text(value: str) -> str:
    """A :func:`_flat` value for a label: a string without its JSON quotes."""
    try:
        loaded = json.loads(value)
    except ValueError:
        return value
    return loaded if isinstance(loaded, str) else value


def _setting_label(group_by: str, value: str) -> str:
    """A group's label when runs are grouped by a setting: its last part and the value (``mutpb=0.7``; of a
    ``.name``, the part before it: ``strategy=aging``)."""
    parts = group_by.split(".")
    return f"{parts[-2] if parts[-1] == 'name' and len(parts) > 1 else parts[-1]}={value}"


def _problem_of(curve: dict[str, Any]) -> tuple[Any, ...]:
    """What a run searches: its space, dataset and fitness by name, and their settings, objectives and limits."""
    settings = curve.get("settings", {})
    return (curve["problem"], tuple(sorted((k, v) for k, v in settings.items() if k.split(".")[0] in _PROBLEM)))


def _natural(label: str) -> tuple[Any, ...]:
    """A sort key that puts ``sample_size=3`` before ``sample_size=10``."""
    head, _, value = label.rpartition("=")
    try:
        return (head, 0, float(value), "")
    except ValueError:
        return (head, 1, 0.0, value)


def _differing(members: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """The settings in which ``members`` (:func:`run_curves`' dicts) differ, each with its values in order."""
    out = {}
    for k in sorted({k for m in members for k in m.get("settings", {})}):
        values = list(dict.fromkeys(m.get("settings", {}).get(k, "unset") for m in members))
        if len(values) > 1:
            out[k] = values
    return out


def _said(differing: dict[str, list[str]], limit: int = 3) -> list[str]:
    """``fitness.params.epochs: 1, 2`` for each of :func:`_differing`'s settings, at most ``limit`` of them."""
    out = [f"{k}: {', '.join(values)}" for k, values in differing.items()]
    return out[:limit] + ([f"and {len(out) - limit} more"] if len(out) > limit else [])


def mixed_settings(members: Sequence[dict[str, Any]], limit: int = 3) -> list[str]:
    """The settings in which the runs of one group differ (``fitness.params.epochs: 1, 2``), at most ``limit``."""
    return _said(_differing(members), limit)


def compare_runs(
    run_dirs: Sequence[str | Path], *, metric: str | None = None, x: str = "evaluations", band: str = "iqr",
    group_by: str = "strategy",
) -> dict[str, Any]:
    """The runs' best-so-far curves grouped by strategy (``group_by="strategy"``), by experiment name (``"name"``) or
    by the value of a setting named by its dotted path in the runs' ``config.yaml`` (``"fitness.params.epochs"``; a run
    without it is in the group ``epochs=unset``, and a path no run has is refused): per group its runs, ``x``, the ``median``, the ``center``
    curve (the median with ``iqr``, the mean with ``ci95``; ``center_name`` says which) and the band (``low``,
    ``high``: interquartile range or 95% interval of the mean; a group of one run has its own curve as all).

    Returns ``{"metric", "direction", "x", "band", "runs", "groups": {name: {...}}, "problems"}`` (``problems``: the
    distinct ``space ..., dataset ..., fitness ...`` the runs search; more than one is worth a warning); raises
    ``ValueError`` (one line).
    """
    if band not in ("iqr", "ci95"):
        raise ValueError(f"band: expected 'iqr' or 'ci95', got {band!r}")
    first: dict[Path, str | Path] = {}
    for d in run_dirs:  # a folder named twice (or by two paths) is one run, named as it was first
        first.setdefault(Path(d).resolve(), d)
    if not isinstance(group_by, str) or not group_by.strip():
        raise ValueError(f"group_by: expected 'strategy', 'name' or a setting's dotted path, got {group_by!r}")
    curves = [run_curves(d, metric, x, group_by) for d in first.values()]
    if all(c["group"] is None for c in curves):
        import difflib

        known = sorted({k for d in first.values() for k in _flat(RunFolder(d).config())})
        inside = [k for k in known if k.startswith(group_by + ".")]
        if inside:  # a mapping of settings, not one
            raise ValueError(f"group_by: '{group_by}' holds several settings; name one of them, e.g. "
                             f"{', '.join(inside[:4])}")  # fmt: skip
        near = difflib.get_close_matches(group_by, known, n=3, cutoff=0.6) or [
            k for k in known if k.split(".")[0] == group_by.split(".")[0]][:5]  # fmt: skip
        raise ValueError(f"group_by: no run's config.yaml has the setting '{group_by}'"
                         + (f" (did you mean {', '.join(near)}?)" if near else " (use strategy, name, or a dotted path "
                            "such as strategy.params.mutpb)"))  # fmt: skip
    for c in curves:
        c["group"] = c["group"] or _setting_label(group_by, "unset")
    problems = list(dict.fromkeys(c["problem"] for c in curves))
    members_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in curves:
        members_of[c["group"]].append(c)
    split: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for name, members in members_of.items():  # no median pools runs of different problems: split by problem
        if len({_problem_of(c) for c in members}) == 1:
            split[name] = members
            continue
        by_name = len({c["problem"] for c in members}) > 1  # other spaces, datasets, fitnesses; else their settings
        settings = [k for k in _differing(members) if k.split(".")[0] in _PROBLEM]
        for c in members:
            tag = c["problem"] if by_name else ", ".join(
                _setting_label(k, _text(c["settings"].get(k, "unset"))) for k in settings)
            split[f"{name} ({tag})"].append(c)
    members_of = split
    if group_by not in ("strategy", "name"):  # a setting's values in their order, numbers as numbers
        members_of = defaultdict(list, sorted(members_of.items(), key=lambda item: _natural(item[0])))
    groups = {}
    for name, members in members_of.items():
        n = min(len(c["y"]) for c in members)
        ys = np.array([c["y"][:n] for c in members], dtype=float)
        median = center = np.nanmedian(ys, axis=0)
        if len(members) == 1:
            low = high = median
        elif band == "iqr":
            low, high = np.nanpercentile(ys, 25, axis=0), np.nanpercentile(ys, 75, axis=0)
        else:
            from scipy.stats import t as student_t  # here: scipy is slow to import, and only this band needs it

            center, sem = np.nanmean(ys, axis=0), np.nanstd(ys, axis=0, ddof=1) / math.sqrt(len(members))
            half = float(student_t.ppf(0.975, len(members) - 1)) * sem
            low, high = center - half, center + half
        groups[name] = {"runs": [c["run"] for c in members], "x": list(members[0]["x"][:n]), "median": median.tolist(),
                        "mixed": mixed_settings(members), "longest": max(c["x"][-1] for c in members),
                        "per_generation": float(np.median([c["per_generation"] for c in members])),
                        "center": np.asarray(center).tolist(),
                        "center_name": "mean" if band == "ci95" and len(members) > 1 else "median",
                        "low": np.asarray(low).tolist(), "high": np.asarray(high).tolist()}  # fmt: skip
    # one space, dataset and fitness by name, but other parameters of them (or other objectives, limits): said too,
    # but for what a group's own line says (its runs differ in it) and the setting the runs are grouped by
    within = {k for members in members_of.values() for k in _differing(members)} | {group_by}
    across = {k: v for k, v in _differing(curves).items() if k.split(".")[0] in _PROBLEM and k not in within}
    return {"metric": curves[0]["metric"], "direction": curves[0]["direction"], "of": curves[0]["of"], "x": x,
            "band": band, "group_by": group_by, "runs": len(curves), "groups": groups, "problems": problems,
            "problem_settings": _said(across) if len(problems) == 1 else []}  # fmt: skip
