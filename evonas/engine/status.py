"""The live view of a run: what ``evonas status RUN_DIR`` shows, read from the journal while the run goes on.

The running engine keeps one ``live`` entry in the journal's ``meta`` table up
to date (at most a few times a second): its process, state, the expected
number of evaluations and each worker's state. Everything else — progress,
failures, the current best — comes from the evaluation rows themselves, read
through a read-only connection that never blocks the run.

Example::

    from evonas.engine.status import read_status, format_status
    print(format_status(read_status("runs/quickstart")))
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Callable

from evonas.checks import decimals_text, is_real, metric_text, one_line
from evonas.engine.journal import (
    Journal, JournalError, failed_trials, failure_reasons, failure_text, fitness_order, more_failures, training_spent,
)
from evonas.runfolder import RunFolder, RunFolderError, lock_held, resume_command
from evonas.spaces.base import BUILD_FUNCTION

__all__ = [
    "LiveStatus", "read_status", "format_status", "StatusError", "operator_faults", "fault_lines", "OPERATORS_META",
    "training_line",
]

#: the journal's ``meta`` entry with each variation operator's calls, failures and first error
OPERATORS_META = "operators"


class StatusError(RuntimeError):
    """The folder is not a run folder, or its journal cannot be read."""


class LiveStatus:
    """Writes the run's ``live`` entry: called by the engine loop, throttled to one write per ``every`` s."""

    #: seconds between writes while the run waits for results (workers' states change without one)
    refresh = 5.0

    def __init__(
        self, journal: Journal, *, backend: str, expected: int | None, every: float = 0.5,
        operators: Callable[[], list[dict[str, Any]]] | None = None,
    ) -> None:  # fmt: skip
        self.journal, self.every = journal, every
        #: gives the operators' counts (written to the ``operators`` meta entry whenever they changed)
        self.operators = operators
        self._operators_written: list[dict[str, Any]] | None = None
        self.entry: dict[str, Any] = {
            "pid": os.getpid(), "host": socket.gethostname(), "started_at": time.time(), "state": "running",
            "backend": backend, "expected": expected, "slots": 0, "workers": [], "repeats": 0, "restarts": 0,
        }  # fmt: skip
        self._last = 0.0
        #: a change not yet written (the engine writes it before it blocks for long)
        self.dirty = False
        #: worker restarts and replacements of the run's earlier sessions (a resume's journal has them): the
        #: status counts the whole run's
        try:
            earlier = journal.get_meta("live") or {}
        except JournalError:
            earlier = {}
        earlier = earlier if isinstance(earlier, dict) else {}
        self._before = {k: n for k in ("restarts", "recycled") if (n := _count(earlier.get(k)))}
        self.entry.update(self._before)

    def update(self, backend: Any, repeats: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every:
            self.dirty = True
            return
        self._last, self.dirty = now, False
        self.entry.update(
            updated_at=time.time(), slots=backend.slots, workers=backend.states(), repeats=repeats, **self._counts(backend)
        )  # fmt: skip
        if getattr(backend, "in_process", False):
            self.entry["in_process"] = True
        self.journal.set_meta("live", self.entry)
        if self.operators is not None:
            self._write_operators(self.operators())

    def _counts(self, backend: Any) -> dict[str, int]:
        """The run's worker restarts and replacements: the earlier sessions' and ``backend``'s."""
        return {k: self._before.get(k, 0) + int(getattr(backend, k, 0)) for k in ("restarts", "recycled")}

    def _write_operators(self, stats: list[dict[str, Any]]) -> None:
        if stats != self._operators_written:
            self.journal.set_meta(OPERATORS_META, stats)
            self._operators_written = [dict(s) for s in stats]

    def finish(
        self, state: str, repeats: int, *, error: str | None = None, operators: list[dict[str, Any]] | None = None,
        backend: Any = None,
    ) -> None:
        """Record how the run ended: ``finished``, ``interrupted``, ``stopped`` or ``crashed`` (with ``error``, the
        last error, if any); ``operators``: the operators' final counts (``None``: keep what is written);
        ``backend``: its final counts of restarts and replacements (the last result's may not be written yet)."""
        self.entry.update(state=state, updated_at=time.time(), repeats=repeats, workers=[])
        if backend is not None:
            self.entry.update(self._counts(backend))
        if error:
            self.entry["error"] = error
        else:
            self.entry.pop("error", None)
        self.journal.set_meta("live", self.entry)
        if operators is not None:
            self._write_operators(operators)


def _alive(pid: int, host: str) -> bool | None:
    """Whether process ``pid`` still runs (``None``: it runs on another host, so this cannot tell)."""
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError, ValueError):  # not a process id this system has
        return None
    return True


def _count(v: Any) -> int | None:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _clean_live(live: Any) -> dict[str, Any]:
    """The journal's ``live`` entry with only what :func:`format_status` can show (a damaged one reads as absent)."""
    if not isinstance(live, dict):
        return {}
    out: dict[str, Any] = {}
    for k in ("pid", "expected", "slots", "repeats", "restarts", "recycled"):
        if _count(live.get(k)) is not None:
            out[k] = live[k]
    if not 0 < out.get("pid", 1) < 1 << 31:  # 0 would be the process group, larger ones overflow os.kill
        del out["pid"]
    for k in ("started_at", "updated_at"):
        if is_real(live.get(k)):
            out[k] = float(live[k])
    for k in ("state", "backend", "host"):
        if isinstance(live.get(k), str):
            out[k] = live[k]
    if isinstance(live.get("error"), str) and live["error"].strip():
        out["error"] = one_line(live["error"], 300)
    if live.get("in_process") is True:
        out["in_process"] = True
    workers = []
    for w in live.get("workers") or [] if isinstance(live.get("workers"), list) else []:
        if isinstance(w, dict):
            workers.append({
                "worker": str(w.get("worker")), "state": str(w.get("state", "?")),
                **{k: w[k] for k in ("pid", "trial", "done", "restarts") if _count(w.get(k)) is not None},
                **({"since": float(w["since"])} if is_real(w.get("since")) else {}),
                **({"safe": True} if w.get("safe") is True else {}),
            })  # fmt: skip
    out["workers"] = workers
    return out


def _clean_operators(value: Any) -> list[dict[str, Any]]:
    """The ``operators`` meta entry with only well-formed rows (a damaged one reads as absent)."""
    out = []
    for entry in value if isinstance(value, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        calls, failures = _count(entry.get("calls")), _count(entry.get("failures"))
        if calls is None or failures is None:
            continue
        first = entry.get("first_error")
        out.append({
            "kind": entry.get("kind") if entry.get("kind") in ("mutation", "crossover", BUILD_FUNCTION) else "operator",
            "name": one_line(entry["name"], 100), "calls": calls, "failures": failures,
            "first_error": one_line(first, 300) if isinstance(first, str) else None,
            "unchanged": _count(entry.get("unchanged")) or 0, "builtin": entry.get("builtin") is True,
        })  # fmt: skip
    return out


def operator_faults(source: Any, *, every: bool = False) -> list[dict[str, Any]]:
    """The run's variation operators that raised or gave no valid child, most failures first.

    Each is ``{"kind": "mutation" | "crossover", "name", "calls", "failures", "first_error"}``, where
    ``first_error`` reads ``ValueError: boom at my_ops.py:12`` or ``returned an invalid genome: <why>``;
    ``every``: every operator the run called, faulty or not (their calls, for a plot). ``source``: a run folder
    (path or :class:`~evonas.runfolder.RunFolder`), an open :class:`Journal`, a connection to a journal, or the
    journal's ``meta`` as a dict. A folder without the entry (an older run, or no operator called yet) gives
    ``[]``; a damaged entry too. Reading it imports no plug-in.

    Example::

        for f in operator_faults("runs/quickstart"):
            print(f"{f['name']}: {f['failures']} of {f['calls']} calls failed; first {f['first_error']}")
    """
    value: Any = None
    try:
        if isinstance(source, dict):
            value = source.get(OPERATORS_META)
        elif isinstance(source, Journal):
            value = source.get_meta(OPERATORS_META)
        elif isinstance(source, sqlite3.Connection):
            row = source.execute("SELECT value FROM meta WHERE name = ?", (OPERATORS_META,)).fetchone()
            value = json.loads(row[0]) if row else None
        else:
            folder = source if isinstance(source, RunFolder) else RunFolder(source)
            value = folder.meta().get(OPERATORS_META)
    except (sqlite3.DatabaseError, TypeError, ValueError, RecursionError, RuntimeError):  # damaged: as absent
        value = None
    rows = _clean_operators(value)
    if not every:
        rows = [r for r in rows if r["failures"] or idle(r)]
    return sorted(rows, key=lambda r: -r["failures"])


#: calls after which a mutation that gave back its parent in every one of them is said to do nothing
IDLE_CALLS = 10


def idle(stats: dict[str, Any]) -> bool:
    """Whether an operator's every call (at least :data:`IDLE_CALLS`) gave back its parent unchanged."""
    return stats.get("calls", 0) >= IDLE_CALLS and stats.get("unchanged", 0) >= stats["calls"]


def _its_parents(stats: dict[str, Any]) -> str:
    return "its parents" if stats.get("kind") == "crossover" else "its parent"


def fault_lines(faults: list[dict[str, Any]]) -> list[str]:
    """One line per faulty operator: ``mutation 'my_op' failed 7 of 21 calls (first: ValueError: boom at my_ops.py:12)``,
    or ``mutation 'my_op' gave back its parent unchanged in all 12 calls (...)``."""
    lines = []
    for f in faults:
        if f.get("failures"):
            lines.append(f"{f['kind']} '{f['name']}' failed {f['failures']} of {f['calls']} calls "
                         f"(first: {f['first_error'] or '?'})")  # fmt: skip
        elif idle(f):
            why = ("the space's parameters leave it nothing to change, e.g. max_layers: 1 for one that adds layers: "
                   "leave it out of the mutations" if f.get("builtin") else "does it return the genome it changed?")  # fmt: skip
            lines.append(f"{f['kind']} '{f['name']}' gave back {_its_parents(f)} unchanged in all {f['calls']} calls "
                         f"(its children repeat their parents: {why})")  # fmt: skip
    return lines


def _objectives(config: Any) -> list[dict[str, str]]:
    """The run's objectives from the journal's copy of its config (the default if it is missing or damaged)."""
    objectives = config.get("objectives") if isinstance(config, dict) else None
    out = []
    for o in objectives if isinstance(objectives, list) else []:
        if isinstance(o, dict) and isinstance(o.get("metric"), str):
            out.append({"metric": o["metric"], "direction": "min" if o.get("direction") == "min" else "max"})
    return out or [{"metric": "val_acc", "direction": "max"}]


def _weights(objectives: list[dict[str, str]]) -> list[float]:
    """The weights (+1 maximise, -1 minimise) of :func:`_objectives`' objectives."""
    return [1.0 if o["direction"] == "max" else -1.0 for o in objectives]


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """A snapshot of the run in ``run_dir``: progress, best, failures, rate, workers.

    Raises :class:`StatusError` (one line) for a folder or journal that cannot be read; damaged rows and ``meta``
    entries are left out, and said in one line on stderr.
    """
    try:
        folder = RunFolder(run_dir)
        path = folder.journal_path
        db = folder.connect()
    except RunFolderError as exc:
        raise StatusError(str(exc)) from None
    damaged = 0
    try:
        try:
            meta = folder.meta(db)
            counts = {str(s): int(n) for s, n in db.execute("SELECT status, COUNT(*) FROM evaluations GROUP BY status")}
            by_worker = db.execute(
                "SELECT worker, COUNT(*), SUM(status = 'failed'), SUM(wall_s) FROM evaluations WHERE status != 'infeasible' GROUP BY worker"
            ).fetchall()
            recent = [r[0] for r in db.execute(  # trained ones: an infeasible candidate is recorded at once
                "SELECT finished_at FROM evaluations WHERE status != 'infeasible' ORDER BY seq DESC LIMIT 50")]
            raw = meta.get("config")
            config = raw if isinstance(raw, dict) else {}
            objectives = _objectives(config)
            weights = _weights(objectives)
            # the best full result, scanned here rather than by journal.ranked(): that parses every row's genome and
            # metrics (0.61 s against 0.19 s on a 20,000-row journal), and `--watch` repeats this every few seconds
            best = None
            columns = {r[1] for r in db.execute("PRAGMA table_info(evaluations)")}
            # low-fidelity and inherited results are not candidates (pruned ones have another status)
            full = " AND fidelity IS NULL" if "fidelity" in columns else ""
            full += " AND inherited IS NULL" if "inherited" in columns else ""
            for trial, key, genome, metrics, fitness in db.execute(
                f"SELECT trial, key, genome, metrics, fitness FROM evaluations WHERE status = 'ok' AND fitness IS NOT NULL{full}"
            ):
                try:
                    values = json.loads(fitness)
                    if not isinstance(values, list) or not all(is_real(v) or v is None for v in values):
                        raise ValueError("bad fitness")
                    if not values or values[0] is None or (best is not None and fitness_order(values, weights) >= best["order"]):
                        continue  # as journal.ranked: the first objective, ties to the next ones, then the earliest
                    candidate = {"trial": trial, "key": str(key), "genome": json.loads(genome),
                                 "metrics": json.loads(metrics or "{}"), "fitness": values,
                                 "order": fitness_order(values, weights)}  # fmt: skip
                    if not isinstance(candidate["metrics"], dict) or not isinstance(candidate["genome"], dict):
                        raise ValueError("bad genome or metrics")
                except (TypeError, ValueError, RecursionError):
                    damaged += 1
                    continue
                best = candidate
            if best is not None:
                del best["order"]
            # trials the live entry shows as busy that the journal already holds: the entry was written before
            # their results (it is throttled), so they are shown idle
            live = _clean_live(meta.get("live"))
            shown_busy = [w["trial"] for w in live.get("workers", []) if isinstance(w.get("trial"), int)]
            journalled = {int(r[0]) for r in db.execute(
                f"SELECT trial FROM evaluations WHERE trial IN ({','.join('?' * len(shown_busy))})", shown_busy
            )} if shown_busy else set()  # fmt: skip
            errors = failure_reasons(db)
            error_trials = failed_trials(db, [e for e, _ in errors])
            spent = training_spent(db)
            safe = db.execute("SELECT COUNT(*) FROM evaluations WHERE safe_mode = 1").fetchone()[0] if "safe_mode" in columns else 0
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise StatusError(f"{path}: cannot read the journal ({exc})") from None
    except RunFolderError as exc:
        raise StatusError(str(exc)) from None
    if folder.damaged_meta:
        print(f"evonas: {path}: damaged meta entries left out: {', '.join(folder.damaged_meta)[:200]}", file=sys.stderr)
    if damaged:
        print(f"evonas: {path}: {damaged} damaged rows left out of the best (evonas resume sets them aside and redoes them)",
              file=sys.stderr)  # fmt: skip
    for w in live.get("workers", []):
        if w.get("trial") in journalled:
            w.update(state="idle", trial=None)
    infeasible = counts.get("infeasible", 0)  # broke a cheap limit: recorded, never trained
    done = sum(counts.values()) - infeasible
    state = live.get("state", "unknown")
    alive = _alive(live["pid"], live.get("host", "")) if "pid" in live else None
    if state == "running" and alive is False:  # killed (SIGKILL, out of memory) or died before it could say so
        state = "stopped (its process is gone)"
    elif state == "running" and lock_held(run_dir) is False:  # a copy of a live run's folder: no one writes it
        state = "stopped (no process holds this folder: a copy?)"
    elif state not in ("running", "finished", "interrupted", "stopped", "crashed", "unknown"):
        state = "unknown"  # a damaged entry: never shown as what it claims
    rate = None
    started = live.get("started_at") if is_real(live.get("started_at")) else None
    # this session's results (a resume's earlier ones finished before a gap of no evaluations)
    stamps = [float(t) for t in recent if is_real(t) and (started is None or float(t) >= started)]
    if len(stamps) >= _RATE_WINDOW and stamps[0] > stamps[-1]:  # the recent pace
        rate = (len(stamps) - 1) / (stamps[0] - stamps[-1])
    elif stamps and started is not None and stamps[0] > started:  # early: a few results that finished together
        rate = len(stamps) / (stamps[0] - started)  # would say a pace the run does not keep; the average since start
    expected = live.get("expected") or _count(config.get("budget"))
    eta = (max(0, expected - done) / rate) if (rate and expected and state == "running") else None
    name, strategy = config.get("name"), config.get("strategy")
    return {
        "run_dir": str(run_dir), "state": state, "live": live, "name": name if isinstance(name, str) else None,
        "strategy": strategy.get("name") if isinstance(strategy, dict) and isinstance(strategy.get("name"), str) else None,
        "objective": objectives[0],
        "evaluations": done, "ok": counts.get("ok", 0), "failed": counts.get("failed", 0), "expected": expected,
        "infeasible": infeasible, "violated": counts.get("violated", 0),
        "error": live.get("error"), "operator_faults": operator_faults(meta),
        "rate_per_s": rate, "eta_s": eta, "last_finished_at": stamps[0] if stamps else None, "best": best, "errors": [[e if e is None else str(e), n, [list(t) for t in ts]] for (e, n), ts in zip(errors, error_trials)], "safe_mode": int(safe or 0),
        "spent": spent, "resume": resume_command(run_dir, config.get("plugins")),
        "created_at": float(meta["created_at"]) if is_real(meta.get("created_at")) else None,
        "runtime": runtime_sessions(meta.get("runtime")),
        "per_worker": {str(w): {"evaluations": int(n), "failed": int(f or 0), "busy_s": float(s or 0)} for w, n, f, s in by_worker},
    }  # fmt: skip


def runtime_sessions(entry: Any) -> list[dict[str, Any]]:
    """The journal's ``runtime`` entry, checked: ``[{"from_evaluation": n, "runtime": {...}}, ...]``, one per session
    that trained otherwise than the one before (device, precision)."""
    if not isinstance(entry, list):
        return []
    return [e for e in entry if isinstance(e, dict) and isinstance(e.get("runtime"), dict)
            and isinstance(e.get("from_evaluation"), int)]  # fmt: skip


_DTYPE_NAMES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}


def runtime_text(runtime: dict[str, Any]) -> str:
    """``cpu, bf16`` for a fitness's :meth:`~evonas.fitness.base.FitnessFunction.runtime`."""
    return ", ".join(_DTYPE_NAMES.get(str(v), str(v)) for v in runtime.values())


def runtime_line(sessions: list[dict[str, Any]]) -> str | None:
    """``cpu, bfloat16`` for a run that trained one way throughout; ``cpu, bfloat16 (evaluations 0-51), cpu, float32
    (from 52)`` for one resumed otherwise; ``None`` when nothing was noted."""
    if not sessions:
        return None
    texts = [runtime_text(s["runtime"]) for s in sessions]
    if len(sessions) == 1:
        return texts[0]
    parts = []
    for i, (s, text) in enumerate(zip(sessions, texts)):
        start = s["from_evaluation"]
        end = sessions[i + 1]["from_evaluation"] - 1 if i + 1 < len(sessions) else None
        parts.append(f"{text} (evaluations {start}-{end})" if end is not None else f"{text} (from evaluation {start})")
    return "; ".join(parts)


def training_line(steps: int, samples: int, pruned: int = 0, inherited: int = 0) -> str:
    """What a run's training spent, in one line (the summary, ``evonas status``)."""
    extra = []
    if pruned:
        extra.append(f"{pruned} evaluations pruned early")
    if inherited:
        extra.append(f"{inherited} started from a parent's weights")
    seen = f", {samples:,} samples seen" if samples else ""  # a fitness of one's own may count steps only
    return f"{steps:,} optimizer steps{seen}" + (f" ({', '.join(extra)})" if extra else "")


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    if seconds < 10:
        return f"{max(0.0, seconds):.1f}s"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


#: seconds without a finished evaluation (and past the estimated time left) before status says so
_QUIET_S = 10.0
#: seconds without a write of the live state after which a running run's own process is said to be busy elsewhere
#: (it writes every few seconds while it waits for results)
_SILENT_S = 60.0

#: results the recent pace is measured over; with fewer, the average since the run (or this session) started
_RATE_WINDOW = 10


def format_status(st: dict[str, Any]) -> str:
    """The snapshot as the lines ``evonas status`` prints."""
    live, now = st["live"], time.time()
    lines = []
    head = f"run       {st['run_dir']}  ({st['name']}, strategy {st['strategy']}): {st['state']}"
    if live.get("pid") and st["state"] == "running":  # an ended run's process is gone: its pid says nothing
        head += f", pid {live['pid']} on {live.get('host', '?')}"
    created, started = st.get("created_at"), live.get("started_at")
    if created and started and started - created > 1:  # a resumed run: its start, and this session's
        head += f", started {_duration(now - created)} ago, resumed {_duration(now - started)} ago"
    elif started:
        head += f", started {_duration(now - started)} ago"
    lines.append(head)
    expected = st["expected"]
    share = f" ({100 * st['evaluations'] / expected:.0f}%)" if expected else ""
    progress = f"progress  {st['evaluations']}{'/' + str(expected) if expected else ''} evaluations{share}"
    if st["state"] == "finished" and expected and st["evaluations"] < expected:  # repeats, a space used up: not 20% done
        progress = f"progress  {st['evaluations']} evaluations (finished; {expected} planned)"
    repeats = live.get("repeats", 0)
    progress += f", {st['failed']} failed, {repeats} repeat{'s' if repeats != 1 else ''} answered from the journal"
    if st.get("infeasible") or st.get("violated"):
        progress += f", {st.get('infeasible', 0)} infeasible (not trained), {st.get('violated', 0)} violated a limit"
    if st.get("safe_mode"):
        progress += f", {st['safe_mode']} retried in safe mode after a worker died or stalled"
    # the rate says what is left while evaluations finish; when none has for longer than that (a hang, the
    # generation's slowest), say so rather than an old rate and "about 1.8s left" (10 s: not for a short lull)
    quiet = now - st["last_finished_at"] if st.get("last_finished_at") else 0.0
    if st["eta_s"] is not None and quiet > max(st["eta_s"], _QUIET_S):
        progress += f"; none finished for {_duration(quiet)}"
    else:
        if st["rate_per_s"]:
            progress += f"; {st['rate_per_s'] * 60:.1f}/min"
        if st["eta_s"] is not None:
            progress += f", about {_duration(st['eta_s'])} left"
    lines.append(progress)
    spent = st.get("spent") or {}
    if spent.get("train_steps"):
        lines.append("training  " + training_line(
            spent["train_steps"], spent.get("train_samples", 0), spent.get("pruned", 0), spent.get("inherited", 0)
        ))  # fmt: skip
    trains = runtime_line(st.get("runtime") or [])
    if trains and (st["state"] == "running" or st.get("evaluations")):  # (a run that trained nothing: not said)
        # the device and precision (bf16 on one CPU, fp32 on another): results differ in their last digits
        lines.append(f"{'trains on' if st['state'] == 'running' else 'trained on'} {trains}")
    best, obj = st["best"], st["objective"]
    if best:
        extras = "  ".join(f"{k}={metric_text(v)}" for k, v in best["metrics"].items() if is_real(v) and k != obj["metric"])
        lines.append(f"best      {obj['metric']}={decimals_text(best['fitness'][0])}  (trial {best['trial']}, key {best['key']})  {extras}".rstrip())
    else:
        lines.append("best      none yet" if st["state"] == "running" else "best      none")
    workers = live.get("workers") or []
    if live.get("in_process"):  # workers: 0 -- no worker processes, so nothing restarts
        lines.append("workers   none (workers: 0): evaluations run one at a time in the run's own process")
    elif live.get("backend"):
        lines.append(f"workers   {live['backend']} backend, {live.get('slots', len(workers))} slot(s), "
                     f"{live.get('restarts', 0)} worker restart(s)"
                     + (f", {live['recycled']} replaced between evaluations (max_tasks_per_child or memory_limit_gib)"
                        if live.get("recycled") else ""))  # fmt: skip
    gone = st["state"] != "running"  # the last states a dead run wrote are not what its workers do now
    for w in workers:
        name = str(w.get("worker"))
        row = f"  {name:<12} {'gone' if gone else w.get('state', '?'):<8}"
        if w.get("trial") is not None and not gone:
            row += f" trial {w['trial']:<5} for {_duration(now - w['since']) if w.get('since') else '?':<6}"
            row += " (safe mode)" if w.get("safe") else ""
        else:
            row += " " * 23
        mine = st["per_worker"].get(name)
        if mine:
            row += f"  {mine['evaluations']} done ({mine['failed']} failed)"
        elif w.get("done") is not None:
            row += f"  {w['done']} done"
        if w.get("restarts"):
            row += f", {w['restarts']} restart(s)"
        lines.append(row.rstrip())
    shown = {str(w.get("worker")) for w in workers}
    others = [(n, w) for n, w in st["per_worker"].items() if n not in shown]
    for name, w in others[:8]:
        lines.append(f"  {name:<12} {'':<8} {'':<23}  {w['evaluations']} done ({w['failed']} failed)".rstrip())
    if len(others) > 8:
        lines.append(f"  ... and {len(others) - 8} more workers")
    if st["errors"]:
        lines.append("failures  " + "\n          ".join([
            *(failure_text(e, n, rest[0] if rest else ()) for e, n, *rest in st["errors"]),
            *more_failures(st["failed"], [(e, n) for e, n, *_ in st["errors"]]),
        ]))  # fmt: skip
    faults = fault_lines(st.get("operator_faults") or [])
    if faults:
        lines.append("faults    " + "\n          ".join(faults))
    if st.get("error") and st["state"] == "finished":  # ended before its plan: why
        lines.append(f"ended     early: {st['error']}")
    elif st.get("error") and st["state"] != "running":
        lines.append(f"error     {st['error']}")
    if st["state"] in ("crashed", "stopped", "interrupted") or st["state"].startswith("stopped ("):
        lines.append(f"resume    {st.get('resume') or 'evonas resume ' + st['run_dir']}")
    if live.get("updated_at") and st["state"] == "running":
        lines.append(f"updated   {_duration(now - live['updated_at'])} ago")
        if now - live["updated_at"] > _SILENT_S:  # a waiting run writes every few seconds: its own process is busy
            pid = live.get("pid")
            lines.append(f"stalled   the run's process has written nothing for {_duration(now - live['updated_at'])}: "
                         "it may hang in plug-in code it runs itself (a strategy, an operator, a build function, a "
                         "logger)" + (f"; `py-spy dump --pid {pid}` shows where" if pid else ""))  # fmt: skip
    return "\n".join(lines)
