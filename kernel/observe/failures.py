"""Failure records: every failed run (exception or timeout), kept so it can be retried.

The kernel keeps them in a bounded in-memory ring by default
(:class:`MemoryFailureStore`); a persistent store implements :class:`FailureStore`.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Literal, Protocol

import msgspec

__all__ = (
    "FailureRecord",
    "FailureStore",
    "MemoryFailureStore",
    "RetryAttempt",
    "RetryOutcome",
)

RetryOutcome = Literal["running", "succeeded", "failed", "skipped"]


class RetryAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """One retry of a failed run: its run id and how it ended (``failure_id`` if it failed)."""

    run_id: str
    started_at: datetime
    outcome: RetryOutcome = "running"
    manual: bool = True
    failure_id: str | None = None


class FailureRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A failed run: what ran, when, how long, and why it failed."""

    id: str
    job_id: str
    run_id: str
    scheduled_at: datetime | None
    started_at: datetime
    duration: float
    exc_type: str
    message: str
    traceback: str
    timed_out: bool = False
    attempt: int = 1
    retry_of: str | None = None
    retries: tuple[RetryAttempt, ...] = ()


class FailureStore(Protocol):
    """Where failure records live. Implementations must be safe to call from the loop."""

    async def add_failure(self, record: FailureRecord) -> None:
        """Store a new record (its ``id`` is unique)."""
        ...

    async def get_failure(self, failure_id: str) -> FailureRecord | None:
        """The record with this id, or ``None``."""
        ...

    async def list_failures(
        self, *, job_id: str | None = None, limit: int = 100
    ) -> list[FailureRecord]:
        """The newest records first, optionally only one job's."""
        ...

    async def set_retry(self, failure_id: str, attempt: RetryAttempt) -> None:
        """Add a retry attempt to a record, or update the one with the same ``run_id``."""
        ...


class MemoryFailureStore:
    """A bounded ring of the newest ``capacity`` failure records, in memory."""

    def __init__(self, capacity: int = 1000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity {capacity} must be at least 1")
        self._capacity = capacity
        self._records: OrderedDict[str, FailureRecord] = OrderedDict()

    async def add_failure(self, record: FailureRecord) -> None:
        self._records[record.id] = record
        while len(self._records) > self._capacity:
            self._records.popitem(last=False)

    async def get_failure(self, failure_id: str) -> FailureRecord | None:
        return self._records.get(failure_id)

    async def list_failures(
        self, *, job_id: str | None = None, limit: int = 100
    ) -> list[FailureRecord]:
        out: list[FailureRecord] = []
        for record in reversed(self._records.values()):
            if job_id is None or record.job_id == job_id:
                out.append(record)
                if len(out) >= limit:
                    break
        return out

    async def set_retry(self, failure_id: str, attempt: RetryAttempt) -> None:
        record = self._records.get(failure_id)
        if record is None:
            return
        retries = [r for r in record.retries if r.run_id != attempt.run_id]
        retries.append(attempt)
        retries.sort(key=lambda r: r.started_at)
        self._records[failure_id] = msgspec.structs.replace(record, retries=tuple(retries))
