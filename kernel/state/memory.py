"""Schedule state in memory: the library's default. It lasts as long as the object, so a
kernel started again on the same store (in one process) keeps its grid and its decisions;
nothing survives the process."""

from __future__ import annotations

import msgspec

from ._records import (
    Batch,
    Decided,
    Defined,
    Forgotten,
    InFlight,
    JobState,
    RunEnded,
    RunStarted,
)

__all__ = ("MemoryScheduleStore", "fold")


def fold(jobs: dict[str, JobState], runs: dict[str, InFlight], batch: Batch) -> None:
    """Apply ``batch`` to ``jobs`` and ``runs`` in order (the meaning of every record)."""
    for rec in batch:
        if isinstance(rec, RunStarted):
            runs[rec.run_id] = InFlight(run_id=rec.run_id, job_id=rec.job_id,
                                        scheduled_at=rec.scheduled_at,
                                        started_at=rec.started_at, attempt=rec.attempt)
            if rec.scheduled_at is not None:
                _decided(jobs, rec.job_id, rec.scheduled_at, "run")
        elif isinstance(rec, RunEnded):
            runs.pop(rec.run_id, None)
        elif isinstance(rec, Decided):
            _decided(jobs, rec.job_id, rec.scheduled_at, rec.outcome)
        elif isinstance(rec, Defined):
            jobs[rec.job_id] = JobState(job_id=rec.job_id, func_ref=rec.func_ref,
                                        trigger=rec.trigger, anchor=rec.anchor, since=rec.since)
        elif isinstance(rec, Forgotten):
            jobs.pop(rec.job_id, None)


def _decided(jobs: dict[str, JobState], job_id: str, when: object, outcome: str) -> None:
    state = jobs.get(job_id)
    if state is None:
        return
    last = state.last_decided
    if last is None or when >= last:  # type: ignore[operator]
        jobs[job_id] = msgspec.structs.replace(state, last_decided=when,
                                               last_outcome=outcome)


class MemoryScheduleStore:
    """:class:`~kernel.state.ScheduleStore` in two dicts (see the module doc)."""

    write_ahead = False

    def __init__(self) -> None:
        self.jobs: dict[str, JobState] = {}
        self.runs: dict[str, InFlight] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def load(self) -> tuple[dict[str, JobState], list[InFlight]]:
        return dict(self.jobs), list(self.runs.values())

    async def commit(self, batch: Batch) -> None:
        fold(self.jobs, self.runs, batch)

    def apply(self, batch: Batch) -> None:
        fold(self.jobs, self.runs, batch)
