"""Failure records and their retries (:class:`kernel.failures.FailureStore`), in SQL.

Retries live in their own table keyed by (failure, run), so updating one attempt is an
upsert of one row; no record is ever pickled.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from actors.store._sql import Conn, Row, SqlBase, utc, where_equal
from kernel.failures import FailureRecord, RetryAttempt

__all__ = ()

_FAILURE_COLUMNS = (
    "id, job_id, run_id, scheduled_at, started_at, duration, exc_type, message, traceback, "
    "timed_out, attempt, retry_of"
)
_RETRY_COLUMNS = "failure_id, run_id, started_at, outcome, manual, retry_failure_id"
_RETRY_SELECT = "r.failure_id, r.run_id, r.started_at, r.outcome, r.manual, r.retry_failure_id"
_UPSERT_RETRY = (
    f"INSERT INTO failure_retries ({_RETRY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) "
    "ON CONFLICT (failure_id, run_id) DO UPDATE SET started_at = excluded.started_at, "
    "outcome = excluded.outcome, manual = excluded.manual, "
    "retry_failure_id = excluded.retry_failure_id"
)


class FailuresMixin(SqlBase):
    """``add_failure``, ``get_failure``, ``list_failures``, ``set_retry``, and
    ``delete_failures_before`` (the retention)."""

    def _retry_params(self, failure_id: str, attempt: RetryAttempt) -> Sequence[object]:
        return (
            failure_id,
            attempt.run_id,
            self.codec.dt(utc(attempt.started_at, "started_at")),
            attempt.outcome,
            attempt.manual,
            attempt.failure_id,
        )

    async def add_failure(self, record: FailureRecord) -> None:
        scheduled = record.scheduled_at
        async with self._transaction() as conn:
            # The id is unique; adding it again replaces the record, as the memory ring does.
            await conn.execute(
                f"INSERT INTO failures ({_FAILURE_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
                "ON CONFLICT (id) DO UPDATE SET job_id = excluded.job_id, "
                "run_id = excluded.run_id, scheduled_at = excluded.scheduled_at, "
                "started_at = excluded.started_at, duration = excluded.duration, "
                "exc_type = excluded.exc_type, message = excluded.message, "
                "traceback = excluded.traceback, timed_out = excluded.timed_out, "
                "attempt = excluded.attempt, retry_of = excluded.retry_of",
                record.id,
                record.job_id,
                record.run_id,
                None if scheduled is None else self.codec.dt(utc(scheduled, "scheduled_at")),
                self.codec.dt(utc(record.started_at, "started_at")),
                float(record.duration),
                record.exc_type,
                record.message,
                record.traceback,
                record.timed_out,
                record.attempt,
                record.retry_of,
            )
            await conn.execute("DELETE FROM failure_retries WHERE failure_id = $1", record.id)
            if record.retries:
                await conn.executemany(
                    _UPSERT_RETRY, [self._retry_params(record.id, r) for r in record.retries]
                )

    async def get_failure(self, failure_id: str) -> FailureRecord | None:
        async with self._read() as conn:
            row = await conn.fetchrow(
                f"SELECT {_FAILURE_COLUMNS} FROM failures WHERE id = $1", failure_id
            )
            if row is None:
                return None
            retries = await conn.fetch(
                f"SELECT {_RETRY_COLUMNS} FROM failure_retries WHERE failure_id = $1",
                failure_id,
            )
        return self._failure(row, retries)

    async def list_failures(
        self, *, job_id: str | None = None, limit: int = 100
    ) -> list[FailureRecord]:
        if limit < 1:
            return []
        clause, args = where_equal(job_id=job_id)
        newest = f"FROM failures {clause} ORDER BY seq DESC LIMIT ${len(args) + 1}"
        async with self._read() as conn:
            rows = await conn.fetch(f"SELECT {_FAILURE_COLUMNS} {newest}", *args, limit)
            retries = await conn.fetch(
                f"SELECT {_RETRY_SELECT} FROM failure_retries AS r "
                f"JOIN (SELECT id {newest}) AS f ON r.failure_id = f.id",
                *args,
                limit,
            )
        by_failure: dict[str, list[Row]] = {}
        for retry in retries:
            by_failure.setdefault(retry["failure_id"], []).append(retry)
        return [self._failure(row, by_failure.get(row["id"], [])) for row in rows]

    async def set_retry(self, failure_id: str, attempt: RetryAttempt) -> None:
        async with self._transaction() as conn:
            if not await _exists(conn, failure_id):
                return  # as the memory ring: a record already gone has nothing to link
            await conn.execute(_UPSERT_RETRY, *self._retry_params(failure_id, attempt))

    async def delete_failures_before(self, cutoff: datetime, *, batch_size: int = 500) -> int:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        limit = self.codec.dt(utc(cutoff, "cutoff"))
        total = 0
        while True:
            # One transaction per batch keeps locks short while a big backlog drains; the
            # oldest first (lowest seq), so each batch stops at the first young record it
            # needs. Their retries go with them (ON DELETE CASCADE).
            async with self._transaction() as conn:
                deleted = await conn.execute(
                    "DELETE FROM failures WHERE seq IN ("
                    "SELECT seq FROM failures WHERE started_at < $1 ORDER BY seq LIMIT $2)",
                    limit,
                    batch_size,
                )
            total += deleted
            if deleted < batch_size:
                return total

    def _failure(self, row: Row, retries: Sequence[Row]) -> FailureRecord:
        attempts = sorted(
            (
                RetryAttempt(
                    run_id=r["run_id"],
                    started_at=self.codec.from_dt(r["started_at"]),
                    outcome=r["outcome"],
                    manual=bool(r["manual"]),
                    failure_id=r["retry_failure_id"],
                )
                for r in retries
            ),
            key=lambda a: (a.started_at, a.run_id),
        )
        scheduled = row["scheduled_at"]
        return FailureRecord(
            id=row["id"],
            job_id=row["job_id"],
            run_id=row["run_id"],
            scheduled_at=None if scheduled is None else self.codec.from_dt(scheduled),
            started_at=self.codec.from_dt(row["started_at"]),
            duration=float(row["duration"]),
            exc_type=row["exc_type"],
            message=row["message"],
            traceback=row["traceback"],
            timed_out=bool(row["timed_out"]),
            attempt=int(row["attempt"]),
            retry_of=row["retry_of"],
            retries=tuple(attempts),
        )


async def _exists(conn: Conn, failure_id: str) -> bool:
    return await conn.fetchrow("SELECT 1 FROM failures WHERE id = $1", failure_id) is not None
