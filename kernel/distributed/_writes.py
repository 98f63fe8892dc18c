"""Write-through of a replica's own job changes to the ``jobs`` table.

``add_*``, ``remove_job``, ``pause_job``, ``resume_job`` and ``reschedule_job`` change the
local registry at once (possibly from another thread) and queue the row change here;
one writer task applies the queue in order, retrying with backoff on the kernel's clock
while the database is down, so a change is applied once it is back. ``versions`` holds
the newest row version this replica wrote or applied per job, and ``pending`` says which
jobs have writes not done yet: a notification about them is not applied over them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..clock import Clock, wait_at_most
from ._pg import UNAVAILABLE

__all__ = ("WriteThrough",)

log = logging.getLogger("scheduler.store")

Write = Callable[[], Awaitable[int]]  # returns the row's new version (0: no row)


class WriteThrough:
    """An ordered queue of row writes and the task that applies them (see the module doc)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.versions: dict[str, int] = {}
        self._pending: dict[str, int] = {}
        self._queue: asyncio.Queue[tuple[str, Write]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> None:
        """On the loop, before the replica starts: writes are accepted from now on."""
        self._queue = asyncio.Queue()
        self._loop = asyncio.get_running_loop()

    def close(self) -> None:
        self._loop = None

    def pending(self, job_id: str) -> bool:
        """Whether a write of this job is queued or in progress."""
        return bool(self._pending.get(job_id))

    def write(self, job_id: str, op: Write) -> None:
        """Queue ``op`` (thread-safe; dropped when the replica is not running)."""

        def enqueue() -> None:
            if self._queue is None:
                return
            self._pending[job_id] = self._pending.get(job_id, 0) + 1
            self._queue.put_nowait((job_id, op))

        loop = self._loop
        if loop is None:
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:  # called from another thread
            on_loop = False
        if on_loop:
            enqueue()
        else:
            loop.call_soon_threadsafe(enqueue)

    async def flush(self) -> None:
        """Wait until every queued write is done."""
        if self._queue is not None:
            await self._queue.join()

    async def drain(self, patience: float) -> None:
        """At shutdown: wait for the queued writes, at most ``patience`` seconds."""
        if self._queue is None:
            return
        try:
            await wait_at_most(self.clock, self._queue.join(), patience)
        except TimeoutError:
            log.error("%d job change(s) could not be stored before shutdown",
                      self._queue.qsize())

    async def run(self) -> None:
        """The writer task: apply the queue in order, forever."""
        queue = self._queue
        assert queue is not None
        while True:
            job_id, op = await queue.get()
            delay = 0.2
            try:
                while True:
                    try:
                        version = await op()
                        if version:
                            self.versions[job_id] = max(self.versions.get(job_id, 0), version)
                        break
                    except UNAVAILABLE:
                        # Kept in order and retried: the change is applied once it is back.
                        await self.clock.sleep(delay)
                        delay = min(delay * 2, 10.0)
                    except Exception:
                        log.exception("could not store the change of job %s", job_id)
                        break
            finally:
                left = self._pending.get(job_id, 1) - 1
                if left:
                    self._pending[job_id] = left
                else:
                    self._pending.pop(job_id, None)
                queue.task_done()
