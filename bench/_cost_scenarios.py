"""Scenarios that measure what registered jobs cost: idle, and add (interval / cron)."""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from bench._context import Ctx, far_cron, timed_adds
from bench._engines import Engine
from bench._measure import Usage, current_rss

__all__ = ("add_cron_distinct", "add_cron_same", "add_interval", "idle")

HOUR = 3600.0


class _SelectCounter:
    """Counts the asyncio selector's ``select`` calls: loop iterations, and those that
    could block (timeout not 0). uvloop has no Python selector: counts stay None there."""

    def __init__(self) -> None:
        self.iterations: int | None = None
        self.sleeps: int | None = None
        selector = getattr(asyncio.get_running_loop(), "_selector", None)
        if selector is None:
            return
        self.iterations = self.sleeps = 0
        original = selector.select

        def select(timeout: float | None = None) -> Any:
            self.iterations = (self.iterations or 0) + 1
            if timeout is None or timeout > 0:
                self.sleeps = (self.sleeps or 0) + 1
            return original(timeout)

        selector.select = select


async def idle(ctx: Ctx) -> dict[str, Any]:
    """N interval jobs first due in an hour (phases over a minute): CPU and wake-ups while
    nothing is due, over ``idle_duration`` seconds."""
    n, e = ctx.n, ctx.engine
    base = time.monotonic() + HOUR
    add_s = await timed_adds(lambda k: e.add_interval(k, HOUR, base + k * 60 / n, None), range(n))
    await asyncio.sleep(0.5)  # let one-off work after the adds (timers re-armed, GC) pass
    gc.collect()
    counter = _SelectCounter()
    i0, s0 = counter.iterations, counter.sleeps
    u0 = Usage.now()
    await asyncio.sleep(ctx.idle_duration)
    used = Usage.now() - u0
    # The harness's own sleep accounts for one wake-up and a couple of loop iterations.
    return {
        "add_rate_per_s": n / add_s,
        "idle_s": used.wall,
        "cpu_s": used.cpu,
        "wakeups": used.nvcsw,
        "wakeups_per_s": used.nvcsw / used.wall,
        "loop_iterations": None if i0 is None else (counter.iterations or 0) - i0,
        "loop_sleeps": None if s0 is None else (counter.sleeps or 0) - s0,
    }


async def _add(ctx: Ctx, adder: Callable[[Engine], Callable[[int], None]]) -> dict[str, Any]:
    """Time to add N jobs to the running engine (adds plus the callbacks they scheduled),
    then bytes per job: tracemalloc's traced memory across N more adds to a second, fresh
    instance (after the first pass warmed up every code path)."""
    n = ctx.n
    await ctx.calibrate(adder(ctx.engine))
    gc.collect()
    rss0 = current_rss()
    add_s = await timed_adds(adder(ctx.engine), range(n))
    gc.collect()
    rss1 = current_rss()
    second = ctx.make_engine()
    await second.start()
    gc.collect()
    tracemalloc.start()
    try:
        m0 = tracemalloc.get_traced_memory()[0]
        await timed_adds(adder(second), range(n))
        gc.collect()
        m1 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    await second.stop()
    return {
        "add_s": add_s,
        "add_rate_per_s": n / add_s,
        "add_us_per_job": add_s / n * 1e6,
        "bytes_per_job": (m1 - m0) / n,
        "rss_bytes_per_job": None if rss0 is None or rss1 is None else (rss1 - rss0) / n,
    }


async def add_interval(ctx: Ctx) -> dict[str, Any]:
    """Register N interval jobs (every hour, first due in an hour)."""
    base = time.monotonic() + HOUR

    def adder(e: Engine) -> Callable[[int], None]:
        return lambda k: e.add_interval(k, HOUR, base + (k % 3600), None)

    return await _add(ctx, adder)


async def add_cron_same(ctx: Ctx) -> dict[str, Any]:
    """Register N cron jobs that all share one expression (not due within the hour)."""
    expr = far_cron()

    def adder(e: Engine) -> Callable[[int], None]:
        return lambda k: e.add_cron(k, expr)

    return await _add(ctx, adder)


async def add_cron_distinct(ctx: Ctx) -> dict[str, Any]:
    """Register N cron jobs, each with its own expression (none due within the hour)."""
    exprs = [far_cron(i) for i in range(ctx.n)]

    def adder(e: Engine) -> Callable[[int], None]:
        # Calibration keys are huge: wrap them into the list.
        return lambda k: e.add_cron(k, exprs[k % len(exprs)])

    return await _add(ctx, adder)
