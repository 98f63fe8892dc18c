"""The records a journal writes and the per-job state a store reads back (plain data)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import msgspec

from ..schedule.triggers import Trigger

__all__ = (
    "Batch",
    "Decided",
    "Defined",
    "Forgotten",
    "InFlight",
    "JobState",
    "Record",
    "RunEnded",
    "RunStarted",
    "trigger_key",
)


class Defined(NamedTuple):
    """A job's definition is new or changed: its state starts again from ``since``."""

    job_id: str
    func_ref: str
    trigger: Trigger  # stores keep it as :func:`trigger_key` (JSON), when they write it
    anchor: datetime | None  # an interval job's first fire time (its grid), else None
    since: datetime  # scheduled times after this are this definition's


def trigger_key(trigger: Trigger) -> str:
    """A trigger as stored: its spec as JSON (what decides whether a state applies)."""
    return msgspec.json.encode(trigger.to_spec()).decode()


class Forgotten(NamedTuple):
    """The job was removed: its state goes (runs in flight stay until they end)."""

    job_id: str


class RunStarted(NamedTuple):
    """A run is about to start its body (``scheduled_at`` None: a manual run)."""

    job_id: str
    run_id: str
    scheduled_at: datetime | None
    started_at: datetime
    attempt: int


class Decided(NamedTuple):
    """A scheduled time was decided without a run: missed, coalesced, max_instances."""

    job_id: str
    scheduled_at: datetime
    outcome: str


class RunEnded(NamedTuple):
    """A run ended: succeeded, failed, cancelled or interrupted."""

    job_id: str
    run_id: str
    outcome: str


Record = Defined | Forgotten | RunStarted | Decided | RunEnded
Batch = Sequence[Record]


class InFlight(msgspec.Struct, frozen=True, kw_only=True):
    """A run whose start was recorded and whose end was not."""

    run_id: str
    job_id: str
    scheduled_at: datetime | None
    started_at: datetime
    attempt: int = 1


class JobState(msgspec.Struct, frozen=True, kw_only=True):
    """What a store knows of one job."""

    job_id: str
    func_ref: str
    trigger: str  # trigger_key()
    anchor: datetime | None
    since: datetime
    last_decided: datetime | None = None
    last_outcome: str | None = None
