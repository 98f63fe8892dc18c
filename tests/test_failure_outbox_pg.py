"""A 30 s PostgreSQL outage loses no failure record.

The machine's PostgreSQL is shared, so the outage is made by a TCP proxy of the test's own
between the store and 127.0.0.1:5432: cutting it closes every connection and refuses new
ones (as a stopped server does), restoring it lets them through again. A job fails every
second through the outage; afterwards every failed run has exactly one stored record.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from actors.store.postgres import PostgresStore, quote_ident
from kernel import Kernel
from kernel.events import Event, RunFailed
from tests.conftest import POSTGRES_DSN

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

OUTAGE = 30.0


class CuttableProxy:
    """Forwards TCP connections on 127.0.0.1:<port> to ``target`` while open; ``cut()``
    closes every connection and refuses new ones until ``restore()``."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.open = True
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cut(self) -> None:
        self.open = False
        for writer in list(self._pipes):
            writer.transport.abort()
        self._pipes.clear()

    def restore(self) -> None:
        self.open = True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._pipes |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                if not self.open:
                    break
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._pipes.discard(dst)
            dst.transport.abort()


def _via(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@asynccontextmanager
async def proxied_store() -> AsyncIterator[tuple[PostgresStore, CuttableProxy, str]]:
    target = urlsplit(POSTGRES_DSN)
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    schema = f"outbox_{os.urandom(5).hex()}"
    store = PostgresStore(_via(POSTGRES_DSN, proxy.port), schema=schema, command_timeout=5.0)
    await store.open()
    try:
        yield store, proxy, schema
    finally:
        proxy.restore()
        with suppress(Exception):
            await store.close()
        await proxy.stop()
        pg = await asyncpg.connect(POSTGRES_DSN)
        try:
            await pg.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        finally:
            await pg.close()


async def _wait_for(check: object, limit: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not check():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"not done within {limit} s")
        await asyncio.sleep(0.1)


async def _failed_until(events: list[Event], n: int, limit: float) -> None:
    await _wait_for(lambda: sum(isinstance(e, RunFailed) for e in events) >= n, limit)


async def fails_every_time() -> None:
    raise RuntimeError("the upstream API is down too")


@pytest.mark.timeout(180)
async def test_a_30_second_postgres_outage_loses_no_failure_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with proxied_store() as (store, proxy, schema):
        kernel = Kernel(timezone="UTC", failure_store=store, failure_flush_timeout=10.0)
        events: list[Event] = []
        kernel.add_listener(events.append)
        kernel.add_interval_job(fails_every_time, seconds=1, job_id="flaky")
        with caplog.at_level(logging.INFO, logger="scheduler.failures"):
            await kernel.start()
            try:
                await _failed_until(events, 3, 30)
                proxy.cut()
                cut_at = sum(isinstance(e, RunFailed) for e in events)
                await asyncio.sleep(OUTAGE)
                during = sum(isinstance(e, RunFailed) for e in events) - cut_at
                assert kernel.failure_outbox.pending >= during - 1 > 20
                proxy.restore()
                # The writer's backoff is at most 15 s; then the kept records go in a batch.
                await _wait_for(lambda: kernel.failure_outbox.pending == 0, 60)
                await _failed_until(events, cut_at + during + 2, 30)
                kernel.remove_job("flaky")
                await _wait_for(lambda: not kernel.in_flight, 30)
            finally:
                await kernel.shutdown()
        failed = [e for e in events if isinstance(e, RunFailed)]
        pg = await asyncpg.connect(POSTGRES_DSN)
        try:
            rows = await pg.fetch(
                f"SELECT id, run_id, scheduled_at FROM {quote_ident(schema)}.failures "
                "WHERE job_id = 'flaky' ORDER BY seq"
            )
        finally:
            await pg.close()
        # Every failed run exactly once, with its id, run and scheduled time, in order.
        assert [(r["id"], r["run_id"], r["scheduled_at"]) for r in rows] == [
            (e.failure_id, e.run_id, e.scheduled_at) for e in failed
        ]
        messages = [r.getMessage() for r in caplog.records if r.name == "scheduler.failures"]
        kept = [m for m in messages if "kept it in memory" in m]
        assert len(kept) >= during > 20
        kept_ids = {e.failure_id for e in failed if any(str(e.failure_id) in m for m in kept)}
        assert len(kept_ids) == len(kept)
        assert f"wrote {len(kept)} kept failure record(s); none is waiting" in messages
        assert not [m for m in messages if "dropped" in m or "not written" in m]
