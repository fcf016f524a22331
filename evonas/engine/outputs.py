"""Files of a run folder derived from the journal and the strategy: written atomically, never pickles.

``logbook.csv`` / ``logbook.json`` (DEAP Logbook, one row per generation),
``best.json``, ``hall_of_fame.json``, ``population.json``, and with several objectives
``pareto_front.json`` (the non-dominated full evaluations of the journal); ``config.yaml``, the resolved
experiment (:func:`write_config`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from evonas.checks import json_safe
from evonas.config import Experiment
from evonas.engine.journal import Journal, ranked
from evonas.pareto import hypervolume, nondominated
from evonas.registry import is_plugin
from evonas.spaces.base import SearchSpace
from evonas.strategies.base import Strategy

__all__ = ["atomic_write", "write_yaml", "write_json", "write_config", "write_results", "read_logbook"]


def atomic_write(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file, fsync and rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, data: Any) -> None:
    atomic_write(path, json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")


def write_yaml(path: str | Path, data: Any) -> None:
    atomic_write(path, yaml.safe_dump(json_safe(data), sort_keys=False))


class _ConfigDumper(yaml.SafeDumper):
    """Block style for mappings (one parameter a line), flow style for lists of plain values (``[16, 32, 48]``)."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> Any:
    flat = all(v is None or isinstance(v, (bool, int, float, str)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_ConfigDumper.add_representer(list, _represent_list)

#: the lines above the resolved experiment in ``config.yaml``
CONFIG_HEADER = """\
# The resolved experiment of this run: every component's parameters with their defaults filled in,
# the mutations and crossovers it uses with their probabilities, the dataset's split fractions.
# `seed` seeds the strategy, the dataset's split and each evaluation (with the genome's key).
# `evonas resume` reads this file back.
"""


def write_config(path: str | Path, resolved: Any) -> None:
    """Write ``config.yaml``: :data:`CONFIG_HEADER`, then ``resolved`` (see
    :func:`evonas.engine.build.resolved_experiment`) as YAML, keys in their order."""
    text = yaml.dump(json_safe(resolved), Dumper=_ConfigDumper, sort_keys=False, allow_unicode=True, width=100)
    atomic_write(path, CONFIG_HEADER + text)


def _individual(ind: Any, space: SearchSpace, journal_rows: dict[str, Any]) -> dict[str, Any]:
    rec = journal_rows.get(ind.key)
    return {
        "key": ind.key,
        "genome": space.to_dict(ind.genome),
        "describe": space.describe(ind.genome),
        "fitness": list(ind.fitness.values) if ind.fitness.valid else None,
        "metrics": dict(ind.metrics),
        "trial": rec.trial if rec else None,
        "generation": rec.generation if rec else None,
    }


def _from_record(rec: Any, space: SearchSpace) -> dict[str, Any]:
    """A journal row as ``best.json``, ``hall_of_fame.json`` and ``pareto_front.json`` list it."""
    return {
        "key": rec.key, "genome": rec.genome, "describe": space.describe(space.from_dict(rec.genome)),
        "fitness": list(rec.fitness), "metrics": dict(rec.metrics), "trial": rec.trial, "generation": rec.generation,
    }  # fmt: skip


def _complete_hall_of_fame(exp: Experiment, complete: list[Any], size: int | None) -> list[Any]:
    """The hall of fame of the complete evaluations: the ``size`` best by the first objective, or with several
    objectives the non-dominated ones (DEAP's ``ParetoFront``)."""
    if len(exp.objectives) == 1:
        return complete[:size] if size else complete
    return [complete[i] for i in nondominated([r.fitness for r in complete], exp.weights, ties=True)]


def best_result(exp: Experiment, space: SearchSpace, journal: Journal) -> dict[str, Any] | None:
    """What ``best.json`` holds, from the journal, with nothing written (a run that cannot write its files still
    says its best)."""
    return _best(exp, space, ranked(list(journal.records("trial")), exp.weights))


def _best(exp: Experiment, space: SearchSpace, best_first: list[Any]) -> dict[str, Any] | None:
    return {"space": space.name, **_from_record(best_first[0], space), "objectives": exp.metrics} if best_first else None


def write_results(
    run_dir: Path, exp: Experiment, space: SearchSpace, strategy: Strategy, journal: Journal
) -> dict[str, Any] | None:
    """Write the derived files; returns the ``best.json`` content (``None`` if nothing succeeded)."""
    records_by_trial = list(journal.records("trial"))
    rows = {r.key: r for r in records_by_trial}
    # logbook
    records = list(strategy.logbook)
    write_json(run_dir / "logbook.json", records)
    columns: list[str] = []
    for r in records:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    for r in records:
        writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})
    atomic_write(run_dir / "logbook.csv", buf.getvalue())
    # population and hall of fame
    best_first = ranked(records_by_trial, exp.weights)
    complete = {r.key: r for r in best_first}
    hof = [ind for ind in strategy.hall_of_fame if ind.fitness.valid and all(math.isfinite(v) for v in ind.fitness.values)]
    if any(ind.key not in complete or ind.fitness.pruned for ind in hof) or (not hof and not is_plugin(type(strategy))):
        # pruned or inherited evaluations are never reported as full ones: the hall of fame of the complete ones (so
        # too for a search that stopped before its first generation was complete, which a generation updates)
        hof_records = _complete_hall_of_fame(exp, list(complete.values()), strategy.hall_of_fame.maxsize)
        write_json(run_dir / "hall_of_fame.json", [_from_record(r, space) for r in hof_records])
    else:
        write_json(run_dir / "hall_of_fame.json", [_individual(i, space, rows) for i in hof])
    write_json(run_dir / "population.json", [_individual(i, space, rows) for i in strategy.population])
    # best.json: the best complete evaluation in the journal by the first objective (a view of the journal, so an
    # interrupted generation counts too); ties go to the earliest trial.
    best = _best(exp, space, best_first)
    if best is None:
        (run_dir / "best.json").unlink(missing_ok=True)
        return None
    write_json(run_dir / "best.json", best)
    if len(exp.objectives) > 1:
        write_json(run_dir / "pareto_front.json", pareto_front(exp, space, records_by_trial, strategy))
    return best


def pareto_front(exp: Experiment, space: SearchSpace, records: list[Any], strategy: Any = None) -> dict[str, Any]:
    """The non-dominated full evaluations of ``records`` (``pareto_front.json``), best first objective first."""
    ok = list({r.key: r for r in records if r.complete and r.fitness is not None}.values())  # the last per genome
    front = [ok[i] for i in nondominated([r.fitness for r in ok], exp.weights, ties=True)]
    front.sort(key=lambda r: (-exp.objectives[0].weight * r.fitness[0], r.trial))
    ref = strategy.reference_point if strategy is not None else None
    return {
        "objectives": [{"metric": o.metric, "direction": o.direction} for o in exp.objectives],
        "reference_point": ref,
        "hypervolume": hypervolume([r.fitness for r in front], exp.weights, ref) if ref else None,
        "front": [_from_record(r, space) for r in front],
    }


def read_logbook(run_dir: str | Path) -> list[dict[str, Any]]:
    """The logbook rows of a run folder (from ``logbook.json``): a list of mappings, one per generation.

    A missing, damaged or oversized logbook, or one linked out of the folder, reads as empty (the journal holds
    the run; the logbook is derived from it); rows that are not mappings are left out.
    """
    folder = os.path.realpath(run_dir)
    path = Path(run_dir) / "logbook.json"
    try:
        if not os.path.realpath(path).startswith(folder.rstrip(os.sep) + os.sep) or not path.is_file():
            return []
        if path.stat().st_size > 64 << 20:
            return []
        rows = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return []
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
