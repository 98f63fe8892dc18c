"""kernel.testing.VirtualClock: exact quiescence on its own loop, autojump, thread work,
and what it can and cannot do on a loop it did not create."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from kernel.testing import BLIND_PASSES, VirtualClock

T0 = datetime(2024, 1, 1, tzinfo=UTC)


async def _hops(n: int, done: list[int]) -> None:
    for _ in range(n):
        await asyncio.sleep(0)
    done.append(n)


@pytest.mark.parametrize("hops", [1, BLIND_PASSES * 4], ids=["one-hop", "long-chain"])
async def test_settle_returns_only_when_every_task_is_blocked(hops: int) -> None:
    clock = VirtualClock(T0)
    done: list[int] = []
    task = asyncio.get_running_loop().create_task(_hops(hops, done))
    await clock.settle()
    assert done == [hops]
    await task


async def test_advance_runs_timers_in_order_at_their_exact_times() -> None:
    clock = VirtualClock(T0)
    seen: list[tuple[str, float, datetime]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        seen.append((name, clock.monotonic(), clock.now()))

    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(sleeper(n, s)) for n, s in (("b", 20), ("a", 10), ("c", 30))]
    await clock.advance(25)
    assert seen == [("a", 10, T0 + timedelta(seconds=10)), ("b", 20, T0 + timedelta(seconds=20))]
    assert clock.monotonic() == 25
    await clock.advance(5)
    assert [s[0] for s in seen] == ["a", "b", "c"]
    await asyncio.gather(*tasks)


async def test_autojump_leaps_to_the_next_timer_when_every_task_is_blocked() -> None:
    clock = VirtualClock(T0, autojump=True)
    order: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        order.append((name, clock.monotonic()))

    await asyncio.gather(sleeper("day", 86400), sleeper("hour", 3600), sleeper("minute", 60))
    assert order == [("minute", 60), ("hour", 3600), ("day", 86400)]
    assert clock.now() == T0 + timedelta(days=1)


async def test_autojump_waits_for_work_in_worker_threads() -> None:
    clock = VirtualClock(T0, autojump=True)
    release = threading.Event()
    finished_at: list[float] = []

    def blocking() -> None:
        release.wait(10)

    async def in_thread() -> None:
        with clock.external_work():
            await asyncio.to_thread(blocking)
        finished_at.append(clock.monotonic())

    async def sleeper() -> None:
        await clock.sleep(100)
        finished_at.append(clock.monotonic())

    loop = asyncio.get_running_loop()
    threaded = loop.create_task(in_thread())
    sleeping = loop.create_task(sleeper())
    await asyncio.sleep(0.05)  # real time: the thread is still blocked
    assert finished_at == []  # time did not leap while the thread worked
    release.set()
    await asyncio.gather(threaded, sleeping)
    assert finished_at == [0.0, 100.0]


def test_on_a_loop_it_did_not_create_settle_runs_short_chains_and_autojump_is_refused() -> None:
    async def main() -> None:
        clock = VirtualClock(T0)
        done: list[int] = []
        task = asyncio.get_running_loop().create_task(_hops(BLIND_PASSES // 2, done))
        await clock.settle()
        assert done == [BLIND_PASSES // 2]
        await task
        jumping = VirtualClock(T0, autojump=True)
        with pytest.raises(RuntimeError, match=r"needs the loop of kernel\.testing"):
            await jumping.sleep(1)

    asyncio.run(main())


@pytest.mark.parametrize(
    ("work", "limit", "expected"),
    [
        pytest.param(5.0, 10.0, "done", id="answer-in-time"),
        pytest.param(15.0, 10.0, "TimeoutError at 10", id="too-slow"),
    ],
)
async def test_wait_at_most_measures_on_the_injected_clock(
    work: float, limit: float, expected: str
) -> None:
    from kernel.clock import wait_at_most

    clock = VirtualClock(T0)

    async def slow() -> str:
        await clock.sleep(work)
        return "done"

    outcome: list[str] = []

    async def waiter() -> None:
        try:
            outcome.append(await wait_at_most(clock, slow(), limit))
        except TimeoutError:
            outcome.append(f"TimeoutError at {clock.monotonic():g}")

    task = asyncio.get_running_loop().create_task(waiter())
    await clock.advance(20)
    await task
    assert outcome == [expected]


async def test_wait_at_most_lets_a_cancellation_from_elsewhere_through() -> None:
    from kernel.clock import wait_at_most

    clock = VirtualClock(T0)
    task = asyncio.get_running_loop().create_task(
        wait_at_most(clock, asyncio.Event().wait(), 10.0))
    await clock.advance(5)
    task.cancel()
    await clock.advance(10)
    with pytest.raises(asyncio.CancelledError):
        await task
