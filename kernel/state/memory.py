"""Schedule state in memory: the library's default. It lasts as long as the object, so a
kernel started again on the same store (in one process) keeps its grid and its decisions;
nothing survives the process.

Applied on the loop at each record (``write_ahead`` is false), so it is kept cheap: the
records themselves are stored, and :meth:`MemoryScheduleStore.load` builds the states.
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
        self.decided: dict[str, tuple[datetime, str]] = {}  # job id -> latest (time, how)
        self.started: dict[str, RunStarted] = {}  # run id -> its start, until it ends

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def load(self) -> tuple[dict[str, JobState], list[InFlight]]:
        jobs = {}
        for job_id, d in self.definitions.items():
            last = self.decided.get(job_id)
            jobs[job_id] = JobState(
                job_id=job_id, func_ref=d.func_ref, trigger=trigger_key(d.trigger),
                anchor=d.anchor,
                since=d.since, last_decided=None if last is None else last[0],
                last_outcome=None if last is None else last[1])
        runs = [InFlight(run_id=r.run_id, job_id=r.job_id, scheduled_at=r.scheduled_at,
                         started_at=r.started_at, attempt=r.attempt)
                for r in self.started.values()]
        return jobs, runs

    async def commit(self, batch: Batch) -> None:
        self.apply(batch)

    def apply(self, batch: Batch) -> None:
        started, decided = self.started, self.decided
        for rec in batch:
            kind = type(rec)
            if kind is RunStarted:  # the hot path: no isinstance chain
                run = cast(RunStarted, rec)
                started[run.run_id] = run
                when = run.scheduled_at
                if when is not None:
                    last = decided.get(run.job_id)
                    if (last is None or when >= last[0]) and run.job_id in self.definitions:
                        decided[run.job_id] = (when, "run")
            elif kind is RunEnded:
                started.pop(cast(RunEnded, rec).run_id, None)
            elif kind is Defined:
                d = cast(Defined, rec)
                self.definitions[d.job_id] = d
                decided.pop(d.job_id, None)
            elif kind is Decided:
                assert isinstance(rec, Decided)
                last = decided.get(rec.job_id)
                if (last is None or rec.scheduled_at >= last[0]) and \
                        rec.job_id in self.definitions:
                    decided[rec.job_id] = (rec.scheduled_at, rec.outcome)
            elif kind is Forgotten:
                self.definitions.pop(rec.job_id, None)
                decided.pop(rec.job_id, None)
