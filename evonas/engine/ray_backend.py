"""The Ray backend: each evaluation a Ray task, on a local Ray instance or an existing cluster.

Install with ``pip install 'evonas[ray]'``. Ray is imported only when the
backend is built, so the rest of evonas never pays for it.

Each task carries the genome and its seed and returns metrics, like a local
worker. A Ray worker process builds the experiment's space, dataset and
fitness once (on its first task) and keeps them for the tasks that follow.
An evaluation whose worker dies (a node lost, a process killed) or that runs
past the experiment's ``timeout`` is submitted again, ``retries`` times, as a
new task; after the last try it is recorded as failed with the reason, as with
the local pool. As there, the time limit counts from the start of the
evaluation, not from a fresh worker's start-up: each task tells a small clock
actor when its evaluation starts (one asynchronous call).

Example (experiment file)::

    backend:
      name: ray
      params: {address: auto, num_cpus: 1, num_gpus: 0.5}

or on the command line: ``evonas run exp.yaml --address auto`` (``auto``: the
cluster this machine belongs to; ``ray://host:10001``: a remote one).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from evonas.config import Experiment
from evonas.engine.backends import BACKENDS, Backend, EvalContext, Job, JobResult, _cuda_count

__all__ = ["RayBackend"]

#: per Ray worker process: the experiment's components, built on the first task (keyed by the experiment)
_CONTEXTS: dict[str, EvalContext] = {}


class _Clock:
    """A Ray actor (no CPU) that notes when each evaluation starts, in its own clock (no skew between nodes)."""

    def __init__(self) -> None:
        self.started: dict[tuple[int, int], float] = {}

    def start(self, trial: int, attempt: int) -> None:
        self.started[(trial, attempt)] = time.monotonic()

    def forget(self, tokens: list[tuple[int, int]]) -> None:
        for t in tokens:
            self.started.pop((t[0], t[1]), None)

    def elapsed(self, tokens: list[tuple[int, int]]) -> list[float | None]:
        now = time.monotonic()
        return [now - self.started[(t[0], t[1])] if (t[0], t[1]) in self.started else None for t in tokens]


def _evaluate(experiment: Experiment, job: Job, threads: int, cwd: str, paths: list[str], clock: Any = None) -> JobResult:
    """The Ray task: evaluate one job in a Ray worker process (building the components once per process)."""
    if os.path.isdir(cwd) and os.getcwd() != cwd:
        os.chdir(cwd)  # relative paths in the experiment mean what they meant where the run started
    for path in paths:
        if path not in sys.path and os.path.isdir(path):
            sys.path.append(path)
    fingerprint = json.dumps([experiment.to_dict(), experiment.source], sort_keys=True, default=str)
    context = _CONTEXTS.get(fingerprint)
    if context is None:
        import torch  # torch: in the Ray worker only

        torch.set_num_threads(threads)
        _CONTEXTS.clear()
        context = _CONTEXTS[fingerprint] = EvalContext(experiment)
    import ray  # ray: an optional dependency, imported only when this backend runs

    if clock is not None:
        clock.start.remote(job.trial, job.attempt)
    node = ray.get_runtime_context().get_node_id()[:8]
    return context.run(job, f"ray:{node}:{os.getpid()}")


def _init(ray: Any, address: str | None) -> None:
    """Join the cluster at ``address``, or (``None``) start a Ray instance of the run's own: ``address="local"``, as
    ``ray.init()`` alone would join a cluster someone started on this machine with ``ray start``. Ray's driver
    installs a SIGTERM handler that exits at once; the run's own (a clean stop, as Ctrl-C) is put back."""
    before = signal.getsignal(signal.SIGTERM)
    ray.init(address=address or "local", include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             configure_logging=True)  # fmt: skip
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is not before:
        signal.signal(signal.SIGTERM, before if before is not None else signal.SIG_DFL)


#: how long joining a cluster waits for its head to answer on its port
CONNECT_TIMEOUT_S = 10.0


def _reachable(address: str) -> None:
    """An address ``host:port`` (or ``ray://host:port``) where nothing answers is refused at once: Ray would try to
    reach it again and again, silently, until the run is killed."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or address == "auto":
        return  # 'auto' and the like: Ray looks them up
    host = host.strip("[]") or "127.0.0.1"
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        why = exc.strerror or (f"no answer in {CONNECT_TIMEOUT_S:g} s" if isinstance(exc, TimeoutError) else str(exc))
        raise ConnectionError(f"backend ray: cannot join the Ray cluster at address {address!r}: nothing answers at "
                              f"{host}:{port} ({why}); is the cluster's head running there (ray status), and is the "
                              "port its GCS port (6379 by default; 10001 for ray://)?") from None  # fmt: skip


def _check_gpus(ray: Any, num_gpus: float | None, *, local: bool = False) -> None:
    """A ``num_gpus`` no node of the cluster can give would leave every evaluation waiting, silently: refused.
    ``local``: for the local instance a run is about to start, whose GPUs are this machine's (torch counts them)."""
    if not num_gpus:
        return
    if local:
        have = _cuda_count()
        holder, way_out = "this machine has", "leave num_gpus out, or join a cluster with GPUs: address"
    else:
        have = ray.cluster_resources().get("GPU", 0)
        holder, way_out = "the Ray cluster has", "leave num_gpus out to use the GPUs the cluster has, or none"
    if have < num_gpus:
        raise ConnectionError(f"backend ray: num_gpus: {num_gpus:g} per evaluation, but {holder} {have:g} "
                              f"GPU{'s' if have != 1 else ''}{' for the local Ray instance' if local else ''}: no "
                              f"evaluation could start ({way_out})")  # fmt: skip


@BACKENDS.register("ray")
class RayBackend(Backend):
    """Evaluations as Ray tasks with ``num_cpus`` CPUs and ``num_gpus`` GPUs each (fractions allowed).

    ``address``: ``None`` starts a local Ray instance for the run (shut down after it), ``auto`` joins
    the cluster this machine belongs to, ``ray://host:port`` a remote one. ``slots`` evaluations run at
    once (default: as many as the cluster's CPUs, or GPUs, allow). ``num_gpus`` defaults to 1 when the
    cluster has GPUs. An evaluation whose worker died or timed out is tried again ``retries`` times.
    """

    def __init__(
        self,
        experiment: Experiment,
        slots: int | None = None,
        /,
        *,
        context: EvalContext | None = None,
        address: str | None = None,
        num_cpus: float = 1,
        num_gpus: float | None = None,
        retries: int = 1,
    ) -> None:
        self.check(address=address, num_cpus=num_cpus, num_gpus=num_gpus, retries=retries)
        import ray  # ray: an optional dependency, imported only when this backend is built

        self._ray = ray
        # the connection is this run's to shut down if it made it, here or in connect()
        self._owns, RayBackend._connected = RayBackend._connected, False
        if not ray.is_initialized():
            _init(ray, address)
            self._owns = True
        resources = ray.cluster_resources()
        gpus = resources.get("GPU", 0)
        num_gpus = (1.0 if gpus else 0.0) if num_gpus is None else float(num_gpus)
        if slots is None:
            slots = int(gpus / num_gpus + 1e-9) if gpus and num_gpus else int(resources.get("CPU", 1) / num_cpus + 1e-9)
        self.slots = max(1, int(slots))
        self.timeout = experiment.timeout
        self.retries = retries
        self.threads = max(1, int(num_cpus))
        self._experiment = ray.put(experiment)
        self._task = ray.remote(_evaluate).options(
            num_cpus=num_cpus, num_gpus=num_gpus, max_retries=0, retry_exceptions=False, name="evonas-evaluate"
        )
        self._where = [os.getcwd(), [p for p in sys.path if p and os.path.isdir(p)]]
        self._clock = ray.remote(_Clock).options(num_cpus=0).remote() if self.timeout is not None else None
        #: how long a task may wait for a worker to start before it counts as lost
        self.startup_limit = max(120.0, 2 * (self.timeout or 0))
        self._running: dict[Any, tuple[Job, float, float]] = {}  # ref -> (job, monotonic start, epoch start)
        self._check_at: dict[Any, float] = {}  # ref -> when to look at its time limit next
        self._finished: list[tuple[int, int]] = []
        self._pending: list[JobResult] = []
        self._done = 0

    #: whether :meth:`connect` started the connection that the next backend built takes over
    _connected = False

    @classmethod
    def connect(cls, address: str | None = None, num_gpus: float | None = None, **_: Any) -> None:
        """Join the cluster at ``address`` now, and check that it has the GPUs asked for (a local instance,
        ``address`` ``None``, is started with the run)."""
        import ray

        if address is None:
            if num_gpus and not ray.is_initialized():  # a local instance has this machine's GPUs: torch counts them
                _check_gpus(ray, num_gpus, local=True)
            elif ray.is_initialized():
                _check_gpus(ray, num_gpus)
            return
        if ray.is_initialized():
            _check_gpus(ray, num_gpus)
            return
        _reachable(address)
        try:
            _init(ray, address)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ConnectionError(f"backend ray: cannot join the Ray cluster at address {address!r} "
                                  f"({type(exc).__name__}: {first})") from None  # fmt: skip
        cls._connected = True
        try:
            _check_gpus(ray, num_gpus)
        except ConnectionError:
            ray.shutdown()
            cls._connected = False
            raise

    @classmethod
    def check(
        cls, address: str | None = None, num_cpus: float = 1, num_gpus: float | None = None, retries: int = 1, **_: Any
    ) -> None:
        if importlib.util.find_spec("ray") is None:
            raise ImportError("the ray backend needs Ray: pip install 'evonas[ray]'")
        if address is not None and (not isinstance(address, str) or not address):
            raise ValueError(f"address: expected 'auto', 'host:port' or 'ray://host:port', got {address!r}")
        if isinstance(num_cpus, bool) or not isinstance(num_cpus, (int, float)) or num_cpus <= 0:
            raise ValueError(f"num_cpus: expected a number > 0, got {num_cpus!r}")
        if num_gpus is not None and (isinstance(num_gpus, bool) or num_gpus < 0):
            raise ValueError(f"num_gpus: expected a number >= 0, got {num_gpus!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries: expected an integer >= 0, got {retries!r}")

    def free_slots(self) -> int:
        return self.slots - len(self._running)

    def busy(self) -> int:
        return len(self._running) + len(self._pending)

    def submit(self, job: Job) -> None:
        if len(self._running) >= self.slots:
            raise RuntimeError("no free slot")
        ref = self._task.remote(self._experiment, job, self.threads, *self._where, self._clock)
        self._running[ref] = (job, time.monotonic(), time.time())
        if self.timeout is not None:
            self._check_at[ref] = time.monotonic() + self.timeout

    def states(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {"worker": f"task {job.trial}", "state": "busy", "trial": job.trial, "since": since, "done": None, "restarts": None}
            for job, _, since in self._running.values()
        ]
        idle = self.slots - len(out)
        if idle > 0:
            out.append({"worker": f"{idle} slot(s)", "state": "idle", "trial": None, "since": None, "done": self._done, "restarts": None})
        return out

    def _gather(self, ref: Any) -> None:
        job, started, _ = self._running.pop(ref)
        self._check_at.pop(ref, None)
        if self._clock is not None:
            self._finished.append((job.trial, job.attempt))
            if len(self._finished) >= 256:  # the clock forgets finished evaluations, in batches
                self._clock.forget.remote(self._finished)  # type: ignore[attr-defined,union-attr]  # a Ray actor method
                self._finished = []
        try:
            result = self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:  # the worker or its node died
            if job.attempt < self.retries:
                self.submit(dataclasses.replace(job, attempt=job.attempt + 1, safe=True))
                self.restarts += 1
                return
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            result = JobResult(job.trial, "failed", {}, f"worker died ({type(exc).__name__}: {reason})"[:500],
                               time.monotonic() - started, "ray")  # fmt: skip
        self._done += 1
        self._pending.append(result)

    def _expire(self) -> None:
        """Cancel evaluations past the time limit (from their start), or that never started."""
        if self.timeout is None or self._clock is None:
            return
        now = time.monotonic()
        due = [ref for ref, at in self._check_at.items() if at <= now]
        if not due:
            return
        tokens = [(self._running[ref][0].trial, self._running[ref][0].attempt) for ref in due]
        elapsed = self._ray.get(self._clock.elapsed.remote(tokens))  # type: ignore[attr-defined,union-attr]  # a Ray actor method
        for ref, ran in zip(due, elapsed):
            job, submitted, _ = self._running[ref]
            if ran is None and now - submitted < self.startup_limit:  # still waiting for a worker
                self._check_at[ref] = now + min(1.0, self.timeout)
                continue
            if ran is not None and ran < self.timeout:
                self._check_at[ref] = now + (self.timeout - ran)
                continue
            del self._running[ref], self._check_at[ref]
            self._ray.cancel(ref, force=True)
            self.restarts += 1
            if job.attempt < self.retries:
                self.submit(dataclasses.replace(job, attempt=job.attempt + 1, safe=True))
            else:
                reason = f"timed out after {self.timeout:g} s" if ran is not None else f"did not start within {self.startup_limit:g} s"
                self._pending.append(JobResult(job.trial, "failed", {}, reason, now - submitted, "ray"))

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending and self._running:
            now = time.monotonic()
            wait_for = None if deadline is None else max(0.0, deadline - now)
            if self._check_at:
                left = max(0.0, min(self._check_at.values()) - now)
                wait_for = left if wait_for is None else min(wait_for, left)
            refs = list(self._running)
            ready, _ = self._ray.wait(refs, num_returns=1, timeout=wait_for)
            if ready:
                ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
                for ref in ready:
                    self._gather(ref)
            self._expire()
            if deadline is not None and time.monotonic() >= deadline:
                break
        out, self._pending = self._pending, []
        return out

    def close(self) -> None:
        for ref in list(self._running):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:
                pass
        self._running.clear()
        self._check_at.clear()
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
