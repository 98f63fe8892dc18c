"""SchedulerService: a :class:`kernel.Kernel` on its own event-loop thread, for synchronous code.

A Flask or Django process has no event loop of its own to lend the kernel, so the service
starts one in a daemon thread and hands every call that must run on it across with
``asyncio.run_coroutine_threadsafe``. The kernel's own ``add_*``/``remove_job``/``get_jobs``
are thread-safe, so those are called directly.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from kernel import Job, JobDefaults, Kernel

__all__ = ("SchedulerService",)

_T = TypeVar("_T")
_log = logging.getLogger("scheduler.facade")


def _job_callable(func: Callable[..., Any]) -> Callable[..., Any]:
    # The seed's task functions (lark_service.scheduler.tasks) are dual-use wrappers; the
    # kernel should run their coroutine function on its loop, not the blocking wrapper.
    inner = getattr(func, "__lark_async__", None)
    return inner if callable(inner) else func


class SchedulerService:
    """The seed's scheduler object: ``add_interval_job``, ``add_cron_job``, ``remove_job``,
    ``get_jobs``, ``start()`` and ``shutdown()``, safe to call from any thread.

    Jobs may be added before :meth:`start`; they begin when it starts (an interval job first
    runs one interval after start-up). Options not given take the seed's defaults:
    ``timezone="Asia/Shanghai"``, ``coalesce=True``, ``max_instances=1``,
    ``misfire_grace_time=60``.
    """

    def __init__(
        self,
        *,
        timezone: str = "Asia/Shanghai",
        job_defaults: JobDefaults | None = None,
        kernel: Kernel | None = None,
    ) -> None:
        self.kernel = (
            kernel if kernel is not None else Kernel(timezone=timezone, job_defaults=job_defaults)
        )
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`shutdown`."""
        return self.kernel.running

    def start(self) -> None:
        """Start the loop thread and the kernel; returns once the kernel runs. Idempotent."""
        with self._lock:
            if self._thread is not None:
                return
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            thread = threading.Thread(
                target=self._run_loop, args=(loop, ready), name="scheduler-loop", daemon=True
            )
            thread.start()
            ready.wait()
            self._loop, self._thread = loop, thread
            try:
                self._call(self.kernel.start())
            except BaseException:
                self._stop_loop()
                raise
            # An application that never calls shutdown() still stops cleanly at exit.
            atexit.register(self.shutdown, wait=False)

    def shutdown(self, wait: bool = True, grace: float | None = None) -> None:
        """Stop firing; with ``wait``, let running jobs finish (at most ``grace`` seconds,
        then cancel them); stop the loop thread. Idempotent."""
        with self._lock:
            if self._thread is None:
                return
            atexit.unregister(self.shutdown)
            try:
                self._call(self.kernel.shutdown(wait=wait, grace=grace))
            finally:
                self._stop_loop()

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the scheduler is not started; call scheduler_service.start()")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "this call blocks until the scheduler's loop answers, so it cannot be made "
                "from a job running on that loop; use the kernel's own async API there"
            )
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coro, loop)
        return future.result()

    # -- jobs ------------------------------------------------------------------------------

    def add_interval_job(
        self,
        func: Callable[..., Any],
        *,
        weeks: float = 0,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        job_id: str | None = None,
        **options: Any,
    ) -> Job:
        """Run ``func`` every interval (first one interval after now, or after start-up).

        ``options``: ``name``, ``args``, ``kwargs``, ``coalesce``, ``max_instances``,
        ``misfire_grace_time``, ``timeout``, ``start_date``, ``end_date``, ``jitter``,
        ``replace_existing``.
        """
        return self.kernel.add_interval_job(
            _job_callable(func), weeks=weeks, days=days, hours=hours, minutes=minutes,
            seconds=seconds, job_id=job_id, **options,
        )

    def add_cron_job(
        self,
        func: Callable[..., Any],
        cron_expression: str,
        *,
        job_id: str | None = None,
        **options: Any,
    ) -> Job:
        """Run ``func`` at the times a five-field cron expression names (``minute hour day
        month day_of_week``), in the scheduler's timezone unless ``timezone=`` is given."""
        return self.kernel.add_cron_job(
            _job_callable(func), cron_expression, job_id=job_id, **options
        )

    def remove_job(self, job_id: str) -> None:
        """Unregister a job (a run in progress finishes); ``JobLookupError`` if unknown."""
        self.kernel.remove_job(job_id)
        _log.info("Removed job %s", job_id)

    def get_jobs(self) -> list[Job]:
        """Every registered job (``.id``, ``.name``, ``.next_run_time``, ...)."""
        return self.kernel.get_jobs()

    def get_job(self, job_id: str) -> Job:
        """One job; ``JobLookupError`` if unknown."""
        return self.kernel.get_job(job_id)

    def pause_job(self, job_id: str) -> Job:
        """Stop firing a job until :meth:`resume_job`."""
        return self.kernel.pause_job(job_id)

    def resume_job(self, job_id: str) -> Job:
        """Fire a paused job again."""
        return self.kernel.resume_job(job_id)

    def run_job(self, job_id: str) -> str:
        """Run a job now, outside its schedule (the scheduler must be started); its run id."""

        async def run() -> str:
            return self.kernel.run_job(job_id)

        return self._call(run())
