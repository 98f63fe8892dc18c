"""The failure outbox: failure records whose write failed wait here, in order, until the
store takes them.

:class:`FailureOutbox` is a :class:`~kernel.observe.failures.FailureStore` in front of
another. A record is written by one writer task, oldest first. When a write fails (the
database is down, the SQLite file is locked or read-only), the record and every record after
it are *kept* in memory, each said in the log, and the writer tries the oldest again after a
backoff (``backoff`` seconds, doubling up to ``max_backoff``) until the store takes it; the
log then says how many kept records were written. At most ``capacity`` records wait: one
more drops the oldest waiting record (logged with its id, job, run and scheduled time, and
reported to ``on_drop``, which the kernel turns into a ``FailureRecordDropped`` event and
the ``scheduled_task_failure_records_dropped_total`` metric).

Records still waiting are part of what the outbox answers: :meth:`~FailureOutbox.get_failure`
and :meth:`~FailureOutbox.list_failures` include them, and :meth:`~FailureOutbox.set_retry`
links a retry to a waiting record, so a record can be listed and retried before and after
it is written. :meth:`~FailureOutbox.close` tries a last flush within a deadline and logs
every record it could not write.

Concurrency contract: only the event loop thread calls it; the writer task is the only one
that writes to the store, so records reach it in the order they were added.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from ..clock import Clock, TimerHandle
from .failures import FailureRecord, FailureStore, RetryAttempt
from .redaction import redact

__all__ = ("DEFAULT_OUTBOX_CAPACITY", "FailureOutbox")

log = logging.getLogger("scheduler.failures")

# 10,000 records of ~3 KB (a traceback) is ~30 MB at worst: a 30 s outage of a job failing
# every second keeps 30, so the bound is reached only by thousands of failures per outage.
DEFAULT_OUTBOX_CAPACITY = 10_000
# Most records not written at stop are logged one line each; past this, one summary line.
_LOGGED_AT_STOP = 100


class _Entry:
    """One waiting record; ``settled`` is set once it is written, kept or dropped (what
    :meth:`FailureOutbox.add_failure` waits for)."""

    __slots__ = ("kept", "record", "settled")

    def __init__(self, record: FailureRecord) -> None:
        self.record = record
        self.kept = False
        self.settled = asyncio.Event()


def _when(value: datetime | None) -> str:
    return "manual" if value is None else value.isoformat()


class FailureOutbox:
    """A :class:`FailureStore` that keeps records the ``store`` could not take and writes
    them, in order, when it can (see the module doc).

    ``capacity``: records kept at most (the oldest is dropped past it). ``backoff`` and
    ``max_backoff``: seconds of ``clock`` between tries while the store fails.
    ``on_drop``: called with each dropped record.
    """

    def __init__(
        self,
        store: FailureStore,
        clock: Clock,
        *,
        capacity: int = DEFAULT_OUTBOX_CAPACITY,
        backoff: float = 0.5,
        max_backoff: float = 15.0,
        on_drop: Callable[[FailureRecord], None] | None = None,
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(
                f"failure outbox capacity={capacity!r} must be a whole number of records >= 1"
            )
        if not 0 < backoff <= max_backoff:
            raise ValueError(
                f"failure outbox backoff={backoff!r}, max_backoff={max_backoff!r}: need "
                "0 < backoff <= max_backoff (seconds)"
            )
        self.store = store
        self.clock = clock
        self.capacity = capacity
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.on_drop = on_drop
        self.dropped = 0
        """Records dropped since start because the outbox was full."""
        self._waiting: OrderedDict[str, _Entry] = OrderedDict()  # oldest first
        self._writing: _Entry | None = None
        self._writer: asyncio.Task[None] | None = None
        self._failing = False  # the last write failed: new records are kept at once
        self._closing = False
        self._wake: asyncio.Event | None = None

    # -- state ---------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Records waiting to be written (kept, or in the writer's queue)."""
        return len(self._waiting)

    @property
    def failing(self) -> bool:
        """True while the store refuses writes (records are being kept)."""
        return self._failing

    def waiting(self) -> list[FailureRecord]:
        """The records not written yet, oldest first."""
        return [entry.record for entry in self._waiting.values()]

    # -- FailureStore --------------------------------------------------------------------
    async def add_failure(self, record: FailureRecord) -> None:
        """Write ``record`` after those before it; return once it is stored, or kept
        because the store failed (never raises for a store error)."""
        entry = _Entry(record)
        old = self._waiting.pop(record.id, None)
        if old is not None:  # the same id again replaces the record, as a store does
            old.settled.set()
        self._waiting[record.id] = entry
        if self._failing:
            self._keep(entry, None)
        self._trim()
        self._start_writer()
        await entry.settled.wait()

    async def get_failure(self, failure_id: str) -> FailureRecord | None:
        entry = self._waiting.get(failure_id)
        if entry is not None:
            return entry.record
        return await self.store.get_failure(failure_id)

    async def list_failures(
        self, *, job_id: str | None = None, limit: int = 100
    ) -> list[FailureRecord]:
        waiting = [
            entry.record
            for entry in reversed(self._waiting.values())
            if job_id is None or entry.record.job_id == job_id
        ][: max(limit, 0)]
        stored = await self.store.list_failures(job_id=job_id, limit=limit)
        seen = {record.id for record in waiting}
        # Waiting records failed after every stored one (the writer keeps the order).
        return (waiting + [record for record in stored if record.id not in seen])[:limit]

    async def set_retry(self, failure_id: str, attempt: RetryAttempt) -> None:
        entry = self._waiting.get(failure_id)
        if entry is None:
            await self.store.set_retry(failure_id, attempt)
            return
        # Linked in memory; the writer writes the record with it (again, if the link came
        # while the record was being written).
        retries = [r for r in entry.record.retries if r.run_id != attempt.run_id]
        retries.append(attempt)
        retries.sort(key=lambda r: r.started_at)
        entry.record = msgspec.structs.replace(entry.record, retries=tuple(retries))

    # -- stopping ------------------------------------------------------------------------
    async def close(self, deadline: float) -> None:
        """Try to write every waiting record within ``deadline`` seconds of the clock (one
        try at once, then the usual backoff, at most ``backoff`` apart); log those that
        could not be written. They stay waiting (a restarted kernel writes them)."""
        writer = self._writer
        if writer is None and not self._waiting:
            return
        self._closing = True
        try:
            if deadline > 0:
                self._start_writer()
                if self._wake is not None:
                    self._wake.set()  # no waiting out the backoff: try now
            writer = self._writer
            if writer is not None:
                await _within(self.clock, writer, deadline)
        finally:
            self._closing = False
        if self._waiting:
            self._log_unwritten(deadline)

    # -- the writer ----------------------------------------------------------------------
    def _start_writer(self) -> None:
        if self._writer is None and self._waiting:
            self._writer = asyncio.get_running_loop().create_task(
                self._write_all(), name="failure-outbox"
            )

    async def _write_all(self) -> None:
        delay = self.backoff
        written_late = 0
        try:
            while self._waiting:
                entry = next(iter(self._waiting.values()))
                record = entry.record
                self._writing = entry
                try:
                    await self.store.add_failure(record)
                except Exception as exc:  # the store's error, whatever its driver
                    self._writing = None
                    self._failing = True
                    for waiting in self._waiting.values():
                        if not waiting.kept:
                            self._keep(waiting, exc)
                    await self._pause(delay)
                    delay = min(delay * 2, self.max_backoff) if not self._closing else self.backoff
                    continue
                self._writing = None
                if entry.record is not record:
                    continue  # a retry was linked while it was written: write it again
                if self._waiting.get(record.id) is entry:
                    del self._waiting[record.id]
                entry.settled.set()
                delay = self.backoff
                if entry.kept:
                    written_late += 1
                    log.debug(
                        "wrote kept failure record %s of job %s (run %s, scheduled %s)",
                        record.id,
                        record.job_id,
                        record.run_id,
                        _when(record.scheduled_at),
                    )
                if self._failing:
                    self._failing = False
                    log.info(
                        "the failure store takes records again; writing the %d kept "
                        "failure record(s)",
                        len(self._waiting) + 1,
                    )
            if written_late:
                log.info("wrote %d kept failure record(s); none is waiting", written_late)
        finally:
            self._writing = None
            self._writer = None
            for waiting in self._waiting.values():
                waiting.settled.set()  # cancelled at stop: nobody waits for these any more

    async def _pause(self, seconds: float) -> None:
        wake = self._wake = asyncio.Event()
        timer: TimerHandle = self.clock.call_at(self.clock.monotonic() + seconds, wake.set)
        try:
            await wake.wait()
        finally:
            timer.cancel()
            self._wake = None

    # -- keeping and dropping ------------------------------------------------------------
    def _keep(self, entry: _Entry, exc: BaseException | None) -> None:
        entry.kept = True
        record = entry.record
        why = (
            "the store is failing (older records wait too)"
            if exc is None
            else f"{type(exc).__name__}: {redact(str(exc))}"
        )
        log.warning(
            "could not store the failure record %s of job %s (run %s, scheduled %s): %s; "
            "kept it in memory to write when the store is back (%d waiting, at most %d)",
            record.id,
            record.job_id,
            record.run_id,
            _when(record.scheduled_at),
            why,
            len(self._waiting),
            self.capacity,
        )
        entry.settled.set()

    def _trim(self) -> None:
        while len(self._waiting) > self.capacity:
            victim = next(entry for entry in self._waiting.values() if entry is not self._writing)
            del self._waiting[victim.record.id]
            victim.settled.set()
            self.dropped += 1
            record = victim.record
            log.error(
                "failure outbox full (%d records kept while the store fails): dropped the "
                "oldest, failure record %s of job %s (run %s, scheduled %s); %d dropped "
                "since start",
                self.capacity,
                record.id,
                record.job_id,
                record.run_id,
                _when(record.scheduled_at),
                self.dropped,
            )
            if self.on_drop is not None:
                self.on_drop(record)

    def _log_unwritten(self, deadline: float) -> None:
        records = self.waiting()
        log.error(
            "at stop, %d failure record(s) could not be written within %g s; they are "
            "lost when this process exits:",
            len(records),
            deadline,
        )
        for record in records[:_LOGGED_AT_STOP]:
            log.error(
                "  not written: failure record %s of job %s (run %s, scheduled %s, %s: %s)",
                record.id,
                record.job_id,
                record.run_id,
                _when(record.scheduled_at),
                record.exc_type,
                record.message[:200],
            )
        rest = records[_LOGGED_AT_STOP:]
        if rest:
            jobs: dict[str, int] = {}
            for record in rest:
                jobs[record.job_id] = jobs.get(record.job_id, 0) + 1
            log.error(
                "  and %d more not written (by job: %s)",
                len(rest),
                ", ".join(f"{job} {n}" for job, n in sorted(jobs.items())),
            )


async def _within(clock: Clock, task: asyncio.Task[Any], seconds: float) -> None:
    """Wait for ``task`` at most ``seconds`` of ``clock``; cancel it if it is not done."""
    loop = asyncio.get_running_loop()
    expired: asyncio.Future[None] = loop.create_future()

    def expire() -> None:
        if not expired.done():
            expired.set_result(None)

    if seconds <= 0:
        expire()
    timer = clock.call_at(clock.monotonic() + max(0.0, seconds), expire)
    try:
        await asyncio.wait({task, expired}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not expired.done():
            expired.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
