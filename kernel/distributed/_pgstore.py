"""The ``jobs`` table: persistent job definitions, and change notifications.

A job is stored as data only: its callable as an import reference
(``package.module:function``), its arguments and trigger as JSON (msgspec), its options
(retry policy included),
its paused flag, the latest scheduled time any replica decided (``last_fire``: read as
the latest of the column and the job's claims, ``claim_decided``; the reaper folds the
times of the claims it deletes into the column) and a ``version`` bumped on every
change. Each change sends a ``NOTIFY`` on the schema's channel in the same transaction,
so it is delivered exactly when the change commits; listeners fetch the row itself
(payloads carry ids only).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec

from ..job import Job
from ..retry import RetryPolicy
from ._pg import Database

__all__ = ("ChangeNote", "PostgresJobStore", "StoredJob", "stored_from_job")


class StoredJob(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the ``jobs`` table."""

    id: str
    name: str
    func_ref: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    trigger: dict[str, Any]
    coalesce: bool
    max_instances: int
    misfire_grace_time: float | None
    timeout: float | None
    executor: str = "local"
    retry: RetryPolicy | None = None
    paused: bool = False
    last_fire: datetime | None = None
    created_at: datetime | None = None
    version: int = 0

    def definition(self) -> tuple[object, ...]:
        """What the user defined (not the bookkeeping: paused, last_fire, version)."""
        return (self.name, self.func_ref, self.args, self.kwargs, self.trigger, self.coalesce,
                self.max_instances, self.misfire_grace_time, self.timeout, self.executor,
                self.retry)


def stored_from_job(job: Job, ref: str, executor: str, retry: RetryPolicy | None) -> StoredJob:
    """The row for a registered job (``ref``: its function's import reference)."""
    return StoredJob(
        id=job.id, name=job.name, func_ref=ref, args=tuple(job.args),
        kwargs=dict(job.kwargs), trigger=job.trigger.to_spec(), coalesce=job.coalesce,
        max_instances=job.max_instances, misfire_grace_time=job.misfire_grace_time,
        timeout=job.timeout, executor=executor, retry=retry, paused=job.paused,
    )


class ChangeNote(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of a change notification."""

    op: Literal["upsert", "delete"]
    id: str
    version: int
    origin: str


class _Options(msgspec.Struct, frozen=True, kw_only=True):
    coalesce: bool
    max_instances: int
    misfire_grace_time: float | None
    timeout: float | None
    retry: RetryPolicy | None = None


_COLUMNS = (
    "id, name, func_ref, args::text AS args, kwargs::text AS kwargs, trigger::text AS trigger, "
    "options::text AS options, executor, paused, "
    "GREATEST(last_fire, claim_decided(id, created_at)) AS last_fire, created_at, version"
)


def _row_to_job(row: Any) -> StoredJob:
    opts = msgspec.json.decode(row["options"], type=_Options)
    return StoredJob(
        id=row["id"], name=row["name"], func_ref=row["func_ref"],
        args=tuple(msgspec.json.decode(row["args"], type=list[Any])),
        kwargs=msgspec.json.decode(row["kwargs"], type=dict[str, Any]),
        trigger=msgspec.json.decode(row["trigger"], type=dict[str, Any]),
        coalesce=opts.coalesce, max_instances=opts.max_instances,
        misfire_grace_time=opts.misfire_grace_time, timeout=opts.timeout, retry=opts.retry,
        executor=row["executor"], paused=row["paused"], last_fire=row["last_fire"],
        created_at=row["created_at"], version=row["version"],
    )


def _json(value: object) -> str:
    return msgspec.json.encode(value).decode()


class PostgresJobStore:
    """Reads and writes the ``jobs`` table of a :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self) -> list[StoredJob]:
        """Every stored job, oldest first."""
        rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM jobs ORDER BY created_at, id")
        return [_row_to_job(row) for row in rows]

    async def get(self, job_id: str) -> StoredJob | None:
        rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM jobs WHERE id = $1", job_id)
        return _row_to_job(rows[0]) if rows else None

    async def insert(self, job: StoredJob, origin: str) -> int:
        """Insert a job unless its id is stored already; its version, or 0 if it existed
        (replicas declaring the same job at the same moment: the first one wins)."""
        return await self.upsert(job, origin, replace=False)

    async def insert_many(self, jobs: Sequence[StoredJob], origin: str) -> dict[str, int]:
        """:meth:`insert` for many jobs in one transaction (one statement for the rows,
        one for their change notes): the versions of those inserted, by id; a job whose
        id is stored already (another replica declared it) is left out."""
        if not jobs:
            return {}
        opts = [_json(_Options(coalesce=j.coalesce, max_instances=j.max_instances,
                               misfire_grace_time=j.misfire_grace_time, timeout=j.timeout,
                               retry=j.retry)) for j in jobs]

        async def run(conn: Any) -> dict[str, int]:
            async with conn.transaction():
                rows = await conn.fetch(
                    # created_at a microsecond apart, in the order given (and not after
                    # now()): the stored jobs list in the order they were declared.
                    "INSERT INTO jobs (id, name, func_ref, args, kwargs, trigger, options, "
                    "executor, paused, last_fire, created_at) SELECT u.id, u.name, u.func_ref, "
                    "u.args::jsonb, u.kwargs::jsonb, u.trigger::jsonb, u.options::jsonb, "
                    "u.executor, u.paused, u.last_fire, now() - (cardinality($1::text[]) - u.n) "
                    "* interval '1 microsecond' FROM unnest($1::text[], $2::text[], "
                    "$3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], "
                    "$9::boolean[], $10::timestamptz[]) WITH ORDINALITY AS u(id, name, "
                    "func_ref, args, kwargs, trigger, options, executor, paused, last_fire, n) "
                    "ON CONFLICT (id) DO NOTHING RETURNING id, version",
                    [j.id for j in jobs], [j.name for j in jobs], [j.func_ref for j in jobs],
                    [_json(list(j.args)) for j in jobs], [_json(j.kwargs) for j in jobs],
                    [_json(j.trigger) for j in jobs], opts, [j.executor for j in jobs],
                    [j.paused for j in jobs], [j.last_fire for j in jobs],
                )
                versions = {row["id"]: int(row["version"]) for row in rows}
                if versions:
                    # Delivered to listeners when (and only if) the transaction commits.
                    await conn.execute(
                        "SELECT pg_notify($1, note) FROM unnest($2::text[]) AS note",
                        self.db.channel,
                        [_json(ChangeNote(op="upsert", id=job_id, version=version,
                                          origin=origin))
                         for job_id, version in versions.items()])
                return versions

        return await self.db.call(run)

    async def upsert(self, job: StoredJob, origin: str, *, replace: bool = True) -> int:
        """Insert or replace a job's definition and paused flag; the new version.
        ``last_fire`` and ``created_at`` of an existing row are kept."""
        opts = _json(_Options(coalesce=job.coalesce, max_instances=job.max_instances,
                              misfire_grace_time=job.misfire_grace_time, timeout=job.timeout,
                              retry=job.retry))
        sql = (
            "INSERT INTO jobs (id, name, func_ref, args, kwargs, trigger, options, executor, "
            "paused, last_fire) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7::jsonb, "
            "$8, $9, $10) ON CONFLICT (id) "
        )
        sql += "DO NOTHING RETURNING version" if not replace else (
            "DO UPDATE SET name = EXCLUDED.name, "
            "func_ref = EXCLUDED.func_ref, args = EXCLUDED.args, kwargs = EXCLUDED.kwargs, "
            "trigger = EXCLUDED.trigger, options = EXCLUDED.options, "
            "executor = EXCLUDED.executor, paused = EXCLUDED.paused, updated_at = now(), "
            "version = jobs.version + 1 RETURNING version"
        )
        params = (job.id, job.name, job.func_ref, _json(list(job.args)), _json(job.kwargs),
                  _json(job.trigger), opts, job.executor, job.paused, job.last_fire)
        return await self._change(sql, params, "upsert", job.id, origin)

    async def set_paused(self, job_id: str, paused: bool, origin: str) -> int:
        return await self._change(
            "UPDATE jobs SET paused = $2, version = version + 1, updated_at = now() "
            "WHERE id = $1 RETURNING version", (job_id, paused), "upsert", job_id, origin,
        )

    async def set_trigger(self, job_id: str, spec: dict[str, Any], origin: str) -> int:
        return await self._change(
            "UPDATE jobs SET trigger = $2::jsonb, version = version + 1, updated_at = now() "
            "WHERE id = $1 RETURNING version", (job_id, _json(spec)), "upsert", job_id, origin,
        )

    async def delete(self, job_id: str, origin: str) -> int:
        return await self._change(
            "DELETE FROM jobs WHERE id = $1 RETURNING version + 1", (job_id,), "delete",
            job_id, origin,
        )

    async def _change(self, sql: str, params: tuple[Any, ...], op: Literal["upsert", "delete"],
                      job_id: str, origin: str) -> int:
        async def run(conn: Any) -> int:
            async with conn.transaction():
                version = await conn.fetchval(sql, *params)
                if version is None:
                    return 0
                note = ChangeNote(op=op, id=job_id, version=version, origin=origin)
                # Delivered to listeners when (and only if) the transaction commits.
                await conn.execute("SELECT pg_notify($1, $2)", self.db.channel, _json(note))
                return int(version)

        return await self.db.call(run)
