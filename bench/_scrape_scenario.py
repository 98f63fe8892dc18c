"""The ``steady-scrape`` scenario (issue 17): steady load while Prometheus scrapes ``/metrics``.

N interval jobs every second, phases spread (about N fires/s), as in ``steady``, on a
kernel with ``SchedulerMetrics`` attached and served by the admin API's ``GET /metrics`` on
127.0.0.1. The window alternates blocks of ``BLOCK`` seconds: quiet, scraped, quiet,
scraped... In a scraped block ``bench._scraper`` (a separate process, as Prometheus is)
fetches ``/metrics`` over loopback once a second. Every job has run before the first
scrape, so every job has all its series.

Measured, in the same run: lateness of the fires planned in quiet blocks and of those in
scraped blocks; per scrape, the longest the event loop went without polling for I/O
while the scrape was in flight (one loop iteration: every fire due during it waits for its
end), the wall time of the scrape and its size; and, for comparison, the longest loop
iteration in each quiet second.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from array import array
from collections.abc import Callable
from statistics import median
from typing import Any

from bench._body import recorder
from bench._context import Ctx, overran, wait_window
from bench._engines import Unsupported
from bench._measure import Match, match_fires, summarize

__all__ = ("LoopStalls", "steady_scrape")

PERIOD = 1.0
BLOCK = 5.0  # seconds per quiet or scraped block (shorter with --quick)
SCRAPE_OFFSET = 0.25  # into each second of a scraped block
STALL_FLOOR = 2e-4  # loop iterations shorter than this are not kept
CATCH_UP = 0.2  # seconds after a full GC pass whose fires still count as delayed by it


class LoopStalls:
    """Times every iteration of an asyncio selector loop: from the moment ``select``
    returned to the moment it is called again, the loop ran callbacks and nothing else (no
    fire) could start. Keeps the iterations longer than ``floor``: when each began, its
    wall time, the CPU time the loop's thread spent in it and, of that, the CPU of the
    cyclic garbage collector's passes inside it. On this shared machine wall and CPU differ
    when other processes took the core: wall is what a fire waits, CPU is what the code
    cost (reading the thread's CPU clock costs about 1 us per iteration). A GC pass runs
    wherever an allocation crosses its threshold; a full one walks every tracked object of
    the process, so its cost is the whole heap's, not the code it interrupted."""

    def __init__(self, loop: asyncio.AbstractEventLoop, floor: float = STALL_FLOOR) -> None:
        selector = getattr(loop, "_selector", None)
        if selector is None:
            raise Unsupported("steady-scrape times loop iterations on asyncio's selector loop")
        self._selector = selector
        self._select: Callable[..., Any] = selector.select
        self.floor = floor
        self.starts = array("d")
        self.lengths = array("d")
        self.cpu = array("d")
        self.gc_cpu = array("d")
        self.collections: list[tuple[float, float, int]] = []  # (start, CPU s, generation)
        self.full: list[tuple[float, float]] = []  # full passes (generation 2): start, end
        self._collecting = (0.0, 0.0)
        self._gc_in_iteration = [0.0]

    def __enter__(self) -> LoopStalls:
        select, floor = self._select, self.floor
        starts, lengths, cpu, gc_cpu = self.starts, self.lengths, self.cpu, self.gc_cpu
        gc_now = self._gc_in_iteration
        clock, cpu_clock = time.monotonic, time.thread_time
        returned, returned_cpu = clock(), cpu_clock()

        def timed_select(timeout: float | None = None) -> Any:
            nonlocal returned, returned_cpu
            busy = clock() - returned
            if busy > floor:
                starts.append(returned)
                lengths.append(busy)
                cpu.append(cpu_clock() - returned_cpu)
                gc_cpu.append(gc_now[0])
            gc_now[0] = 0.0
            events = select(timeout)
            returned, returned_cpu = clock(), cpu_clock()
            return events

        self._selector.select = timed_select
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        self._selector.select = self._select
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._collecting = (time.monotonic(), time.thread_time())
        else:
            started, cpu = self._collecting
            used = time.thread_time() - cpu
            self._gc_in_iteration[0] += used
            if used > self.floor:
                self.collections.append((started, used, info["generation"]))
            if info["generation"] == 2:
                self.full.append((started, time.monotonic()))

    def collected(self, start: float, end: float) -> float:
        """CPU seconds of the collector's passes that began in ``[start, end]``."""
        return sum(used for began, used, _ in self.collections if start <= began <= end)

    def longest(self, start: float, end: float) -> tuple[float, float, float]:
        """Of the iterations overlapping ``[start, end]``: the longest wall time, the
        longest CPU time, and the longest CPU time without the GC passes in it (seconds;
        0 when none was kept)."""
        wall = cpu = own = 0.0
        for s, length, used, collecting in zip(
            self.starts, self.lengths, self.cpu, self.gc_cpu, strict=True
        ):
            if s <= end and s + length >= start:
                wall, cpu, own = max(wall, length), max(cpu, used), max(own, used - collecting)
        return wall, cpu, own


def _blocks(duration: float) -> tuple[float, int]:
    """Block length and an even number of blocks (quiet, scraped, ...) for ``duration``."""
    block = BLOCK if duration >= 2 * BLOCK else max(1.0, duration / 2)
    pairs = max(1, round(duration / (2 * block)))
    return block, 2 * pairs


def _by_block(
    keys: array[int], times: array[float], first: array[float], count: int, t0: float,
    block: float, cutoff: float, skip: frozenset[int] = frozenset(),
) -> tuple[list[float], list[float]]:
    """Lateness of the fires planned in quiet blocks and in scraped blocks (odd blocks),
    leaving out the blocks numbered in ``skip``.

    Matched as ``match_fires`` does: a job's j-th start is its j-th planned fire."""
    n = len(first)
    seen = [0] * n
    quiet: list[float] = []
    scraped: list[float] = []
    for key, t in zip(keys, times, strict=True):
        if not 0 <= key < n or t > cutoff:
            continue
        k = seen[key]
        seen[key] = k + 1
        if k < count:
            planned = first[key] + k * PERIOD
            b = int((planned - t0) // block)
            if b not in skip:
                (scraped if b % 2 else quiet).append(t - planned)
    return quiet, scraped


async def _scraper(url: str, times: list[float]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench._scraper", url, json.dumps(times),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def steady_scrape(ctx: Ctx) -> dict[str, Any]:
    """Steady load with and without scrapes of ``/metrics``, in the same run."""
    e: Any = ctx.engine
    if not hasattr(e, "serve_metrics"):
        raise Unsupported("steady-scrape needs an engine serving /metrics (the kernel)")
    n = ctx.n
    block, blocks = _blocks(ctx.duration)
    count = round(block * blocks / PERIOD)
    per_job = await ctx.calibrate(
        lambda k: e.add_interval(k, 3600.0, time.monotonic() + 7200, None)
    )
    # After the calibration: its throw-away jobs would stay in the metrics (series of
    # removed jobs are kept, being cumulative) and inflate the bytes per job.
    url = await e.serve_metrics()
    t0 = ctx.first_fire(per_job)
    first = array("d", (t0 + i * PERIOD / n for i in range(n)))
    last_offset = (count - 1) * PERIOD
    for k in range(n):
        e.add_interval(k, PERIOD, first[k], first[k] + last_offset)
    # The set-up's allocations (n jobs, their series) would otherwise trigger a full
    # collection a few seconds into the window (25 ms of CPU at 10k jobs on an idle
    # machine, 75 ms under this load), always in the first block, a quiet one: it made
    # quiet blocks look worse than scraped ones. Collected here, before the first fire.
    gc.collect()
    metrics: dict[str, Any] = {"rate_per_s": n / PERIOD, "block_s": block, "blocks": blocks}
    overran(ctx, t0, metrics)
    times = [
        t0 + b * block + s + SCRAPE_OFFSET
        for b in range(1, blocks, 2)
        for s in range(int(block))
    ]
    scraper = await _scraper(url, times)
    end = t0 + count * PERIOD
    cutoff = end + ctx.drain
    with LoopStalls(asyncio.get_running_loop()) as stalls:
        used, m, fires = await wait_window(t0, n * count, cutoff, min_end=times[-1] + 0.1)
        out, err = await asyncio.wait_for(scraper.communicate(), 60)
    if scraper.returncode != 0:
        raise RuntimeError(f"the scraper failed: {err.decode().strip()[-500:]}")
    record = json.loads(out)
    keys, fired = recorder.keys[:m], recorder.times[:m]
    metrics.update(summarize(match_fires(keys, fired, first, PERIOD, count, cutoff)))
    quiet, scraped = _by_block(keys, fired, first, count, t0, block, cutoff)
    for name, lateness in (("quiet", quiet), ("scraped", scraped)):
        metrics[f"lateness_{name}_ms"] = summarize(Match(len(lateness), lateness, 0, 0))[
            "lateness_ms"
        ]
    # The same without the blocks a full collection delayed: such a pass (every tracked
    # object of the process; 70-130 ms of CPU at 10k jobs under load) comes every ~8 s at
    # 10k fires/s with or without scrapes, and sets the p99 of whichever block it lands
    # in. A block counts as delayed when a pass ran in it or in the last CATCH_UP s before
    # it (the backlog it left is still being started).
    hit = frozenset(
        b
        for b in range(blocks)
        for start, stop in stalls.full
        if start < t0 + (b + 1) * block and stop > t0 + b * block - CATCH_UP
    )
    metrics["blocks_with_full_gc"] = sorted(hit)
    quiet, scraped = _by_block(keys, fired, first, count, t0, block, cutoff, hit)
    for name, lateness in (("quiet", quiet), ("scraped", scraped)):
        metrics[f"lateness_{name}_without_full_gc_ms"] = (
            summarize(Match(len(lateness), lateness, 0, 0))["lateness_ms"] if lateness else None
        )
    metrics["cpu_s_per_1k_fires"] = used.cpu / fires * 1000 if fires else None
    scrapes = record["scrapes"]
    metrics["scrapes"] = []
    for start, done, size, status in scrapes:
        wall, cpu, own = stalls.longest(start, done)
        metrics["scrapes"].append(
            {
                "wall_ms": (done - start) * 1000,
                "bytes": size,
                "status": status,
                "loop_stall_ms": wall * 1000,
                "loop_stall_cpu_ms": cpu * 1000,
                "loop_stall_cpu_without_gc_ms": own * 1000,
                "gc_cpu_ms": stalls.collected(start, done) * 1000,
            }
        )
    metrics["scrapes_skipped"] = record["skipped"]
    ok = [s for s in metrics["scrapes"] if s["status"] == 200]
    metrics["exposition_bytes_per_job"] = median(s["bytes"] for s in ok) / n if ok else None
    for kind in ("", "_cpu", "_cpu_without_gc"):
        metrics[f"loop_stall{kind}_per_scrape_ms"] = _spread(
            [s[f"loop_stall{kind}_ms"] for s in ok]
        )
    metrics["scrape_wall_ms"] = _spread([s["wall_ms"] for s in ok])
    # The same measures without scrapes: the longest iteration of each quiet second.
    quiet_stalls = [
        stalls.longest(w, w + 1.0)
        for w in (t0 + b * block + s for b in range(0, blocks, 2) for s in range(int(block)))
    ]
    for i, kind in enumerate(("", "_cpu", "_cpu_without_gc")):
        metrics[f"loop_stall{kind}_quiet_second_ms"] = _spread([x[i] * 1000 for x in quiet_stalls])
    full: dict[str, list[float]] = {"quiet": [], "scraped": []}
    for began, used, generation in stalls.collections:
        b = int((began - t0) // block)
        if generation == 2 and 0 <= b < blocks:
            full["scraped" if b % 2 else "quiet"].append(used * 1000)
    # Full collections (every tracked object of the process) in each kind of block: one
    # such pass is tens of ms and sets a block's p99 by itself, wherever it falls.
    metrics["gc_full_passes_ms"] = full
    metrics["gc_passes"] = [
        [round(began - t0, 4), round(used * 1000, 2), generation]
        for began, used, generation in stalls.collections
    ]
    spill = max((done for _, done, _, _ in scrapes), default=t0) - (t0 + blocks * block)
    if spill > 0:
        ctx.notes.append(f"the last scrape ended {spill:.1f} s after the window")
    return metrics


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": median(values), "max": max(values)}
