"""Apps and their secrets, written once for every SQL backend."""

from __future__ import annotations

import msgspec

from actors.store._sql import Conn, Row, SqlBase
from actors.store.base import AppExistsError, AppNotFoundError, AppRecord, check_app_id

__all__ = ()

_APP_COLUMNS = "app_id, name, active, admin_open_id, created_at, updated_at"


class AppsMixin(SqlBase):
    """``add_app`` ... ``get_app_secret``."""

    def _app(self, row: Row) -> AppRecord:
        return AppRecord(
            app_id=row["app_id"],
            name=row["name"],
            active=bool(row["active"]),
            admin_open_id=row["admin_open_id"],
            created_at=self.codec.from_dt(row["created_at"]),
            updated_at=self.codec.from_dt(row["updated_at"]),
        )

    async def _require_app(self, conn: Conn, app_id: str) -> None:
        if await conn.fetchrow("SELECT 1 FROM apps WHERE app_id = $1", app_id) is None:
            raise AppNotFoundError(app_id)

    async def add_app(
        self,
        app_id: str,
        name: str,
        *,
        secret: str | None = None,
        admin_open_id: str | None = None,
        active: bool = True,
    ) -> AppRecord:
        check_app_id(app_id)
        ciphertext = self._secret_box().encrypt(secret) if secret is not None else None
        now = self.codec.dt(self.now())
        async with self._transaction() as conn:
            row = await conn.fetchrow(
                "INSERT INTO apps (app_id, name, active, admin_open_id, secret_ciphertext, "
                "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) "
                f"ON CONFLICT (app_id) DO NOTHING RETURNING {_APP_COLUMNS}",
                app_id,
                name,
                active,
                admin_open_id,
                ciphertext,
                now,
            )
        if row is None:
            raise AppExistsError(app_id)
        return self._app(row)

    async def update_app(
        self,
        app_id: str,
        *,
        name: str | None = None,
        admin_open_id: str | msgspec.UnsetType | None = msgspec.UNSET,
        active: bool | None = None,
    ) -> AppRecord:
        keep_admin = admin_open_id is msgspec.UNSET
        async with self._transaction() as conn:
            row = await conn.fetchrow(
                "UPDATE apps SET name = COALESCE($2, name), "
                "admin_open_id = CASE WHEN $3 THEN admin_open_id ELSE $4 END, "
                "active = COALESCE($5, active), updated_at = $6 "
                f"WHERE app_id = $1 RETURNING {_APP_COLUMNS}",
                app_id,
                name,
                keep_admin,
                None if isinstance(admin_open_id, msgspec.UnsetType) else admin_open_id,
                active,
                self.codec.dt(self.now()),
            )
        if row is None:
            raise AppNotFoundError(app_id)
        return self._app(row)

    async def disable_app(self, app_id: str) -> AppRecord:
        return await self.update_app(app_id, active=False)

    async def get_app(self, app_id: str) -> AppRecord | None:
        async with self._read() as conn:
            row = await conn.fetchrow(f"SELECT {_APP_COLUMNS} FROM apps WHERE app_id = $1", app_id)
        return None if row is None else self._app(row)

    async def list_apps(self, *, active_only: bool = True) -> list[AppRecord]:
        async with self._read() as conn:
            rows = await conn.fetch(
                f"SELECT {_APP_COLUMNS} FROM apps WHERE active OR NOT $1 ORDER BY app_id",
                active_only,
            )
        return [self._app(row) for row in rows]

    async def set_app_secret(self, app_id: str, secret: str) -> None:
        ciphertext = self._secret_box().encrypt(secret)
        async with self._transaction() as conn:
            changed = await conn.execute(
                "UPDATE apps SET secret_ciphertext = $2, updated_at = $3 WHERE app_id = $1",
                app_id,
                ciphertext,
                self.codec.dt(self.now()),
            )
        if changed == 0:
            raise AppNotFoundError(app_id)

    async def get_app_secret(self, app_id: str) -> str | None:
        async with self._read() as conn:
            row = await conn.fetchrow(
                "SELECT secret_ciphertext FROM apps WHERE app_id = $1", app_id
            )
        if row is None:
            raise AppNotFoundError(app_id)
        ciphertext: str | None = row["secret_ciphertext"]
        if ciphertext is None:
            return None
        return self._secret_box().decrypt(ciphertext, app_id=app_id)
