"""The plumbing every SQL backend shares: connections, value codecs, lifecycle, migrations.

A backend supplies a :class:`Codec` (how datetimes, days and lists travel to its driver), a
``_transaction()`` context manager (one connection, one transaction, driver errors turned
into :mod:`actors.store.base` errors) and a ``_read()`` one. The queries themselves are
written once, with ``$1``-style placeholders, in the mixins that build on :class:`SqlBase`.
"""

from __future__ import annotations

import abc
import hashlib
import re
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime
from importlib import resources
from types import TracebackType
from typing import Any, Literal, Protocol, Self

import msgspec

from actors.store._secrets import SecretBox
from actors.store.base import SecretKeyError

__all__ = ()

Dialect = Literal["sqlite", "postgres"]
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class Row(Protocol):
    """A result row: columns by name (``sqlite3.Row`` and ``asyncpg.Record`` both are)."""

    def __getitem__(self, key: str, /) -> Any: ...


class Conn(Protocol):
    """One connection, usually inside a transaction. SQL uses ``$1, $2, ...`` placeholders."""

    async def execute(self, sql: str, *args: object) -> int:
        """Run one statement; answer the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...

    async def fetch(self, sql: str, *args: object) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: object) -> Row | None: ...

    async def script(self, sql: str) -> None:
        """Run a migration script (several statements, no parameters)."""
        ...


class Codec(Protocol):
    """How values the driver has no common type for are written and read back."""

    def dt(self, value: datetime) -> object: ...

    def from_dt(self, value: Any) -> datetime: ...

    def day(self, value: date) -> object: ...

    def from_day(self, value: Any) -> date: ...

    def ids(self, value: Sequence[str]) -> object: ...

    def from_ids(self, value: Any) -> tuple[str, ...]: ...


class Migration(msgspec.Struct, frozen=True):
    """One versioned schema change, shipped as ``migrations/<dialect>/NNNN_name.sql``."""

    version: int
    name: str
    sql: str


def load_migrations(dialect: Dialect) -> list[Migration]:
    """The dialect's migrations in version order, read from the package data."""
    folder = resources.files("actors.store").joinpath("migrations", dialect)
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise RuntimeError(
                f"two {dialect} migrations have version {version}: "
                f"{found[version].name!r} and {match.group(2)!r}; renumber one"
            )
        found[version] = Migration(version, match.group(2), entry.read_text("utf-8"))
    return [found[v] for v in sorted(found)]


def split_sqlite_script(sql: str) -> list[str]:
    """Cut a script into complete statements (sqlite3's own tokenizer decides where)."""
    statements: list[str] = []
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if stripped := pending.strip():
                statements.append(stripped)
            pending = ""
    code = [
        part for part in pending.splitlines() if part.strip() and not part.strip().startswith("--")
    ]
    if code:
        if not sqlite3.complete_statement(pending + ";"):
            raise ValueError(f"SQL script ends in an incomplete statement: {pending[:80]!r}")
        statements.append(pending.strip())
    return statements


def utc(value: datetime, field: str) -> datetime:
    """``value`` in UTC; a naive datetime is refused, since its zone is unknown."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{field}={value.isoformat()} is a naive datetime; pass an aware one "
            "(for example datetime.now(UTC))"
        )
    return value.astimezone(UTC)


def where_equal(**columns: object) -> tuple[str, list[object]]:
    """A ``WHERE`` clause matching each column whose value is not ``None``, and its args.

    Column names come from code, never from input; values are always parameters.
    """
    args = [value for value in columns.values() if value is not None]
    names = [name for name, value in columns.items() if value is not None]
    if not names:
        return "", []
    return "WHERE " + " AND ".join(f"{n} = ${i}" for i, n in enumerate(names, 1)), args


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a PostgreSQL advisory lock."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), signed=True)


class SqlBase(abc.ABC):
    """Lifecycle, clock, secret box and migrations of a SQL store; queries live in mixins."""

    dialect: Dialect
    codec: Codec

    def __init__(
        self,
        *,
        secret_key: bytes | None,
        migrate_on_open: bool,
        clock: Callable[[], datetime] | None,
    ) -> None:
        self._box: SecretBox | None = SecretBox(secret_key) if secret_key is not None else None
        self._migrate_on_open = migrate_on_open
        self._clock = clock or _utcnow

    # -- what a backend provides ------------------------------------------------------------

    @abc.abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Conn]:
        """One connection in one transaction: committed on exit, rolled back on error."""

    @abc.abstractmethod
    def _read(self) -> AbstractAsyncContextManager[Conn]:
        """One connection for reads."""

    @abc.abstractmethod
    async def _connect(self) -> bool:
        """Connect; ``False`` when already connected."""

    @abc.abstractmethod
    async def _disconnect(self) -> None: ...

    async def _lock_migrations(self, conn: Conn) -> None:
        """Serialise migrators across processes for the rest of ``conn``'s transaction."""
        return None

    async def _prepare_schema(self, conn: Conn) -> None:
        """Create whatever must exist before ``schema_migrations`` (a PostgreSQL schema)."""
        return None

    # -- lifecycle ---------------------------------------------------------------------------

    def now(self) -> datetime:
        """The store's idea of the current time (aware, UTC)."""
        return utc(self._clock(), "clock()")

    async def open(self) -> None:
        if not await self._connect():
            return  # already open: opening twice is harmless
        if self._migrate_on_open:
            try:
                await self.migrate()
            except BaseException:
                await self._disconnect()
                raise

    async def close(self) -> None:
        await self._disconnect()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def ping(self) -> None:
        async with self._read() as conn:
            await conn.fetchrow("SELECT 1")

    # -- migrations --------------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        """Apply pending migrations in order, each in its own transaction; answer them."""
        async with self._transaction() as conn:
            await self._lock_migrations(conn)
            await self._prepare_schema(conn)
            await conn.script(_SCHEMA_MIGRATIONS[self.dialect])
        applied: list[int] = []
        for migration in load_migrations(self.dialect):
            async with self._transaction() as conn:
                # Checked again under the lock: another migrator may have applied it.
                await self._lock_migrations(conn)
                done = await conn.fetchrow(
                    "SELECT version FROM schema_migrations WHERE version = $1", migration.version
                )
                if done is not None:
                    continue
                await conn.script(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    self.codec.dt(self.now()),
                )
            applied.append(migration.version)
        return applied

    async def applied_migrations(self) -> list[int]:
        async with self._read() as conn:
            rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        return [int(row["version"]) for row in rows]

    # -- secrets -----------------------------------------------------------------------------

    def derive_key(self, purpose: str) -> bytes:
        """A key for ``purpose`` derived from the secret key (see ``Store.derive_key``)."""
        return self._secret_box().derive_key(purpose)

    def _secret_box(self) -> SecretBox:
        if self._box is None:
            raise SecretKeyError(
                f"{type(self).__name__} has no secret_key to encrypt app secrets and user "
                "tokens with; pass secret_key=Fernet.generate_key() (keep it out of the "
                "database) or key_file=..."
            )
        return self._box


_SCHEMA_MIGRATIONS: dict[Dialect, str] = {
    "sqlite": (
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    ),
    "postgres": (
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)"
    ),
}


def _utcnow() -> datetime:
    return datetime.now(UTC)
