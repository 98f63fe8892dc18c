"""Scenarios that fire jobs and measure lateness: steady, burst, cron-heavy, churn."""

from __future__ import annotations

import asyncio
import math
import random
import time
from array import array
from typing import Any

from bench._body import recorder
from bench._context import Ctx, overran, timed_adds, wait_window
from bench._measure import Usage, match_fires, sleep_until, summarize

__all__ = ("burst", "churn", "cron_heavy", "steady")

PERIOD = 1.0  # steady and churn: every job fires once a second


def _per_1k(cpu: float, fires: int) -> float | None:
    return cpu / fires * 1000 if fires else None


def _window(used: Usage, fires: int) -> dict[str, Any]:
    return {
        "cpu_s": used.cpu,
        "wall_s": used.wall,
        "cpu_s_per_1k_fires": _per_1k(used.cpu, fires),
    }


async def steady(ctx: Ctx) -> dict[str, Any]:
    """N interval jobs every second, phases spread evenly over the second: ~N fires/s.

    Each job fires ``duration`` times (its end date lies half a period after its last
    fire), so the window ends once every planned fire has started or ``drain`` seconds
    after the last planned one.
    """
    n, e = ctx.n, ctx.engine
    count = max(1, round(ctx.duration / PERIOD))
    per_job = await ctx.calibrate(
        lambda k: e.add_interval(k, 3600.0, time.monotonic() + 7200, None)
    )
    t0 = ctx.first_fire(per_job)
    first = array("d", (t0 + i * PERIOD / n for i in range(n)))
    last_offset = (count - 1) * PERIOD
    add_s = await timed_adds(
        lambda k: e.add_interval(k, PERIOD, first[k], first[k] + last_offset), range(n)
    )
    metrics: dict[str, Any] = {"add_rate_per_s": n / add_s, "rate_per_s": n / PERIOD}
    overran(ctx, t0, metrics)
    end = t0 + count * PERIOD
    cutoff = end + ctx.drain
    used, m, fires = await wait_window(t0, n * count, cutoff)
    match = match_fires(recorder.keys[:m], recorder.times[:m], first, PERIOD, count, cutoff)
    metrics.update(summarize(match))
    metrics.update(_window(used, fires))
    return metrics


async def burst(ctx: Ctx) -> dict[str, Any]:
    """N one-shot jobs due at the same instant: how long until the last one has started."""
    n, e = ctx.n, ctx.engine
    per_job = await ctx.calibrate(lambda k: e.add_date(k, time.monotonic() + 7200))
    at = ctx.first_fire(per_job)
    add_s = await timed_adds(lambda k: e.add_date(k, at), range(n))
    metrics: dict[str, Any] = {"add_rate_per_s": n / add_s}
    overran(ctx, at, metrics)
    cutoff = at + ctx.drain + n * 1e-4
    used, m, fires = await wait_window(at, n, cutoff)
    match = match_fires(recorder.keys[:m], recorder.times[:m], array("d", [at]) * n, 0.0, 1, cutoff)
    metrics.update(summarize(match))
    metrics.update(_window(used, fires))
    metrics["last_start_s"] = max(match.lateness) if match.lateness else None
    return metrics


async def cron_heavy(ctx: Ctx) -> dict[str, Any]:
    """N cron jobs ``* * * * *``, measured over one minute boundary.

    The jobs are added, then the run waits for the first minute boundary that leaves room
    for the adds: one run lasts at most about a minute plus its set-up.
    """
    n, e = ctx.n, ctx.engine
    per_job = await ctx.calibrate(lambda k: e.add_cron(k, "* * * * *"))
    ready = ctx.first_fire(per_job)
    boundary_wall = math.ceil(ctx.tb.wall(ready) / 60) * 60
    boundary = ctx.tb.mono(boundary_wall)
    # Not earlier than needed: a job added just after a boundary must not see that one.
    await sleep_until(boundary - (ready - time.monotonic()))
    add_s = await timed_adds(lambda k: e.add_cron(k, "* * * * *"), range(n))
    metrics: dict[str, Any] = {"add_rate_per_s": n / add_s, "boundary_utc": boundary_wall}
    overran(ctx, boundary, metrics)
    cutoff = boundary + ctx.drain + n * 1e-4
    used, m, fires = await wait_window(boundary, n, cutoff)
    match = match_fires(
        recorder.keys[:m], recorder.times[:m], array("d", [boundary]) * n, 60.0, 1, cutoff
    )
    metrics.update(summarize(match))
    metrics.update(_window(used, fires))
    metrics["last_start_s"] = max(match.lateness) if match.lateness else None
    return metrics


async def churn(ctx: Ctx) -> dict[str, Any]:
    """Add, reschedule and remove jobs while N steady jobs fire (~N fires/s).

    The N steady jobs (keys 0..N-1) are checked exactly as in ``steady``. A pool of N/10
    more jobs (every second, random phases) is churned at N/10 operations per second
    (at least 100), cycling add -> reschedule -> remove; their fires count for CPU only.
    """
    n, e = ctx.n, ctx.engine
    count = max(1, round(ctx.duration / PERIOD))
    rng = random.Random(6)
    per_job = await ctx.calibrate(
        lambda k: e.add_interval(k, 3600.0, time.monotonic() + 7200, None)
    )
    pool = max(10, n // 10)
    t0 = ctx.first_fire(per_job * (n + pool) / n)
    first = array("d", (t0 + i * PERIOD / n for i in range(n)))
    last_offset = (count - 1) * PERIOD
    await timed_adds(
        lambda k: e.add_interval(k, PERIOD, first[k], first[k] + last_offset), range(n)
    )
    live = list(range(n, n + pool))
    await timed_adds(
        lambda k: e.add_interval(k, PERIOD, t0 + rng.random(), None), range(n, n + pool)
    )
    metrics: dict[str, Any] = {"churn_pool": pool}
    overran(ctx, t0, metrics)
    rate = max(100, n // 10)
    op_times: list[float] = []
    end = t0 + count * PERIOD
    driver = asyncio.create_task(_churn(ctx, live, n + pool, rate, t0, end, rng, op_times))
    await sleep_until(t0 - 0.02)
    u0, m0 = Usage.now(), len(recorder.times)
    await driver
    await sleep_until(end)
    used = Usage.now() - u0
    fires = len(recorder.times) - m0
    # The churned jobs keep firing: wait for the stable ones alone, up to the drain.
    deadline, pos, stable = end + ctx.drain, 0, 0
    while True:
        upto = len(recorder.times)
        stable += sum(1 for k in recorder.keys[pos:upto] if k < n)
        pos = upto
        if stable >= n * count or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.05)
    match = match_fires(recorder.keys[:pos], recorder.times[:pos], first, PERIOD, count, deadline)
    metrics.update(summarize(match))
    metrics.update(_window(used, fires))
    op_times.sort()
    ops = len(op_times)
    metrics["churn_ops"] = ops
    metrics["churn_ops_per_s"] = ops / (end - t0)
    metrics["churn_op_us"] = (
        {
            "p50": op_times[ops // 2] * 1e6,
            "p99": op_times[min(ops - 1, int(ops * 0.99))] * 1e6,
            "max": op_times[-1] * 1e6,
        }
        if ops
        else None
    )
    return metrics


async def _churn(
    ctx: Ctx,
    live: list[int],
    next_key: int,
    rate: int,
    start: float,
    end: float,
    rng: random.Random,
    op_times: list[float],
) -> None:
    e = ctx.engine
    await sleep_until(start)
    done = 0
    kind = 0
    while (now := time.monotonic()) < end:
        due = int((now - start) * rate) - done
        for _ in range(due):
            t = time.perf_counter()
            if kind == 0:
                e.add_interval(next_key, PERIOD, time.monotonic() + 0.2 + rng.random(), None)
                live.append(next_key)
                next_key += 1
            elif kind == 1:
                e.reschedule_interval(
                    live[rng.randrange(len(live))], PERIOD, time.monotonic() + 0.2 + rng.random()
                )
            else:
                i = rng.randrange(len(live))
                live[i], live[-1] = live[-1], live[i]
                e.remove(live.pop())
            op_times.append(time.perf_counter() - t)
            kind = (kind + 1) % 3
        done += due
        await asyncio.sleep(0.01)
