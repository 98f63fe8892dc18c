"""Fixtures for tests on the machine's PostgreSQL: a fresh scheduler schema per test."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from kernel import Kernel
from kernel.distributed._pg import Database

from .conftest import POSTGRES_DSN


def unique_schema(prefix: str = "t") -> str:
    return f"{prefix}_{os.urandom(5).hex()}"


@asynccontextmanager
async def fresh_db() -> AsyncIterator[Database]:
    """A scheduler schema of its own, dropped afterwards."""
    database = Database(POSTGRES_DSN, schema=unique_schema())
    await database.open()
    try:
        yield database
    finally:
        await database.close()
        await database.drop()


async def eventually(check: Callable[[], bool], limit: float = 5.0) -> None:
    """Wait (real time: the database is real) until ``check()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {limit} s")
        await asyncio.sleep(0.01)


async def drain(kernel: Kernel, limit: float = 5.0) -> None:
    """Wait until the kernel's run tasks (claims against the real database) are done."""
    await eventually(lambda: not kernel.in_flight, limit)
