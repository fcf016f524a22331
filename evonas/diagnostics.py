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

``diagnose(run_dir)`` returns the numbers (:func:`evonas.plotting.plot_diagnostics` draws them). Only full
evaluations (no multi-fidelity brief ones) count.

Example::

    d = diagnose("runs/quickstart-20261128-064700")
    d["operators"]["mutation:chain_hparam"]["rate"]     # share of its children better than the parent
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Sequence

from deap import tools

from evonas.config import ConfigError
from evonas.engine.build import build_space
from evonas.engine.journal import ranked
from evonas.engine.status import operator_faults
from evonas.runfolder import RunFolder, missing_plugins, space_file_problem

__all__ = ["diagnose", "diagnose_folder", "genealogy", "run_space"]


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
    return diagnose_folder(folder, exp, run_space(exp)[0])


def diagnose_folder(folder: RunFolder, exp: Any, space: Any, warn: bool = True) -> dict[str, Any]:
    """:func:`diagnose` of an open run folder, its experiment and search space (``None``: no gene entropies);
    ``warn``: damaged rows skipped are said in one line."""
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
    best_first = ranked(records, exp.weights)  # in trial order: ties go to the earliest trial
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
    return operator_faults(folder)


def run_space(exp: Any) -> tuple[Any, str]:
    """The run's search space and, if it cannot be built here (a plug-in space not imported, a moved or unreadable
    declaration file), ``None`` and why."""
    try:
        problem = space_file_problem(exp.space_file, exp)
        return (None, problem) if problem else (build_space(exp), "")
    except ConfigError as exc:
        return None, str(exc)
    except Exception as exc:  # diagnostics must never fail for want of a plugin; entropy is then left out
        return None, f"{type(exc).__name__}: {exc}"


def run_space_here(config: Any, exp: Any) -> tuple[Any, str, str]:
    """:func:`run_space` for a reading command, and the hint naming the plug-ins the run names that are not imported
    here (``""`` if none; see :func:`~evonas.runfolder.missing_plugins`). When those are why there is no space, the
    problem is that hint: which plug-ins, and how to pass them (not the space's own long story)."""
    imported = list(exp.plugins)
    hint = missing_plugins(config, [Path(p).stem for p in imported] + imported)
    space, problem = run_space(exp)
    if space is None and hint and not problem.startswith("space.file:"):
        problem = hint.removeprefix("; ")
    return space, problem, hint
