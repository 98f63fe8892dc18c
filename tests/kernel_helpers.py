"""Helpers for kernel tests: a kernel on a virtual clock and an event recorder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import anyio

from kernel import JobDefaults, Kernel
from kernel.events import Event
from kernel.testing import VirtualClock

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")


class Recorder:
    """Collects the kernel's events; ``take()`` returns those since the last call."""

    def __init__(self, kernel: Kernel) -> None:
        self.stream = kernel.subscribe()

    def take(self) -> list[Event]:
        out: list[Event] = []
        while True:
            try:
                out.append(self.stream.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                return out


def brief(events: list[Event], tz: ZoneInfo = SHANGHAI) -> list[tuple[Any, ...]]:
    """Events as (kind, job_id, local scheduled time[, extra]) tuples, easy to compare."""
    out: list[tuple[Any, ...]] = []
    for e in events:
        when = None
        if e.scheduled_at is not None:
            when = e.scheduled_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S%z")
        kind = type(e).__name__
        if kind == "RunSkipped":
            out.append((kind, e.job_id, when, e.reason))  # type: ignore[union-attr]
        else:
            out.append((kind, e.job_id, when))
    return out


def starts(events: list[Event], tz: ZoneInfo = SHANGHAI) -> list[str]:
    """Local scheduled times of the RunStarted events."""
    return [
        e.scheduled_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S%z")
        for e in events
        if type(e).__name__ == "RunStarted" and e.scheduled_at is not None
    ]


@asynccontextmanager
async def virtual_kernel(
    start: datetime = datetime(2024, 1, 1, 0, 0, tzinfo=UTC),
    *,
    timezone: str = "Asia/Shanghai",
    defaults: JobDefaults | None = None,
    **kw: Any,
) -> AsyncIterator[tuple[Kernel, VirtualClock, Recorder]]:
    clock = VirtualClock(start)
    kernel = Kernel(timezone=timezone, job_defaults=defaults, clock=clock, **kw)
    recorder = Recorder(kernel)
    await kernel.start()
    try:
        yield kernel, clock, recorder
    finally:
        # Runs still waiting on the virtual clock would wait forever: cancel them.
        await kernel.shutdown(wait=False)
        recorder.stream.close()
