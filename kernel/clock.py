"""The clock the kernel runs on: wall time, monotonic time and timers.

Nothing else in ``kernel/`` reads the system clock; everything asks a :class:`Clock`.
:class:`RealClock` is the production clock; :class:`kernel.testing.VirtualClock` is the
one tests use, so time tests never sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Protocol, TypeVar

__all__ = ("Clock", "RealClock", "TimerHandle", "wait_at_most")

T = TypeVar("T")


class TimerHandle(Protocol):
    """A timer armed with :meth:`Clock.call_at`; ``cancel()`` disarms it."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Wall time (aware UTC datetimes), monotonic time (float seconds) and timers.

    Monotonic time never jumps; wall time may step (NTP, suspend). Timers are armed
    on monotonic time and run their callback on the event loop thread.
    """

    def now(self) -> datetime:
        """The wall time, as an aware UTC datetime."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never steps; safe to call from any thread."""
        ...

    def call_at(self, deadline: float, callback: Callable[[], object]) -> TimerHandle:
        """Run ``callback`` on the loop once ``monotonic() >= deadline``.

        Must be called from the event loop thread.
        """
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of monotonic time."""
        ...

    def external_work(self) -> contextlib.AbstractContextManager[None]:
        """Mark work that runs outside the event loop (a worker thread) as in progress.

        A virtual clock waits for such work before it moves time on; the real clock
        ignores it.
        """
        ...


class RealClock:
    """The system's clocks: ``time.time`` for wall time, ``time.monotonic`` for timers."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def call_at(self, deadline: float, callback: Callable[[], object]) -> TimerHandle:
        loop = asyncio.get_running_loop()
        if type(loop).__module__.startswith("uvloop"):
            return _UvTimer(loop, deadline, callback)
        # loop.time() may run on another monotonic source: translate.
        return loop.call_at(loop.time() + (deadline - time.monotonic()), callback)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    @contextlib.contextmanager
    def external_work(self) -> Iterator[None]:
        yield


class _UvTimer:
    """A timer on uvloop that never runs its callback before ``deadline``.

    libuv counts time in whole milliseconds read from a coarse clock
    (``CLOCK_MONOTONIC_COARSE`` where its tick is at most 1 ms) that lags
    ``time.monotonic()``, so its timers may fire a few milliseconds early. When that
    happens the timer arms itself again for what is left (at least a millisecond, so it
    never spins) instead of running the callback early.
    """

    __slots__ = ("_callback", "_deadline", "_handle", "_loop")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, deadline: float, callback: Callable[[], object]
    ) -> None:
        self._loop = loop
        self._deadline = deadline
        self._callback = callback
        self._handle = self._arm(deadline - time.monotonic())

    def _arm(self, delay: float) -> asyncio.TimerHandle | asyncio.Handle:
        return self._loop.call_later(math.ceil(max(delay, 0.0) * 1000) / 1000, self._fire)

    def _fire(self) -> None:
        left = self._deadline - time.monotonic()
        if left > 0:
            self._handle = self._arm(max(left, 0.001))
            return
        self._callback()

    def cancel(self) -> None:
        self._handle.cancel()


async def wait_at_most(
    clock: Clock,
    awaitable: Awaitable[T],
    seconds: float,
    timeout_error: Callable[[], BaseException] | None = None,
) -> T:
    """Await ``awaitable`` in the current task; once ``seconds`` of ``clock`` have passed
    first, cancel it and raise ``timeout_error()`` (``TimeoutError`` by default).

    ``asyncio.timeout`` on the injected clock instead of the loop's: the awaitable runs in
    the caller's task (no task of its own), and a cancellation that comes from elsewhere
    meanwhile still cancels the caller.
    """
    task = asyncio.current_task()
    assert task is not None, "wait_at_most must run in a task"
    cancelling = task.cancelling()
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = clock.call_at(clock.monotonic() + seconds, expire)
    try:
        return await awaitable
    except asyncio.CancelledError:
        if expired and task.uncancel() <= cancelling:
            raise (timeout_error or _timed_out(seconds))() from None
        raise
    finally:
        timer.cancel()


def _timed_out(seconds: float) -> Callable[[], TimeoutError]:
    return lambda: TimeoutError(f"no answer within {seconds:g} s")
