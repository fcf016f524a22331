"""Resume by replay: a backend that answers from the journal, in the order results first arrived.

The engine loop runs unchanged over a :class:`ReplayBackend`: it asks the
freshly seeded strategy as it did in the original run (the backend offers the
same number of free slots the original backend had at each point), submits,
and receives the recorded results in their recorded arrival order. So the
strategy sees exactly the same sequence of asks and tells, whether it is
generational or asynchronous. When the journal is used up, the jobs still in
flight (those the interruption cut off) move to a real backend and are redone.
"""

from __future__ import annotations

from collections import deque
from typing import Sequence

from evonas.engine.backends import Backend, Job, JobResult
from evonas.engine.journal import Record

__all__ = ["ReplayBackend", "ResumeMismatch"]


class ResumeMismatch(RuntimeError):
    """The replayed strategy did not ask what the journal recorded: a non-deterministic strategy. ``what``: where
    the replay and the journal differ, in words (the message says it, and what is to blame)."""

    def __init__(self, message: str, what: str) -> None:
        super().__init__(message)
        self.what = what


class ReplayBackend(Backend):
    """Serves the journal's results (``records`` in arrival order) to the engine loop."""

    def __init__(self, records: Sequence[Record], slots_history: Sequence[Sequence[int]], strategy: str) -> None:
        # infeasible rows were never submitted: the loop finds them in the journal when it asks them again
        records = [r for r in records if r.status != "infeasible"]
        self._records = deque(sorted(records, key=lambda r: r.seq))
        self._by_trial = {r.trial: r for r in records}
        self._history = sorted((int(s), int(n)) for s, n in slots_history) or [(0, 1)]
        self._inflight: dict[int, Job] = {}
        self._told = 0
        self._strategy = strategy

    @property
    def slots(self) -> int:  # type: ignore[override]
        current = self._history[0][1]
        for start, n in self._history:
            if start <= self._told:
                current = n
        return current

    def exhausted(self) -> bool:
        return not self._records

    def free_slots(self) -> int:
        return max(0, self.slots - len(self._inflight))

    def busy(self) -> int:
        return len(self._inflight)

    def submit(self, job: Job) -> None:
        rec = self._by_trial.get(job.trial)
        parent = job.inheritance.parent if job.inheritance is not None else None
        if rec is not None and (rec.key, rec.fidelity, rec.inherited) != (job.key, job.fidelity, parent):
            asked = _described(job.key, job.fidelity, parent)
            recorded = _described(rec.key, rec.fidelity, rec.inherited)
            what = f"trial {job.trial} asked for genome {asked}, the journal recorded {recorded}"
            raise ResumeMismatch(f"resume: {what}; {_not_deterministic(self._strategy)}", what)
        self._inflight[job.trial] = job

    def in_flight(self) -> list[Job]:
        """Jobs submitted but with no recorded result (cut off by the interruption), in trial order."""
        return [self._inflight[t] for t in sorted(self._inflight)]

    def wait(self, timeout: float | None = None) -> list[JobResult]:
        if not self._records:
            return []
        rec = self._records.popleft()
        job = self._inflight.pop(rec.trial, None)
        if job is None:
            what = (f"the journal's result #{rec.seq} (trial {rec.trial}) arrived before strategy "
                    f"'{self._strategy}' asked for it")
            raise ResumeMismatch(f"resume: {what}; {_not_deterministic(self._strategy)}", what)
        self._told += 1
        return [JobResult(rec.trial, rec.status, rec.metrics, rec.error, rec.wall_s or 0.0, rec.worker or "", record=rec,
                          curve=rec.curve)]  # fmt: skip


def _described(key: str, fidelity: float | None, parent: str | None) -> str:
    """``key``, with its fidelity and the parent whose weights it started from, in words."""
    text = key if fidelity is None else f"{key} at fidelity {fidelity:g}"
    return text if parent is None else f"{text} from {parent}'s weights"


def _not_deterministic(strategy: str) -> str:
    """What a resume that cannot replay its journal blames: whatever draws random numbers outside the run's rng."""
    return (f"strategy '{strategy}', the space's sample() or an operator is not deterministic (each must draw only "
            "with the rng it is given; evonas.testing.check_space and check_mutation check a space and an operator)")
