"""The local backend: persistent worker processes on this machine (``backend: local``, the default).

Each worker (``spawn``) builds the experiment's space, dataset and fitness once
and then evaluates jobs sent over a pipe, with ``num_cpus`` intra-op threads,
pinned to its own GPU or sharing one.

What a worker may do to a run, and what the pool does about it:

* **dies** (a crash in native code: SIGABRT, SIGSEGV; killed): it is replaced and its evaluation
  retried once in safe mode (:func:`evonas.fitness.device.safe_mode`: oneDNN off, fp32, contiguous
  layout), then recorded as failed with what the death means (:func:`describe_exit`);
* **hangs**: an evaluation past the time limit is killed and retried the same way. Without ``timeout:``
  in the experiment the limit is derived from the run's own evaluations (:func:`default_timeout`); a
  worker that uses almost no CPU time (under 1% of a core) for ``stall_timeout`` seconds (deadlocked) is killed sooner;
* **outlives the run**: it cannot. Each worker watches its parent (``PR_SET_PDEATHSIG`` on Linux, and a
  thread that polls the parent's pid everywhere) and exits when the run's process is gone, however it died;
* **prints from native code**: with ``log`` set (a run's ``native.log``), a worker's stdout and stderr
  go to that file, glibc's fatal messages included, not through the progress bar.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import faulthandler
import multiprocessing as mp
import os
import re
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from multiprocessing.connection import wait as mp_wait
from typing import Any

from evonas.config import Experiment
from evonas.engine.backends import BACKENDS, Backend, EvalContext, Job, JobResult, _cuda_count, default_workers, usable_cores

__all__ = [
    "ProcessPoolBackend", "WorkerStartError", "gpu_assignment", "describe_exit", "default_timeout", "cap_workers", "meminfo_gib",
]  # fmt: skip

#: environment variables that size a worker's thread pools, set to its ``num_cpus`` before it starts
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


#: what a worker's death by each signal most likely means
_SIGNALS = {
    signal.SIGABRT: "aborted in native code (SIGABRT)",
    signal.SIGSEGV: "segmentation fault in native code (SIGSEGV)",
    signal.SIGKILL: "killed (SIGKILL), likely out of memory",
    signal.SIGBUS: "bus error in native code (SIGBUS)",
    signal.SIGFPE: "arithmetic fault in native code (SIGFPE)",
    signal.SIGILL: "illegal instruction (SIGILL): a native kernel this CPU cannot run",
    signal.SIGTERM: "terminated (SIGTERM)",
}
#: the memory a worker is counted as, in GiB, to cap the number of workers (measured: a quickstart worker
#: holds about 0.4 GiB once torch, the data and one trained network are in it)
WORKER_MEMORY_GIB = 0.5

#: the share of one core below which a busy worker counts as making no progress (``stall_timeout``)
STALL_CPU_SHARE = 0.01


def describe_exit(code: int | None) -> str:
    """What a worker's exit code means, in words: ``-6`` -> ``'aborted in native code (SIGABRT)'``."""
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            sig = signal.Signals(-code)
        except ValueError:
            return f"killed by signal {-code}"
        return _SIGNALS.get(sig, f"killed by {sig.name}")
    return f"exited with code {code}"


def default_timeout(durations: list[float], floor: float = 300.0, first: float = 3600.0, factor: float = 10.0) -> float:
    """The time limit of an evaluation when the experiment sets no ``timeout:``.

    ``factor`` times the longest evaluation the run has finished, and at least ``floor`` seconds;
    ``first`` seconds while none has finished (a new worker's first evaluation includes its start-up).
    """
    if not durations:
        return max(first, floor)
    return max(floor, factor * max(durations))


def cap_workers(requested: int, num_cpus: int = 1, num_gpus: float = 0.0) -> tuple[int, str | None]:
    """``requested`` workers, capped at what this machine can hold, and why (``None`` when not capped).

    At most twice as many workers as the cores hold at ``num_cpus`` threads each (more only wait for a
    core), ``1 / num_gpus`` per GPU when workers use GPUs, and as many as fit in the available memory
    at :data:`WORKER_MEMORY_GIB` each.
    """
    limits: list[tuple[int, str]] = []
    gpus = _cuda_count()
    if gpus and num_gpus > 0:
        limits.append((max(1, int(gpus / num_gpus + 1e-9)), f"{gpus} GPU(s) at {num_gpus:g} GPU per worker"))
    else:
        cores = usable_cores()
        limits.append((max(1, 2 * cores // num_cpus), f"{cores} core(s) at {num_cpus} thread(s) per worker, at most 2 workers a core"))
    available = meminfo_gib("MemAvailable")
    if available is not None:
        limits.append((max(1, int(available / WORKER_MEMORY_GIB)), f"{available:.1f} GiB of memory available, about {WORKER_MEMORY_GIB:g} GiB per worker"))
    cap, why = min(limits)
    if requested <= cap:
        return requested, None
    return cap, f"{requested} workers are more than this machine can hold ({why}): using {cap}"


def meminfo_gib(key: str) -> float | None:
    """A ``/proc/meminfo`` figure (``MemTotal``, ``MemAvailable``) in GiB; ``None`` where there is none."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of process ``pid`` so far, from ``/proc`` (``None`` where there is none)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _die_with_parent(parent: int) -> None:
    """Make this worker exit when process ``parent`` is gone: SIGKILL from the kernel (Linux), and a poll."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="evonas-parent-watch", daemon=True).start()


#: the worker's file its native crash's Python stack goes to (faulthandler), read by the pool when it dies
_CRASH_FILE: Any = None

#: a frame of Python's faulthandler dump (most recent call first)
_DUMP_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+) in ', re.M)


def crash_file(log: str, name: str) -> str:
    """The file worker ``name`` writes a native crash's Python stack to: beside ``log``, hidden, removed at close."""
    return str(Path(log).with_name(f".{name}.crash"))


def crash_line(text: str) -> str | None:
    """``myfit.py:33``: where a worker was when it crashed (or waited, starting), from the faulthandler dump
    ``text`` (the plug-in's own innermost line, else the innermost in an installed package); ``None`` without one."""
    from evonas.operators.base import line_of

    frames = [(m.group(1), int(m.group(2))) for m in _DUMP_FRAME.finditer(text)]
    dumped = "Fatal Python error" in text or text.startswith("Timeout (")  # a crash's, or a stuck start's
    return line_of(frames[::-1]) if dumped and frames else None


#: fresh workers in a row over ``memory_limit_gib`` after their first evaluation that make the limit "too low", not
#: applied (each would otherwise be replaced after every evaluation)
FRESH_OVER_LIMIT = 3

#: the size past which ``native.log`` is emptied (its tail kept in ``native.log.1``), and that tail's size
LOG_LIMIT_BYTES = 100 << 20
LOG_KEEP_BYTES = 4 << 20


def _ends_a_line(path: str) -> bool:
    """Whether file ``path`` is empty or ends with a newline (so a line written to it starts a line of its own)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return True
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"
    except OSError:
        return True


def _redirect_output(log: str) -> None:
    """Send this process's stdout and stderr (native libraries' output too) to the file ``log``."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _worker_main(
    conn: Any, experiment: Experiment, name: str, threads: int, parent: int, log: str | None,
    startup_timeout: float | None = None,
) -> None:  # fmt: skip
    """Worker process: build the context once, then evaluate jobs until told to stop.

    Ctrl-C is the main process's to handle (it stops the run and closes the pool), so workers ignore it. Shortly
    before ``startup_timeout`` a worker still starting writes where it waits (read by the pool when it gives up).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    if log is not None:
        try:
            _redirect_output(log)
            global _CRASH_FILE
            _CRASH_FILE = open(crash_file(log, name), "w")  # noqa: SIM115 (open while the process lives)
            faulthandler.enable(_CRASH_FILE, all_threads=False)  # a native crash's Python stack: read by the pool
            if startup_timeout:
                faulthandler.dump_traceback_later(max(0.1, 0.9 * startup_timeout), file=_CRASH_FILE)
        except OSError:
            pass  # the output goes where the run's goes
    try:
        import torch  # torch: in the worker process only (the main process may run no training)

        torch.set_num_threads(threads)
        context = EvalContext(experiment)
    except BaseException as exc:
        from evonas.operators.base import describe_error  # with the line of the plug-in that raised

        conn.send(("error", describe_error(exc, 300), traceback.format_exc()))
        return
    if _CRASH_FILE is not None:  # started: no start-up stack is due, and one written late is no crash's
        faulthandler.cancel_dump_traceback_later()
        _CRASH_FILE.seek(0)
        _CRASH_FILE.truncate()
    conn.send(("ready", None, own_memory_gib()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if job is None:
            return
        if log is not None:  # (on a line of its own: the last evaluation's output may not have ended one)
            sys.stdout.flush()
            sys.stderr.flush()
            lead = "" if _ends_a_line(log) else "\n"
            print(f"{lead}[{time.strftime('%H:%M:%S')} {name}] trial {job.trial}{' (safe mode)' if job.safe else ''}",
                  flush=True)  # fmt: skip
        start = time.perf_counter()
        try:
            result = context.run(job, name)
        except KeyboardInterrupt:  # raised by the fitness's own code (a worker ignores Ctrl-C): that evaluation failed
            result = JobResult(job.trial, "failed", {}, "KeyboardInterrupt: raised by the fitness (a worker ignores "
                               "Ctrl-C)", time.perf_counter() - start, name, safe_mode=job.safe)  # fmt: skip
        conn.send(("result", result, own_memory_gib()))


def _gib(value: float, limit: float) -> str:
    """``value`` GiB with the decimals that tell it apart from ``limit`` (``0.243`` over ``0.24``, not ``0.24``)."""
    for digits in range(2, 7):
        text = f"{value:.{digits}f}"
        if float(text) != float(f"{limit:g}"):
            return text
    return f"{value:g}"


def own_memory_gib() -> float | None:
    """This process's memory in GiB: its resident set from ``/proc`` (Linux), else its peak resident set
    (``getrusage``: what a leak grows too); ``None`` where neither can be read."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB elsewhere
        return peak / 2**30 if sys.platform == "darwin" else peak / 2**20
    except (ImportError, OSError, ValueError):
        return None


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
    #: evaluations this process finished (``done`` counts those of the worker's earlier processes too)
    tasks: int = 0
    #: CPU seconds the worker had used when last seen using more, and when that was (stall detection)
    cpu: float | None = None
    cpu_at: float = 0.0


class WorkerStartError(RuntimeError):
    """A worker could not build the experiment's components."""


def _from_a_script() -> bool:
    """Whether this process runs a Python script of the user's (not the evonas command), whose module-level code a
    spawned worker runs again unless it is guarded by ``if __name__ == '__main__':``."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if not main_file:
        return False  # an interactive session, a notebook: spawned workers do not import it
    path = Path(main_file).resolve()
    return path.name != "evonas" and Path(__file__).resolve().parents[1] not in path.parents


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

    Parameters:
        num_cpus: intra-op threads per worker (and the cores each is counted as when workers are capped).
        num_gpus: GPUs per worker; a fraction shares one (``0.25``: four workers a GPU). Default: 1 where there
            are GPUs, else 0.
        retries: how many times a crashed or timed-out evaluation is tried again (in safe mode) on a fresh worker.
        stall_timeout: seconds a busy worker may use almost no CPU time (under 1% of a core) before it is killed as
            deadlocked; 0 turns the check off (e.g. for long GPU kernels waited on by a blocking sync).
        timeout_floor: without ``timeout:``, the least time limit of an evaluation, in seconds (the limit is ten
            times the longest finished evaluation, at least this).
        timeout_first: without ``timeout:``, the time limit in seconds until the first evaluation finishes.
        startup_timeout: seconds a worker may take to start (import the plug-ins, build the experiment's space,
            dataset and fitness) before the run stops, saying so: a fitness or loader that hangs while it is built.
        max_tasks_per_child: replace a worker by a fresh process after this many evaluations (as Python's
            ``ProcessPoolExecutor``); default never. Memory a fitness leaks goes with the old process.
        memory_limit_gib: replace a worker whose memory (its resident set) is above this many GiB after an
            evaluation by a fresh process before its next; said on stderr the first time. Not a hard cap: an
            evaluation that needs more runs to its end (or until the system stops it).
        log: the file worker processes' output goes to (default: the run folder's ``native.log``).
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
        stall_timeout: float = 120.0,
        timeout_floor: float = 300.0,
        timeout_first: float = 3600.0,
        startup_timeout: float = 300.0,
        max_tasks_per_child: int | None = None,
        memory_limit_gib: float | None = None,
        log: str | os.PathLike | None = None,
    ) -> None:
        self.check(num_cpus=num_cpus, num_gpus=num_gpus, retries=retries, stall_timeout=stall_timeout,
                   timeout_floor=timeout_floor, timeout_first=timeout_first, startup_timeout=startup_timeout,
                   max_tasks_per_child=max_tasks_per_child, memory_limit_gib=memory_limit_gib)  # fmt: skip
        self.startup_timeout = float(startup_timeout)
        self.max_tasks_per_child = max_tasks_per_child
        self.memory_limit_gib = None if memory_limit_gib is None else float(memory_limit_gib)
        #: workers replaced by a fresh process between evaluations (max_tasks_per_child, memory_limit_gib)
        self.recycled = 0
        gpus = _cuda_count()
        if num_gpus and not gpus:  # asked for, none here: the workers train on the CPU, said
            print(f"evonas: backend.params.num_gpus: {float(num_gpus):g}, but this machine has no GPU that torch can "
                  "use: the workers train on the CPU", file=sys.stderr)  # fmt: skip
        num_gpus = (1.0 if gpus else 0.0) if num_gpus is None else float(num_gpus)
        self.experiment = experiment
        self.slots = int(slots) if slots is not None else default_workers(num_cpus, num_gpus)
        self.slots, why = cap_workers(self.slots, num_cpus, num_gpus)
        if why:
            print(f"evonas: {why}", file=sys.stderr)
        self.timeout = experiment.timeout
        self.stall_timeout = float(stall_timeout)
        self.timeout_floor, self.timeout_first = float(timeout_floor), float(timeout_first)
        self.log = None if log is None else os.fspath(log)
        self._durations: list[float] = []
        self.threads = num_cpus
        self.retries = retries
        self._ctx = mp.get_context("spawn")
        self._gpus = gpu_assignment(self.slots, gpus, num_gpus)
        self._workers = [self._start(i) for i in range(self.slots)]
        self._pending: list[JobResult] = []
        self.restarts = 0
        self._said_memory = False
        self._said_log = False  # native.log passed LOG_LIMIT_BYTES: said once
        self._over_after_one = 0  # fresh workers in a row over memory_limit_gib after their first evaluation
        self._start_error: str | None = None  # a start error read from an idle worker (_read_starting)

    @classmethod
    def check(
        cls, num_cpus: int = 1, num_gpus: float | None = None, retries: int = 1, stall_timeout: float = 120.0,
        timeout_floor: float = 300.0, timeout_first: float = 3600.0, startup_timeout: float = 300.0,
        max_tasks_per_child: int | None = None, memory_limit_gib: float | None = None, **_: Any,
    ) -> None:  # fmt: skip
        for name, value in (("stall_timeout", stall_timeout), ("timeout_floor", timeout_floor), ("timeout_first", timeout_first)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name}: expected a number of seconds >= 0, got {value!r}")
        if isinstance(startup_timeout, bool) or not isinstance(startup_timeout, (int, float)) or not startup_timeout > 0:
            raise ValueError(f"startup_timeout: expected a number of seconds > 0, got {startup_timeout!r}")
        if isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1:
            raise ValueError(f"num_cpus: expected an integer >= 1, got {num_cpus!r}")
        if num_gpus is not None and (num_gpus < 0 or (num_gpus > 1 and num_gpus != int(num_gpus))):
            raise ValueError(f"num_gpus: expected 0, a fraction up to 1, or a whole number of GPUs, got {num_gpus!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries: expected an integer >= 0, got {retries!r}")
        if max_tasks_per_child is not None and (
            isinstance(max_tasks_per_child, bool) or not isinstance(max_tasks_per_child, int) or max_tasks_per_child < 1
        ):
            raise ValueError(f"max_tasks_per_child: expected an integer >= 1 (or null), got {max_tasks_per_child!r}")
        if memory_limit_gib is not None and (
            isinstance(memory_limit_gib, bool) or not isinstance(memory_limit_gib, (int, float))
            or not 0 < memory_limit_gib < float("inf")
        ):  # fmt: skip
            raise ValueError(f"memory_limit_gib: expected a finite number of GiB > 0 (or null), got {memory_limit_gib!r}")

    def _start(self, i: int) -> _Worker:
        parent, child = self._ctx.Pipe()
        name = f"w{i}"
        gpus = self._gpus[i]
        # The child's environment is set before it starts: thread pools (OpenMP, MKL, OpenBLAS) size
        # themselves when first loaded, and a worker that sets them later still runs one thread per core
        # in some kernels (measured: two workers on two cores were 2.2x slower per evaluation).
        env = {name_: str(self.threads) for name_ in _THREAD_VARIABLES}
        if self.log is not None:
            env["LIBC_FATAL_STDERR_"] = "1"  # glibc's fatal messages go to stderr (the log), not to the terminal
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpus
        before = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            proc = self._ctx.Process(
                target=_worker_main,
                args=(child, self.experiment, name, self.threads, os.getpid(), self.log, self.startup_timeout),
                daemon=True, name=f"evonas-{name}",
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

    def _read_starting(self) -> None:
        """Read the "ready" of idle workers still starting (a replacement, before it gets a job), so that ``states``
        and ``evonas status`` say ``idle`` once it is; a start error is kept for :meth:`wait` to raise."""
        for w in self._workers:
            if w.job is not None or w.ready_at is not None or self._start_error is not None:
                continue
            try:
                if not w.conn.poll():
                    continue
                kind, payload, detail = w.conn.recv()
            except (EOFError, OSError):
                continue  # died while starting: submit sends it a job, and wait() sees the death
            if kind == "ready":
                w.ready_at = time.monotonic()
                self._started_at_memory(w, detail)
            else:
                self._start_error = str(payload)

    def states(self) -> list[dict[str, Any]]:
        self._read_starting()
        out = []
        for w in self._workers:
            state = "busy" if w.job is not None else ("idle" if w.ready_at is not None else "starting")
            since = time.time() - (time.monotonic() - w.sent_at) if w.job is not None else w.started_at
            out.append({
                "worker": w.name, "pid": w.process.pid, "state": state, "gpu": w.gpus,
                "trial": None if w.job is None else w.job.trial, "since": since, "done": w.done, "restarts": w.restarts,
                "safe": bool(w.job is not None and w.job.safe),
            })  # fmt: skip
        return out

    def submit(self, job: Job) -> None:
        self._bound_log()
        for w in self._workers:
            if w.job is None:
                w.job, w.sent_at = job, time.monotonic()
                w.cpu, w.cpu_at = None, w.sent_at
                w.conn.send(job)
                return
        raise RuntimeError("no free worker")

    def limit(self) -> float:
        """The time limit of one evaluation now: the experiment's ``timeout``, or :func:`default_timeout`."""
        if self.timeout is not None:
            return self.timeout
        return default_timeout(self._durations, self.timeout_floor, self.timeout_first)

    def _replace(self, w: _Worker, *, crashed: bool = True) -> None:
        """A fresh process for ``w``: killed (it crashed or hangs), or told to stop (``crashed=False``: recycled
        between evaluations, not counted as a restart)."""
        if not crashed:
            with contextlib.suppress(OSError, BrokenPipeError):
                w.conn.send(None)
            w.process.join(timeout=5)
        if w.process.is_alive():
            w.process.kill()
        w.process.join(timeout=5)
        w.conn.close()
        fresh = self._start(int(w.name[1:]))
        w.process, w.conn, w.ready_at, w.started_at = fresh.process, fresh.conn, None, fresh.started_at
        w.tasks = 0
        if crashed:
            w.restarts += 1
            self.restarts += 1
        else:
            self.recycled += 1

    def _started_at_memory(self, w: _Worker, memory: float | None) -> None:
        """A worker that holds more than ``memory_limit_gib`` as it starts (before any evaluation) would be replaced
        after every evaluation, each fresh one no smaller: the limit is said to be too low, once, and not applied."""
        if self.memory_limit_gib is None or memory is None or memory <= self.memory_limit_gib:
            return
        self.say(f"evonas: worker {w.name} holds {_gib(memory, self.memory_limit_gib)} GiB as it starts, before "
                 f"any evaluation, over backend.params.memory_limit_gib = {self.memory_limit_gib:g}: a fresh process "
                 f"would be no smaller, so the limit is not applied in this session (set it above what a worker "
                 f"starts with)")  # fmt: skip
        if self.log is not None:
            self._note(f"[{time.strftime('%H:%M:%S')} {w.name}] holds {memory:.3f} GiB as it starts, over "
                       f"memory_limit_gib = {self.memory_limit_gib:g}: the limit is not applied")  # fmt: skip
        self.memory_limit_gib = None

    def _recycle(self, w: _Worker, trial: int, memory: float | None) -> None:
        """Replace idle worker ``w`` after its evaluation of ``trial`` when it has done ``max_tasks_per_child`` or its
        ``memory`` (GiB) is over ``memory_limit_gib``."""
        if self.max_tasks_per_child is not None and w.tasks >= self.max_tasks_per_child:
            why = f"after {w.tasks} evaluation{'s' if w.tasks != 1 else ''} (max_tasks_per_child)"
        elif self.memory_limit_gib is not None and memory is not None and memory > self.memory_limit_gib:
            held = _gib(memory, self.memory_limit_gib)
            self._over_after_one = self._over_after_one + 1 if w.tasks == 1 else 0
            if self._over_after_one >= FRESH_OVER_LIMIT:  # a fresh process is over it after one evaluation: no leak
                self.say(f"evonas: {FRESH_OVER_LIMIT} fresh workers in a row held more than backend.params."
                         f"memory_limit_gib = {self.memory_limit_gib:g} after their first evaluation ({held} GiB "
                         f"after trial {trial}): what one evaluation needs, not a leak, so the limit is not applied "
                         "in this session (set it above that)")  # fmt: skip
                if self.log is not None:
                    self._note(f"[{time.strftime('%H:%M:%S')} {w.name}] held {memory:.3f} GiB after its first "
                               f"evaluation, as the {FRESH_OVER_LIMIT - 1} before it: memory_limit_gib = "
                               f"{self.memory_limit_gib:g} is not applied")  # fmt: skip
                self.memory_limit_gib = None
                return
            why = f"(it held {held} GiB after trial {trial}, over memory_limit_gib = {self.memory_limit_gib:g})"
            if not self._said_memory:
                self._said_memory = True
                self.say(f"evonas: worker {w.name} held {held} GiB after trial {trial}, over "
                         f"backend.params.memory_limit_gib = {self.memory_limit_gib:g}: it is replaced by a fresh "
                         "process (memory the fitness keeps, a leak?); later replacements are only counted"
                         + (" and in native.log" if self.log is not None else ""))  # fmt: skip
        else:
            return
        if self.log is not None:
            self._note(f"[{time.strftime('%H:%M:%S')} {w.name}] replaced by a fresh process {why}")
        self._replace(w, crashed=False)

    def _lost(self, w: _Worker, reason: str) -> None:
        """``w`` died or was killed on its job: retry the job in safe mode on a fresh worker, or record it failed."""
        job = w.job
        assert job is not None
        w.job = None
        self._replace(w)
        if self.log is not None:
            self._note(f"[{time.strftime('%H:%M:%S')} {w.name}] trial {job.trial}: {reason}")
        reasons = (*job.reasons, reason)
        if job.attempt < self.retries:
            self.submit(dataclasses.replace(job, attempt=job.attempt + 1, safe=True, reasons=reasons))
            return
        first = reasons[0]
        if len(reasons) == 1:
            error = f"worker {first}"
        elif first == reason:
            error = f"worker {first}, also when retried in safe mode (oneDNN off, fp32)"
        else:
            error = f"worker {first}; retried in safe mode (oneDNN off, fp32): {reason}"
        notes = ["its output is in native.log"] if self.log is not None else []
        if "native" in error or "signal" in error:
            notes.append("unless the fitness's own code did it, `evonas doctor` tests torch's native kernels on this machine")
        if notes:
            error += f" [{'; '.join(notes)}]"
        self._pending.append(JobResult(job.trial, "failed", {}, error, time.monotonic() - w.sent_at, w.name, safe_mode=job.safe))

    def _died(self, w: _Worker) -> None:
        """``w``'s process is gone: a crash on its job, or (before it was ready) a worker that cannot start."""
        how = describe_exit(w.process.exitcode)
        if w.ready_at is None:
            self.close()
            log = "; its output is in native.log" if self.log is not None and os.path.exists(self.log) else ""
            if _from_a_script():  # the likely reason first: a message that ends a run is kept short
                raise WorkerStartError(f"a worker process died while starting ({how}): a script that starts evonas "
                                       "workers needs `if __name__ == '__main__':` around its code (spawned workers "
                                       f"import it){log}")  # fmt: skip
            raise WorkerStartError(
                f"a worker process died while starting ({how}): it imports the plug-ins and builds the experiment's "
                f"space, dataset and fitness, and one of them ended it{log}"
            )
        where = self._crash_where(w) if self.log is not None else None
        self._lost(w, f"died: {how}" + (f" at {where}" if where else ""))

    def _crash_where(self, w: _Worker) -> str | None:
        """Where dead worker ``w`` was (:func:`crash_line`), from the stack its native crash wrote (then copied to
        native.log, and the file emptied for the worker that replaces it)."""
        path = crash_file(self.log, w.name)  # type: ignore[arg-type]
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read(1 << 20)
            open(path, "w").close()
        except OSError:
            return None
        if text.strip():
            self._note(text.rstrip("\n"))
        return crash_line(text)

    def _start_stack(self, w: _Worker) -> str | None:
        """Where worker ``w``, past its start-up time, waits (:meth:`_crash_where`): its stack is dumped at 0.9 of
        the limit, which a busy machine may delay, so it is waited for up to 2 s."""
        for _ in range(20):
            where = self._crash_where(w)
            if where or not w.process.is_alive():
                return where
            time.sleep(0.1)
        return None

    def _note(self, line: str) -> None:
        try:
            lead = "" if _ends_a_line(self.log) else "\n"  # type: ignore[arg-type]
            with open(self.log, "a") as f:  # type: ignore[arg-type]
                f.write(lead + line + "\n")
        except OSError:
            pass

    def _bound_log(self) -> None:
        """Keep ``native.log`` under :data:`LOG_LIMIT_BYTES` (a fitness that prints a lot would fill the disk and stop
        the run): past it, its last :data:`LOG_KEEP_BYTES` go to ``native.log.1`` and it is emptied (the workers
        append, so they write on at its new end), once per evaluation sent."""
        if self.log is None:
            return
        try:
            size = os.path.getsize(self.log)
            if size <= LOG_LIMIT_BYTES:
                return
            with open(self.log, "rb") as src:
                src.seek(size - LOG_KEEP_BYTES)
                tail = src.read(LOG_KEEP_BYTES)
            Path(f"{self.log}.1").write_bytes(tail)
            os.truncate(self.log, 0)
        except OSError:
            return
        mib, kept = f"{LOG_LIMIT_BYTES / 2**20:g}", f"{LOG_KEEP_BYTES / 2**20:g}"
        self._note(f"[{time.strftime('%H:%M:%S')}] native.log passed {mib} MiB: emptied, its last {kept} MiB are in "
                   "native.log.1")  # fmt: skip
        if not self._said_log:
            self._said_log = True
            self.say(f"evonas: native.log passed {mib} MiB (worker processes print a lot: the fitness?): it is emptied "
                     f"whenever it does, its last {kept} MiB kept in native.log.1")  # fmt: skip

    def _stalled(self, w: _Worker, now: float) -> bool:
        """Whether busy worker ``w`` has used almost no CPU time (:data:`STALL_CPU_SHARE`) for ``stall_timeout`` seconds."""
        if not self.stall_timeout or w.ready_at is None:
            return False
        cpu = _cpu_seconds(w.process.pid)
        if cpu is None:
            return False
        # Progress: more than a clock tick and 1% of a core since the last mark. A deadlocked worker still uses a
        # little (its parent-watch thread wakes each second): a tick now and then must not restart the count.
        if w.cpu is None or cpu > w.cpu + 0.01 + STALL_CPU_SHARE * (now - w.cpu_at):
            w.cpu, w.cpu_at = cpu, now
            return False
        return now - max(w.cpu_at, w.ready_at) > self.stall_timeout

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        deadline = None if timeout is None else time.monotonic() + timeout
        self._read_starting()
        if self._start_error is not None:
            error, self._start_error = self._start_error, None
            self.close()
            raise WorkerStartError(error)
        while not self._pending:
            busy = [w for w in self._workers if w.job is not None]
            if not busy:
                return []
            now = time.monotonic()
            limit = self.limit()
            wait_for = None if deadline is None else max(0.0, deadline - now)
            for w in busy:
                left = (max(0.0, max(w.sent_at, w.ready_at) + limit - now) if w.ready_at else
                        max(0.0, min(limit, w.started_at + self.startup_timeout - time.time())))  # fmt: skip
                wait_for = left if wait_for is None else min(wait_for, left)
            if self.stall_timeout:  # look at the workers' CPU time now and then
                wait_for = min(wait_for if wait_for is not None else 5.0, 5.0, self.stall_timeout / 4)
            handles = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            ready = set(mp_wait(handles, timeout=wait_for))
            now = time.monotonic()
            for w in busy:
                if w.conn in ready:
                    try:
                        kind, payload, detail = w.conn.recv()
                    except (EOFError, OSError):
                        w.process.join(timeout=1)
                        self._died(w)
                        continue
                    if kind == "ready":
                        w.ready_at = now
                        self._started_at_memory(w, detail)
                    elif kind == "result":
                        self._durations.append(now - max(w.sent_at, w.ready_at or w.sent_at))
                        w.job = None
                        w.done += 1
                        w.tasks += 1
                        self._pending.append(payload)
                        self._recycle(w, payload.trial, detail)
                    else:
                        self.close()
                        raise WorkerStartError(payload)
                elif w.process.sentinel in ready:
                    w.process.join(timeout=1)
                    self._died(w)
                elif w.ready_at is None and time.time() - w.started_at > self.startup_timeout:
                    where = self._start_stack(w) if self.log is not None else None
                    self.close()
                    raise WorkerStartError(
                        f"a worker process did not finish starting within {self.startup_timeout:g} s"
                        + (f" (waiting at {where})" if where else "") + " (it imports the plug-ins and builds the "
                        "experiment's space, dataset and fitness: one of them hangs?); backend.params.startup_timeout "
                        "sets the limit"
                    )  # fmt: skip
                elif w.ready_at is not None and now - max(w.sent_at, w.ready_at) > limit:
                    how = "" if self.timeout is not None else " (a limit derived from this run's evaluations; `timeout:` sets one)"
                    self._lost(w, f"timed out after {limit:g} s{how} and was killed")
                elif self._stalled(w, now):
                    self._lost(w, f"stopped making progress (almost no CPU time used for {self.stall_timeout:g} s: deadlocked?) and was killed")
            if deadline is not None and time.monotonic() >= deadline:
                break
        out, self._pending = self._pending, []
        return out

    def close(self) -> None:
        self._read_starting()
        for w in self._workers:
            if w.ready_at is None and w.job is None:  # still starting (a replacement): nothing to finish, killed
                w.process.kill()
                continue
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
            if self.log is not None:
                with contextlib.suppress(OSError):
                    os.remove(crash_file(self.log, w.name))
        self._workers = []
