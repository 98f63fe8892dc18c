"""The production store: PostgreSQL through an asyncpg connection pool.

All tables live in one schema (``public`` unless told otherwise), set as the
``search_path`` of every pooled connection, so tests and tenants can isolate themselves.
Migrations take a transaction-scoped advisory lock, so replicas starting together apply
each version once.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from actors.store._failures import FailuresMixin
from actors.store._notices import NoticesMixin
from actors.store._secrets import load_or_create_key
from actors.store._sql import Conn, Row, lock_key
from actors.store._tokens import TokensMixin
from actors.store._users import UsersMixin
from actors.store.base import StoreError, StoreIntegrityError, StoreUnavailableError

__all__ = ("PostgresStore", "quote_ident", "redact_dsn")

_ROWCOUNT = re.compile(r"(\d+)$")
_PASSWORD = re.compile(r"(://[^:/@]*):[^@]*@")

# What asyncpg raises when the server cannot be reached or the connection dies:
# class 08 (connection exception), class 57 (operator intervention: admin shutdown,
# pg_terminate_backend, crash shutdown), a closed connection, and socket errors.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.ConnectionDoesNotExistError,
)


def quote_ident(name: str) -> str:
    """``name`` as a PostgreSQL identifier, quoted so no character can escape it."""
    if not name or "\x00" in name or len(name.encode()) > 63:
        raise ValueError(
            f"schema {name!r} is not a usable PostgreSQL identifier: it must be 1-63 bytes "
            "without NUL characters"
        )
    return '"' + name.replace('"', '""') + '"'


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***``."""
    return _PASSWORD.sub(r"\1:***@", dsn)


class _Codec:
    """asyncpg speaks datetimes, dates and text arrays natively."""

    def dt(self, value: datetime) -> object:
        return value

    def from_dt(self, value: Any) -> datetime:
        result: datetime = value
        return result

    def day(self, value: date) -> object:
        return value

    def from_day(self, value: Any) -> date:
        result: date = value
        return result

    def ids(self, value: Sequence[str]) -> object:
        return list(value)

    def from_ids(self, value: Any) -> tuple[str, ...]:
        return tuple(value)


class _PgConn:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: object) -> int:
        status: str = await self._conn.execute(sql, *args)
        match = _ROWCOUNT.search(status)
        return int(match.group(1)) if match else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        return list(await self._conn.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        row: Row | None = await self._conn.fetchrow(sql, *args)
        return row

    async def script(self, sql: str) -> None:
        # No arguments: asyncpg sends it as one simple query, so several statements run.
        await self._conn.execute(sql)


def _translate(exc: BaseException, where: str) -> StoreError:
    if isinstance(exc, _UNAVAILABLE) or (
        isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)
    ):
        return StoreUnavailableError(
            f"PostgreSQL at {where} is unavailable ({type(exc).__name__}: {exc}); "
            "the transaction was rolled back"
        )
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return StoreIntegrityError(f"PostgreSQL refused a row: {exc}; nothing was written")
    return StoreError(f"PostgreSQL error at {where}: {type(exc).__name__}: {exc}")


_DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    *_UNAVAILABLE,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


class PostgresStore(UsersMixin, TokensMixin, NoticesMixin, FailuresMixin):
    """The :class:`~actors.store.base.Store` on PostgreSQL.

    App secrets need ``secret_key`` (a Fernet key kept outside the database) or
    ``key_file``; without either, setting or reading a secret raises
    :class:`~actors.store.base.SecretKeyError` naming the fix.
    """

    dialect = "postgres"
    codec = _Codec()

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        min_size: int = 1,
        max_size: int = 10,
        secret_key: bytes | None = None,
        key_file: str | os.PathLike[str] | None = None,
        migrate_on_open: bool = True,
        command_timeout: float | None = 60.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if secret_key is None and key_file is not None:
            secret_key = load_or_create_key(Path(key_file))
        super().__init__(secret_key=secret_key, migrate_on_open=migrate_on_open, clock=clock)
        if not 1 <= max_size or not 0 <= min_size <= max_size:
            raise ValueError(
                f"pool sizes min_size={min_size}, max_size={max_size}: need "
                "0 <= min_size <= max_size and max_size >= 1"
            )
        self.schema = schema
        self._quoted_schema = quote_ident(schema)
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({redact_dsn(self._dsn)!r}, schema={self.schema!r}, key=<redacted>)"

    @property
    def pool(self) -> asyncpg.Pool:
        """The open pool, for components that share this database (a job store, say)."""
        if self._pool is None:
            raise StoreUnavailableError(f"{self!r} is not open; call open() or use 'async with'")
        return self._pool

    @property
    def _where(self) -> str:
        return f"{redact_dsn(self._dsn)} (schema {self.schema})"

    async def _connect(self) -> bool:
        if self._pool is not None:
            return False
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                command_timeout=self._command_timeout,
                server_settings={"search_path": self._quoted_schema},
            )
        except _DRIVER_ERRORS as exc:
            raise _translate(exc, self._where) from exc
        return True

    async def _disconnect(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _lock_migrations(self, conn: Conn) -> None:
        await conn.fetchrow(
            "SELECT pg_advisory_xact_lock($1)", lock_key(f"lark-scheduler:{self.schema}")
        )

    async def _prepare_schema(self, conn: Conn) -> None:
        # An identifier cannot be a parameter; quote_ident() made it safe to splice.
        await conn.script(f"CREATE SCHEMA IF NOT EXISTS {self._quoted_schema}")

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Conn]:
        pool = self.pool
        try:
            async with pool.acquire() as conn, conn.transaction():
                yield _PgConn(conn)
        except StoreError:
            raise  # already ours (StoreUnavailableError is an OSError too)
        except _DRIVER_ERRORS as exc:
            raise _translate(exc, self._where) from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Conn]:
        pool = self.pool
        try:
            async with pool.acquire() as conn:
                yield _PgConn(conn)
        except StoreError:
            raise  # already ours (StoreUnavailableError is an OSError too)
        except _DRIVER_ERRORS as exc:
            raise _translate(exc, self._where) from exc
