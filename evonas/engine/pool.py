"""The local backend: persistent worker processes on this machine (``backend: local``, the default).

Each worker (``spawn``) builds the experiment's space, dataset and fitness once
and then evaluates jobs sent over a pipe, with ``num_cpus`` intra-op threads,
pinned to its own GPU or sharing one. A worker that crashes or exceeds the
time limit is replaced and its evaluation retried.
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
from evonas.engine.backends import BACKENDS, Backend, EvalContext, Job, JobResult, _cuda_count, default_workers

__all__ = ["ProcessPoolBackend", "WorkerStartError", "gpu_assignment"]

#: environment variables that size a worker's thread pools, set to its ``num_cpus`` before it starts
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _worker_main(conn: Any, experiment: Experiment, name: str, threads: int) -> None:
    """Worker process: build the context once, then evaluate jobs until told to stop.

    Ctrl-C is the main process's to handle (it stops the run and closes the pool), so workers ignore it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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
    gpus: str | None = None
    job: Job | None = None
    sent_at: float = 0.0
    ready_at: float | None = None
    started_at: float = dataclasses.field(default_factory=time.time)
    done: int = 0
    restarts: int = 0


class WorkerStartError(RuntimeError):
    """A worker could not build the experiment's components."""


def gpu_assignment(workers: int, gpus: int, num_gpus: float) -> list[str | None]:
    """``CUDA_VISIBLE_DEVICES`` for each of ``workers`` workers, each using ``num_gpus`` of ``gpus`` GPUs.

    ``num_gpus`` 1: a GPU each (round robin when there are more workers than GPUs); a fraction 1/k: k
    workers share each GPU; an integer k > 1: k GPUs each; 0: no GPU (``""``). ``None`` for every
    worker when the machine has no GPU.

    Example::

        gpu_assignment(4, 2, 0.5)   # -> ['0', '0', '1', '1']
    """
    if not gpus:
        return [None] * workers
    if num_gpus <= 0:
        return [""] * workers
    if num_gpus < 1:
        share = max(1, round(1 / num_gpus))
        return [str((i // share) % gpus) for i in range(workers)]
    k = int(num_gpus)
    return [",".join(str((i * k + j) % gpus) for j in range(k)) for i in range(workers)]


@BACKENDS.register("local")
class ProcessPoolBackend(Backend):
    """Persistent worker processes on this machine, with per-evaluation time limits and crash recovery.

    ``slots`` workers (default: one per GPU if there are GPUs, else one per core), each with
    ``num_cpus`` intra-op threads and ``num_gpus`` GPUs (a fraction shares a GPU: ``0.5`` puts two
    workers on each; default 1 when there are GPUs). A crashed or timed-out evaluation is retried
    ``retries`` times on a fresh worker, then recorded as failed with the reason.

    Example (experiment file)::

        workers: 4
        backend: {name: local, params: {num_cpus: 1, num_gpus: 0.5}}
    """

    def __init__(
        self,
        experiment: Experiment,
        slots: int | None = None,
        /,
        *,
        context: EvalContext | None = None,
        num_cpus: int = 1,
        num_gpus: float | None = None,
        retries: int = 1,
    ) -> None:
        self.check(num_cpus=num_cpus, num_gpus=num_gpus, retries=retries)
        gpus = _cuda_count()
        num_gpus = (1.0 if gpus else 0.0) if num_gpus is None else float(num_gpus)
        self.experiment = experiment
        self.slots = int(slots) if slots is not None else default_workers(num_cpus, num_gpus)
        self.timeout = experiment.timeout
        self.threads = num_cpus
        self.retries = retries
        self._ctx = mp.get_context("spawn")
        self._gpus = gpu_assignment(self.slots, gpus, num_gpus)
        self._workers = [self._start(i) for i in range(self.slots)]
        self._pending: list[JobResult] = []
        self.restarts = 0

    @classmethod
    def check(cls, num_cpus: int = 1, num_gpus: float | None = None, retries: int = 1, **_: Any) -> None:
        if isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1:
            raise ValueError(f"num_cpus: expected an integer >= 1, got {num_cpus!r}")
        if num_gpus is not None and (num_gpus < 0 or (num_gpus > 1 and num_gpus != int(num_gpus))):
            raise ValueError(f"num_gpus: expected 0, a fraction up to 1, or a whole number of GPUs, got {num_gpus!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries: expected an integer >= 0, got {retries!r}")

    def _start(self, i: int) -> _Worker:
        parent, child = self._ctx.Pipe()
        name = f"w{i}"
        gpus = self._gpus[i]
        # The child's environment is set before it starts: thread pools (OpenMP, MKL, OpenBLAS) size
        # themselves when first loaded, and a worker that sets them later still runs one thread per core
        # in some kernels (measured: two workers on two cores were 2.2x slower per evaluation).
        env = {name_: str(self.threads) for name_ in _THREAD_VARIABLES}
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpus
        before = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            proc = self._ctx.Process(
                target=_worker_main, args=(child, self.experiment, name, self.threads), daemon=True, name=f"evonas-{name}"
            )
            proc.start()
        finally:
            for k, v in before.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        return _Worker(name, proc, parent, gpus)

    def free_slots(self) -> int:
        return sum(w.job is None for w in self._workers)

    def busy(self) -> int:
        return sum(w.job is not None for w in self._workers) + len(self._pending)

    def states(self) -> list[dict[str, Any]]:
        out = []
        for w in self._workers:
            state = "busy" if w.job is not None else ("idle" if w.ready_at is not None else "starting")
            since = time.time() - (time.monotonic() - w.sent_at) if w.job is not None else w.started_at
            out.append({
                "worker": w.name, "pid": w.process.pid, "state": state, "gpu": w.gpus,
                "trial": None if w.job is None else w.job.trial, "since": since, "done": w.done, "restarts": w.restarts,
            })  # fmt: skip
        return out

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
        w.process, w.conn, w.ready_at, w.started_at = fresh.process, fresh.conn, None, fresh.started_at
        w.restarts += 1
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
                        w.done += 1
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
