"""Fitness functions: a pure function of (genome, settings, seed) -> metrics.

A fitness runs inside a worker process; it never touches the journal or the
strategy. It returns a ``dict`` of plain floats (``val_acc`` as a fraction in
[0, 1], ``params``, ``train_s``, ...). Anything that goes wrong is raised; the
engine records it as a failed evaluation with the worst fitness.
"""

from __future__ import annotations

import functools
import inspect
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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Record the arguments each subclass's constructor is called with (defaults filled in): they are the
        fitness's settings (:meth:`settings`), whatever attributes the subclass keeps them in."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None or getattr(init, "_records_arguments", False):
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording(self: Any, *args: Any, **kw: Any) -> None:
            init(self, *args, **kw)
            try:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
            except TypeError:  # init accepted what its signature does not say: leave the record as it is
                return
            arguments = dict(bound.arguments)
            arguments.pop(next(iter(signature.parameters)), None)  # self
            for name, p in signature.parameters.items():
                if p.kind == p.VAR_KEYWORD:
                    arguments.update(arguments.pop(name, {}))
                elif p.kind == p.VAR_POSITIONAL:
                    arguments.pop(name, None)
            self._constructor_arguments = arguments

        recording._records_arguments = True  # type: ignore[attr-defined]
        cls.__init__ = recording  # type: ignore[method-assign]

    def check_space(self, space: SearchSpace) -> None:
        """Raise ``ValueError`` (saying why) if this fitness cannot score genomes of ``space``; default: any space."""

    @abstractmethod
    def evaluate(
        self, genome: Genome, *, space: SearchSpace, dataset: Dataset | None, seed: int
    ) -> dict[str, float]:
        """Metrics of ``genome``; raise on failure."""

    def settings(self) -> dict[str, Any]:
        """The settings that change results (part of the evaluation cache's key): by default every argument the
        constructor was called with (its defaults filled in), and ``self.params`` where a fitness keeps one."""
        return {**getattr(self, "_constructor_arguments", {}), **dict(getattr(self, "params", {}))}


FITNESSES: Registry[type[FitnessFunction]] = Registry("fitness")
