"""Test support: a virtual clock, so time tests never sleep and assert exact times.

``VirtualClock`` is a :class:`kernel.clock.Clock` whose time only moves when a test says
so. ``await clock.advance(delta)`` moves time forward to each timer that falls due in
order, lets everything that timer started run until it blocks again (including runs
that only wait on this clock, and work in worker threads), and returns once time has
reached ``now + delta`` and the loop is quiet. ``clock.jump(delta)`` steps only the wall
clock, as NTP or a suspend would, and runs nothing; ``clock.stall(delta)`` moves both
clocks without running anything, as a blocked loop would see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

__all__ = ("VirtualClock",)

# How many consecutive quiet passes of the loop count as "everything is blocked".
_QUIET_PASSES = 3
# Loops without a readable ready queue (uvloop) get this many passes instead.
_BLIND_PASSES = 50
# Timers due within this many seconds of "now" count as due: wall time has microsecond
# resolution, and deadlines computed from wall times carry float noise below that.
_EPSILON = 1e-6


class _VirtualTimer:
    __slots__ = ("callback", "cancelled", "deadline", "seq")

    def __init__(self, deadline: float, seq: int, callback: Callable[[], object]) -> None:
        self.deadline = deadline
        self.seq = seq
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: _VirtualTimer) -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)


class VirtualClock:
    """A clock that moves only when told to. Wall time starts at ``start`` (aware).

    ``advance`` waits for work in worker threads before it moves time on, unless
    ``wait_for_threads`` is False.
    """

    def __init__(
        self, start: datetime, *, monotonic_start: float = 0.0, wait_for_threads: bool = True
    ) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(
                f"start {start!r} is naive; pass an aware datetime, e.g. "
                "datetime(2024, 1, 1, tzinfo=timezone.utc)"
            )
        self._wall_start = start.astimezone(UTC)
        self._mono_start = monotonic_start
        self._mono = monotonic_start
        self._wall_shift = timedelta(0)
        self._timers: list[_VirtualTimer] = []
        self._seq = itertools.count()
        self._external = 0
        self._external_idle: asyncio.Event | None = None
        # False lets time move on while worker threads still run (to test thread timeouts).
        self.wait_for_threads = wait_for_threads

    # -- Clock protocol ------------------------------------------------------------
    def now(self) -> datetime:
        elapsed = timedelta(microseconds=round((self._mono - self._mono_start) * 1e6))
        return self._wall_start + elapsed + self._wall_shift

    def monotonic(self) -> float:
        return self._mono

    def call_at(self, deadline: float, callback: Callable[[], object]) -> _VirtualTimer:
        timer = _VirtualTimer(deadline, next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_at(self._mono + max(0.0, seconds), wake)
        try:
            await future
        finally:
            timer.cancel()

    @contextlib.contextmanager
    def external_work(self) -> Iterator[None]:
        self._external += 1
        try:
            yield
        finally:
            self._external -= 1
            if self._external == 0 and self._external_idle is not None:
                self._external_idle.set()

    # -- moving time ---------------------------------------------------------------
    async def advance(self, delta: timedelta | float) -> None:
        """Move time forward by ``delta``, running everything that falls due on the way."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError(
                f"advance({seconds}) goes backwards; use jump() to step the wall clock"
            )
        target = self._mono + seconds
        await self.settle()
        while True:
            timer = self._peek()
            if timer is None or timer.deadline > target + _EPSILON:
                break
            self._mono = max(self._mono, timer.deadline)
            await self.settle()
        self._mono = max(self._mono, target)
        await self.settle()

    def stall(self, delta: timedelta | float) -> None:
        """Move time forward by ``delta`` without running anything, as a blocked loop or
        a suspended process would see it; the next ``advance``/``settle`` runs what fell due."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError(f"stall({seconds}) goes backwards; use jump() to step the wall clock")
        self._mono += seconds

    def jump(self, delta: timedelta | float) -> None:
        """Step the wall clock by ``delta`` (either sign) without running anything."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        self._wall_shift += step

    async def settle(self) -> None:
        """Run due timers and let the loop run until every task is blocked."""
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)
        quiet = 0
        passes = _QUIET_PASSES if ready is not None else _BLIND_PASSES
        while quiet < passes:
            await asyncio.sleep(0)
            if self._fire_due():
                quiet = 0
                continue
            if self._external and self.wait_for_threads:
                self._external_idle = asyncio.Event()
                if self._external:
                    await self._external_idle.wait()
                self._external_idle = None
                quiet = 0
                continue
            if ready:
                quiet = 0
                continue
            quiet += 1

    # -- internals -----------------------------------------------------------------
    def _peek(self) -> _VirtualTimer | None:
        timers = self._timers
        while timers and timers[0].cancelled:
            heapq.heappop(timers)
        return timers[0] if timers else None

    def _fire_due(self) -> bool:
        fired = False
        while True:
            timer = self._peek()
            if timer is None or timer.deadline > self._mono + _EPSILON:
                return fired
            heapq.heappop(self._timers)
            fired = True
            timer.callback()
