"""The job body every engine runs, and the recorder it writes its start times to.

Every engine, the floor included, runs this same coroutine function for every fire, so
lateness is measured the same way everywhere: the body's first act is to read the
monotonic clock, and the harness compares that with the fire time the scenario planned.
"""

from __future__ import annotations

import asyncio
from array import array
from time import monotonic

__all__ = ("Recorder", "job", "recorder")


class Recorder:
    """Start times of fires, in the order the bodies ran: parallel arrays of key and time."""

    __slots__ = ("done", "keys", "target", "times")

    def __init__(self) -> None:
        self.keys = array("q")
        self.times = array("d")
        self.target = -1
        self.done: asyncio.Future[None] | None = None

    def expect(self, count: int) -> asyncio.Future[None]:
        """A future that resolves once ``count`` fires in total have been recorded."""
        self.done = asyncio.get_running_loop().create_future()
        self.target = count
        if len(self.times) >= count:
            self.done.set_result(None)
        return self.done

    def _reached(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(None)


recorder = Recorder()


async def job(key: int) -> None:
    """The benchmark's job: note when this fire started (monotonic seconds) and for which job."""
    now = monotonic()
    rec = recorder
    rec.keys.append(key)
    rec.times.append(now)
    if len(rec.times) == rec.target:
        rec._reached()
