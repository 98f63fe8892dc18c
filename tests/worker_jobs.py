"""Jobs the RabbitMQ worker tests run on worker subprocesses (imported by reference)."""

from __future__ import annotations

import asyncio
import os

import asyncpg


async def remote_job(dsn: str, schema: str, seconds: float) -> None:
    """Write a start row, take ``seconds``, write an end row (table ``ran``)."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        sql = "INSERT INTO ran (worker, phase) VALUES ($1, $2)"
        await conn.execute(sql, str(os.getpid()), "start")
        await asyncio.sleep(seconds)
        await conn.execute(sql, str(os.getpid()), "end")
    finally:
        await conn.close()


def remote_failure(reason: str) -> None:
    """A plain function that fails on the worker."""
    raise ValueError(reason)
