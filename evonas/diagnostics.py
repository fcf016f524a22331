"""Per-run diagnostics from the journal: operator success, population diversity, genealogy of the best.

- **Operator success rate**: for each mutation and crossover (the journal's ``origin``), per
  generation, the share of its children whose first objective is better than their parent's (for
  a crossover, better than the better parent). The first thing to check after plugging in a new
  operator.
- **Diversity**: per generation, the share of distinct genome keys among the genomes evaluated,
  and the Shannon entropy (bits) of each categorical gene (``space.categorical()``) over them,
  averaged over the genes.
- **Genealogy of the best**: its ancestors back to the initial samples, built as a DEAP
  ``tools.History`` (``genealogy_tree`` / ``genealogy_history``) from the parents the journal records.
- **Operator faults**: per operator, how often it failed out of how many calls (``_operator_stats``).

``diagnose(run_dir)`` returns the numbers; ``plot_diagnostics(run_dir)`` draws
``plots/diagnostics.png``. Only full evaluations (no multi-fidelity brief ones) count.

Example::

    d = diagnose("runs/quickstart-20261128-064700")
    d["operators"]["mutation:chain_hparam"]["rate"]     # share of its children better than the parent
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Sequence

from evonas.plotting import integer_axis, line_styles, plural
from evonas.runfolder import RunFolder

__all__ = ["diagnose", "plot_diagnostics", "genealogy"]


def _load(folder: RunFolder, warn: bool = True) -> list[Any]:
    """The full evaluations of the run's journal, in trial order (damaged rows skipped; ``warn``: said in one line)."""
    records = [r for r in folder.records("trial") if r.fidelity is None and r.status != "infeasible"]
    if warn:
        folder.warn_damaged()
    return records


def _score(rec: Any, sign: float) -> float:
    """The first objective, larger is better; failures are the worst."""
    if rec.status != "ok" or not rec.fitness or rec.fitness[0] is None or not math.isfinite(rec.fitness[0]):
        return -math.inf
    return sign * rec.fitness[0]


def genealogy(records: list[Any], key: str) -> Any:
    """A DEAP ``History`` of ``key``'s ancestry (``genealogy_tree``: index -> parent indices).

    Ancestors are numbered depth first from ``key`` (1), each parent's line before the next parent's; walked with
    a stack, so a long line of descent (a long aging run, a journal whose parents loop) needs no deep recursion.
    """
    from deap import tools

    by_key: dict[str, Any] = {}
    for r in records:
        by_key.setdefault(r.key, r)
    history = tools.History()
    index: dict[str, int] = {}
    stack = [key] if key in by_key else []
    while stack:
        k = stack.pop()
        if k in index:
            continue
        index[k] = len(index) + 1
        history.genealogy_history[index[k]] = by_key[k]
        stack.extend(reversed([p for p in by_key[k].parents if p in by_key and p != k]))
    for k, i in index.items():
        history.genealogy_tree[i] = tuple(index[p] for p in by_key[k].parents if p in by_key and p != k)
    return history


def _entropy(values: list[Any]) -> float:
    counts = Counter(values)
    n = sum(counts.values())
    return -sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0


def diagnose(run_dir: str | Path, *, plugins: Sequence[str] | None = None, trust: bool = False) -> dict[str, Any]:
    """Operator success rates, diversity per generation and the best genome's genealogy.

    The gene entropies need the run's search space: a plug-in space is imported only if ``plugins`` names it (or
    ``trust``); without it they are left out. Raises ``RunFolderError`` (one line) for a folder it cannot read.
    """
    folder = RunFolder(run_dir)
    exp = folder.experiment(plugins=plugins, trust=trust)
    return _diagnose(folder, exp, _space(exp))


def _diagnose(folder: RunFolder, exp: Any, space: Any, warn: bool = True) -> dict[str, Any]:
    from evonas.engine.journal import ranked

    records = _load(folder, warn)
    objective = {"metric": exp.objectives[0].metric, "direction": exp.objectives[0].direction}
    sign = exp.objectives[0].weight
    first: dict[str, Any] = {}
    for r in records:
        first.setdefault(r.key, r)
    ops: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for r in records:
        if not (r.origin.startswith("mutation:") or r.origin.startswith("crossover:")):
            continue
        parents = [first[p] for p in r.parents if p in first]
        if not parents:
            continue
        cell = ops[r.origin][r.generation]
        cell[1] += 1
        cell[0] += _score(r, sign) > max(_score(p, sign) for p in parents)
    operators = {
        name: {
            "better": sum(b for b, _ in gens.values()), "children": sum(n for _, n in gens.values()),
            "rate": sum(b for b, _ in gens.values()) / max(1, sum(n for _, n in gens.values())),
            "per_generation": {g: {"better": b, "children": n, "rate": b / n} for g, (b, n) in sorted(gens.items())},
        }  # fmt: skip
        for name, gens in sorted(ops.items())
    }
    faults = {f"{s['kind']}:{s['name']}": {"failures": int(s.get("failures") or 0), "calls": int(s.get("calls") or 0),
                                           "first_error": s.get("first_error")}
              for s in _operator_stats(folder) if isinstance(s, dict) and s.get("failures")}  # fmt: skip
    for name, fault in sorted(faults.items()):  # an operator that never made a child is listed with its faults
        operators.setdefault(name, {"better": 0, "children": 0, "rate": 0.0, "per_generation": {}})["faults"] = fault
    by_gen: dict[int, list[Any]] = defaultdict(list)
    for r in records:
        by_gen[r.generation].append(r)
    diversity = {}
    for g, recs in sorted(by_gen.items()):
        entry: dict[str, Any] = {"evaluated": len(recs), "unique_share": len({r.key for r in recs}) / len(recs)}
        if space is not None:
            try:
                choices = space.categorical()
                codes = [space.to_categorical(space.from_dict(r.genome)) for r in recs]
                per_gene = {c.name: _entropy([code[i] for code in codes]) for i, c in enumerate(choices)}
                entry["gene_entropy"] = per_gene
                entry["mean_entropy"] = sum(per_gene.values()) / len(per_gene) if per_gene else 0.0
            except Exception:  # a space without categorical genes, a genome that does not fit it: no entropy
                pass
        diversity[g] = entry
    best_first = ranked(records, sign)  # records in trial order: ties go to the earliest trial
    best = best_first[0] if best_first else None
    lineage = []
    if best is not None:
        history = genealogy(records, best.key)
        for i, rec in sorted(history.genealogy_history.items()):
            lineage.append({"index": i, "key": rec.key, "generation": rec.generation, "origin": rec.origin,
                            "fitness": rec.fitness[0] if rec.fitness else None,
                            "parents": [history.genealogy_history[p].key for p in history.genealogy_tree[i]]})  # fmt: skip
    return {"objective": objective, "operators": operators, "diversity": diversity, "genealogy": lineage,
            "best": None if best is None else best.key, "faults": faults}  # fmt: skip


def _operator_stats(folder: RunFolder) -> list[dict[str, Any]]:
    """How each operator fared (:func:`evonas.engine.status.operator_faults`, from the journal's ``operators`` entry):
    ``[{"kind": "mutation", "name": ..., "calls": n, "failures": k, "first_error": "..."}, ...]``.

    :func:`diagnose` adds each operator that failed as ``operators["KIND:NAME"]["faults"]``
    (``{"failures", "calls", "first_error"}``; an operator that never made a child gets an entry of its own) and
    under ``"faults"``; the plot's legend adds ``failed k of n calls``. A run without the entry (older, or no
    operator called) gives none.
    """
    from evonas.engine.status import operator_faults

    return operator_faults(folder)


def _space(exp: Any) -> Any:
    """The run's search space (None if it cannot be built here: a plug-in space not imported, a moved file)."""
    from evonas.engine.build import build_space
    from evonas.runfolder import space_file_problem

    try:
        return None if space_file_problem(exp.space_file, exp) else build_space(exp)
    except Exception:  # diagnostics must never fail for want of a plugin; entropy is then left out
        return None


def plot_diagnostics(
    run_dir: str | Path, out: str | Path | None = None, *, plugins: Sequence[str] | None = None, trust: bool = False
) -> Path:
    """Draw ``plots/diagnostics.png``: operator success, diversity, genealogy of the best.

    ``plugins`` / ``trust``: as for :func:`diagnose`. ``plots/`` must stay inside the run folder (a link out of it
    is refused with ``RunFolderError``); an ``out`` the caller names is written as named.
    """
    folder = RunFolder(run_dir)
    exp = folder.experiment(plugins=plugins, trust=trust)
    return _plot_diagnostics(folder, exp, _space(exp), out)


def _plot_diagnostics(folder: RunFolder, exp: Any, space: Any, out: str | Path | None = None, warn: bool = True) -> Path:
    import matplotlib

    matplotlib.use("Agg")

    if out is None:
        folder.inside("plots")
        out = folder.inside("plots/diagnostics.png")
    out = Path(out)
    d = _diagnose(folder, exp, space, warn)
    from evonas.plotting import save_figure

    return save_figure(_diagnostics_figure(d), out)


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
    if faults:  # from the journal's per-operator fault counts (see _operator_stats)
        label += f"; failed {faults['failures']} of {plural(faults['calls'], 'call')}"
    return label


def _diagnostics_figure(d: dict[str, Any]) -> Any:
    """The three panels of ``plots/diagnostics.png`` for :func:`diagnose`'s numbers, on one generation axis."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

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
