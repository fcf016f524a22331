"""Evaluation backends: where fitness functions run.

All backends share one small interface: :meth:`submit` a :class:`Job` while
:meth:`free_slots` is positive, and :meth:`wait` for finished
:class:`JobResult` objects as they complete.

* :class:`InProcessBackend` (``workers: 0``): evaluations run in the calling
  process, one at a time. For debugging and cheap fitness functions.
* :class:`ProcessPoolBackend` (``backend: local``, ``workers: N``): N persistent
  worker processes (``spawn``), each building the space, dataset and fitness
  once, with ``num_cpus`` intra-op threads (default 1), each pinned to its own
  GPU or sharing one (``num_gpus: 0.5``: two workers per GPU). A worker that
  crashes or exceeds the time limit is replaced; its evaluation is retried
  once, then reported as failed with the reason.
* :class:`evonas.engine.ray_backend.RayBackend` (``backend: ray``): each
  evaluation a Ray task, on a local Ray instance or an existing cluster.

Backends are registered by name in :data:`BACKENDS`; the experiment's
``backend: {name, params}`` picks one and its parameters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from evonas.config import Experiment
from evonas.datasets import DATASETS
from evonas.engine.components import build_dataset, build_fitness, build_space
from evonas.engine.plugins import exit_text, import_plugins, is_plugin_file
from evonas.engine.weights import WeightStore
from evonas.operators.base import describe_error
from evonas.pruners import Reporter, TrialPruned
from evonas.registry import Registry

__all__ = [
    "BACKENDS",
    "Job",
    "JobResult",
    "Backend",
    "InProcessBackend",
    "make_backend",
    "default_workers",
    "evaluation_seed",
    "usable_cores",
]

#: evaluation backends by name (``backend:`` in an experiment file)
BACKENDS: Registry[Any] = Registry("backend")
# The built-in backends: declared here, imported when first used (their modules start processes, Ray).
BACKENDS.lazy("local", "evonas.engine.pool")
BACKENDS.lazy("ray", "evonas.engine.ray_backend")


def evaluation_seed(run_seed: int, key: str) -> int:
    """The seed of one evaluation: a function of the run's seed and the genome key only.

    The same genome gets the same seed whatever the order, number of workers or resumes.
    """
    digest = hashlib.sha256(f"{run_seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclasses.dataclass(frozen=True)
class Pruning:
    """A job's pruning (``pruner:``): the pruner, the curves of earlier evaluations of its kind, and the objective
    it reports (``weight`` > 0: higher is better)."""

    pruner: Any
    history: Any
    metric: str
    weight: float


@dataclasses.dataclass(frozen=True)
class Inheritance:
    """A job's weights (``inherit:``): the run's weight store, where the trained weights are kept (unless larger than
    ``max_bytes``, the store's bound), and the parent whose weights the network starts from (then it trains
    ``fidelity`` of the full training)."""

    store: str
    parent: str | None = None
    fidelity: float = 1.0
    max_bytes: int | None = None


@dataclasses.dataclass(frozen=True)
class Job:
    """One evaluation: the genome (as a dict) and its seed."""

    trial: int
    genome: dict[str, Any]
    seed: int
    key: str = ""
    attempt: int = 0
    #: share of the full training (multi-fidelity); ``None``: the full evaluation
    fidelity: float | None = None
    #: evaluate in safe mode (:func:`evonas.fitness.device.safe_mode`): the retry of a worker that died
    safe: bool = False
    #: why earlier attempts failed (a worker's death, a time limit), oldest first
    reasons: tuple[str, ...] = ()
    #: report to a pruner, which may stop the evaluation early (``None``: no pruner)
    pruning: Pruning | None = None
    #: keep the trained weights, and start from a parent's (``None``: no inheritance)
    inheritance: Inheritance | None = None


@dataclasses.dataclass(frozen=True)
class JobResult:
    trial: int
    status: str  # "ok" | "failed" | "pruned"
    metrics: dict[str, Any]
    error: str | None
    wall_s: float
    worker: str
    #: set when the result comes from the journal (a replay), not from an evaluation
    record: Any = None
    #: the result comes from the evaluation cache (:mod:`evonas.engine.cache`), not from a training
    cached: bool = False
    #: the evaluation ran in safe mode (oneDNN off, fp32, contiguous layout) after a worker died on it
    safe_mode: bool = False
    #: what it reported to the pruner: ``((share of its training, value), ...)``, value higher is better
    curve: tuple[tuple[float, float], ...] = ()


class EvalContext:
    """What an evaluation needs, built once per process from the experiment."""

    def __init__(self, experiment: Experiment) -> None:
        import_plugins(experiment)
        self.space = build_space(experiment)
        self.fitness = build_fitness(experiment)
        self.dataset = build_dataset(experiment) if self.fitness.needs_dataset else None
        if self.dataset is not None:  # as the run's process did (engine.build); its parameters say the same
            self.space.bind_input(tuple(self.dataset.input_shape), int(self.dataset.num_classes))

    @classmethod
    def of(cls, space: Any, fitness: Any, dataset: Any) -> "EvalContext":
        """A context from components already built (the main process has them after validation)."""
        ctx = cls.__new__(cls)
        ctx.space, ctx.fitness, ctx.dataset = space, fitness, dataset
        return ctx

    def run(self, job: Job, worker: str) -> JobResult:
        start = time.perf_counter()
        reporter = None
        try:
            genome = self.space.from_dict(job.genome)
            extra: dict[str, Any] = {}
            fidelity = job.fidelity
            if job.pruning is not None and self.fitness.supports_pruning:
                p = job.pruning
                extra["reporter"] = reporter = Reporter(p.pruner, p.history, p.metric, p.weight)
            if job.inheritance is not None and self.fitness.supports_inheritance:
                extra.update(_inheritance(job))
                if "init_state" in extra:  # a child with its parent's weights trains briefly
                    fidelity = job.inheritance.fidelity * (fidelity or 1.0)
            if fidelity is not None and fidelity < 1.0:
                extra["fidelity"] = fidelity
            with _safe_mode(job.safe):
                metrics = self.fitness.evaluate(genome, space=self.space, dataset=self.dataset, seed=job.seed, **extra)
            metrics = plain_metrics(metrics)
            _check_ranges(metrics, getattr(self.fitness, "metric_ranges", None))
            status, error = "ok", None
        except TrialPruned:
            if reporter is not None and reporter.last:
                try:
                    metrics, status, error = plain_metrics(reporter.last), "pruned", None
                    metrics["pruned_at"] = float(reporter.share or 0.0)  # set by the report that set last
                except TypeError as exc:  # what it reported is no dict of numbers
                    metrics, status, error = {}, "failed", f"TypeError: {exc} (in its last report to the pruner)"
            else:
                metrics, status, error = {}, "failed", "TrialPruned: raised without a report to the pruner"
        except Exception as exc:  # the run goes on: record the failure with its reason
            metrics, status = {}, "failed"
            error = describe_error(exc, limit=2000, installed=False)  # with the line of the plug-in that raised
            error += _in_their_network(exc, self.space, self.space.name)
        except SystemExit as exc:  # sys.exit() in the user's fitness: that evaluation failed, not the run (or worker)
            metrics, status = {}, "failed"
            error = f"SystemExit: the fitness called {exit_text(exc)}"
        curve = tuple(sorted(reporter.curve.items())) if reporter is not None else ()
        return JobResult(
            job.trial, status, metrics, error, time.perf_counter() - start, worker, safe_mode=job.safe, curve=curve
        )


def _in_their_network(exc: BaseException, space: Any, name: str) -> str:
    """`` in the network space 'function' (my_space:build) built``: where an error raised inside torch's layers with no
    line of the user's own (a layer size that does not fit the one before) came from, when the user's code built the
    network (a build function, a plug-in space's ``decode``); else ``""``."""
    from evonas.operators.base import raised_at, traceback_frames
    from evonas.registry import is_plugin

    build = space.params.get("build") if name == "function" and isinstance(getattr(space, "params", None), dict) else None
    if not (isinstance(build, str) or is_plugin(type(space))) or raised_at(exc, installed=False):
        return ""
    if not any("/torch/nn/modules/" in f.replace(os.sep, "/") for f, _ in traceback_frames(exc)):  # in a layer's forward
        return ""
    return f" in the network space '{name}'{f' ({build})' if isinstance(build, str) else ''} built for this genome"


#: the longest string a fitness may report as a metric (a note, a path; not an output dump)
MAX_STRING_METRIC = 10_000


def plain_metrics(metrics: Any) -> dict[str, Any]:
    """A fitness's result as the journal stores it: a dict with string keys whose numbers are floats (a numpy
    scalar or a one-element tensor or array too, by ``.item()``); strings, ``None`` and bools stay as they are.
    Raises ``TypeError`` naming what is wrong: the evaluation fails, the run goes on."""
    if not isinstance(metrics, dict):
        raise TypeError(f"the fitness returned {type(metrics).__name__}, not a dict of metrics such as "
                        "{'val_acc': 0.93}")  # fmt: skip
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if not isinstance(key, str):
            raise TypeError(f"the fitness returned a metric named {key!r} ({type(key).__name__}); names are strings")
        if not isinstance(value, (str, bool, int, float, type(None))) and callable(getattr(value, "item", None)):
            try:  # numpy scalars, 0-d arrays, one-element tensors
                value = value.item()
            except (ValueError, RuntimeError, TypeError):
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
        elif isinstance(value, str) and len(value) > MAX_STRING_METRIC:  # it would bloat the journal and every file
            raise TypeError(f"the fitness returned metric '{key}' as a string of {len(value):,} characters; a string "
                            f"metric is at most {MAX_STRING_METRIC:,} (save large outputs to a file of your own)")  # fmt: skip
        elif not isinstance(value, (str, bool, type(None))):
            shape = getattr(value, "shape", None)
            raise TypeError(f"the fitness returned metric '{key}' as a {type(value).__name__}"
                            + (f" of shape {tuple(shape)}" if shape is not None else "")
                            + "; a metric is a number (or a string)")  # fmt: skip
        out[key] = value
    return out


def _check_ranges(metrics: dict[str, Any], ranges: Any) -> None:
    """Raise ``ValueError`` for a finite metric outside the range its fitness declares (``metric_ranges``, checked
    well-formed before the run by :func:`evonas.engine.build.metric_ranges`): the evaluation fails, saying so."""
    for name, (low, high) in (ranges or {}).items():
        value = metrics.get(name)
        if isinstance(value, float) and math.isfinite(value):
            if not low <= value <= high:
                raise ValueError(f"the fitness returned {name}={value:g}, outside the range its metric_ranges "
                                 f"declares ({low:g} to {high:g})")  # fmt: skip


def _inheritance(job: Job) -> dict[str, Any]:
    """The ``evaluate`` arguments of a job's weights: the parent's to start from (when the store still has them)
    and where to keep the trained ones."""
    assert job.inheritance is not None
    store = WeightStore(job.inheritance.store, job.inheritance.max_bytes)
    out: dict[str, Any] = {"keep_state": lambda state: store.save(job.key, state)}
    if job.inheritance.parent is not None:
        state = store.load(job.inheritance.parent)
        if state is not None:
            out["init_state"] = state
    return out


class Backend:
    """Interface of evaluation backends.

    A backend is built as ``cls(experiment, slots, context=..., **params)`` where ``slots`` is how
    many evaluations may run at once (``None``: the backend's own default) and ``params`` come from
    the experiment's ``backend.params``.
    """

    slots: int = 1
    restarts: int = 0
    #: workers replaced by a fresh process between evaluations (the local backend's ``max_tasks_per_child``, ...)
    recycled: int = 0
    #: evaluations run in the run's own process (``workers: 0``): no worker processes, nothing restarts
    in_process: bool = False

    @classmethod
    def check(cls, **params: Any) -> None:
        """Check parameter values before a run starts: ``ValueError`` (bad value) or ``ImportError`` (missing package)."""

    @classmethod
    def connect(cls, **params: Any) -> None:
        """Reach what the backend needs outside this process (a cluster) before the run folder is touched:
        ``ConnectionError``, in one line, when it cannot. The default needs nothing."""

    def free_slots(self) -> int:
        raise NotImplementedError

    def submit(self, job: Job) -> None:
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        """Finished results (blocks until at least one, or ``timeout`` seconds)."""
        raise NotImplementedError

    def busy(self) -> int:
        raise NotImplementedError

    def states(self) -> list[dict[str, Any]]:
        """What each worker is doing, for ``evonas status``: dicts with ``worker``, ``state``
        (``starting``, ``idle`` or ``busy``), ``trial`` and ``since`` (epoch seconds), ``done``, ``restarts``."""
        return []

    #: what writes :meth:`say`'s lines (None: stderr); the run's loop gives one that keeps its progress bar whole
    _writer: Callable[[str], None] | None = None

    def say(self, line: str) -> None:
        """Tell the user ``line`` while the run goes on."""
        if self._writer is not None:
            self._writer(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def said_by(self, say: Callable[[str], None]) -> None:
        """Write the lines :meth:`say` is given with ``say`` from now on."""
        self._writer = say

    def watch(self, started: Callable[[], None]) -> None:
        """Call ``started()`` when an evaluation starts in this process and blocks it (the in-process backend), so
        the run can write ``evonas status`` first; backends whose evaluations run elsewhere need not."""

    def store_after_journal(self) -> None:
        """Keep each result until :meth:`journalled` says the run has journalled it (the evaluation cache
        stores it only then); nothing to do for a backend that keeps no results."""

    def journalled(self, trial: int, keep: bool = True) -> None:
        """Trial ``trial``'s result is in the run's journal (see :meth:`store_after_journal`); ``keep``: whether the run
        counts it a result worth keeping (not an evaluation it judged failed, e.g. an objective that is no number)."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


#: seconds an in-process evaluation takes for the next one's start to be written to ``evonas status``
WATCHED_S = 0.2


class InProcessBackend(Backend):
    """Runs each evaluation in this process when submitted."""

    slots = 1
    in_process = True

    def __init__(self, experiment: Experiment, slots: int | None = None, /, *, context: EvalContext | None = None) -> None:
        self.context = context or EvalContext(experiment)
        self._done: list[JobResult] = []
        self._count = 0
        self._current: tuple[int, float] | None = None  # (trial, since) of the evaluation running now
        self._started: Callable[[], None] | None = None
        self._last_s: float | None = None  # how long the last evaluation took

    def watch(self, started: Callable[[], None]) -> None:
        self._started = started

    def free_slots(self) -> int:
        return 0 if self._done else 1

    def busy(self) -> int:
        return len(self._done)

    def submit(self, job: Job) -> None:
        self._current = (job.trial, time.time())
        start = time.monotonic()
        try:
            # said when the last evaluation took long enough to watch (and at the first): a status write per
            # evaluation of a millisecond would cost more than the evaluation
            if self._started is not None and (self._last_s is None or self._last_s >= WATCHED_S):
                self._started()
            self._done.append(self.context.run(job, "main"))
        finally:
            self._current = None
            self._last_s = time.monotonic() - start
        self._count += 1

    def states(self) -> list[dict[str, Any]]:
        trial, since = self._current if self._current is not None else (None, None)
        return [{"worker": "main", "pid": os.getpid(), "state": "idle" if trial is None else "busy", "trial": trial,
                 "since": since, "done": self._count, "restarts": 0}]  # fmt: skip

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        out, self._done = self._done, []
        return out


def _cuda_count() -> int:
    try:
        import torch  # torch: only to count GPUs (choosing a number of workers)

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        return 0


def default_workers(num_cpus: int = 1, num_gpus: float | None = None) -> int:
    """One worker per GPU if there are GPUs (``1 / num_gpus`` per GPU when they share), else one per usable core."""
    gpus = _cuda_count()
    num_gpus = (1.0 if gpus else 0.0) if num_gpus is None else num_gpus
    if gpus and num_gpus > 0:
        return max(1, int(gpus / num_gpus + 1e-9))
    return max(1, usable_cores() // max(1, num_cpus))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def make_backend(
    experiment: Experiment, workers: int | str | None = None, context: EvalContext | None = None, log: Any = None
) -> Backend:
    """The experiment's backend with ``workers`` slots (default: the experiment's ``workers``).

    ``workers: 0`` evaluates in this process (any backend name); ``'auto'`` lets the backend choose.
    ``log``: a file for what worker processes print (the local backend's ``log``).
    """
    n = experiment.workers if workers is None else workers
    if n == 0:
        return InProcessBackend(experiment, context=context)
    if context is not None:  # components a script registered itself (not under plugins:): the workers import them too
        implied = implied_plugins(experiment, context)
        if implied:
            experiment = dataclasses.replace(experiment, plugins=(*experiment.plugins, *implied))
    slots = None if n == "auto" else int(n)
    cls = BACKENDS.get(experiment.backend.name)
    params = dict(experiment.backend.params)
    if log is not None and experiment.backend.name == "local":
        params.setdefault("log", str(log))
    return cls(experiment, slots, context=context, **params)


def implied_plugins(experiment: Experiment, context: EvalContext) -> list[str]:
    """The modules of ``context``'s plug-in components (space, fitness, dataset, build function) that the
    experiment's ``plugins`` do not name: a script imported them itself, and worker processes, which build the
    components by name, must import them too. A script's own ``__main__`` is left out (spawned workers import the
    script as their ``__mp_main__``, which registers what its top level registers)."""
    from evonas.registry import is_plugin

    listed = {Path(p).stem if is_plugin_file(p) else p for p in experiment.plugins}
    out: list[str] = []
    targets = [type(context.space), type(context.fitness), getattr(context.space, "build_function", None)]
    if context.fitness.needs_dataset and experiment.dataset.name in DATASETS:  # a plug-in's loader, by its name
        targets.append(DATASETS.peek(experiment.dataset.name))
    for target in targets:
        module = getattr(target, "__module__", None)
        if (target is None or not is_plugin(target) or not isinstance(module, str) or module in listed or module in out
                or module in ("__main__", "__mp_main__") or getattr(sys.modules.get(module), "__file__", None) is None):
            continue
        out.append(module)
    return out


def _safe_mode(enabled: bool) -> Any:
    """:func:`evonas.fitness.device.safe_mode` for a retry; nothing otherwise (torch is imported only for a retry:
    a fitness that never touches torch, such as a table's, runs without it)."""
    if not enabled:
        return contextlib.nullcontext()
    from evonas.fitness.device import safe_mode

    return safe_mode()


def connect_backend(experiment: Experiment, workers: int | str | None = None) -> None:
    """Reach the backend of ``experiment`` (run with ``workers``, as :func:`make_backend`) before anything is
    written: ``ConnectionError`` in one line when it cannot be reached."""
    if (experiment.workers if workers is None else workers) != 0:
        BACKENDS.get(experiment.backend.name).connect(**experiment.backend.params)

