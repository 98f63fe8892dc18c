"""Users (replaced per app from a complete listing) and sync state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from actors.store._apps import AppsMixin
from actors.store._sql import Row, utc
from actors.store.base import SyncState, SyncSummary, UserInfo, UserRecord

__all__ = ()

_INFO_FIELDS: tuple[str, ...] = UserInfo.__struct_fields__
_USER_COLUMNS = ", ".join(("app_id", *_INFO_FIELDS, "active", "updated_at"))
_BOOL_FIELDS = frozenset({"is_frozen", "is_resigned", "is_activated", "is_exited"})


def _info_values(user: UserInfo) -> tuple[Any, ...]:
    """The listing's fields of ``user`` in column order, normalised for comparison."""
    return tuple(
        tuple(user.department_ids) if name == "department_ids" else getattr(user, name)
        for name in _INFO_FIELDS
    )


class UsersMixin(AppsMixin):
    """``replace_app_users``, ``list_users`` and ``get_sync_state``."""

    def _user(self, row: Row) -> UserRecord:
        values: dict[str, Any] = {name: row[name] for name in _INFO_FIELDS}
        values["department_ids"] = self.codec.from_ids(row["department_ids"])
        for name in _BOOL_FIELDS:
            values[name] = bool(values[name])
        return UserRecord(
            app_id=row["app_id"],
            active=bool(row["active"]),
            updated_at=self.codec.from_dt(row["updated_at"]),
            **values,
        )

    def _user_params(self, values: tuple[Any, ...]) -> list[object]:
        index = _INFO_FIELDS.index("department_ids")
        params = list(values)
        params[index] = self.codec.ids(values[index])
        return params

    async def replace_app_users(
        self,
        app_id: str,
        users: Sequence[UserInfo],
        synced_at: datetime,
        *,
        deactivate_missing: bool = True,
    ) -> SyncSummary:
        stamp = self.codec.dt(utc(synced_at, "synced_at"))
        listing = {user.open_id: _info_values(user) for user in users}
        width = len(_INFO_FIELDS)
        placeholders = ", ".join(f"${i}" for i in range(1, width + 4))
        assignments = ", ".join(f"{name} = ${i + 2}" for i, name in enumerate(_INFO_FIELDS))
        async with self._transaction() as conn:
            await self._require_app(conn, app_id)
            rows = await conn.fetch(f"SELECT {_USER_COLUMNS} FROM users WHERE app_id = $1", app_id)
            stored = {row["open_id"]: self._user(row) for row in rows}
            added: list[list[object]] = []
            changed: list[list[object]] = []
            for open_id, values in listing.items():
                old = stored.get(open_id)
                if old is None:
                    added.append([app_id, *self._user_params(values), True, stamp])
                elif not old.active or _info_values(old) != values:
                    changed.append([app_id, *self._user_params(values), stamp])
            missing = [
                [app_id, open_id, stamp]
                for open_id, old in stored.items()
                if deactivate_missing and old.active and open_id not in listing
            ]
            if changed:
                await conn.executemany(
                    f"UPDATE users SET {assignments}, active = TRUE, "
                    f"updated_at = ${width + 2} WHERE app_id = $1 AND open_id = $2",
                    changed,
                )
            if added:
                await conn.executemany(
                    f"INSERT INTO users ({_USER_COLUMNS}) VALUES ({placeholders})", added
                )
            if missing:
                await conn.executemany(
                    "UPDATE users SET active = FALSE, updated_at = $3 "
                    "WHERE app_id = $1 AND open_id = $2",
                    missing,
                )
            await conn.execute(
                "INSERT INTO sync_state (app_id, last_sync_at, last_user_count) "
                "VALUES ($1, $2, $3) ON CONFLICT (app_id) DO UPDATE SET "
                "last_sync_at = excluded.last_sync_at, last_user_count = excluded.last_user_count",
                app_id,
                stamp,
                len(listing),
            )
        return SyncSummary(added=len(added), updated=len(changed), deactivated=len(missing))

    async def list_users(self, app_id: str, *, active_only: bool = False) -> list[UserRecord]:
        async with self._read() as conn:
            rows = await conn.fetch(
                f"SELECT {_USER_COLUMNS} FROM users WHERE app_id = $1 AND (active OR NOT $2) "
                "ORDER BY open_id",
                app_id,
                active_only,
            )
        return [self._user(row) for row in rows]

    async def get_sync_state(self, app_id: str) -> SyncState | None:
        async with self._read() as conn:
            row = await conn.fetchrow(
                "SELECT app_id, last_sync_at, last_user_count FROM sync_state WHERE app_id = $1",
                app_id,
            )
        if row is None:
            return None
        return SyncState(
            app_id=row["app_id"],
            last_sync_at=self.codec.from_dt(row["last_sync_at"]),
            last_user_count=int(row["last_user_count"]),
        )
