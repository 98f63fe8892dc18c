"""Notice slots (once a day per token and level), the administrators' summary slots (once a
day per app) and health-check results.

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
from actors.store.base import HealthResult, NoticeLevel, SentNotice, SentSummary

__all__ = ()

_HEALTH_COLUMNS = "checked_at, component, status, latency, detail"


class _Slots:
    """One table of claim-then-confirm slots: its name, key columns and every column."""

    def __init__(self, table: str, keys: tuple[str, ...]) -> None:
        self.table = table
        self.keys = keys
        self.columns = ", ".join((*keys, "status", "claimed_at", "sent_at", "message_id"))
        n = len(keys)
        self.values = ", ".join(f"${i}" for i in range(1, n + 1))
        self.conflict = f"ON CONFLICT ({', '.join(keys)})"
        self.match = " AND ".join(f"{key} = ${i}" for i, key in enumerate(keys, 1))


_NOTICES = _Slots("notices", ("app_id", "open_id", "level", "day"))
_SUMMARIES = _Slots("notice_summaries", ("app_id", "day"))


class NoticesMixin(SqlBase):
    """The notice-slot, summary-slot and health methods."""

    async def _claim(self, slots: _Slots, key: tuple[object, ...], stale_after: float) -> bool:
        if stale_after <= 0:
            raise ValueError(f"stale_after={stale_after} must be a positive number of seconds")
        now = self.now()
        n = len(key)
        async with self._transaction() as conn:
            row = await conn.fetchrow(
                f"INSERT INTO {slots.table} ({slots.columns}) "
                f"VALUES ({slots.values}, 'claimed', ${n + 1}, NULL, NULL) "
                f"{slots.conflict} DO UPDATE SET claimed_at = excluded.claimed_at "
                f"WHERE {slots.table}.status = 'claimed' AND {slots.table}.claimed_at < ${n + 2} "
                "RETURNING app_id",
                *key,
                self.codec.dt(now),
                self.codec.dt(now - timedelta(seconds=stale_after)),
            )
        return row is not None

    async def _record_sent(
        self, slots: _Slots, key: tuple[object, ...], message_id: str | None
    ) -> None:
        n = len(key)
        async with self._transaction() as conn:
            await conn.execute(
                f"INSERT INTO {slots.table} ({slots.columns}) "
                f"VALUES ({slots.values}, 'sent', ${n + 1}, ${n + 1}, ${n + 2}) "
                f"{slots.conflict} DO UPDATE SET status = 'sent', sent_at = excluded.sent_at, "
                f"message_id = excluded.message_id WHERE {slots.table}.status = 'claimed'",
                *key,
                self.codec.dt(self.now()),
                message_id,
            )

    async def _release(self, slots: _Slots, key: tuple[object, ...]) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                f"DELETE FROM {slots.table} WHERE {slots.match} AND status = 'claimed'", *key
            )

    async def claim_notice(
        self,
        app_id: str,
        open_id: str,
        level: NoticeLevel,
        day: date,
        *,
        stale_after: float = 600.0,
    ) -> bool:
        return await self._claim(
            _NOTICES, (app_id, open_id, level, self.codec.day(day)), stale_after
        )

    async def record_notice_sent(
        self,
        app_id: str,
        open_id: str,
        level: NoticeLevel,
        day: date,
        *,
        message_id: str | None = None,
    ) -> None:
        await self._record_sent(_NOTICES, (app_id, open_id, level, self.codec.day(day)), message_id)

    async def release_notice(
        self, app_id: str, open_id: str, level: NoticeLevel, day: date
    ) -> None:
        await self._release(_NOTICES, (app_id, open_id, level, self.codec.day(day)))

    async def claim_summary(self, app_id: str, day: date, *, stale_after: float = 600.0) -> bool:
        return await self._claim(_SUMMARIES, (app_id, self.codec.day(day)), stale_after)

    async def record_summary_sent(
        self, app_id: str, day: date, *, message_id: str | None = None
    ) -> None:
        await self._record_sent(_SUMMARIES, (app_id, self.codec.day(day)), message_id)

    async def release_summary(self, app_id: str, day: date) -> None:
        await self._release(_SUMMARIES, (app_id, self.codec.day(day)))

    async def list_summaries(
        self, *, app_id: str | None = None, day: date | None = None
    ) -> list[SentSummary]:
        async with self._read() as conn:
            clause, args = where_equal(
                app_id=app_id, day=None if day is None else self.codec.day(day)
            )
            rows = await conn.fetch(
                f"SELECT {_SUMMARIES.columns} FROM notice_summaries {clause} ORDER BY day, app_id",
                *args,
            )
        return [
            SentSummary(
                app_id=row["app_id"],
                day=self.codec.from_day(row["day"]),
                status=row["status"],
                claimed_at=self.codec.from_dt(row["claimed_at"]),
                sent_at=None if row["sent_at"] is None else self.codec.from_dt(row["sent_at"]),
                message_id=row["message_id"],
            )
            for row in rows
        ]

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
                f"SELECT {_NOTICES.columns} FROM notices {clause} "
                "ORDER BY day, app_id, open_id, level",
                *args,
            )
        return [self._notice(row) for row in rows]

    async def delete_notices_before(self, day: date) -> int:
        """Drop notice and summary slots of days before ``day``; answer how many."""
        async with self._transaction() as conn:
            notices = await conn.execute("DELETE FROM notices WHERE day < $1", self.codec.day(day))
            summaries = await conn.execute(
                "DELETE FROM notice_summaries WHERE day < $1", self.codec.day(day)
            )
        return notices + summaries

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
