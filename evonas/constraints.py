"""Hard limits on metrics (``constraints:`` in an experiment file) and conditions of ``evonas best --where``.

A constraint is ``METRIC OP NUMBER`` with OP one of ``<=``, ``<``, ``>=``, ``>``, e.g.
``"params <= 100000"``, ``"flops <= 2e6"``, ``"latency_ms <= 5"``, ``"val_acc >= 0.9"``.

- A limit on a **cheap** metric (``params``, ``flops``: known from the genome, see
  :meth:`evonas.spaces.SearchSpace.cost_metrics`) is checked in the main process before a
  candidate is submitted. Strategies redraw such candidates (``SearchContext.feasible``); one that
  still breaks a limit is never trained: the journal records it with status ``infeasible``, its
  cheap metrics, no fitness (the strategy is told the worst fitness), and it costs no budget.
- A limit on any other metric (``val_acc``, ``latency_ms``, ``train_s``, ...) is checked after the
  evaluation: a breaking result is recorded with status ``violated`` (its metrics kept, no
  fitness) and the strategy is told the worst fitness, so every feasible result ranks above it
  (constraint domination, with all infeasible results equally bad).

Example::

    parse_constraint("params <= 1e5")               # Constraint('params', '<=', 100000.0)
    parse_conditions("params<50000 and flops<1e6")  # two constraints
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from typing import Any, Callable, Mapping, Sequence

from evonas.checks import metric_text

__all__ = ["CHEAP_METRICS", "Constraint", "ConstraintChecker", "parse_constraint", "parse_conditions", "parse_constraints"]

#: metrics known from the genome alone (decoded, never trained): limits on them are checked before training.
CHEAP_METRICS: tuple[str, ...] = ("params", "flops")

_OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_PATTERN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=|<|>)\s*([-+0-9.eE_]+)\s*$")


@dataclasses.dataclass(frozen=True)
class Constraint:
    """``metric op limit``; :meth:`holds` says whether a metric value meets it."""

    metric: str
    op: str
    limit: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.limit:g}"

    @property
    def cheap(self) -> bool:
        """True for a limit on a metric known before training (checked before submitting)."""
        return self.metric in CHEAP_METRICS

    def holds(self, value: Any) -> bool:
        """Whether ``value`` meets the limit (a missing or non-numeric value does not)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        return _OPS[self.op](float(value), self.limit)


def parse_constraint(text: Any) -> Constraint:
    """``"params <= 1e5"`` -> :class:`Constraint`; raises ``ValueError`` saying what was expected."""
    if not isinstance(text, str):
        raise ValueError(f"expected a condition such as 'params <= 100000', got {text!r}")
    m = _PATTERN.match(text)
    if not m:
        raise ValueError(f"expected METRIC OP NUMBER with OP one of <=, <, >=, > (e.g. 'params <= 100000'), got {text!r}")
    metric, op, number = m.groups()
    try:
        limit = float(number.replace("_", ""))
    except ValueError:
        raise ValueError(f"expected a number after '{op}', got {number!r} in {text!r}") from None
    if not math.isfinite(limit):
        raise ValueError(f"expected a finite limit, got {number!r} in {text!r}")
    return Constraint(metric, op, limit)


def parse_constraints(value: Any) -> tuple[Constraint, ...]:
    """The ``constraints:`` list of an experiment; raises ``ValueError`` prefixed ``[i]: `` for a bad item."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"expected a list of conditions such as ['params <= 100000'], got {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        try:
            out.append(parse_constraint(item))
        except ValueError as exc:
            raise ValueError(f"[{i}]: {exc}") from None
    _check_satisfiable(out)
    return tuple(out)


def _check_satisfiable(constraints: Sequence[Constraint]) -> None:
    """Raise ``ValueError`` for limits on one metric that no value meets together (``params <= 100`` with
    ``params >= 1e6``), or a limit on a count evonas makes (:data:`CHEAP_METRICS`) below 0: a run would train
    nothing, or nothing it could keep."""
    for c in constraints:
        if c.metric in CHEAP_METRICS and c.op in ("<=", "<") and (c.limit < 0 or (c.limit == 0 and c.op == "<")):
            raise ValueError(f"'{c}': {c.metric} is a count, never below 0, so no candidate meets it")
    for metric in dict.fromkeys(c.metric for c in constraints):
        lows = [c for c in constraints if c.metric == metric and c.op in (">=", ">")]
        highs = [c for c in constraints if c.metric == metric and c.op in ("<=", "<")]
        if not lows or not highs:
            continue
        low = max(lows, key=lambda c: (c.limit, c.op == ">"))
        high = min(highs, key=lambda c: (c.limit, c.op == "<"))
        if low.limit > high.limit or (low.limit == high.limit and (low.op == ">" or high.op == "<")):
            raise ValueError(f"'{low}' and '{high}': no value of {metric} meets both")


def unmeetable(constraint: Constraint, low: float, high: float) -> bool:
    """True when no value from ``low`` to ``high`` (both included) meets ``constraint``."""
    op, limit = constraint.op, constraint.limit
    return {">=": limit > high, ">": limit >= high, "<=": limit < low, "<": limit <= low}[op]


def parse_conditions(texts: str | Sequence[str]) -> tuple[Constraint, ...]:
    """Conditions joined by ``,`` or ``and`` (one string or several), e.g. ``"params<50000 and flops<1e6"``."""
    parts: list[str] = []
    for text in [texts] if isinstance(texts, str) else list(texts):
        parts += [p for p in re.split(r",|\band\b", text, flags=re.IGNORECASE) if p.strip()]
    if not parts:
        raise ValueError("expected at least one condition such as 'params<50000'")
    either = next((p for p in parts if re.search(r"\bor\b|\|\|", p, flags=re.IGNORECASE)), None)
    if either:  # every condition must hold: 'or' has no meaning here
        raise ValueError(f"conditions are joined by 'and' (or ','), each one must hold; 'or' is not supported, got "
                         f"{either.strip()!r}: run evonas best once for each side")  # fmt: skip
    return tuple(parse_constraint(p) for p in parts)


class ConstraintChecker:
    """The run's constraints against cheap metrics (before training) and all metrics (after).

    ``cheap_metrics(genome)`` is computed by ``space.cost_metrics`` at the problem's input shape and
    cached by genome key (only when some constraint is cheap).
    """

    def __init__(
        self, constraints: Sequence[Constraint], space: Any, input_shape: tuple[int, ...], num_classes: int
    ) -> None:
        self.constraints = tuple(constraints)
        self.space, self.input_shape, self.num_classes = space, tuple(input_shape), int(num_classes)
        self._cheap = tuple(c for c in self.constraints if c.cheap)
        self._cache: dict[str, dict[str, float]] = {}

    @property
    def active(self) -> bool:
        return bool(self.constraints)

    def cheap_metrics(self, genome: Any) -> dict[str, float]:
        key = self.space.key(genome)
        if key not in self._cache:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = self._costs(genome)
        return self._cache[key]

    def _costs(self, genome: Any) -> dict[str, float]:
        shape, classes = self.input_shape, self.num_classes
        own = next(k for k in type(self.space).__mro__ if "cost_metrics" in vars(k))  # the class that defines it
        if any(c.metric == "flops" for c in self._cheap) or own.__module__ != "evonas.spaces.base":
            return self.space.cost_metrics(genome, input_shape=shape, num_classes=classes)
        # params alone, from the decoded network: FLOPs would cost a forward pass under torch's FlopCounterMode,
        # most of the time a candidate's check takes (a space's own cost_metrics may have a faster way to both)
        net = self.space.decode(genome, input_shape=shape, num_classes=classes)
        return {"params": int(sum(p.numel() for p in net.parameters()))}  # (spaces.cost.count_params: it imports this)

    def cheap_violations(self, genome: Any) -> tuple[list[str], dict[str, float]]:
        """The cheap limits ``genome`` breaks (as text) and its cheap metrics (empty if no cheap limit)."""
        if not self._cheap:
            return [], {}
        metrics = self.cheap_metrics(genome)
        return violations(self._cheap, metrics), metrics

    def feasible(self, genome: Any) -> bool:
        """Whether ``genome`` meets every cheap limit (what strategies redraw on)."""
        return not self.cheap_violations(genome)[0]

    def expensive_violations(self, metrics: Mapping[str, Any]) -> list[str]:
        """The limits on metrics known only after an evaluation (not params, flops) that ``metrics`` break."""
        return violations([c for c in self.constraints if not c.cheap], metrics)


def violations(constraints: Sequence[Constraint], metrics: Mapping[str, Any]) -> list[str]:
    """``["params=1.2e+05 breaks params <= 100000", ...]`` for each constraint ``metrics`` do not meet."""
    out = []
    for c in constraints:
        v = metrics.get(c.metric)
        if not c.holds(v):
            out.append(f"{c.metric}={metric_text(v, 'missing')} breaks {c}")
    return out
