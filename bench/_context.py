"""What a scenario gets to work with inside the engine's subprocess, and shared steps."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench._body import recorder
from bench._engines import Engine
from bench._measure import TimeBase, Usage, settle, sleep_until

__all__ = ("CALIBRATION_KEY", "Ctx", "far_cron", "overran", "timed_adds", "wait_window")

# Keys of throw-away jobs used to warm up and calibrate; never in a scenario's checked range.
CALIBRATION_KEY = 1 << 40


@dataclass
class Ctx:
    """The engine under test and the run's parameters."""

    engine: Engine
    make_engine: Callable[[], Engine]  # another instance (the memory pass)
    tb: TimeBase
    n: int
    duration: float  # seconds of steady / churn load
    idle_duration: float
    drain: float  # how long after the last planned fire a late one still counts
    lead: float  # minimum seconds between set-up done and the first planned fire
    notes: list[str] = field(default_factory=list)

    async def calibrate(self, add: Callable[[int], None]) -> float:
        """Seconds per ``add(key)``, from a few throw-away jobs (removed again); warms up too."""
        m = max(1, min(self.n, 200))
        t0 = time.perf_counter()
        for i in range(m):
            add(CALIBRATION_KEY + i)
        await settle()
        per_job = (time.perf_counter() - t0) / m
        for i in range(m):
            self.engine.remove(CALIBRATION_KEY + i)
        await settle()
        return per_job

    def first_fire(self, per_job: float) -> float:
        """A first fire time that leaves room to add n jobs (3x the calibrated cost)."""
        return time.monotonic() + self.lead + 3 * per_job * self.n


def far_cron(distinct: int | None = None) -> str:
    """A cron expression that does not fire in the next hour (UTC).

    ``distinct=i`` gives the i-th of 403,200 different such expressions (minute, one of 20
    hours away from now, day of month, month), so no two jobs share an expression.
    """
    now = datetime.now(UTC)
    hours = [(now.hour + 2 + j) % 24 for j in range(20)]
    if distinct is None:
        return f"{now.minute} {hours[10]} * * *"
    i = distinct
    return f"{i % 60} {hours[(i // 60) % 20]} {1 + (i // 1200) % 28} {1 + (i // 33600) % 12} *"


async def timed_adds(add: Callable[[int], None], keys: range) -> float:
    """Seconds to add every key, including the loop callbacks the adds scheduled."""
    t0 = time.perf_counter()
    for key in keys:
        add(key)
    await settle()
    return time.perf_counter() - t0


async def wait_window(
    start: float, count: int, deadline: float, *, min_end: float | None = None
) -> tuple[Usage, int, int]:
    """Measure from just before ``start`` until ``count`` fires are recorded or ``deadline``.

    Returns the usage over the window, how many records there are at its end and how
    many of them started inside it. A saturated loop runs the deadline's own timer late,
    so the window may outlast ``deadline``: callers pass it as the cutoff for counting.
    """
    await sleep_until(start - 0.02)
    u0 = Usage.now()
    m0 = len(recorder.times)
    done = recorder.expect(m0 + count)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(done), max(0.0, deadline - time.monotonic()))
    if min_end is not None:
        await sleep_until(min_end)
    used = Usage.now() - u0
    m = len(recorder.times)
    return used, m, m - m0


def overran(ctx: Ctx, first: float, metrics: dict[str, Any]) -> None:
    """Flag a run whose set-up ended after its first planned fire: lateness then includes it."""
    if time.monotonic() > first - 0.01:
        metrics["setup_overran"] = True
        ctx.notes.append("set-up (adding jobs) overran the first planned fire")
