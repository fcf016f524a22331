"""Fitness functions: a pure function of (genome, settings, seed) -> metrics.

A fitness runs inside a worker process; it never touches the journal or the
strategy. It returns a ``dict`` of plain floats (``val_acc`` as a fraction in
[0, 1], ``params``, ``train_s``, ...). Anything that goes wrong is raised; the
engine records it as a failed evaluation with the worst fitness.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from evonas.datasets.base import Dataset
from evonas.registry import Registry
from evonas.spaces.base import Genome, SearchSpace

__all__ = ["FitnessFunction", "FITNESSES", "EvaluationError"]


class EvaluationError(RuntimeError):
    """An evaluation that failed for a known reason (NaN loss, out of memory, ...)."""


class FitnessFunction(ABC):
    """Scores a genome. Subclasses set ``name`` and implement :meth:`evaluate`.

    ``needs_dataset = False`` lets a fitness (a table lookup, a toy score) run without loading data.
    """

    name: ClassVar[str] = ""
    needs_dataset: ClassVar[bool] = True
    #: the metrics :meth:`evaluate` reports (objectives are checked against it; empty: not declared).
    metrics: ClassVar[tuple[str, ...]] = ()
    #: results go to the evaluation cache across runs (False where evaluating is cheaper than a lookup)
    cacheable: ClassVar[bool] = True
    #: :meth:`evaluate` takes ``fidelity=`` (a share of the full training) for multi-fidelity strategies
    supports_fidelity: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        if params:
            raise TypeError(f"{type(self).__name__} takes no parameters, got {sorted(params)}")

    def check_space(self, space: SearchSpace) -> None:
        """Raise ``ValueError`` (saying why) if this fitness cannot score genomes of ``space``; default: any space."""

    @abstractmethod
    def evaluate(
        self, genome: Genome, *, space: SearchSpace, dataset: Dataset | None, seed: int
    ) -> dict[str, float]:
        """Metrics of ``genome``; raise on failure."""

    def settings(self) -> dict[str, Any]:
        """The settings that change results (part of cache keys); default: the constructor params."""
        return dict(getattr(self, "params", {}))


FITNESSES: Registry[type[FitnessFunction]] = Registry("fitness")
