"""Test support for the store tests: one backend of each kind behind one small interface."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.fernet import Fernet

from actors.store.postgres import PostgresStore, quote_ident
from actors.store.sqlite import SqliteStore
from tests.conftest import POSTGRES_DSN

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)

AnyStore = SqliteStore | PostgresStore


class FakeClock:
    """The store's clock, moved by hand: time in these tests never sleeps."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Backend:
    """Makes stores of one kind on one database (a SQLite file, or a PostgreSQL schema)."""

    kind: str
    tmp_path: Path
    clock: FakeClock = field(default_factory=FakeClock)
    schema: str = field(default_factory=lambda: f"test_store_{uuid.uuid4().hex[:12]}")
    pg_key: bytes = field(default_factory=Fernet.generate_key)
    stores: list[AnyStore] = field(default_factory=list)

    @property
    def db_path(self) -> Path:
        return self.tmp_path / "lark.db"

    def make(self, **kw: Any) -> AnyStore:
        kw.setdefault("clock", self.clock)
        store: AnyStore
        if self.kind == "sqlite":
            store = SqliteStore(self.db_path, **kw)
        else:
            kw.setdefault("secret_key", self.pg_key)
            kw.setdefault("max_size", 4)
            store = PostgresStore(POSTGRES_DSN, schema=self.schema, **kw)
        self.stores.append(store)
        return store

    async def open(self, **kw: Any) -> AnyStore:
        store = self.make(**kw)
        await store.open()
        return store

    async def raw(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        """Rows straight from the database, bypassing the store (``$1`` placeholders)."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.db_path)
            try:
                return list(conn.execute(sql.replace("$", "?"), args).fetchall())
            finally:
                conn.close()
        pg = await asyncpg.connect(
            POSTGRES_DSN, server_settings={"search_path": quote_ident(self.schema)}
        )
        try:
            return [tuple(row) for row in await pg.fetch(sql, *args)]
        finally:
            await pg.close()

    async def cleanup(self) -> None:
        for store in self.stores:
            await store.close()
        if self.kind == "postgres":
            pg = await asyncpg.connect(POSTGRES_DSN)
            try:
                await pg.execute(f"DROP SCHEMA IF EXISTS {quote_ident(self.schema)} CASCADE")
            finally:
                await pg.close()
