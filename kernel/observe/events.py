"""Events the kernel reports: every change to a job and every outcome of a run.

Events are frozen ``msgspec`` structs, tagged by kind so a stream of them can be
encoded to JSON and decoded back (``msgspec.json.decode(data, type=Event)``).
``scheduled_at`` is when the trigger said the run should start (aware UTC), or
``None`` for a manual run and for a job that has no next run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

__all__ = (
    "Event",
    "FailureRecordDropped",
    "JobAdded",
    "JobModified",
    "JobRemoved",
    "RunFailed",
    "RunMissed",
    "RunOutcome",
    "RunSkipped",
    "RunStarted",
    "RunSucceeded",
    "SkipReason",
)

SkipReason = Literal["max_instances", "coalesced"]


class _Base(msgspec.Struct, frozen=True, tag_field="event", kw_only=True):
    job_id: str
    scheduled_at: datetime | None


class JobAdded(_Base, frozen=True, tag="job_added"):
    """A job was registered (``scheduled_at`` is its first run time)."""


class JobRemoved(_Base, frozen=True, tag="job_removed"):
    """A job was removed, or ran its last time and left."""


class JobModified(_Base, frozen=True, tag="job_modified"):
    """A job was paused, resumed or rescheduled (``scheduled_at`` is its next run time)."""

    change: Literal["paused", "resumed", "rescheduled", "replaced"]


class RunStarted(_Base, frozen=True, tag="run_started"):
    """A run began. ``lateness`` is start minus scheduled time, in seconds."""

    run_id: str
    started_at: datetime
    lateness: float
    manual: bool = False
    attempt: int = 1
    retry_of: str | None = None


class RunSucceeded(_Base, frozen=True, tag="run_succeeded"):
    """A run returned normally after ``duration`` seconds."""

    run_id: str
    started_at: datetime
    duration: float
    manual: bool = False
    attempt: int = 1
    retry_of: str | None = None


class RunFailed(_Base, frozen=True, tag="run_failed"):
    """A run raised (or hit its timeout, then ``timed_out`` is true). ``failure_id`` is the
    id of its failure record (stored, or kept by the failure outbox until it can be)."""

    run_id: str
    started_at: datetime
    duration: float
    exc_type: str
    message: str
    traceback: str
    timed_out: bool = False
    manual: bool = False
    attempt: int = 1
    retry_of: str | None = None
    failure_id: str | None = None


class RunMissed(_Base, frozen=True, tag="run_missed"):
    """A scheduled run was later than ``misfire_grace_time`` allows and did not run."""

    lateness: float


class RunSkipped(_Base, frozen=True, tag="run_skipped"):
    """A scheduled run did not run: too many instances running, or coalesced away."""

    reason: SkipReason


class FailureRecordDropped(_Base, frozen=True, tag="failure_record_dropped"):
    """The failure outbox was full while the failure store failed: the oldest kept record,
    ``failure_id`` of run ``run_id``, was dropped and will never be stored."""

    failure_id: str
    run_id: str


RunOutcome = RunSucceeded | RunFailed
Event = (
    JobAdded
    | JobRemoved
    | JobModified
    | RunStarted
    | RunSucceeded
    | RunFailed
    | RunMissed
    | RunSkipped
    | FailureRecordDropped
)
