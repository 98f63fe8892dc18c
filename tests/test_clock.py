"""The real clock's adapter to the event loop (asyncio and uvloop)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC

import pytest

from kernel.clock import RealClock


def test_real_clock_gives_aware_utc_wall_time_and_monotonic_time() -> None:
    clock = RealClock()
    assert clock.now().tzinfo is UTC
    a = clock.monotonic()
    assert clock.monotonic() >= a


def _never_early(loop_factory: object) -> list[float]:
    """Arm timers a fraction of a millisecond ahead; return how late each fired (s)."""

    async def main() -> list[float]:
        clock = RealClock()
        lateness: list[float] = []
        for offset in (0.0002, 0.0005, 0.0009, 0.0015):
            done = asyncio.Event()
            deadline = clock.monotonic() + offset

            def fire(deadline: float = deadline, done: asyncio.Event = done) -> None:
                lateness.append(time.monotonic() - deadline)
                done.set()

            clock.call_at(deadline, fire)
            await asyncio.wait_for(done.wait(), 5)
        return lateness

    if loop_factory is None:
        return asyncio.run(main())
    return loop_factory(main())  # type: ignore[operator, no-any-return]


def test_timers_never_fire_before_their_deadline_on_asyncio() -> None:
    assert all(late >= 0 for late in _never_early(None))


def test_timers_never_fire_before_their_deadline_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")  # in the test extra; absent only off CI
    # uvloop's millisecond timers fire up to 1 ms early unless the clock rounds up, and a
    # kernel re-arming for the same deadline would then spin.
    assert all(late >= 0 for late in _never_early(uvloop.run))
