"""Pareto fronts and hypervolume over plain objective values (no torch; DEAP's hypervolume).

Values are in the objectives' own units; ``weights`` are +1 (maximise) or -1 (minimise) per
objective, as in the experiment. The hypervolume is DEAP's (``deap.benchmarks.tools.hypervolume``,
computed by ``moocore``) of the points against a reference point that every counted point must
beat in each objective.

Example::

    pts = [(0.95, 80_000), (0.90, 5_000), (0.80, 90_000)]       # (val_acc max, params min)
    nondominated(pts, (1, -1))                                  # [0, 1]
    hypervolume(pts, (1, -1), reference=(0.0, 100_000))         # 0.95*20000 + 0.90*75000 = 86500.0
"""

from __future__ import annotations

import math
import types
from typing import Sequence

__all__ = ["dominates", "nondominated", "hypervolume", "derive_reference"]


def dominates(a: Sequence[float], b: Sequence[float], weights: Sequence[float]) -> bool:
    """Whether ``a`` is at least as good as ``b`` in every objective and better in one."""
    better = False
    for x, y, w in zip(a, b, weights):
        if x * w < y * w:
            return False
        better = better or x * w > y * w
    return better


def nondominated(points: Sequence[Sequence[float]], weights: Sequence[float], *, ties: bool = False) -> list[int]:
    """Indices of the points no other point dominates (of equal points the first only, or with ``ties`` every one:
    two architectures equal in every objective are both on the front); non-finite skipped."""
    finite = [i for i, p in enumerate(points) if all(math.isfinite(float(v)) for v in p)]
    out: list[int] = []
    seen: set[tuple[float, ...]] = set()
    for i in finite:
        p = tuple(float(v) for v in points[i])
        if p in seen:
            if ties:
                out.append(i)
            continue
        if not any(dominates(points[j], p, weights) for j in finite if j != i):
            out.append(i)
            seen.add(p)
    return out


def hypervolume(points: Sequence[Sequence[float]], weights: Sequence[float], reference: Sequence[float]) -> float:
    """The volume of objective space dominated by ``points`` and bounded by ``reference`` (DEAP / moocore).

    Points that do not beat the reference in every objective add nothing.
    """
    # deap.benchmarks.tools takes over a second to import (moocore, scipy): only when a volume is computed
    from deap.benchmarks.tools import hypervolume as deap_hypervolume

    ref = [-w * r for w, r in zip(weights, reference)]  # DEAP: minimisation of -wvalues
    front = []
    for i in nondominated(points, weights):
        wvalues = tuple(w * float(v) for w, v in zip(weights, points[i]))
        if all(-wv < r for wv, r in zip(wvalues, ref)):
            front.append(types.SimpleNamespace(fitness=types.SimpleNamespace(wvalues=wvalues)))
    if not front:
        return 0.0
    if len(ref) == 1:
        return float(ref[0] - min(-f.fitness.wvalues[0] for f in front))
    return float(deap_hypervolume(front, ref))


def derive_reference(points: Sequence[Sequence[float]], weights: Sequence[float], margin: float = 0.1) -> list[float]:
    """A reference point from ``points`` (e.g. the first generation): each objective's worst finite value,
    moved ``margin`` x its range further (x its magnitude if the range is 0, or 1 if both are 0)."""
    ref = []
    for k, w in enumerate(weights):
        vals = [float(p[k]) for p in points if math.isfinite(float(p[k]))]
        if not vals:
            raise ValueError("no finite values to derive a reference point from")
        worst = min(vals) if w > 0 else max(vals)
        span = (max(vals) - min(vals)) or abs(worst) or 1.0
        ref.append(worst - w * margin * span)
    return ref
