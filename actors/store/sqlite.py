"""The embedded default store: SQLite through aiosqlite, no server needed.

One connection per store, in WAL mode with foreign keys on. Only one task uses the
connection at a time (an anyio lock), because statements of two tasks on one connection
would otherwise land in each other's transactions. Several stores (or processes) on one
file are safe too: writes start with ``BEGIN IMMEDIATE`` and wait up to ``busy_timeout``.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiosqlite
import anyio
import msgspec
from cryptography.fernet import Fernet

from actors.store._failures import FailuresMixin
from actors.store._files import private_database
from actors.store._notices import NoticesMixin
from actors.store._secrets import SecretBox, load_or_create_key
from actors.store._sql import Conn, Row, split_sqlite_script
from actors.store._tokens import TokensMixin
from actors.store._users import UsersMixin
from actors.store.base import StoreError, StoreIntegrityError, StoreUnavailableError

__all__ = ("SqliteStore",)

MEMORY = ":memory:"
_PLACEHOLDER = re.compile(r"\$(\d+)")
# OperationalError messages that mean "the database is not there for us", not "bad SQL".
_UNAVAILABLE = ("locked", "busy", "disk i/o", "unable to open", "readonly", "no such file")


@functools.lru_cache(maxsize=256)
def _sqlite_sql(sql: str) -> str:
    """``$1`` placeholders as SQLite's numbered ``?1`` (same numbers, so reuse works)."""
    return _PLACEHOLDER.sub(r"?\1", sql)


class _Codec:
    """Times as UTC ISO text of one fixed shape (so text order is time order)."""

    def dt(self, value: datetime) -> object:
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def from_dt(self, value: Any) -> datetime:
        return datetime.fromisoformat(value).astimezone(UTC)

    def day(self, value: date) -> object:
        return value.isoformat()

    def from_day(self, value: Any) -> date:
        return date.fromisoformat(value)

    def ids(self, value: Sequence[str]) -> object:
        return msgspec.json.encode(list(value)).decode()

    def from_ids(self, value: Any) -> tuple[str, ...]:
        return tuple(msgspec.json.decode(value, type=list[str]))


class _SqliteConn:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def execute(self, sql: str, *args: object) -> int:
        cursor = await self._db.execute(_sqlite_sql(sql), args)
        count = cursor.rowcount
        await cursor.close()
        return max(count, 0)

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        await self._db.executemany(_sqlite_sql(sql), rows)

    async def fetch(self, sql: str, *args: object) -> list[Row]:
        async with self._db.execute(_sqlite_sql(sql), args) as cursor:
            return list(await cursor.fetchall())

    async def fetchrow(self, sql: str, *args: object) -> Row | None:
        async with self._db.execute(_sqlite_sql(sql), args) as cursor:
            row: Row | None = await cursor.fetchone()
            # Drain the cursor so that a RETURNING statement is complete before COMMIT.
            await cursor.fetchall()
            return row

    async def script(self, sql: str) -> None:
        # Statement by statement: executescript() would COMMIT the open transaction first.
        for statement in split_sqlite_script(sql):
            await self._db.execute(statement)


async def _rollback(db: aiosqlite.Connection) -> None:
    if not db.in_transaction:
        return  # SQLite already rolled back (it does on some errors, such as a full disk)
    try:
        await db.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # the connection is unusable; an unfinished transaction never reaches the file


def _translate(exc: sqlite3.Error, path: str) -> StoreError:
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreIntegrityError(f"SQLite refused a row: {exc}; nothing was written")
    text = str(exc).lower()
    if (
        isinstance(exc, sqlite3.DatabaseError) and any(marker in text for marker in _UNAVAILABLE)
    ) or (isinstance(exc, sqlite3.ProgrammingError) and "closed" in text):
        return StoreUnavailableError(
            f"SQLite database {path!r} is unavailable ({exc}); nothing was written"
        )
    return StoreError(f"SQLite error on {path!r}: {exc}")


class SqliteStore(UsersMixin, TokensMixin, NoticesMixin, FailuresMixin):
    """The :class:`~actors.store.base.Store` on a SQLite file (or ``":memory:"``).

    Without ``secret_key`` the app-secret key is read from ``key_file`` (default: the
    database path plus ``.key``), generated there with mode 0600 on first use; an
    in-memory database gets a key that lives as long as the store. The database and its
    ``-wal``/``-shm`` files are made 0600 on open (a missing directory is created 0700).
    """

    dialect = "sqlite"
    codec = _Codec()

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        secret_key: bytes | None = None,
        key_file: str | os.PathLike[str] | None = None,
        migrate_on_open: bool = True,
        busy_timeout: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(secret_key=secret_key, migrate_on_open=migrate_on_open, clock=clock)
        self.path = os.fspath(path)
        if key_file is not None:
            self.key_file: Path | None = Path(key_file)
        elif self.path == MEMORY:
            self.key_file = None
        else:
            self.key_file = Path(self.path + ".key")
        self._busy_ms = int(busy_timeout * 1000)
        self._db: aiosqlite.Connection | None = None
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r}, key=<redacted>)"

    async def _connect(self) -> bool:
        if self._db is not None:
            return False
        if self.path != MEMORY:
            try:
                private_database(Path(self.path))
            except OSError as exc:
                raise StoreUnavailableError(
                    f"SQLite database {self.path!r} cannot be created ({exc.strerror}); "
                    "check that its directory exists or can be created, and is writable"
                ) from exc
        if self._box is None:
            key_file = self.key_file
            key = Fernet.generate_key() if key_file is None else load_or_create_key(key_file)
            self._box = SecretBox(key)
        try:
            db = await aiosqlite.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc
        db.row_factory = sqlite3.Row
        try:
            await db.execute(f"PRAGMA busy_timeout = {self._busy_ms:d}")
            await db.execute("PRAGMA foreign_keys = ON")
            if self.path != MEMORY:
                await db.execute("PRAGMA journal_mode = WAL")
                # WAL makes NORMAL durable against application crashes (not power loss).
                await db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            await db.close()
            raise _translate(exc, self.path) from exc
        self._db = db
        return True

    async def _disconnect(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            async with self._lock:
                await db.close()

    def _require_db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreUnavailableError(
                f"SqliteStore({self.path!r}) is not open; call open() or use 'async with'"
            )
        return self._db

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Conn]:
        async with self._lock:
            db = self._require_db()
            try:
                # IMMEDIATE takes the write lock up front, so two writers never deadlock
                # upgrading read locks; the other waits up to busy_timeout.
                await db.execute("BEGIN IMMEDIATE")
                try:
                    yield _SqliteConn(db)
                    await db.execute("COMMIT")
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await _rollback(db)
                    raise
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Conn]:
        async with self._lock:
            db = self._require_db()
            try:
                yield _SqliteConn(db)
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc
