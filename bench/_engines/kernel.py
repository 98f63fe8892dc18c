"""The lark-scheduler kernel (``kernel.Kernel``), on asyncio or on uvloop.

Settings, the same in spirit as APScheduler 3's here so no fire is dropped by policy:
``coalesce=False``, ``misfire_grace_time=3600``, ``max_instances=1000``, timezone UTC.
The job is the same coroutine function as everywhere, so it runs on the loop.
"""

from __future__ import annotations

from typing import Any

from bench._body import job
from bench._engines._base import job_id
from bench._measure import TimeBase

__all__ = ("KernelEngine", "probe")


def probe() -> str | None:
    """None when the kernel is importable, else why not."""
    try:
        from kernel import Kernel  # noqa: F401
    except ImportError as exc:
        return f"kernel.Kernel is not importable yet ({exc})"
    return None


class KernelEngine:
    """``kernel.Kernel`` with the settings above."""

    def __init__(self, tb: TimeBase) -> None:
        from kernel import JobDefaults, Kernel
        from kernel.triggers import IntervalTrigger

        self.tb = tb
        self._interval = IntervalTrigger
        self.k: Any = Kernel(
            timezone="UTC",
            job_defaults=JobDefaults(coalesce=False, max_instances=1000, misfire_grace_time=3600),
        )
        self.admin: Any = None  # the admin API, once serve_metrics() started it

    async def start(self) -> None:
        await self.k.start()

    async def stop(self) -> None:
        if self.admin is not None:
            await self.admin.stop()
        await self.k.shutdown(wait=False)

    async def serve_metrics(self) -> str:
        """Attach ``SchedulerMetrics`` and serve the admin API on loopback; the metrics URL."""
        from kernel.http import AdminServer
        from kernel.metrics import SchedulerMetrics

        metrics = SchedulerMetrics()
        metrics.attach(self.k)
        self.admin = AdminServer(self.k, port=0, metrics=metrics)
        await self.admin.start()
        return f"{self.admin.url}/metrics"

    def add_interval(self, key: int, period: float, first: float, last: float | None) -> None:
        # end_date half a period after the last fire: inclusive or not, exactly `last` fires.
        end = None if last is None else self.tb.dt(last + period / 2)
        self.k.add_interval_job(
            job,
            seconds=period,
            start_date=self.tb.dt(first),
            end_date=end,
            args=(key,),
            job_id=job_id(key),
        )

    def add_cron(self, key: int, expr: str) -> None:
        self.k.add_cron_job(job, cron_expression=expr, args=(key,), job_id=job_id(key))

    def add_date(self, key: int, at: float) -> None:
        self.k.add_date_job(job, run_date=self.tb.dt(at), args=(key,), job_id=job_id(key))

    def remove(self, key: int) -> None:
        self.k.remove_job(job_id(key))

    def reschedule_interval(self, key: int, period: float, first: float) -> None:
        self.k.reschedule_job(
            job_id(key), self._interval(seconds=period, start_date=self.tb.dt(first))
        )
