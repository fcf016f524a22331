"""Pruners: stop an evaluation early from its learning curve (``pruner:`` in an experiment, any strategy).

A fitness that supports pruning (``train`` does) reports the run's first objective on the validation split at
the points of its training the pruner asks for (:meth:`Pruner.points`, shares of that evaluation's own training)
and asks :meth:`Reporter.should_prune` after each report, as Optuna's ``trial.report`` / ``trial.should_prune``.
The pruner compares the evaluation's values with what earlier evaluations of the same kind reported at the same
points (:class:`History`: a snapshot taken when the evaluation was submitted, so the decision is a function of
the results the run had told by then, as a resume replays them).

Built in, named and parametrised as Optuna's pruners:

- ``none`` (Optuna's ``NopPruner``): never prunes;
- ``median`` (``MedianPruner``) and ``percentile`` (``PercentilePruner``): stop an evaluation whose best value so
  far is worse than the median (the percentile) of the completed evaluations' values at the same point;
- ``asha`` (``SuccessiveHalvingPruner``): asynchronous successive halving (Li et al. 2020). Rungs at
  ``min_resource * reduction_factor ** (min_early_stopping_rate + k)`` of the training; an evaluation goes on
  past a rung only if its value there is in the best ``1 / reduction_factor`` of every value reported at that
  rung so far (completed or pruned). No generation barrier: it works with steady-state strategies and any
  number of workers.

A pruned evaluation is journalled with status ``pruned``, the share of its training it reached and its metrics
there; it is never the best, and strategies rank it below every completed evaluation.

Example (experiment file)::

    pruner: {name: asha, params: {min_resource: 0.111, reduction_factor: 3}}
    pruner: {name: median, params: {n_startup_trials: 5, interval: 0.25}}
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping, Sequence

from evonas.checks import check_int, check_number
from evonas.registry import Registry

__all__ = ["PRUNERS", "Pruner", "Curve", "History", "Reporter", "TrialPruned"]


class TrialPruned(Exception):
    """Raised by a fitness when :meth:`Reporter.should_prune` says so (Optuna's ``TrialPruned``); the evaluation
    is recorded as ``pruned`` with the metrics of its last report."""


@dataclasses.dataclass(frozen=True)
class Curve:
    """What one finished evaluation reported: ``{share of its training: value}`` (higher is better) and whether
    it completed (``False``: it was pruned)."""

    values: Mapping[float, float]
    complete: bool = True


@dataclasses.dataclass(frozen=True)
class History:
    """The curves of the evaluations of one kind (same fidelity, inherited or not) finished before this one."""

    curves: tuple[Curve, ...] = ()

    def at(self, share: float, *, complete_only: bool = False) -> list[float]:
        """The finite values reported at ``share`` (by completed evaluations only, when asked)."""
        out = []
        for c in self.curves:
            if complete_only and not c.complete:
                continue
            v = c.values.get(share)
            if v is not None and math.isfinite(v):
                out.append(v)
        return out

    @property
    def completed(self) -> int:
        return sum(c.complete for c in self.curves)


class Pruner(ABC):
    """Decides from a learning curve whether an evaluation stops early. Subclasses set ``name`` and write
    :meth:`points` and :meth:`prune`; both are pure (no state), so pruning never breaks resume."""

    name: ClassVar[str] = ""

    @abstractmethod
    def points(self) -> tuple[float, ...]:
        """The shares of an evaluation's training (in (0, 1), increasing) at which it reports its value."""

    @abstractmethod
    def prune(self, share: float, curve: Mapping[float, float], history: History) -> bool:
        """Whether to stop an evaluation that reported ``curve`` (its values so far, higher is better; the last
        at ``share``), given the ``history`` of earlier evaluations."""


PRUNERS: Registry[type[Pruner]] = Registry("pruner")


@PRUNERS.register("none")
class NopPruner(Pruner):
    """Never prunes (the default): every evaluation trains in full."""

    def points(self) -> tuple[float, ...]:
        return ()

    def prune(self, share: float, curve: Mapping[float, float], history: History) -> bool:
        return False


def _interval_points(interval: float) -> tuple[float, ...]:
    n = max(1, round(1 / interval))
    return tuple(round(i * interval, 6) for i in range(1, n) if i * interval < 1 - 1e-9)


@PRUNERS.register("percentile")
class PercentilePruner(Pruner):
    """Optuna's ``PercentilePruner``: stop an evaluation whose best value so far is below a percentile of the
    completed evaluations' values at the same point of their training.

    ``percentile``: the percentile (0 to 100) an evaluation must reach. ``n_startup_trials``: nothing is pruned
    until that many evaluations have completed. ``warmup``: nothing is pruned before that share of the training.
    ``interval``: the share of the training between two reports. ``n_min_trials``: nothing is pruned at a point
    where fewer completed evaluations reported.
    """

    def __init__(
        self, percentile: float = 50.0, *, n_startup_trials: int = 5, warmup: float = 0.0, interval: float = 0.25,
        n_min_trials: int = 1,
    ) -> None:
        self.percentile = check_number("percentile", percentile, minimum=0.0, maximum=100.0)
        self.n_startup_trials = check_int("n_startup_trials", n_startup_trials, 0)
        self.warmup = check_number("warmup", warmup, minimum=0.0, below=1.0)
        self.interval = check_number("interval", interval, above=0.0, below=1.0)
        self.n_min_trials = check_int("n_min_trials", n_min_trials, 1)

    def points(self) -> tuple[float, ...]:
        return _interval_points(self.interval)

    def prune(self, share: float, curve: Mapping[float, float], history: History) -> bool:
        if share < self.warmup or history.completed < self.n_startup_trials:
            return False
        others = history.at(share, complete_only=True)
        if len(others) < self.n_min_trials:
            return False
        best = max((v for v in curve.values() if math.isfinite(v)), default=-math.inf)
        return best < _percentile(sorted(others), self.percentile)


@PRUNERS.register("median")
class MedianPruner(PercentilePruner):
    """Optuna's ``MedianPruner``: stop an evaluation whose best value so far is below the median of the completed
    evaluations' values at the same point of their training.

    ``n_startup_trials``: nothing is pruned until that many evaluations have completed. ``warmup``: nothing is
    pruned before that share of the training. ``interval``: the share of the training between two reports.
    ``n_min_trials``: nothing is pruned at a point where fewer completed evaluations reported.
    """

    def __init__(
        self, *, n_startup_trials: int = 5, warmup: float = 0.0, interval: float = 0.25, n_min_trials: int = 1
    ) -> None:
        super().__init__(
            50.0, n_startup_trials=n_startup_trials, warmup=warmup, interval=interval, n_min_trials=n_min_trials
        )


def _percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of ``ordered`` (ascending), linearly interpolated as numpy's default."""
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@PRUNERS.register("asha")
class SuccessiveHalvingPruner(Pruner):
    """Asynchronous successive halving (ASHA, Li et al. 2020; Optuna's ``SuccessiveHalvingPruner``).

    Rung ``k`` is at ``min_resource * reduction_factor ** (min_early_stopping_rate + k)`` of an evaluation's
    training (the rungs below 1). At each rung the evaluation goes on only if its value is among the best
    1 / reduction_factor of all values reported at that rung so far, its own included (while there are fewer
    than that many, only if it is the best, as Optuna does).

    ``min_resource``: the share of the training at the first rung. ``reduction_factor``: each rung keeps the best
    one in that many. ``min_early_stopping_rate``: the first rung is that many rungs above ``min_resource``.
    """

    def __init__(self, *, min_resource: float = 1 / 9, reduction_factor: int = 3, min_early_stopping_rate: int = 0) -> None:
        self.min_resource = check_number("min_resource", min_resource, above=0.0, below=1.0)
        self.reduction_factor = check_int("reduction_factor", reduction_factor, 2)
        self.min_early_stopping_rate = check_int("min_early_stopping_rate", min_early_stopping_rate, 0)

    def points(self) -> tuple[float, ...]:
        out = []
        k = self.min_early_stopping_rate
        while (share := self.min_resource * self.reduction_factor**k) < 1 - 1e-9:
            out.append(round(share, 6))
            k += 1
        return tuple(out)

    def prune(self, share: float, curve: Mapping[float, float], history: History) -> bool:
        value = curve.get(share)
        if value is None or not math.isfinite(value):
            return True
        competing = sorted([*history.at(share), value])
        index = max(0, len(competing) // self.reduction_factor - 1)
        return value < competing[-(index + 1)]


PRUNERS.add("successive_halving", SuccessiveHalvingPruner)


class Reporter:
    """What a fitness reports to during one evaluation (passed to ``evaluate`` as ``reporter=``).

    ``points``: where to report (shares of this evaluation's training). :meth:`report` takes the metrics there
    (the run's first objective among them); :meth:`should_prune` says whether to stop now (then raise
    :class:`TrialPruned`). The engine reads back :attr:`curve` and :attr:`last` (the metrics of the last report).

    Example (a plug-in fitness)::

        for epoch in range(epochs):
            train_one_epoch()
            if reporter is not None and (epoch + 1) / epochs in reporter.points:
                reporter.report({"val_acc": validate()}, (epoch + 1) / epochs)
                if reporter.should_prune():
                    raise TrialPruned()
    """

    def __init__(self, pruner: Pruner, history: History, metric: str, weight: float) -> None:
        self.pruner, self.history, self.metric, self.weight = pruner, history, metric, weight
        self.points: tuple[float, ...] = tuple(pruner.points())
        #: ``{share: value}`` reported so far, higher is better (the metric times the objective's sign)
        self.curve: dict[float, float] = {}
        #: the metrics of the last report (a pruned evaluation's result)
        self.last: dict[str, Any] = {}
        self.share: float | None = None

    def report(self, metrics: Mapping[str, Any], share: float) -> None:
        """The metrics at ``share`` of this evaluation's training."""
        self.last, self.share = dict(metrics), float(share)
        value: Any = metrics.get(self.metric)
        try:
            self.curve[self.share] = float(value) * (1.0 if self.weight > 0 else -1.0)
        except (TypeError, ValueError):
            self.curve[self.share] = -math.inf

    def should_prune(self) -> bool:
        """Whether the evaluation should stop at its last report."""
        if self.share is None:
            return False
        try:
            return bool(self.pruner.prune(self.share, dict(self.curve), self.history))
        except Exception as exc:  # a plug-in pruner's bug: the evaluation fails saying whose
            name = self.pruner.name or type(self.pruner).__name__
            raise RuntimeError(f"pruner '{name}' raised {type(exc).__name__}: {exc}") from exc


def make_pruner(name: str, params: Mapping[str, Any]) -> Pruner:
    """The registered pruner ``name`` built with ``params``."""
    return PRUNERS.get(name)(**params)
