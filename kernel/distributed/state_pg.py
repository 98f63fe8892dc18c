"""Schedule state in PostgreSQL, in the tables cluster mode uses (one mechanism, not two).

:class:`PostgresScheduleStore` implements :class:`kernel.state.ScheduleStore` on the
scheduler schema of a :class:`~kernel.distributed._pg.Database` (created and migrated by
it, as for replicas):

* **Runs** are rows of ``claims``, keyed by (job id, scheduled time) as the replicas'
  claims are: a run's start inserts (or, for a retry of the same time, takes over) the row
  as ``running``, its end sets ``succeeded`` or ``failed``; a time decided without a run
  is a finished row ``missed``, ``coalesced`` or ``skipped``, as
  :meth:`~kernel.distributed.postgres.PostgresCoordinator.mark` writes it. These rows
  have no lease (``lease_until`` NULL): a replica's reaper never takes them for its own,
  and at start the rows still ``running`` without a lease are the runs in flight. A
  manual run, which has no scheduled time, is keyed by its start time and flagged
  (``claims.manual``, a column this module adds).
* **The latest time decided** also moves ``jobs.last_fire`` forward when the job has a
  row there (cluster mode's catch-up reads it).
* **Per-job state** (definition reference, interval anchor, since when, the latest time
  decided and how) is the ``schedule_state`` table this module adds to the schema.

Batches are one transaction each (``executemany`` per run of records of one kind).
Finished rows of this store older than ``keep_finished`` are deleted at open and every
``PRUNE_EVERY`` commits, as the reaper does for replicas.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from ..state import (
    Batch,
    Decided,
    Defined,
    Forgotten,
    InFlight,
    JobState,
    Record,
    RunEnded,
    RunStarted,
    trigger_key,
)
from ._pg import Database

__all__ = ("PRUNE_EVERY", "PostgresScheduleStore")

PRUNE_EVERY = 1000

_DDL = """
CREATE TABLE IF NOT EXISTS schedule_state (
    job_id text PRIMARY KEY,
    func_ref text NOT NULL,
    trigger text NOT NULL,
    anchor timestamptz,
    since timestamptz NOT NULL,
    last_decided timestamptz,
    last_outcome text
);
ALTER TABLE claims ADD COLUMN IF NOT EXISTS manual boolean NOT NULL DEFAULT false;
"""
_STARTED = (
    "INSERT INTO claims (job_id, scheduled_at, replica, run_id, state, attempt, started_at, "
    "manual) VALUES ($1, $2, $3, $4, 'running', $5, $6, $7) "
    "ON CONFLICT (job_id, scheduled_at) DO UPDATE SET replica = EXCLUDED.replica, "
    "run_id = EXCLUDED.run_id, state = 'running', attempt = EXCLUDED.attempt, "
    "started_at = EXCLUDED.started_at, finished_at = NULL, lease_until = NULL"
)
_DECIDED_STATE = (
    "UPDATE schedule_state SET last_decided = $2, last_outcome = $3 "
    "WHERE job_id = $1 AND (last_decided IS NULL OR last_decided <= $2)"
)
_LAST_FIRE = "UPDATE jobs SET last_fire = GREATEST(last_fire, $2) WHERE id = $1"
_DECIDED_CLAIM = (
    "INSERT INTO claims (job_id, scheduled_at, replica, run_id, state, finished_at) "
    "VALUES ($1, $2, $3, '', $4, now()) ON CONFLICT DO NOTHING"
)
_ENDED = (
    "UPDATE claims SET state = $3, finished_at = now() "
    "WHERE job_id = $1 AND run_id = $2 AND state = 'running' AND lease_until IS NULL"
)
_DEFINED = (
    "INSERT INTO schedule_state (job_id, func_ref, trigger, anchor, since) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id) DO UPDATE SET "
    "func_ref = EXCLUDED.func_ref, trigger = EXCLUDED.trigger, anchor = EXCLUDED.anchor, "
    "since = EXCLUDED.since, last_decided = NULL, last_outcome = NULL"
)
_FORGOTTEN = "DELETE FROM schedule_state WHERE job_id = $1"
# A claim's states (kernel.coordination.ClaimState) for the kernel's outcomes.
_CLAIM_STATE = {"succeeded": "succeeded", "failed": "failed", "cancelled": "failed",
                "interrupted": "interrupted", "missed": "missed", "coalesced": "coalesced",
                "max_instances": "skipped"}


class PostgresScheduleStore:
    """:class:`~kernel.state.ScheduleStore` on the cluster tables (see the module doc).

    ``owner`` names this process in ``claims.replica`` (default ``embedded:<host>:<pid>``).
    """

    write_ahead = True

    def __init__(self, db: Database, *, owner: str | None = None,
                 keep_finished: timedelta = timedelta(days=7)) -> None:
        self.db = db
        self.owner = owner or f"embedded:{socket.gethostname()}:{os.getpid()}"
        self.keep_finished = keep_finished
        self._commits = 0

    def __repr__(self) -> str:
        return f"PostgresScheduleStore(schema={self.db.schema!r})"

    async def open(self) -> None:
        await self.db.open()

        async def migrate(conn: Any) -> None:
            async with conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    f"lark_scheduler:schema:{self.db.schema}",
                )
                await conn.execute(_DDL)

        await self.db.call(migrate)
        await self._prune()

    async def close(self) -> None:
        await self.db.close()

    async def load(self) -> tuple[dict[str, JobState], list[InFlight]]:
        jobs = {
            row["job_id"]: JobState(
                job_id=row["job_id"], func_ref=row["func_ref"], trigger=row["trigger"],
                anchor=row["anchor"], since=row["since"], last_decided=row["last_decided"],
                last_outcome=row["last_outcome"])
            for row in await self.db.fetch(
                "SELECT job_id, func_ref, trigger, anchor, since, last_decided, last_outcome "
                "FROM schedule_state ORDER BY job_id")
        }
        runs = [
            InFlight(run_id=row["run_id"], job_id=row["job_id"],
                     scheduled_at=None if row["manual"] else row["scheduled_at"],
                     started_at=row["started_at"], attempt=row["attempt"])
            for row in await self.db.fetch(
                "SELECT run_id, job_id, scheduled_at, started_at, attempt, manual FROM claims "
                "WHERE state = 'running' AND lease_until IS NULL ORDER BY started_at, run_id")
        ]
        return jobs, runs

    async def commit(self, batch: Batch) -> None:
        async def run(conn: Any) -> None:
            async with conn.transaction():
                kind: type | None = None
                chunk: list[Record] = []
                for rec in batch:
                    if type(rec) is not kind:
                        await self._write(conn, chunk)
                        kind, chunk = type(rec), []
                    chunk.append(rec)
                await self._write(conn, chunk)

        await self.db.call(run)
        self._commits += 1
        if self._commits % PRUNE_EVERY == 0:
            await self._prune()

    def apply(self, batch: Batch) -> None:
        raise NotImplementedError("PostgresScheduleStore is write-ahead: use commit()")

    async def _write(self, conn: Any, chunk: list[Record]) -> None:
        if not chunk:
            return
        first = chunk[0]
        owner = self.owner
        if isinstance(first, RunStarted):
            started = [r for r in chunk if isinstance(r, RunStarted)]
            await conn.executemany(_STARTED, [
                (r.job_id, r.scheduled_at or r.started_at, owner, r.run_id, r.attempt,
                 r.started_at, r.scheduled_at is None) for r in started])
            decided = [(r.job_id, r.scheduled_at, "run") for r in started
                       if r.scheduled_at is not None]
            await self._decided(conn, decided)
        elif isinstance(first, RunEnded):
            await conn.executemany(_ENDED, [
                (r.job_id, r.run_id, _CLAIM_STATE.get(r.outcome, "failed"))
                for r in chunk if isinstance(r, RunEnded)])
        elif isinstance(first, Decided):
            decided = [(r.job_id, r.scheduled_at, r.outcome) for r in chunk
                       if isinstance(r, Decided)]
            await conn.executemany(_DECIDED_CLAIM, [
                (job, when, owner, _CLAIM_STATE.get(outcome, outcome))
                for job, when, outcome in decided])
            await self._decided(conn, decided)
        elif isinstance(first, Defined):
            await conn.executemany(_DEFINED, [
                (r.job_id, r.func_ref, trigger_key(r.trigger), r.anchor, r.since)
                for r in chunk if isinstance(r, Defined)])
        elif isinstance(first, Forgotten):
            await conn.executemany(_FORGOTTEN, [(r.job_id,) for r in chunk
                                                if isinstance(r, Forgotten)])

    async def _decided(self, conn: Any, decided: list[tuple[str, datetime, str]]) -> None:
        if decided:
            await conn.executemany(_DECIDED_STATE, decided)
            await conn.executemany(_LAST_FIRE, [(job, when) for job, when, _ in decided])

    async def _prune(self) -> None:
        await self.db.execute(
            "DELETE FROM claims WHERE lease_until IS NULL AND state <> 'running' "
            "AND replica LIKE 'embedded:%' AND started_at < now() - $1::interval "
            "AND finished_at < now() - $1::interval",
            self.keep_finished,
        )
