"""The journal: the engine's writes to its schedule-state store, batched per timer tick.

The engine tells it, on the loop thread: a job's definition is new or changed
(:meth:`Journal.defined`), a job was removed (:meth:`forgotten`), a scheduled time was
decided without a run (:meth:`decided`), a run is about to start (:meth:`started`) and
a run ended (:meth:`ended`).

For a store whose ``write_ahead`` is false (memory) each record is applied at once (the
memory store's two per-run records through its own methods, without a record object). For
the others (SQLite, PostgreSQL) records collect in a batch. A run's start starts the
writer task, which runs after the current callback (the timer tick) is over, so
everything one tick decided is committed in one transaction. :meth:`started` answers the
future of its batch's commit: the run's body awaits it, so a run's start is on disk
before its body starts (write-ahead). While a commit is in progress the next batch
collects (group commit). The other records (outcomes, decisions without a run,
definitions) wait for the next start's commit, or at most ``OUTCOME_DELAY`` seconds:
one commit per run instead of two. A crash within that delay after a run ended reports
the run interrupted although it ended (its retry policy then decides, as for any
interruption); nothing is lost silently. A commit that fails is logged, and its records
are put back in front of the next batch and retried after ``RETRY_DELAY`` seconds of the
kernel's clock; the runs go on meanwhile (a store outage must not stop the schedule),
with at most ``MAX_PENDING`` records kept, the oldest dropped and counted in the log.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from ..clock import Clock, TimerHandle
from ..schedule.triggers import Trigger
from ..state import (
    Decided,
    Defined,
    Forgotten,
    Record,
    RunEnded,
    RunStarted,
    ScheduleStore,
)
from ..state.memory import MemoryScheduleStore

__all__ = ("MAX_PENDING", "OUTCOME_DELAY", "RETRY_DELAY", "Journal")

log = logging.getLogger("scheduler.state")
RETRY_DELAY = 1.0
MAX_PENDING = 100_000
# Seconds an outcome may wait for a run start's commit to share (see the module doc).
OUTCOME_DELAY = 0.05


class Journal:
    """Batches schedule-state records into a store (see the module doc)."""

    def __init__(self, store: ScheduleStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.write_ahead = store.write_ahead
        self._memory = store if isinstance(store, MemoryScheduleStore) and \
            not store.write_ahead else None
        self._batch: list[Record] = []
        self._waiter: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._timer: TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failing = False
        self._dropped = 0

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    # -- records (loop thread) -----------------------------------------------------------
    def started(self, job_id: str, run_id: str, sched: datetime | None, started: datetime,
                attempt: int) -> asyncio.Future[None] | None:
        """A run is about to start; what its body must await first (None: nothing)."""
        memory = self._memory
        if memory is not None:
            memory.run_started(job_id, run_id, sched, started, attempt)
            return None
        rec = RunStarted(job_id, run_id, sched, started, attempt)
        if not self.write_ahead:
            self.store.apply((rec,))
            return None
        self._batch.append(rec)
        waiter = self._waiter
        if waiter is None:
            loop = self._loop
            assert loop is not None
            waiter = self._waiter = loop.create_future()
        if self._writer is None:
            self._start_writer(everything=False)
        return waiter

    def ended(self, job_id: str, run_id: str, outcome: str) -> None:
        memory = self._memory
        if memory is not None:
            memory.run_ended(run_id)
            return
        rec = RunEnded(job_id, run_id, outcome)
        if self.write_ahead:
            self._add(rec)
        else:
            self.store.apply((rec,))

    def decided(self, job_id: str, sched: datetime, outcome: str) -> None:
        self.record(Decided(job_id, sched, outcome))

    def defined(self, job_id: str, func_ref: str, trigger: Trigger, anchor: datetime | None,
                since: datetime) -> None:
        self.record(Defined(job_id, func_ref, trigger, anchor, since))

    def forgotten(self, job_id: str) -> None:
        self.record(Forgotten(job_id))

    def record(self, rec: Record) -> None:
        if self.write_ahead:
            self._add(rec)
        else:
            self.store.apply((rec,))

    def _add(self, rec: Record) -> None:
        """A record that waits for the next start's commit, or ``OUTCOME_DELAY``."""
        self._batch.append(rec)
        if self._writer is None and self._timer is None and self._loop is not None:
            clock = self.clock
            self._timer = clock.call_at(clock.monotonic() + OUTCOME_DELAY, self._delayed)

    def _delayed(self) -> None:
        self._timer = None
        if self._writer is None and self._batch:
            self._start_writer(everything=True)

    # -- the writer ----------------------------------------------------------------------
    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _start_writer(self, *, everything: bool) -> None:
        self._cancel_timer()
        loop = self._loop
        assert loop is not None
        self._writer = loop.create_task(self._write(everything))

    async def _write(self, everything: bool) -> None:
        """Commit batches while a run waits for one (``everything``: until none is left)."""
        try:
            while self._batch and (everything or self._waiter is not None):
                batch, self._batch = self._batch, []
                waiter, self._waiter = self._waiter, None
                try:
                    with self.clock.external_work():
                        await self.store.commit(batch)
                except Exception as exc:
                    self._failed(batch, exc)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
                    await self.clock.sleep(RETRY_DELAY)
                    continue
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                if self._failing:
                    self._failing = False
                    log.warning("Schedule state is written again (%s)", self.store)
        finally:
            self._writer = None
            if self._batch and self._timer is None and self._loop is not None \
                    and not self._loop.is_closed():
                # Outcomes left behind wait for the next start, or the delay.
                clock = self.clock
                self._timer = clock.call_at(clock.monotonic() + OUTCOME_DELAY, self._delayed)

    def _failed(self, batch: list[Record], exc: Exception) -> None:
        keep = batch + self._batch
        over = len(keep) - MAX_PENDING
        if over > 0:
            del keep[:over]
            self._dropped += over
        self._batch = keep
        if not self._failing or over > 0:
            log.error(
                "Could not write the schedule state to %s (%s: %s); runs go on, %d record(s) "
                "kept to write again in %.0f s%s", self.store, type(exc).__name__, exc,
                len(keep), RETRY_DELAY,
                f"; {self._dropped} oldest record(s) dropped so far (limit {MAX_PENDING})"
                if self._dropped else "",
            )
        self._failing = True

    async def flush(self) -> None:
        """Wait until every record so far is committed (or has failed once)."""
        while self._batch or self._writer is not None:
            if self._writer is None:
                self._start_writer(everything=True)
            assert self._writer is not None
            await asyncio.shield(self._writer)

    async def close(self) -> None:
        """At shutdown: write what is left (one attempt) and close the store."""
        self._cancel_timer()
        writer = self._writer
        if writer is not None and self._failing:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            self._writer = None
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        self._cancel_timer()  # the writer's end may have armed it
        if self._batch:
            batch, self._batch = self._batch, []
            self._waiter = None
            try:
                await self.store.commit(batch)
            except Exception as exc:
                log.error("Could not write the last %d schedule-state record(s) to %s at "
                          "shutdown (%s: %s)", len(batch), self.store, type(exc).__name__, exc)
        await self.store.close()
