"""Schedule state in memory: the library's default. It lasts as long as the object, so a
kernel started again on the same store (in one process) keeps its grid and its decisions;
nothing survives the process.

Applied on the loop at each record (``write_ahead`` is false), so it is kept cheap: the
engine's journal calls :meth:`MemoryScheduleStore.run_started` and
:meth:`MemoryScheduleStore.run_ended` directly for the two records of every run (no record
object), and :meth:`MemoryScheduleStore.load` builds the states.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from ._records import (
    Batch,
    Decided,
    Defined,
    Forgotten,
    InFlight,
    JobState,
    RunEnded,
    RunStarted,
    trigger_key,
)

__all__ = ("MemoryScheduleStore",)


class MemoryScheduleStore:
    """:class:`~kernel.state.ScheduleStore` in dicts (see the module doc)."""

    write_ahead = False

    def __init__(self) -> None:
        self.definitions: dict[str, Defined] = {}
        # job id -> the latest (time, how) decided without a run
        self.decided: dict[str, tuple[datetime, str]] = {}
        # job id -> the latest scheduled time run
        self.last_run: dict[str, datetime] = {}
        # run id -> (job id, scheduled time, started, attempt), until it ends
        self.started: dict[str, tuple[str, datetime | None, datetime, int]] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def load(self) -> tuple[dict[str, JobState], list[InFlight]]:
        jobs = {}
        for job_id, d in self.definitions.items():
            last = self.decided.get(job_id)
            ran = self.last_run.get(job_id)
            if ran is not None and (last is None or ran >= last[0]):
                last = (ran, "run")
            jobs[job_id] = JobState(
                job_id=job_id, func_ref=d.func_ref, trigger=trigger_key(d.trigger),
                anchor=d.anchor,
                since=d.since, last_decided=None if last is None else last[0],
                last_outcome=None if last is None else last[1])
        runs = [InFlight(run_id=run_id, job_id=job_id, scheduled_at=sched,
                         started_at=started, attempt=attempt)
                for run_id, (job_id, sched, started, attempt) in self.started.items()]
        return jobs, runs

    async def commit(self, batch: Batch) -> None:
        self.apply(batch)

    def run_started(self, job_id: str, run_id: str, sched: datetime | None,
                    started: datetime, attempt: int) -> None:
        """:class:`RunStarted`, without the record (the hot path)."""
        self.started[run_id] = (job_id, sched, started, attempt)
        if sched is not None:
            last_run = self.last_run
            last = last_run.get(job_id)
            if last is None or sched > last:
                last_run[job_id] = sched

    def run_ended(self, run_id: str) -> None:
        """:class:`RunEnded`, without the record (the hot path)."""
        self.started.pop(run_id, None)

    def apply(self, batch: Batch) -> None:
        for rec in batch:
            kind = type(rec)
            if kind is RunStarted:
                r = cast(RunStarted, rec)
                self.run_started(r.job_id, r.run_id, r.scheduled_at, r.started_at, r.attempt)
            elif kind is RunEnded:
                self.run_ended(cast(RunEnded, rec).run_id)
            elif kind is Decided:
                d = cast(Decided, rec)
                last = self.decided.get(d.job_id)
                if last is None or d.scheduled_at >= last[0]:
                    self.decided[d.job_id] = (d.scheduled_at, d.outcome)
            elif kind is Defined:
                defined = cast(Defined, rec)
                self.definitions[defined.job_id] = defined
                self.decided.pop(defined.job_id, None)
                self.last_run.pop(defined.job_id, None)
            elif kind is Forgotten:
                job_id = cast(Forgotten, rec).job_id
                self.definitions.pop(job_id, None)
                self.decided.pop(job_id, None)
                self.last_run.pop(job_id, None)
