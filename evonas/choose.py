"""Choosing from a finished (or running) run: the best full evaluation that meets some conditions.

What ``evonas best RUN_DIR --where "params<50000"`` prints. Reads the journal read-only.

Example::

    pick = best_where("runs/multiobjective", parse_conditions("params<50000"))
    pick["metrics"]["val_acc"], pick["genome"]
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

from evonas.checks import is_real, metric_text
from evonas.constraints import Constraint
from evonas.engine.journal import ranked
from evonas.engine.status import _objectives, _weights
from evonas.runfolder import RunFolder, RunFolderError, space_file_problem
from evonas.spaces import make_space

__all__ = ["best_where", "front_where", "format_choice", "format_front", "find_evaluations", "format_evaluation"]


def _conditions(given: str | Sequence[str | Constraint]) -> tuple[Constraint, ...]:
    """Conditions as given from Python: ``"params<50000 and val_acc>0.9"``, a list of such strings, or parsed
    :class:`~evonas.constraints.Constraint` objects (what the command line's ``--where`` gives)."""
    from evonas.constraints import parse_conditions

    if isinstance(given, str):
        return parse_conditions(given)
    out: list[Constraint] = []
    for c in given:
        out += parse_conditions(c) if isinstance(c, str) else [c]
    return tuple(out)


def best_where(
    run_dir: str | Path, conditions: str | Sequence[str | Constraint] = (), by: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The full evaluation with the best first objective among those meeting every condition (``conditions``:
    ``"params<50000 and val_acc>0.9"``, a list of such strings, or parsed ones; none: the best of all), or (``by``)
    with the best value of another metric instead, ``("params", "min")``: the smallest network that meets them (a
    direction ``""`` is the metric's objective's, else lower for sizes, times and losses, higher for the others).

    Ties on the first objective go to the better next objective (then the earliest trial), as everywhere a run is
    ranked; ties on ``by`` go the same way. Returns ``{"record": {...} | None, "matches": n, "evaluations": m,
    "objectives": [...], "reported": [metric names], "by": (metric, direction) | None}``; raises
    ``ValueError`` for a folder without a journal or a condition on a metric no evaluation reports.
    """
    conditions = _conditions(conditions)
    config, objectives, records, reported = _full_evaluations(run_dir, conditions, [by[0]] if by else [])
    matching = [r for r in records if all(c.holds(r.metrics.get(c.metric)) for c in conditions)]
    order = ranked(matching, _weights(objectives))
    if by is not None and not by[1]:
        from evonas.compare import LOWER_IS_BETTER

        own = next((o["direction"] for o in objectives if o["metric"] == by[0]), None)
        by = (by[0], own or ("min" if by[0] in LOWER_IS_BETTER else "max"))
    if by is not None:  # a stable sort: ties keep the run's own ranking
        sign = -1.0 if by[1] == "max" else 1.0
        order = sorted((r for r in order if is_real(r.metrics.get(by[0]))), key=lambda r: sign * float(r.metrics[by[0]]))
    first = next(iter(order), None)
    return {"record": None if first is None else _picked(first), "matches": len(matching), "evaluations": len(records),
            "objectives": objectives, "config": config, "reported": sorted(reported), "by": by,
            "ranges": _ranges(records, conditions) if first is None else {}}  # fmt: skip


def front_where(run_dir: str | Path, conditions: str | Sequence[str | Constraint] = ()) -> dict[str, Any]:
    """The Pareto front of the full evaluations meeting every condition, by the run's objectives (Optuna's
    ``study.best_trials``): best first objective first, one per genome.

    Returns ``{"front": [{...}, ...], "matches": n, "evaluations": m, "objectives": [...], "reported": [...]}``,
    each member as :func:`best_where`'s ``record`` (genomes equal in every objective are all members); raises
    ``ValueError`` as it does. With one objective the front is the best evaluation (and any equal to it).
    """
    from evonas.pareto import nondominated

    conditions = _conditions(conditions)
    config, objectives, records, reported = _full_evaluations(run_dir, conditions)
    weights = _weights(objectives)
    matching = [r for r in records if all(c.holds(r.metrics.get(c.metric)) for c in conditions)]
    order = ranked(matching, weights)
    # a member missing an objective's value is left out, as in pareto_front.json; members equal in every objective
    # are all on it (other architectures)
    values = [[float(v) if is_real(v) else math.nan for v in _padded(r.fitness, weights)] for r in order]
    members = [order[i] for i in sorted(nondominated(values, weights, ties=True))]
    return {"front": [_picked(r) for r in members], "matches": len(matching), "evaluations": len(records),
            "objectives": objectives, "config": config, "reported": sorted(reported),
            "ranges": _ranges(records, conditions) if not members else {}}  # fmt: skip


def _ranges(records: Sequence[Any], conditions: Sequence[Constraint]) -> dict[str, tuple[float, float]]:
    """The lowest and highest value of each condition's metric over ``records``, said when no record meets the
    conditions (``val_acc >= 95`` where val_acc runs from 0.12 to 0.99); worked out only then."""
    out = {}
    for metric in dict.fromkeys(c.metric for c in conditions):
        values = [float(r.metrics[metric]) for r in records if is_real(r.metrics.get(metric))]
        if values:
            out[metric] = (min(values), max(values))
    return out


def _padded(fitness: Sequence[Any] | None, weights: Sequence[float]) -> list[Any]:
    values = list(fitness or ())
    return values + [None] * (len(weights) - len(values))


def _picked(rec: Any) -> dict[str, Any]:
    """A journal row as ``best`` and ``--front`` give it."""
    return {"trial": rec.trial, "key": rec.key, "generation": rec.generation, "genome": rec.genome,
            "metrics": rec.metrics, "fitness": list(rec.fitness or ())}  # fmt: skip


def _full_evaluations(
    run_dir: str | Path, conditions: Sequence[Constraint], more: Sequence[str] = ()
) -> tuple[dict[str, Any], list[dict[str, str]], list[Any], set[str]]:
    """The run's copy of the experiment, its objectives, its successful full evaluations and the metrics they report;
    ``ValueError`` for a folder without a journal or a condition (or a metric in ``more``) that none reports."""
    try:
        folder = RunFolder(run_dir)
        db = folder.connect()
        try:
            meta = folder.meta(db)
            records = [r for r in folder.records(where="status = 'ok' AND fitness IS NOT NULL", db=db) if r.complete]
        finally:
            db.close()
    except RunFolderError as exc:
        raise ValueError(str(exc)) from None
    folder.warn_damaged()
    if "config" in folder.damaged_meta:
        print(f"evonas: {folder.journal_path}: its copy of the experiment is damaged; ranking by val_acc (max)", file=sys.stderr)
    stored = meta.get("config")
    config: dict[str, Any] = stored if isinstance(stored, dict) else {}
    reported: set[str] = {name for r in records for name in r.metrics}
    for metric in [c.metric for c in conditions] + list(more):
        if records and metric not in reported:
            raise ValueError(f"no evaluation reports the metric '{metric}'; they report: {', '.join(sorted(reported))}")
    return config, _objectives(config), records, reported


def format_choice(choice: dict[str, Any], conditions: Sequence[Constraint], show: Sequence[str] = ()) -> str:
    """The lines ``evonas best`` prints for :func:`best_where`'s result.

    The last line says what the pick was made from: ``matches   3 of 24 full evaluations meet params < 50000``
    with conditions, ``ranked    best of 24 full evaluations by val_acc (max)`` without.
    """
    rec = choice["record"]
    m = choice["evaluations"]
    where = " and ".join(str(c) for c in conditions)
    first = choice["objectives"][0] if choice.get("objectives") else {"metric": "val_acc", "direction": "max"}
    if rec is None:
        return _nothing(m, where, choice.get("ranges"))
    by = choice.get("by")
    names = list(show) or [*(o["metric"] for o in choice["objectives"]), *(c.metric for c in conditions),
                           *([by[0]] if by else [])]  # fmt: skip
    names = list(dict.fromkeys(names))
    parts = []
    for n in names:
        v = rec["metrics"].get(n)
        parts.append(f"{n}={metric_text(v)}")
    k = choice["matches"]
    if by:
        of = f"of the {k} of {m} full {_plural(m, 'evaluation')} that {'meets' if k == 1 else 'meet'} {where}" \
            if conditions else f"of {m} full {_plural(m, 'evaluation')}"
        last = f"chosen    the {'lowest' if by[1] == 'min' else 'highest'} {by[0]} {of}"
    elif conditions:
        last = f"matches   {k} of {m} full {_plural(m, 'evaluation')} {'meets' if k == 1 else 'meet'} {where}"
    else:
        ties = "".join(f", ties by {o['metric']} ({o['direction']})" for o in choice["objectives"][1:])
        last = f"ranked    best of {m} full {_plural(m, 'evaluation')} by {first['metric']} ({first['direction']}){ties}"
    lines = [
        f"best      {'  '.join(parts)}",
        f"genome    {_describe(choice['config'], rec['genome'])}  (key {rec['key']}, trial {rec['trial']}, generation {rec['generation']})",
        f"json      {json.dumps(rec['genome'])}",
        last,
    ]
    return "\n".join(lines)


def format_front(front: dict[str, Any], conditions: Sequence[Constraint] = (), show: Sequence[str] = ()) -> str:
    """The lines ``evonas best --front`` prints for :func:`front_where`'s result: a row per member (trial, key, the
    objectives or ``show``'s metrics, the genome), then what the front was taken from."""
    m, k, members = front["evaluations"], front["matches"], front["front"]
    where = " and ".join(str(c) for c in conditions)
    by = " and ".join(f"{o['metric']} ({o['direction']})" for o in front["objectives"]) or "val_acc (max)"
    of = (f"of the {k} of {m} full {_plural(m, 'evaluation')} that {'meets' if k == 1 else 'meet'} {where}"
          if conditions else f"of {m} full {_plural(m, 'evaluation')}")  # fmt: skip
    if not members:
        return _nothing(m, where, front.get("ranges"))
    default = [*(o["metric"] for o in front["objectives"]), *(c.metric for c in conditions)]
    names = list(dict.fromkeys(list(show) or default))
    table = [["trial", "key", *names, "genome"]]
    for rec in members:
        values = [metric_text(rec["metrics"].get(n)) for n in names]
        table.append([str(rec["trial"]), rec["key"], *values, _describe(front["config"], rec["genome"])])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    lines = ["  ".join([row[0].rjust(widths[0]), row[1].ljust(widths[1]),
                        *(c.rjust(w) for c, w in zip(row[2:-1], widths[2:])), row[-1]]) for row in table]
    n = len(members)
    lines.append(f"front     {n} non-dominated {_plural(n, 'evaluation')} {of}, by {by}")
    return "\n".join(lines)


def find_evaluations(run_dir: str | Path, which: str) -> tuple[dict[str, Any], list[Any]]:
    """The run's copy of the experiment and its evaluations of trial ``which`` (a number) or of the genome whose key
    starts with ``which`` (at least 4 characters), whatever their status. Raises ``ValueError`` (one line)."""
    which = which.strip()
    if which.isdigit():
        where = f"trial = {int(which)}"
    elif len(which) >= 4 and all(c in "0123456789abcdef" for c in which.lower()):
        where = f"key LIKE '{which.lower()}%'"
    else:
        raise ValueError(f"expected a trial number or a genome key (at least 4 hex digits), got '{which}'")
    try:
        folder = RunFolder(run_dir)
        db = folder.connect()
        try:
            meta = folder.meta(db)
            records = folder.records(where=where, db=db)
        finally:
            db.close()
    except RunFolderError as exc:
        raise ValueError(str(exc)) from None
    folder.warn_damaged()
    config = meta.get("config")
    return (config if isinstance(config, dict) else {}), records


def format_evaluation(config: dict[str, Any], rec: Any) -> str:
    """The lines ``evonas show`` prints for one evaluation: status and reason, metrics, the genome, how it ran."""
    status = rec.status + (f": {rec.error}" if rec.error else "")
    metrics = "  ".join(
        f"{k}={metric_text(v, str(v))}" for k, v in rec.metrics.items()
    )  # fmt: skip
    how = [f"seed {rec.seed}"] if rec.seed is not None else []
    how += [f"worker {rec.worker}"] if rec.worker else []
    how += [f"{rec.wall_s:.1f} s"] if isinstance(rec.wall_s, (int, float)) else []
    how += ["safe mode (oneDNN off, fp32)"] if rec.safe_mode else []
    how += ["from the evaluation cache"] if rec.cached else []
    how += [f"fidelity {rec.fidelity:g}"] if rec.fidelity is not None else []
    origin = f", {rec.origin}" if rec.origin else ""
    parents = f", parents {', '.join(rec.parents)}" if rec.parents else ""
    described, text = _describe(config, rec.genome), json.dumps(rec.genome)
    lines = [
        f"trial     {rec.trial}  (generation {rec.generation}{origin}{parents})",
        f"status    {status}",
        f"metrics   {metrics or '-'}",
        f"genome    {described}  (key {rec.key})",
        *([f"json      {text}"] if described != text else []),
        f"ran       {', '.join(how) or '-'}",
    ]
    return "\n".join(lines)


def _nothing(evaluations: int, where: str, ranges: dict[str, tuple[float, float]] | None = None) -> str:
    """What ``best`` prints when nothing meets the conditions ``where`` (``""``: none given), with the range each
    condition's metric runs over in the run."""
    if not where:
        return "none      the run has no successful full evaluation (so far, if it still runs)"
    spans = [f"{k} from {metric_text(lo)} to {metric_text(hi)}" for k, (lo, hi) in (ranges or {}).items()]
    return f"none      no full evaluation of {evaluations} meets {where}" + (
        f" (here: {', '.join(spans)})" if spans else "")


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def _describe(config: dict[str, Any], genome: dict[str, Any]) -> str:
    """The space's one-line description of ``genome`` (the JSON if the space cannot be built here)."""
    try:
        space_cfg = config.get("space") or {}
        if space_file_problem(space_cfg.get("file")):  # never /dev/zero, a FIFO or a huge file named by a folder
            return json.dumps(genome, sort_keys=True)
        space = make_space(space_cfg["name"], dict(space_cfg.get("params") or {}), space_cfg.get("file"))
        return space.describe(space.from_dict(genome))
    except Exception:  # a plugin space, a moved declaration file: the JSON says it all
        if (config.get("space") or {}).get("name") == "function" and isinstance(genome, dict):
            from evonas.spaces.function import describe_choices  # its choices, without the build function's module

            return describe_choices(genome.items())  # in the order the journal keeps: the order asked
        return json.dumps(genome, sort_keys=True)
