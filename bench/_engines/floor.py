"""The event loop's own floor: one ``loop.call_at`` per job, rescheduling itself.

Each fire does the least any asyncio scheduler must do for a coroutine job: create a task
for the body (``loop.create_task(job(key))``) and arm the next ``call_at`` at the exact
planned time ``first + k * period`` (no drift, no trigger objects, no bookkeeping). Cron is
supported only for ``* * * * *`` (next minute boundary by arithmetic); anything else is not
a floor but a cron parser, so it is reported as unsupported.
"""

from __future__ import annotations

import asyncio
import math
import time

from bench._body import job
from bench._engines._base import Unsupported
from bench._measure import TimeBase

__all__ = ("FloorEngine",)


class _Timer:
    __slots__ = ("engine", "handle", "key", "last", "next", "period")

    def __init__(
        self, engine: FloorEngine, key: int, first: float, period: float, last: float | None
    ) -> None:
        self.engine = engine
        self.key = key
        self.next = first
        self.period = period
        self.last = last
        self.handle = engine.loop.call_at(first + engine.offset, self.fire)

    def fire(self) -> None:
        engine = self.engine
        engine.loop.create_task(job(self.key))
        if self.period > 0:
            self.next += self.period
            if self.last is None or self.next <= self.last:
                self.handle = engine.loop.call_at(self.next + engine.offset, self.fire)


class FloorEngine:
    """Bare ``loop.call_at``: what the event loop alone can do."""

    def __init__(self, tb: TimeBase) -> None:
        self.tb = tb
        self.loop = asyncio.get_running_loop()
        self.offset = 0.0
        self.timers: dict[int, _Timer] = {}

    async def start(self) -> None:
        # loop.time() is time.monotonic() on asyncio but libuv's millisecond clock on uvloop:
        # translate. loop.time() never runs ahead of the truth, so take the largest sample.
        samples = []
        for _ in range(20):
            await asyncio.sleep(0)
            samples.append(self.loop.time() - time.monotonic())
        self.offset = max(samples)

    async def stop(self) -> None:
        for t in self.timers.values():
            t.handle.cancel()
        self.timers.clear()

    def add_interval(self, key: int, period: float, first: float, last: float | None) -> None:
        self.timers[key] = _Timer(self, key, first, period, last)

    def add_cron(self, key: int, expr: str) -> None:
        if expr.split() != ["*"] * 5:
            raise Unsupported(f"the floor only knows '* * * * *', not {expr!r}")
        wall = self.tb.wall(time.monotonic())
        boundary = math.floor(wall / 60) * 60 + 60
        self.timers[key] = _Timer(self, key, self.tb.mono(boundary), 60.0, None)

    def add_date(self, key: int, at: float) -> None:
        self.timers[key] = _Timer(self, key, at, 0.0, None)

    def remove(self, key: int) -> None:
        self.timers.pop(key).handle.cancel()

    def reschedule_interval(self, key: int, period: float, first: float) -> None:
        self.timers.pop(key).handle.cancel()
        self.timers[key] = _Timer(self, key, first, period, None)
