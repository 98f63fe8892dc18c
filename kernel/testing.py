"""Test support: a virtual clock, so time tests never sleep and assert exact times.

``VirtualClock`` is a :class:`kernel.clock.Clock` whose time only moves when a test says
so. ``await clock.advance(delta)`` moves time forward to each timer that falls due in
order, lets everything that timer started run until it blocks again (including runs
that only wait on this clock, and work in worker threads), and returns once time has
reached ``now + delta`` and the loop is quiet. ``clock.jump(delta)`` steps only the wall
clock, as NTP or a suspend would, and runs nothing; ``clock.stall(delta)`` moves both
clocks without running anything, as a blocked loop would see it. With ``autojump=True``
time also leaps to the next timer by itself whenever every task is blocked (trio's
``MockClock(autojump_threshold=0)``), so ``await clock.sleep(3600)`` returns at once.

"Quiet" is exact on the loop this module provides (:func:`new_event_loop`, a plain
asyncio selector loop whose selector reports when the loop is about to block with
nothing to run: every task waits on a timer, a thread or I/O). Run tests on it, e.g.
with anyio's pytest plugin::

    @pytest.fixture
    def anyio_backend():
        return ("asyncio", {"loop_factory": kernel.testing.new_event_loop})

On any other loop ``settle`` can only let the loop run a fixed number of passes
(``BLIND_PASSES``) after the last timer it fired, which is enough for the kernel's own
chains of callbacks but not a guarantee; autojump needs this module's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import selectors
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ("BLIND_PASSES", "IdleWatch", "VirtualClock", "WatchedEventLoop", "new_event_loop")

# Loop passes settle() allows on a loop that cannot say when it is idle.
BLIND_PASSES = 50
# Timers due within this many seconds of "now" count as due: wall time has microsecond
# resolution, and deadlines computed from wall times carry float noise below that.
_EPSILON = 1e-6


class IdleWatch(selectors.BaseSelector):
    """A selector that calls its idle hooks when the loop is about to block.

    asyncio asks its selector to wait with a timeout of 0 while callbacks are ready, and
    with a longer one (or none) only when nothing is left to run. At that moment, and
    only if no I/O is ready either, the hooks are called in order until one answers True
    (it scheduled work with ``loop.call_soon``, which the loop then runs instead of
    blocking). Hooks run on the loop thread.
    """

    def __init__(self) -> None:
        self._inner = selectors.DefaultSelector()
        self.hooks: list[Callable[[], bool]] = []

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:
            return self._inner.select(timeout)
        ready = self._inner.select(0)
        if ready or not self.hooks:
            return ready or self._inner.select(timeout)
        for hook in list(self.hooks):
            if hook():
                return []
        return self._inner.select(timeout)

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


class WatchedEventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop with an :class:`IdleWatch` (``loop.idle_watch``)."""

    def __init__(self) -> None:
        self.idle_watch = IdleWatch()
        super().__init__(self.idle_watch)


def new_event_loop() -> WatchedEventLoop:
    """A loop on which :class:`VirtualClock` knows exactly when everything is blocked."""
    return WatchedEventLoop()


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
    """A clock that moves only when told to (or, with ``autojump``, whenever every task
    is blocked). Wall time starts at ``start`` (aware).

    ``advance`` waits for work in worker threads before it moves time on, unless
    ``wait_for_threads`` is False.
    """

    def __init__(
        self,
        start: datetime,
        *,
        monotonic_start: float = 0.0,
        wait_for_threads: bool = True,
        autojump: bool = False,
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
        self.autojump = autojump
        self._jumping_on: IdleWatch | None = None

    # -- Clock protocol ------------------------------------------------------------
    def now(self) -> datetime:
        elapsed = timedelta(microseconds=round((self._mono - self._mono_start) * 1e6))
        return self._wall_start + elapsed + self._wall_shift

    def monotonic(self) -> float:
        return self._mono

    def call_at(self, deadline: float, callback: Callable[[], object]) -> _VirtualTimer:
        if self.autojump and self._jumping_on is None:
            self._start_autojump()
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
        """Run due timers and let the loop run until every task is blocked (on this
        clock, a thread or I/O), waiting for worker threads unless ``wait_for_threads``
        is False."""
        watch = _idle_watch()
        if watch is None:
            await self._settle_blind()
            return
        while True:
            await _idle(watch)
            if self._fire_due():
                continue
            if not self._wait_for_threads_needed():
                return
            await self._threads_done()

    # -- internals -----------------------------------------------------------------
    async def _settle_blind(self) -> None:
        quiet = 0
        while quiet < BLIND_PASSES:
            await asyncio.sleep(0)
            if self._fire_due():
                quiet = 0
            elif self._wait_for_threads_needed():
                await self._threads_done()
                quiet = 0
            else:
                quiet += 1

    def _wait_for_threads_needed(self) -> bool:
        return bool(self._external) and self.wait_for_threads

    async def _threads_done(self) -> None:
        self._external_idle = asyncio.Event()
        if self._external:
            await self._external_idle.wait()
        self._external_idle = None

    def _start_autojump(self) -> None:
        watch = _idle_watch()
        if watch is None:
            raise RuntimeError(
                "VirtualClock(autojump=True) needs the loop of kernel.testing.new_event_loop(), "
                "which tells the clock when every task is blocked"
            )
        loop = asyncio.get_running_loop()

        def jump() -> bool:
            if self._external:
                return False  # a worker thread will wake the loop; time waits for it
            timer = self._peek()
            if timer is None:
                return False
            self._mono = max(self._mono, timer.deadline)
            loop.call_soon(self._fire_due)
            return True

        watch.hooks.append(jump)
        self._jumping_on = watch

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


def _idle_watch() -> IdleWatch | None:
    watch = getattr(asyncio.get_running_loop(), "idle_watch", None)
    return watch if isinstance(watch, IdleWatch) else None


async def _idle(watch: IdleWatch) -> None:
    """Return once the loop has nothing left to run (every task is blocked)."""
    loop = asyncio.get_running_loop()
    idle: asyncio.Future[None] = loop.create_future()

    def hook() -> bool:
        watch.hooks.remove(hook)
        if not idle.done():
            idle.set_result(None)
        return True

    watch.hooks.insert(0, hook)  # before an autojump: time moves only once waiters woke
    try:
        await idle
    finally:
        if hook in watch.hooks:
            watch.hooks.remove(hook)
