"""Evaluation backends: where fitness functions run.

All backends share one small interface: :meth:`submit` a :class:`Job` while
:meth:`free_slots` is positive, and :meth:`wait` for finished
:class:`JobResult` objects as they complete.

* :class:`InProcessBackend` (``workers: 0``): evaluations run in the calling
  process, one at a time. For debugging and cheap fitness functions.
* :class:`ProcessPoolBackend` (``workers: N``): N persistent worker processes
  (``spawn``), each building the space, dataset and fitness once, with one
  intra-op thread each. A worker that crashes or exceeds the time limit is
  replaced; its evaluation is retried once, then reported as failed with the reason.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import signal
import time
import traceback
from multiprocessing.connection import wait as mp_wait
from typing import Any

from evonas.config import Experiment

__all__ = ["Job", "JobResult", "Backend", "InProcessBackend", "ProcessPoolBackend", "make_backend", "default_workers"]


@dataclasses.dataclass(frozen=True)
class Job:
    """One evaluation: the genome (as a dict) and its seed."""

    trial: int
    genome: dict[str, Any]
    seed: int
    key: str = ""
    attempt: int = 0


@dataclasses.dataclass(frozen=True)
class JobResult:
    trial: int
    status: str  # "ok" | "failed"
    metrics: dict[str, Any]
    error: str | None
    wall_s: float
    worker: str
    #: set when the result comes from the journal (a replay), not from an evaluation
    record: Any = None


class EvalContext:
    """What an evaluation needs, built once per process from the experiment."""

    def __init__(self, experiment: Experiment) -> None:
        from evonas.engine.build import build_dataset, build_fitness, build_space, import_plugins

        import_plugins(experiment)
        self.space = build_space(experiment)
        self.fitness = build_fitness(experiment)
        self.dataset = build_dataset(experiment) if self.fitness.needs_dataset else None

    @classmethod
    def of(cls, space: Any, fitness: Any, dataset: Any) -> "EvalContext":
        """A context from components already built (the main process has them after validation)."""
        ctx = cls.__new__(cls)
        ctx.space, ctx.fitness, ctx.dataset = space, fitness, dataset
        return ctx

    def run(self, job: Job, worker: str) -> JobResult:
        start = time.perf_counter()
        try:
            genome = self.space.from_dict(job.genome)
            metrics = self.fitness.evaluate(genome, space=self.space, dataset=self.dataset, seed=job.seed)
            metrics = {k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v) for k, v in metrics.items()}
            status, error = "ok", None
        except Exception as exc:  # the run goes on: record the failure with its reason
            metrics, status = {}, "failed"
            error = f"{type(exc).__name__}: {exc}".strip()
        return JobResult(job.trial, status, metrics, error, time.perf_counter() - start, worker)


class Backend:
    """Interface of evaluation backends."""

    slots: int = 1

    def free_slots(self) -> int:
        raise NotImplementedError

    def submit(self, job: Job) -> None:
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        """Finished results (blocks until at least one, or ``timeout`` seconds)."""
        raise NotImplementedError

    def busy(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InProcessBackend(Backend):
    """Runs each evaluation in this process when submitted."""

    slots = 1

    def __init__(self, experiment: Experiment, context: EvalContext | None = None) -> None:
        self.context = context or EvalContext(experiment)
        self._done: list[JobResult] = []

    def free_slots(self) -> int:
        return 0 if self._done else 1

    def busy(self) -> int:
        return len(self._done)

    def submit(self, job: Job) -> None:
        self._done.append(self.context.run(job, "main"))

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        out, self._done = self._done, []
        return out


def _worker_main(conn: Any, experiment: Experiment, name: str, threads: int) -> None:
    """Worker process: build the context once, then evaluate jobs until told to stop.

    Ctrl-C is the main process's to handle (it stops the run and closes the pool), so workers ignore it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch

        torch.set_num_threads(threads)
        context = EvalContext(experiment)
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        return
    conn.send(("ready", None, None))
    while True:
        try:
            job = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if job is None:
            return
        conn.send(("result", context.run(job, name), None))


@dataclasses.dataclass
class _Worker:
    name: str
    process: Any
    conn: Any
    job: Job | None = None
    sent_at: float = 0.0
    ready_at: float | None = None


class WorkerStartError(RuntimeError):
    """A worker could not build the experiment's components."""


class ProcessPoolBackend(Backend):
    """``n`` persistent worker processes with per-evaluation time limits and crash recovery."""

    def __init__(
        self, experiment: Experiment, n: int, *, timeout: float | None = None, threads: int = 1, retries: int = 1
    ) -> None:
        self.experiment = experiment
        self.slots = n
        self.timeout = timeout
        self.threads = threads
        self.retries = retries
        self._ctx = mp.get_context("spawn")
        self._gpus = _cuda_count()
        self._workers = [self._start(i) for i in range(n)]
        self._pending: list[JobResult] = []
        self.restarts = 0

    def _start(self, i: int) -> _Worker:
        parent, child = self._ctx.Pipe()
        name = f"w{i}"
        env_before = os.environ.get("CUDA_VISIBLE_DEVICES")
        if self._gpus:
            os.environ["CUDA_VISIBLE_DEVICES"] = str(i % self._gpus)
        try:
            proc = self._ctx.Process(
                target=_worker_main, args=(child, self.experiment, name, self.threads), daemon=True, name=f"evonas-{name}"
            )
            proc.start()
        finally:
            if self._gpus:
                if env_before is None:
                    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    os.environ["CUDA_VISIBLE_DEVICES"] = env_before
        child.close()
        return _Worker(name, proc, parent)

    def free_slots(self) -> int:
        return sum(w.job is None for w in self._workers)

    def busy(self) -> int:
        return sum(w.job is not None for w in self._workers) + len(self._pending)

    def submit(self, job: Job) -> None:
        for w in self._workers:
            if w.job is None:
                w.job, w.sent_at = job, time.monotonic()
                w.conn.send(job)
                return
        raise RuntimeError("no free worker")

    def _replace(self, w: _Worker) -> None:
        if w.process.is_alive():
            w.process.kill()
        w.process.join(timeout=5)
        w.conn.close()
        fresh = self._start(int(w.name[1:]))
        w.process, w.conn, w.ready_at = fresh.process, fresh.conn, None
        self.restarts += 1

    def _lost(self, w: _Worker, reason: str) -> None:
        job = w.job
        assert job is not None
        w.job = None
        self._replace(w)
        if job.attempt < self.retries:
            self.submit(dataclasses.replace(job, attempt=job.attempt + 1))
        else:
            self._pending.append(JobResult(job.trial, "failed", {}, reason, time.monotonic() - w.sent_at, w.name))

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            busy = [w for w in self._workers if w.job is not None]
            if not busy:
                return []
            now = time.monotonic()
            wait_for = None if deadline is None else max(0.0, deadline - now)
            if self.timeout is not None:
                for w in busy:
                    start = max(w.sent_at, w.ready_at or now)
                    left = max(0.0, start + self.timeout - now) if w.ready_at else self.timeout
                    wait_for = left if wait_for is None else min(wait_for, left)
            handles = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            ready = set(mp_wait(handles, timeout=wait_for))
            for w in busy:
                if w.conn in ready:
                    try:
                        kind, payload, detail = w.conn.recv()
                    except (EOFError, OSError):
                        self._lost(w, f"worker died (exit code {w.process.exitcode})")
                        continue
                    if kind == "ready":
                        w.ready_at = time.monotonic()
                    elif kind == "result":
                        w.job = None
                        self._pending.append(payload)
                    else:
                        self.close()
                        raise WorkerStartError(payload)
                elif w.process.sentinel in ready:
                    w.process.join(timeout=1)
                    self._lost(w, f"worker died (exit code {w.process.exitcode})")
                elif self.timeout is not None and w.ready_at is not None:
                    if time.monotonic() - max(w.sent_at, w.ready_at) > self.timeout:
                        self._lost(w, f"timed out after {self.timeout:g} s")
            if deadline is not None and time.monotonic() >= deadline:
                break
        out, self._pending = self._pending, []
        return out

    def close(self) -> None:
        for w in self._workers:
            try:
                w.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        for w in self._workers:
            w.process.join(timeout=2)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(timeout=2)
            w.conn.close()
        self._workers = []


def _cuda_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        return 0


def default_workers() -> int:
    """One per GPU if there are GPUs, else one per usable core."""
    gpus = _cuda_count()
    if gpus:
        return gpus
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def make_backend(experiment: Experiment, workers: int | str | None = None, context: EvalContext | None = None) -> Backend:
    """The backend for ``workers`` (default: the experiment's): 0 in-process, N worker processes, 'auto'."""
    n = experiment.workers if workers is None else workers
    n = default_workers() if n == "auto" else int(n)
    if n == 0:
        return InProcessBackend(experiment, context)
    return ProcessPoolBackend(experiment, n, timeout=experiment.timeout)
