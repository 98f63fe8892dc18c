"""Micro-benchmark of kernel.engine.wheel.TimerWheel against heapq and asyncio's loop.call_at.

Not a test. Run from the repository root:

    python -m bench.wheel_micro               # default N = 100k, prints a markdown table
    python -m bench.wheel_micro --sweep       # also sweep tick and wheel_size
    python -m bench.wheel_micro --n 10000 --repeat 1

Figures (µs of process CPU time around the operation loop, best of --repeat):
insert, cancel: per operation with N pending, deadlines spread over an hour;
expire/entry: draining those N entries by a driver that wakes at each next_deadline() 50 µs
late, as the kernel does (cascades included); steady fire: a full fire cycle (expire +
re-insert one interval later) with N jobs of 1 s interval, phases spread evenly;
bytes/entry: tracemalloc growth for N pending entries, plus the 24-byte deadline float.
The heapq rows are inlined loops (no method calls), so they flatter heapq a little; the
asyncio "expire" figure is the loop's own cost to pop and run one due timer.
The last line runs a real asyncio loop: N jobs each re-armed with its own call_at (the
benchmark's floor) against one call_at that drives the wheel, same no-op body.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import heapq
import itertools
import random
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from kernel.engine.wheel import TimerWheel

START = 1000.0
LATE = 50e-6  # how late the driver wakes after next_deadline(): a loop's timer slack


class Job:
    """Stands in for the kernel's job record: the item the wheel carries."""

    __slots__ = ("interval", "next")

    def __init__(self, next_at: float, interval: float) -> None:
        self.next = next_at
        self.interval = interval


def best(repeat: int, run: Callable[[], float]) -> float:
    results = []
    for _ in range(repeat):
        gc.collect()
        results.append(run())
    return min(results)


def spread(n: int, seconds: float, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [START + rng.random() * seconds for _ in range(n)]


# --- the wheel -----------------------------------------------------------------------------


def wheel_insert(n: int, tick: float, size: int) -> float:
    deadlines = spread(n, 3600.0)
    wheel: TimerWheel[int] = TimerWheel(START, tick, size)
    insert = wheel.insert
    t0 = time.process_time()
    for d in deadlines:
        insert(d, 0)
    return (time.process_time() - t0) / n


def wheel_cancel(n: int, tick: float, size: int) -> float:
    wheel: TimerWheel[int] = TimerWheel(START, tick, size)
    entries = [wheel.insert(d, 0) for d in spread(n, 3600.0)]
    random.Random(2).shuffle(entries)
    cancel = wheel.cancel
    t0 = time.process_time()
    for e in entries:
        cancel(e)
    return (time.process_time() - t0) / n


def wheel_expire(n: int, tick: float, size: int, seconds: float = 3600.0) -> float:
    wheel: TimerWheel[int] = TimerWheel(START, tick, size)
    for d in spread(n, seconds):
        wheel.insert(d, 0)
    next_deadline = wheel.next_deadline
    expire = wheel.expire
    fired = 0
    t0 = time.process_time()
    while (nd := next_deadline()) is not None:
        fired += len(expire(nd + LATE))
    elapsed = time.process_time() - t0
    assert fired == n
    return elapsed / n


def wheel_steady(n: int, tick: float, size: int, seconds: float = 5.0) -> float:
    """µs per fire for N jobs of interval 1 s: expire, then re-insert at next + interval."""
    wheel: TimerWheel[Job] = TimerWheel(START, tick, size)
    for i in range(n):
        job = Job(START + i / n, 1.0)
        wheel.insert(job.next, job)
    next_deadline = wheel.next_deadline
    expire = wheel.expire
    insert = wheel.insert
    end = START + seconds
    fired = 0
    now = START
    t0 = time.process_time()
    while (nd := next_deadline()) is not None and nd <= end:
        now = max(now, nd + LATE)
        for job in expire(now):
            job.next += job.interval
            insert(job.next, job)
            fired += 1
    return (time.process_time() - t0) / fired


def wheel_bytes(n: int, tick: float, size: int) -> float:
    deadlines = spread(n, 3600.0)
    items = list(range(n))
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    wheel: TimerWheel[int] = TimerWheel(START, tick, size)
    for d, item in zip(deadlines, items, strict=True):
        wheel.insert(d, item)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    # The deadline floats are the caller's, but the wheel keeps them alive: count them.
    return used / n + 24


# --- heapq: (deadline, seq, item) tuples, lazy cancel --------------------------------------


def heap_insert(n: int) -> float:
    deadlines = spread(n, 3600.0)
    heap: list[Any] = []
    push = heapq.heappush
    count = itertools.count()
    t0 = time.process_time()
    for d in deadlines:
        push(heap, [d, next(count), 0])
    return (time.process_time() - t0) / n


def heap_cancel(n: int) -> float:
    heap: list[Any] = []
    count = itertools.count()
    entries: list[list[Any]] = []
    for d in spread(n, 3600.0):
        e: list[Any] = [d, next(count), 0]
        heapq.heappush(heap, e)
        entries.append(e)
    random.Random(2).shuffle(entries)
    t0 = time.process_time()
    for cancelled in entries:
        cancelled[2] = None  # lazy: a cancelled entry is skipped when popped
    return (time.process_time() - t0) / n


def heap_expire(n: int, seconds: float = 3600.0) -> float:
    heap: list[Any] = []
    count = itertools.count()
    for d in spread(n, seconds):
        heapq.heappush(heap, [d, next(count), 0])
    pop = heapq.heappop
    fired = 0
    t0 = time.process_time()
    while heap:
        now = heap[0][0] + LATE
        out = []
        while heap and heap[0][0] <= now:
            e = pop(heap)
            if e[2] is not None:
                out.append(e[2])
        fired += len(out)
    elapsed = time.process_time() - t0
    assert fired == n
    return elapsed / n


def heap_steady(n: int, seconds: float = 5.0) -> float:
    heap: list[Any] = []
    count = itertools.count()
    for i in range(n):
        job = Job(START + i / n, 1.0)
        heapq.heappush(heap, (job.next, next(count), job))
    pop = heapq.heappop
    push = heapq.heappush
    end = START + seconds
    fired = 0
    now = START
    t0 = time.process_time()
    while heap and heap[0][0] <= end:
        now = max(now, heap[0][0] + LATE)
        out = []
        while heap and heap[0][0] <= now:
            out.append(pop(heap)[2])
        for job in out:
            job.next += job.interval
            push(heap, (job.next, next(count), job))
            fired += 1
    return (time.process_time() - t0) / fired


def heap_bytes(n: int) -> float:
    deadlines = spread(n, 3600.0)
    items = list(range(n))
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    heap: list[Any] = []
    count = itertools.count()
    for d, item in zip(deadlines, items, strict=True):
        heapq.heappush(heap, [d, next(count), item])
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used / n + 24


# --- asyncio: loop.call_at -----------------------------------------------------------------


def _noop() -> None:
    pass


def loop_call_at(n: int) -> tuple[float, float, float, float]:
    """(µs per call_at, per cancel, per fire, bytes per pending handle) on a fresh loop."""
    loop = asyncio.new_event_loop()
    try:
        base_t = loop.time() + 3600.0
        offsets = [d - START for d in spread(n, 3600.0)]
        call_at = loop.call_at
        t0 = time.process_time()
        handles = [call_at(base_t + o, _noop) for o in offsets]
        per_call_at = (time.process_time() - t0) / n
        random.Random(2).shuffle(handles)
        t0 = time.process_time()
        for h in handles:
            h.cancel()
        per_cancel = (time.process_time() - t0) / n
        handles.clear()
        loop.run_until_complete(asyncio.sleep(0))  # let the loop purge cancelled handles

        # Fire: N timers all due now; the loop pops and runs them (its own per-fire cost).
        now = loop.time()
        for o in offsets:
            call_at(now + o * 1e-9, _noop)
        t0 = time.process_time()
        loop.run_until_complete(asyncio.sleep(0.001))
        per_fire = (time.process_time() - t0) / n

        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        kept = [call_at(base_t + o, _noop) for o in offsets]
        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        for h in kept:
            h.cancel()
        return per_call_at, per_cancel, per_fire, used / n - 8  # minus the `kept` list slot
    finally:
        loop.close()


def loop_steady(jobs: int, seconds: float, engine: str, tick: float, size: int) -> float:
    """CPU µs per fire on a real asyncio loop: N jobs every 1 s, phases spread, no-op body.

    ``floor``: each job is its own ``loop.call_at`` that re-arms itself. ``wheel``: one
    ``call_at`` at ``next_deadline()``; on wake, expire, run the bodies, re-insert, re-arm.
    """
    loop = asyncio.new_event_loop()
    fired = 0

    def body() -> None:
        nonlocal fired
        fired += 1

    start = loop.time() + 0.05
    end = start + seconds
    done = loop.create_future()
    if engine == "floor":

        def make(first: float) -> Callable[[], None]:
            at = first

            def fire() -> None:
                nonlocal at
                body()
                at += 1.0
                if at < end:
                    loop.call_at(at, fire)

            return fire

        for i in range(jobs):
            loop.call_at(start + i / jobs, make(start + i / jobs))
    else:
        wheel: TimerWheel[Job] = TimerWheel(loop.time(), tick, size)
        for i in range(jobs):
            job = Job(start + i / jobs, 1.0)
            wheel.insert(job.next, job)

        def wake() -> None:
            for job in wheel.expire(loop.time()):
                body()
                job.next += job.interval
                wheel.insert(job.next, job)
            nd = wheel.next_deadline()
            if nd is not None and nd < end:
                loop.call_at(nd, wake)

        nd = wheel.next_deadline()
        assert nd is not None
        loop.call_at(nd, wake)
    loop.call_at(end, done.set_result, None)
    try:
        gc.collect()
        t0 = time.process_time()
        loop.run_until_complete(done)
        cpu = time.process_time() - t0
    finally:
        loop.close()
    return cpu / fired


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tick", type=float, default=None)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--loop-jobs", type=int, default=10_000)
    parser.add_argument("--loop-seconds", type=float, default=3.0)
    parser.add_argument("--sweep", action="store_true", help="sweep tick and wheel_size")
    args = parser.parse_args(argv)
    n, rep = args.n, args.repeat
    from kernel.engine import wheel as _wheel

    tick = args.tick if args.tick is not None else _wheel.DEFAULT_TICK
    size = args.size if args.size is not None else _wheel.DEFAULT_WHEEL_SIZE

    rows = [
        (
            f"TimerWheel(tick={tick}, size={size})",
            us(best(rep, lambda: wheel_insert(n, tick, size))),
            us(best(rep, lambda: wheel_cancel(n, tick, size))),
            us(best(rep, lambda: wheel_expire(n, tick, size))),
            us(best(rep, lambda: wheel_steady(n, tick, size))),
            f"{wheel_bytes(n, tick, size):.0f}",
        ),
        (
            "heapq (lazy cancel)",
            us(best(rep, lambda: heap_insert(n))),
            us(best(rep, lambda: heap_cancel(n))),
            us(best(rep, lambda: heap_expire(n))),
            us(best(rep, lambda: heap_steady(n))),
            f"{heap_bytes(n):.0f}",
        ),
    ]
    loop_runs = [loop_call_at(n) for _ in range(rep)]
    rows.append(
        (
            "asyncio loop.call_at",
            us(min(r[0] for r in loop_runs)),
            us(min(r[1] for r in loop_runs)),
            us(min(r[2] for r in loop_runs)) + " (loop fire)",
            "-",
            f"{min(r[3] for r in loop_runs):.0f}",
        )
    )
    jobs = args.loop_jobs
    floor = min(loop_steady(jobs, args.loop_seconds, "floor", tick, size) for _ in range(rep))
    driven = min(loop_steady(jobs, args.loop_seconds, "wheel", tick, size) for _ in range(rep))
    print(f"N = {n:,} pending entries, best of {rep}; µs per operation")
    print()
    print("| structure | insert µs | cancel µs | expire µs/entry | steady fire µs | bytes/entry |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")

    print()
    print(
        f"Real asyncio loop, {jobs:,} jobs every 1 s for {args.loop_seconds:g} s, no-op body: "
        f"floor (call_at per fire) {us(floor)} CPU µs/fire; one call_at driving the wheel "
        f"{us(driven)} CPU µs/fire ({driven / floor:.2f}x the floor)"
    )

    if args.sweep:
        print()
        print(
            "| tick | size | insert µs | expire µs/entry | steady µs/fire N | steady N/10 "
            "| bytes/entry |"
        )
        print("|---|---|---|---|---|---|---|")
        for sweep_tick in (0.0001, 0.0005, 0.001, 0.005):
            for sweep_size in (256, 1024, 4096, 16384):
                print(sweep_row(n, rep, sweep_tick, sweep_size), flush=True)


def sweep_row(n: int, rep: int, tick: float, size: int) -> str:
    return (
        f"| {tick} | {size} "
        f"| {us(best(rep, lambda: wheel_insert(n, tick, size)))} "
        f"| {us(best(rep, lambda: wheel_expire(n, tick, size)))} "
        f"| {us(best(rep, lambda: wheel_steady(n, tick, size)))} "
        f"| {us(best(rep, lambda: wheel_steady(n // 10, tick, size)))} "
        f"| {wheel_bytes(n, tick, size):.0f} |"
    )


if __name__ == "__main__":
    main()
