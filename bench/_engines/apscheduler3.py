"""APScheduler 3.x ``AsyncIOScheduler``: the engine the seed used.

Settings, chosen so that no fire is dropped by policy and every one is measured:
``coalesce=False`` (each missed run time runs), ``misfire_grace_time=3600`` (lateness is
measured, not turned into a skipped run), ``max_instances=1000`` (an instance still
pending never causes a skip), timezone UTC, the default ``MemoryJobStore`` and the default
``AsyncIOExecutor`` (one task per fire for coroutine functions).
"""

from __future__ import annotations

import asyncio
from datetime import UTC
from typing import Any

from bench._body import job
from bench._engines._base import job_id
from bench._measure import TimeBase

__all__ = ("APScheduler3Engine", "probe")

JOB_DEFAULTS = {"coalesce": False, "misfire_grace_time": 3600, "max_instances": 1000}


def probe() -> str | None:
    """None when APScheduler 3 is importable, else why not."""
    try:
        import apscheduler
    except ImportError:
        return "apscheduler is not installed (pip install 'apscheduler<4', the bench extra)"
    version = getattr(apscheduler, "__version__", "3")
    if not str(version).startswith("3."):
        return f"apscheduler {version} is installed, not 3.x"
    return None


class APScheduler3Engine:
    """``AsyncIOScheduler`` with the settings above."""

    def __init__(self, tb: TimeBase) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.date import DateTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        self.tb = tb
        self._interval = IntervalTrigger
        self._cron = CronTrigger
        self._date = DateTrigger
        self.sched: Any = AsyncIOScheduler(
            event_loop=asyncio.get_running_loop(), timezone=UTC, job_defaults=JOB_DEFAULTS
        )

    async def start(self) -> None:
        self.sched.start()
        await asyncio.sleep(0)

    async def stop(self) -> None:
        self.sched.shutdown(wait=False)
        await asyncio.sleep(0)

    def _interval_trigger(self, period: float, first: float, last: float | None) -> Any:
        # end_date half a period after the last fire: inclusive or not, exactly `last` fires.
        end = None if last is None else self.tb.dt(last + period / 2)
        return self._interval(
            seconds=period, start_date=self.tb.dt(first), end_date=end, timezone=UTC
        )

    def add_interval(self, key: int, period: float, first: float, last: float | None) -> None:
        self.sched.add_job(
            job, self._interval_trigger(period, first, last), args=(key,), id=job_id(key)
        )

    def add_cron(self, key: int, expr: str) -> None:
        self.sched.add_job(
            job, self._cron.from_crontab(expr, timezone=UTC), args=(key,), id=job_id(key)
        )

    def add_date(self, key: int, at: float) -> None:
        self.sched.add_job(
            job, self._date(run_date=self.tb.dt(at), timezone=UTC), args=(key,), id=job_id(key)
        )

    def remove(self, key: int) -> None:
        self.sched.remove_job(job_id(key))

    def reschedule_interval(self, key: int, period: float, first: float) -> None:
        self.sched.reschedule_job(job_id(key), trigger=self._interval_trigger(period, first, None))
