"""aiocron: one ``loop.call_at`` per cron job, next time from cronsim. Cron only."""

from __future__ import annotations

import asyncio
from datetime import UTC
from typing import Any

from bench._body import job
from bench._engines._base import Unsupported
from bench._measure import TimeBase

__all__ = ("AiocronEngine", "probe")


def probe() -> str | None:
    """None when aiocron is importable, else why not."""
    try:
        import aiocron  # noqa: F401
    except ImportError:
        return "aiocron is not installed (pip install aiocron, the bench extra)"
    return None


class AiocronEngine:
    """``aiocron.crontab(expr, func=job, args=(key,), tz=UTC)`` per job."""

    def __init__(self, tb: TimeBase) -> None:
        import aiocron

        self.tb = tb
        self._crontab = aiocron.crontab
        self.loop = asyncio.get_running_loop()
        self.crons: dict[int, Any] = {}

    async def start(self) -> None:
        await asyncio.sleep(0)

    async def stop(self) -> None:
        for c in self.crons.values():
            c.stop()
        self.crons.clear()

    def add_interval(self, key: int, period: float, first: float, last: float | None) -> None:
        raise Unsupported("aiocron has cron jobs only")

    def add_cron(self, key: int, expr: str) -> None:
        self.crons[key] = self._crontab(
            expr, func=job, args=(key,), start=True, loop=self.loop, tz=UTC
        )

    def add_date(self, key: int, at: float) -> None:
        raise Unsupported("aiocron has cron jobs only")

    def remove(self, key: int) -> None:
        self.crons.pop(key).stop()

    def reschedule_interval(self, key: int, period: float, first: float) -> None:
        raise Unsupported("aiocron has cron jobs only")
