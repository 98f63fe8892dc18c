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
        loop_now = loop.time()
        now = time.monotonic()
        delay = deadline - now
        if type(loop).__module__.startswith("uvloop") and delay > 0:
            # uvloop's loop.time() is libuv's clock in whole milliseconds, up to 1 ms behind
            # time.monotonic() (the same source), and its timers have millisecond
            # resolution: count the delay from the loop's own now and round it up, or a
            # timer fires up to a millisecond early (measured: 3 % of timers) and a caller
            # that re-arms for the same deadline spins until it.
            lag = now - loop_now
            if 0.0 <= lag < 0.002:  # another source would be far off: then translate only
                delay += lag
            delay = math.ceil(delay * 1000) / 1000
        # loop.time() may run on another monotonic source: translate.
        return loop.call_at(loop_now + delay, callback)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    @contextlib.contextmanager
    def external_work(self) -> Iterator[None]:
        yield


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
