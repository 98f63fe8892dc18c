"""The kernel: a registry of jobs, one timer wheel, and the job actors' run logic.

Concurrency contract: once started, the wheel and every job record are touched only on
the event loop thread. ``add_*``, ``remove_job``, ``pause_job``, ``resume_job`` and
``reschedule_job`` may be called from any thread: the registry is guarded by a lock and
the change is handed to the loop with ``call_soon_threadsafe``.

The kernel does not run a polling task: it arms one clock timer for the wheel's next
deadline (or for the wall-clock check while wall-clock jobs exist) and re-arms it only
when that deadline changes. Each fire is handed to its job's actor logic, which
applies misfire grace, coalescing and max_instances and starts a run task; an idle
job has no task at all (virtual actors).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, tzinfo
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._callables import callable_info, interval_trigger, shared_interval_trigger
from ._dispatch import DispatchMixin
from ._records import JobRecord
from ._runs import RunsMixin
from ._wheel import TimerWheel
from .clock import Clock, RealClock, TimerHandle
from .coordination import Coordinator
from .errors import (
    ConflictingJobIdError,
    InvalidJobError,
    JobLookupError,
)
from .events import Event, JobAdded, JobModified, JobRemoved
from .failures import FailureStore, MemoryFailureStore
from .job import Job, JobDefaults, JobOptions, validate_options
from .triggers import CronTrigger, DateTrigger, IntervalTrigger, Trigger, resolve_timezone

__all__ = ("Kernel",)

log = logging.getLogger("scheduler")
_UNSET: Any = object()
_TRIGGER_TYPES = (IntervalTrigger, CronTrigger, DateTrigger)


class Kernel(DispatchMixin, RunsMixin):
    """An embeddable asyncio scheduler: interval, cron and one-shot jobs.

    ``timezone`` is the default for cron jobs; ``job_defaults`` the options each job gets
    unless it sets its own; ``clock`` None means the real clock. Plain functions run in
    at most ``max_threads`` worker threads. ``wall_check_interval`` bounds how long a
    wall-clock step can go unnoticed while cron or date jobs are registered.
    ``coordinator`` shares scheduled runs between replicas (``kernel.coordination``);
    None runs everything here.
    """

    def __init__(
        self,
        *,
        timezone: str | tzinfo = "Asia/Shanghai",
        job_defaults: JobDefaults | None = None,
        clock: Clock | None = None,
        max_threads: int = 16,
        failure_store: FailureStore | None = None,
        wall_check_interval: float = 10.0,
        rng: random.Random | None = None,
        coordinator: Coordinator | None = None,
    ) -> None:
        self.timezone = resolve_timezone(timezone)
        self.job_defaults = job_defaults if job_defaults is not None else JobDefaults()
        self.clock: Clock = clock if clock is not None else RealClock()
        if max_threads < 1:
            raise InvalidJobError(f"max_threads={max_threads} must be at least 1")
        if wall_check_interval <= 0:
            raise InvalidJobError(
                f"wall_check_interval={wall_check_interval} must be a number of seconds > 0"
            )
        self.max_threads = max_threads
        self.failure_store: FailureStore = (
            failure_store if failure_store is not None else MemoryFailureStore()
        )
        self.wall_check_interval = wall_check_interval
        self._rng = rng if rng is not None else random.Random()
        self._lock = threading.RLock()
        self._jobs: dict[str, JobRecord] = {}
        self._wheel: TimerWheel[JobRecord] = TimerWheel(self.clock.monotonic())
        self._wall_jobs = 0
        self._offset = 0.0  # wall minus monotonic, in seconds, at the last check
        self._last_wall_check = 0.0
        self._timer: TimerHandle | None = None
        self._timer_deadline = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._running = False
        self._executor: ThreadPoolExecutor | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listeners: list[Callable[[Event], None]] = []
        self._subscribers: list[MemoryObjectSendStream[Event]] = []
        self._observed = False
        self.dropped_events = 0
        self._run_prefix = os.urandom(4).hex()
        self._run_seq = 0
        # Several replicas: scheduled runs are claimed first (kernel/coordination.py).
        self._coordinator = coordinator
        self._claim_chain: dict[str, asyncio.Future[None]] = {}  # per job: claims in order

    # -- lifecycle -----------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True between ``start()`` and ``shutdown()``."""
        return self._running

    async def start(self) -> None:
        """Start firing jobs (those added before start begin now)."""
        if self._running:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._executor = ThreadPoolExecutor(self.max_threads, thread_name_prefix="scheduler-job")
        mono = self.clock.monotonic()
        self._wheel = TimerWheel(mono)
        self._offset = self.clock.now().timestamp() - mono
        self._last_wall_check = mono
        self._running = True
        with self._lock:
            records = list(self._jobs.values())
        wall = self.clock.now()
        for rec in records:
            # Jobs added before start begin now: "every 6 hours" counts from start-up.
            rec.start(wall, mono, self._offset, self._rng)
            self._schedule(rec)
            if self._observed and not rec.removed:
                # Added while stopped: no event was sent then (listeners run on the loop).
                self._emit(JobAdded(job_id=rec.id, scheduled_at=rec.sched))
        self._arm()
        if self._coordinator is not None:
            await self._coordinator.attach(self)
        log.info(
            "Scheduler started (timezone=%s, %d job(s), defaults: coalesce=%s "
            "max_instances=%d misfire_grace_time=%s)",
            self.timezone.key, len(records), self.job_defaults.coalesce,
            self.job_defaults.max_instances, self.job_defaults.misfire_grace_time,
        )

    async def shutdown(self, wait: bool = True, grace: float | None = None) -> None:
        """Stop firing. With ``wait``, let running jobs finish (up to ``grace`` seconds of
        the kernel's clock, then cancel them); without, cancel them at once."""
        if not self._running:
            return
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = math.inf
        with self._lock:
            records = list(self._jobs.values())
        for rec in records:
            # The wheel goes with this run (start() builds a new one); drop the entries so
            # a restart schedules every job again and no record <-> entry cycle outlives it.
            rec.entry = None
        self._wall_jobs = 0
        tasks = list(self._tasks)
        if tasks and wait:
            if grace is None:
                await asyncio.gather(*tasks, return_exceptions=True)
            else:
                await self._wait_with_grace(tasks, grace)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        for stream in self._subscribers:
            stream.close()
        self._subscribers.clear()
        self._refresh_observed()
        if self._coordinator is not None:
            await self._coordinator.detach()
        log.info("Scheduler stopped")

    async def _wait_with_grace(self, tasks: list[asyncio.Task[Any]], grace: float) -> None:
        """Wait until every task is done or ``grace`` seconds of the kernel's clock pass."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        pending = set(tasks)

        def expire() -> None:
            if not done.done():
                done.set_result(None)

        def finished(task: asyncio.Task[None]) -> None:
            pending.discard(task)
            if not pending:
                expire()

        for task in tasks:
            task.add_done_callback(finished)
        timer = self.clock.call_at(self.clock.monotonic() + grace, expire)
        try:
            await done
        finally:
            timer.cancel()
            for task in tasks:
                task.remove_done_callback(finished)

    async def __aenter__(self) -> Kernel:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown(wait=True)

    # -- adding jobs ---------------------------------------------------------------
    def add_interval_job(
        self,
        func: Callable[..., Any],
        *,
        weeks: float = 0,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        jitter: float | None = None,
        **options: Any,
    ) -> Job:
        """Run ``func`` every interval; first one interval after now, or from ``start_date``."""
        args = (weeks, days, hours, minutes, seconds, start_date, end_date, jitter)
        try:
            trigger = shared_interval_trigger(*args)
        except TypeError:  # an unhashable argument: let the trigger explain what is wrong
            trigger = interval_trigger(*args)
        return self.add_job(func, trigger, **options)

    def add_cron_job(
        self,
        func: Callable[..., Any],
        cron_expression: str,
        *,
        timezone: str | tzinfo | None = None,
        **options: Any,
    ) -> Job:
        """Run ``func`` at the times a five-field cron expression names, in ``timezone``
        (the kernel's timezone by default)."""
        trigger = CronTrigger(cron_expression, timezone if timezone is not None else self.timezone)
        return self.add_job(func, trigger, **options)

    def add_date_job(self, func: Callable[..., Any], run_date: datetime, **options: Any) -> Job:
        """Run ``func`` once at ``run_date`` (aware); a past date is due at once, and
        ``misfire_grace_time`` decides whether it still runs."""
        return self.add_job(func, DateTrigger(run_date), **options)

    def add_job(
        self,
        func: Callable[..., Any],
        trigger: Trigger,
        *,
        job_id: str | None = None,
        name: str | None = None,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        coalesce: bool = _UNSET,
        max_instances: int = _UNSET,
        misfire_grace_time: float | None = _UNSET,
        timeout: float | None = _UNSET,
        retry: Any = None,
        replace_existing: bool = False,
    ) -> Job:
        """Register a job on any trigger; the other ``add_*`` methods end here."""
        if not callable(func):
            raise InvalidJobError(
                f"func={func!r} is not callable; pass a function or coroutine function"
            )
        if not isinstance(trigger, _TRIGGER_TYPES):
            raise InvalidJobError(
                f"trigger={trigger!r} is not a trigger; "
                "use IntervalTrigger, CronTrigger or DateTrigger"
            )
        if isinstance(trigger, CronTrigger) and trigger.timezone is None:
            trigger = trigger.bind(self.timezone)
        if job_id is None:
            job_id = uuid.uuid4().hex
        elif not isinstance(job_id, str) or not job_id or len(job_id) > 200:
            raise InvalidJobError(
                f"job_id={job_id!r} must be a non-empty string of at most 200 characters"
            )
        if name is not None and (not isinstance(name, str) or len(name) > 200):
            raise InvalidJobError(
                f"name={name!r} must be a string of at most 200 characters, or None for the "
                "function's name"
            )
        if not isinstance(args, (tuple, list)):
            raise InvalidJobError(f"args={args!r} must be a tuple or list of positional arguments")
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise InvalidJobError(f"kwargs={kwargs!r} must be a mapping of keyword arguments")
        opts = self._options(coalesce, max_instances, misfire_grace_time, timeout)
        if retry is not None:
            from .retry import RetryPolicy

            if not isinstance(retry, RetryPolicy):
                raise InvalidJobError(f"retry={retry!r} must be a RetryPolicy or None")
        info = callable_info(func)
        rec = JobRecord(
            job_id,
            name if name is not None else info.name,
            func,
            tuple(args) if args else (),
            dict(kwargs) if kwargs else None,
            info.is_coro,
            trigger,
            opts,
            retry,
        )
        with self._lock:
            old = self._jobs.get(job_id)
            if old is not None and not replace_existing:
                raise ConflictingJobIdError(job_id)
            self._jobs[job_id] = rec
        if old is not None:
            old.removed = True
        mono = self.clock.monotonic()
        rec.start(self.clock.now(), mono, self._current_offset(mono), self._rng)
        self._on_loop(self._install, rec, old)
        return self._view(rec)

    def _options(
        self, coalesce: Any, max_instances: Any, misfire_grace_time: Any, timeout: Any
    ) -> JobOptions:
        d = self.job_defaults
        if (coalesce, max_instances, misfire_grace_time, timeout) == (_UNSET,) * 4:
            return d
        values = (
            d.coalesce if coalesce is _UNSET else coalesce,
            d.max_instances if max_instances is _UNSET else max_instances,
            d.misfire_grace_time if misfire_grace_time is _UNSET else misfire_grace_time,
            d.timeout if timeout is _UNSET else timeout,
        )
        validate_options(*values)
        return JobOptions(
            coalesce=values[0], max_instances=values[1],
            misfire_grace_time=values[2], timeout=values[3],
        )

    def _install(self, rec: JobRecord, old: JobRecord | None) -> None:
        if old is not None:
            self._unschedule(old)
        if rec.removed:
            return
        self._schedule(rec)
        self._arm()
        if old is not None:
            self._emit_change(JobModified, rec, change="replaced")
        elif self._observed:
            self._emit(JobAdded(job_id=rec.id, scheduled_at=rec.sched))

    # -- managing jobs -------------------------------------------------------------
    def get_jobs(self) -> list[Job]:
        """Every registered job, in the order they were added."""
        with self._lock:
            records = list(self._jobs.values())
        return [self._view(rec) for rec in records]

    def get_job(self, job_id: str) -> Job:
        """The job with this id (``JobLookupError`` if there is none)."""
        return self._view(self._record(job_id))

    def remove_job(self, job_id: str) -> None:
        """Unregister a job; a run in progress finishes."""
        with self._lock:
            rec = self._jobs.pop(job_id, None)
        if rec is None:
            raise JobLookupError(job_id)
        rec.removed = True
        self._on_loop(self._removed, rec)

    def _removed(self, rec: JobRecord) -> None:
        self._unschedule(rec)
        self._arm()
        if self._observed:
            self._emit(JobRemoved(job_id=rec.id, scheduled_at=None))

    def pause_job(self, job_id: str) -> Job:
        """Stop firing a job until ``resume_job``; fires due while paused never run."""
        rec = self._record(job_id)
        rec.paused = True
        self._on_loop(self._paused, rec)
        return self._view(rec)

    def _paused(self, rec: JobRecord) -> None:
        self._unschedule(rec)
        self._arm()
        self._emit_change(JobModified, rec, change="paused")

    def resume_job(self, job_id: str) -> Job:
        """Fire a paused job again from its next fire time at or after now (interval jobs
        keep their original grid); fires due while it was paused never run."""
        rec = self._record(job_id)
        if rec.paused:
            rec.paused = False
            self._restart(rec, "resumed")
        return self._view(rec)

    def reschedule_job(self, job_id: str, trigger: Trigger) -> Job:
        """Give a job a new trigger; its next fire time is computed from now."""
        if not isinstance(trigger, _TRIGGER_TYPES):
            raise InvalidJobError(f"trigger={trigger!r} is not a trigger")
        if isinstance(trigger, CronTrigger) and trigger.timezone is None:
            trigger = trigger.bind(self.timezone)
        rec = self._record(job_id)
        with self._lock:
            rec.set_trigger(trigger)
        self._restart(rec, "rescheduled")
        return self._view(rec)

    def _restart(self, rec: JobRecord, change: str) -> None:
        def apply() -> None:
            self._unschedule(rec)
            mono = self.clock.monotonic()
            point = rec.resume if change == "resumed" else rec.start
            point(self.clock.now(), mono, self._current_offset(mono), self._rng)
            if not rec.paused:
                self._schedule(rec)
            self._arm()
            self._emit_change(JobModified, rec, change=change)

        self._on_loop(apply)

    def _record(self, job_id: str) -> JobRecord:
        with self._lock:
            rec = self._jobs.get(job_id)
        if rec is None:
            raise JobLookupError(job_id)
        return rec

    def _view(self, rec: JobRecord) -> Job:
        o = rec.opts
        return Job(
            id=rec.id, name=rec.name, trigger=rec.trigger,
            next_run_time=None if rec.paused else rec.sched, paused=rec.paused,
            func_ref=callable_info(rec.func).ref, args=rec.args, kwargs=dict(rec.kwargs or {}),
            coalesce=o.coalesce, max_instances=o.max_instances,
            misfire_grace_time=o.misfire_grace_time, timeout=o.timeout, running=rec.running,
        )

    # -- events --------------------------------------------------------------------
    def add_listener(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` on the loop for every event; returns the unsubscriber.

        Listeners must be cheap; an exception in one is logged and swallowed.
        """
        self._listeners.append(callback)
        self._refresh_observed()

        def remove() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)
                self._refresh_observed()

        return remove

    def subscribe(self, max_buffer: int = 10_000) -> MemoryObjectReceiveStream[Event]:
        """A stream of every event from now on. Events that find the buffer full are
        dropped for this subscriber (counted in ``dropped_events``), never block the kernel."""
        send, receive = anyio.create_memory_object_stream[Event](max_buffer)
        self._subscribers.append(send)
        self._refresh_observed()
        return receive

    def _refresh_observed(self) -> None:
        self._observed = bool(self._listeners or self._subscribers)

    def _emit(self, event: Event) -> None:
        for callback in self._listeners:
            try:
                callback(event)
            except Exception:
                log.exception("event listener %r failed on %s", callback, type(event).__name__)
        if self._subscribers:
            for stream in list(self._subscribers):
                try:
                    stream.send_nowait(event)
                except anyio.WouldBlock:
                    self.dropped_events += 1
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self._subscribers.remove(stream)
                    stream.close()
                    self._refresh_observed()

    def _emit_change(self, kind: type[JobModified], rec: JobRecord, change: Any) -> None:
        if self._observed:
            self._emit(kind(job_id=rec.id, scheduled_at=None if rec.paused else rec.sched,
                            change=change))
