"""What a finished evaluation counts as in a run: ``ok`` with its objective values, ``pruned`` with its values where
the pruner stopped it, ``failed`` or ``violated``.

Both the engine loop (:mod:`evonas.engine.loop`) and DEAP's map (:mod:`evonas.engine.deap_map`) judge
results this way.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from evonas.engine.backends import JobResult

__all__ = ["judge"]


def _number(value: Any) -> bool:
    """An int or a float, finite or not (a bool is no number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def judge(result: JobResult, objectives: Sequence[Any], checker: Any = None) -> tuple[str, str | None, tuple[float, ...] | None]:
    """``(status, error, objective values)`` of a finished evaluation, as a run records it.

    An ``ok`` result whose objective metrics are missing, not numbers or not finite is ``failed``; one whose
    metrics break a limit checked after training (``checker``) is ``violated``. Values only for ``ok``.
    """
    status, error, metrics = result.status, result.error, result.metrics
    if status == "pruned":  # stopped early: its values where it stopped (strategies rank it below completed ones)
        try:
            values = tuple(float(metrics[o.metric]) for o in objectives)
        except (KeyError, TypeError, ValueError):
            return status, error, None
        return status, error, values if all(math.isfinite(v) for v in values) else None
    if status != "ok":
        return status, error, None
    missing = [o.metric for o in objectives if o.metric not in metrics]
    if missing:
        return "failed", f"the fitness returned no metric '{missing[0]}'; it returned: {', '.join(metrics)}", None
    wrong = [o.metric for o in objectives if not _number(metrics[o.metric])]
    if wrong:
        value = metrics[wrong[0]]
        return "failed", f"the objective metric '{wrong[0]}' is {value!r:.60} ({type(value).__name__}), not a number", None
    values = tuple(float(metrics[o.metric]) for o in objectives)
    bad = [o.metric for o, v in zip(objectives, values) if not math.isfinite(v)]
    if bad:
        return "failed", f"non-finite {', '.join(bad)}", None
    if checker is not None and (broken := checker.expensive_violations(metrics)):
        return "violated", "; ".join(broken), None  # trained, but breaks a limit: the worst fitness
    return "ok", None, values
