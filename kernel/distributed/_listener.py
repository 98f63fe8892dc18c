"""A dedicated LISTEN connection that reconnects with backoff.

Notifications are not queued for a disconnected listener, so after every (re)connect the
owner resynchronises from the table (``on_connect``); between outages a change costs one
notification and one row fetch, and nothing polls the table. A connection that dies
silently is noticed by a cheap ``SELECT 1`` every ``keepalive`` seconds. Every wait is on
the database's clock (``Database.clock``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from ..clock import wait_at_most
from ._pg import UNAVAILABLE, Database

__all__ = ("Listener",)

log = logging.getLogger("scheduler.postgres")


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    return lambda _conn: event.set()


class Listener:
    """Calls ``on_note(payload)`` for each notification on ``db.channel``."""

    def __init__(
        self,
        db: Database,
        on_note: Callable[[str], None],
        on_connect: Callable[[], Awaitable[None]],
        *,
        name: str = "",
        keepalive: float = 5.0,
        max_backoff: float = 10.0,
    ) -> None:
        self.db = db
        self.on_note = on_note
        self.on_connect = on_connect
        self.keepalive = keepalive
        self.max_backoff = max_backoff
        # Shown in pg_stat_activity (and lets tests cut this connection).
        self.application_name = f"lark_scheduler_listen:{db.schema}:{name}"[:63]
        self.connected = False
        self.reconnects = 0

    def _notified(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        self.on_note(str(payload))

    async def run(self) -> None:
        """Listen until cancelled; reconnects (and resynchronises) after every outage."""
        delay = 0.2
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.db.dsn, server_settings={
                    "search_path": self.db.schema, "application_name": self.application_name})
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(self.db.channel, self._notified)
                self.connected = True
                self.db.mark_up()
                await self.on_connect()
                delay = 0.2
                clock = self.db.clock
                while not lost.is_set():
                    try:
                        await wait_at_most(clock, lost.wait(), self.keepalive)
                    except TimeoutError:
                        await wait_at_most(clock, conn.execute("SELECT 1"), self.keepalive)
            except UNAVAILABLE as exc:
                self.db.mark_down(exc)
            except TimeoutError as exc:
                self.db.mark_down(exc)
            except Exception:
                log.exception("notification listener failed; reconnecting")
            finally:
                self.connected = False
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            self.reconnects += 1
            await self.db.clock.sleep(delay)
            delay = min(delay * 2, self.max_backoff)
