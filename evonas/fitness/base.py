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
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Mapping

from evonas.datasets.base import Dataset
from evonas.registry import Registry
from evonas.spaces.base import Genome, SearchSpace

__all__ = ["FitnessFunction", "FITNESSES", "EvaluationError"]


class EvaluationError(RuntimeError):
    """An evaluation that failed for a known reason (NaN loss, out of memory, ...)."""


class FitnessFunction(ABC):
    """Scores a genome. Subclasses set ``name`` and implement :meth:`evaluate`.

    The engine reads only what is declared here; a subclass overrides the defaults it needs (as a class
    attribute, or on the instance where it depends on the parameters, as ``metrics`` and ``cost_input`` may).
    """

    name: ClassVar[str] = ""
    #: the engine loads the experiment's dataset and passes it to :meth:`evaluate` (False: a table lookup, a toy
    #: score, which run without data and get ``dataset=None``)
    needs_dataset: ClassVar[bool] = True
    #: the metrics :meth:`evaluate` reports (objectives are checked against it; empty: not declared).
    metrics: tuple[str, ...] = ()
    #: metrics reported only when a parameter turns them on, with that parameter (``{"latency_ms": "latency: true"}``):
    #: an objective that names one is told which
    optional_metrics: ClassVar[dict[str, str]] = {}
    #: the values a metric can take, ``{"val_acc": (0.0, 1.0)}`` (bounds included; ``math.inf`` for none; set on
    #: the instance where they depend on the parameters): a constraint that no value in the range meets
    #: (``val_acc >= 95`` on a fraction) is refused before the run
    metric_ranges: Mapping[str, tuple[float, float]] = MappingProxyType({})
    #: parameters that say how an evaluation runs on this machine, not what it computes (the device, threads, a batch
    #: size for scoring): a resume may change them in config.yaml (another machine), where others are refused
    runtime_params: ClassVar[tuple[str, ...]] = ()
    #: results go to the evaluation cache across runs (False where evaluating is cheaper than a lookup)
    cacheable: ClassVar[bool] = True
    #: :meth:`evaluate` takes ``fidelity=`` (a share of the full training) for multi-fidelity strategies
    supports_fidelity: ClassVar[bool] = False
    #: :meth:`evaluate` takes ``reporter=`` (:class:`evonas.pruners.Reporter`): it reports the objective at the
    #: reporter's points and raises :class:`evonas.pruners.TrialPruned` when told to (``pruner:``)
    supports_pruning: ClassVar[bool] = False
    #: :meth:`evaluate` takes ``init_state=`` (a parent's trained ``state_dict``: start from it wherever a tensor's
    #: name and shape match) and ``keep_state=`` (called with the trained ``state_dict``) (``inherit:``)
    supports_inheritance: ClassVar[bool] = False
    #: the input shape and number of classes the cheap metrics (params, flops, constraints) are counted at when
    #: there is no dataset (``needs_dataset = False``), e.g. a table's networks; ``None``: the space's example
    #: input shape and 10 classes
    cost_input: tuple[tuple[int, ...], int] | None = None
    #: the settings a fitness reports as its own (written to the evaluation cache's key with the constructor's
    #: arguments, see :meth:`settings`); ``evonas export --epochs`` makes the fitness again from them
    params: Mapping[str, Any] = MappingProxyType({})
    #: the training passes :meth:`fit` makes over the training split (``None``: it trains nothing, or does not say)
    epochs: int | None = None
    #: the arguments the constructor was called with, defaults filled in (recorded by ``__init_subclass__``)
    _constructor_arguments: Mapping[str, Any] = MappingProxyType({})

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

    def fit(
        self, genome: Genome, *, space: SearchSpace, dataset: Dataset, seed: int,
        on_epoch: Callable[[int, float], None] | None = None,
    ) -> tuple[Any, dict[str, float]]:
        """Train like :meth:`evaluate` and return the trained network (a ``torch.nn.Module`` in eval mode) with
        its metrics, measured on ``dataset``'s validation split; ``on_epoch(epoch, train_loss)`` after each epoch.
        ``evonas export`` calls it; a fitness that trains no network leaves it out (see :attr:`trains`)."""
        raise NotImplementedError(f"fitness '{self.name or type(self).__name__}' trains no network")

    @property
    def trains(self) -> bool:
        """Whether this fitness implements :meth:`fit` (``evonas export`` can retrain its networks)."""
        return type(self).fit is not FitnessFunction.fit

    def settings(self) -> dict[str, Any]:
        """The settings that change results (part of the evaluation cache's key): by default every argument the
        constructor was called with (its defaults filled in), and ``self.params`` where a fitness keeps one."""
        return {**self._constructor_arguments, **dict(self.params)}

    def runtime(self) -> dict[str, Any]:
        """What this machine makes of the settings, where it changes results (also part of the evaluation cache's
        key): the ``train`` fitness gives its device and precision (``amp: auto`` is bf16 on one CPU and fp32 on
        another). Empty by default."""
        return {}


FITNESSES: Registry[type[FitnessFunction]] = Registry("fitness")
