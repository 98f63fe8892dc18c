"""Notice slots (once a day per token and level) and health-check results.

Notice design: claim, then confirm. ``claim_notice`` inserts the slot's row as ``claimed``;
the primary key (app, user, level, day) lets exactly one caller win, however many run at
once, in one process or several. The winner sends, then ``record_notice_sent`` turns the
row into ``sent``; if sending failed, ``release_notice`` deletes the claim so the next run
tries again. A claim whose holder died before confirming or releasing goes stale after
``stale_after`` seconds and may then be taken over, so a crash delays a notice instead of
losing it. The cost of that choice: a holder that is merely slow beyond ``stale_after``
may see its notice sent twice, which is why the default (10 minutes) dwarfs a send.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from actors.store._sql import Row, SqlBase, utc, where_equal
from actors.store.base import HealthResult, NoticeLevel, SentNotice

__all__ = ()

_NOTICE_COLUMNS = "app_id, open_id, level, day, status, claimed_at, sent_at, message_id"
_HEALTH_COLUMNS = "checked_at, component, status, latency, detail"


class NoticesMixin(SqlBase):
    """The notice-slot and health methods."""

    async def claim_notice(
        self,
        app_id: str,
        open_id: str,
        level: NoticeLevel,
        day: date,
        *,
        stale_after: float = 600.0,
    ) -> bool:
        if stale_after <= 0:
            raise ValueError(f"stale_after={stale_after} must be a positive number of seconds")
        now = self.now()
        async with self._transaction() as conn:
            row = await conn.fetchrow(
                f"INSERT INTO notices ({_NOTICE_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, 'claimed', $5, NULL, NULL) "
                "ON CONFLICT (app_id, open_id, level, day) DO UPDATE "
                "SET claimed_at = excluded.claimed_at "
                "WHERE notices.status = 'claimed' AND notices.claimed_at < $6 "
                "RETURNING app_id",
                app_id,
                open_id,
                level,
                self.codec.day(day),
                self.codec.dt(now),
                self.codec.dt(now - timedelta(seconds=stale_after)),
            )
        return row is not None

    async def record_notice_sent(
        self,
        app_id: str,
        open_id: str,
        level: NoticeLevel,
        day: date,
        *,
        message_id: str | None = None,
    ) -> None:
        now = self.codec.dt(self.now())
        async with self._transaction() as conn:
            await conn.execute(
                f"INSERT INTO notices ({_NOTICE_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, 'sent', $5, $5, $6) "
                "ON CONFLICT (app_id, open_id, level, day) DO UPDATE "
                "SET status = 'sent', sent_at = excluded.sent_at, "
                "message_id = excluded.message_id WHERE notices.status = 'claimed'",
                app_id,
                open_id,
                level,
                self.codec.day(day),
                now,
                message_id,
            )

    async def release_notice(
        self, app_id: str, open_id: str, level: NoticeLevel, day: date
    ) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "DELETE FROM notices WHERE app_id = $1 AND open_id = $2 AND level = $3 "
                "AND day = $4 AND status = 'claimed'",
                app_id,
                open_id,
                level,
                self.codec.day(day),
            )

    def _notice(self, row: Row) -> SentNotice:
        sent_at = row["sent_at"]
        return SentNotice(
            app_id=row["app_id"],
            open_id=row["open_id"],
            level=row["level"],
            day=self.codec.from_day(row["day"]),
            status=row["status"],
            claimed_at=self.codec.from_dt(row["claimed_at"]),
            sent_at=None if sent_at is None else self.codec.from_dt(sent_at),
            message_id=row["message_id"],
        )

    async def list_notices(
        self, *, app_id: str | None = None, day: date | None = None
    ) -> list[SentNotice]:
        async with self._read() as conn:
            clause, args = where_equal(
                app_id=app_id, day=None if day is None else self.codec.day(day)
            )
            rows = await conn.fetch(
                f"SELECT {_NOTICE_COLUMNS} FROM notices {clause} "
                "ORDER BY day, app_id, open_id, level",
                *args,
            )
        return [self._notice(row) for row in rows]

    async def delete_notices_before(self, day: date) -> int:
        """Drop notice slots of days before ``day``; answer how many."""
        async with self._transaction() as conn:
            return await conn.execute("DELETE FROM notices WHERE day < $1", self.codec.day(day))

    # -- health ------------------------------------------------------------------------------

    async def record_health(self, results: Sequence[HealthResult]) -> None:
        rows: list[Sequence[object]] = [
            (
                self.codec.dt(utc(r.checked_at, "checked_at")),
                r.component,
                r.status,
                r.latency,
                r.detail,
            )
            for r in results
        ]
        if not rows:
            return
        async with self._transaction() as conn:
            await conn.executemany(
                f"INSERT INTO health_results ({_HEALTH_COLUMNS}) VALUES ($1, $2, $3, $4, $5)",
                rows,
            )

    async def latest_health(self) -> list[HealthResult]:
        async with self._read() as conn:
            rows = await conn.fetch(
                f"SELECT {_HEALTH_COLUMNS} FROM (SELECT {_HEALTH_COLUMNS}, row_number() OVER "
                "(PARTITION BY component ORDER BY checked_at DESC, id DESC) AS newest "
                "FROM health_results) AS ranked WHERE newest = 1 ORDER BY component"
            )
        return [
            HealthResult(
                checked_at=self.codec.from_dt(row["checked_at"]),
                component=row["component"],
                status=row["status"],
                latency=row["latency"],
                detail=row["detail"],
            )
            for row in rows
        ]

    async def delete_health_before(self, cutoff: datetime) -> int:
        async with self._transaction() as conn:
            return await conn.execute(
                "DELETE FROM health_results WHERE checked_at < $1",
                self.codec.dt(utc(cutoff, "cutoff")),
            )
