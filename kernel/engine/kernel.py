"""The kernel: the facade over the engine's parts; lifecycle and the public API.

A :class:`Kernel` is composed of a registry (job ids, shared with other threads), one job
actor per job (:mod:`.job_actor`), the dispatcher (:mod:`.dispatcher`: the clock timer,
the wheel, the wall-clock watch), the runner (:mod:`.runner`) and the event bus
(:mod:`.event_bus`); with a coordinator, a gate (:mod:`.claims`) stands between the
actors' decisions and their runs. Each part owns its state and the parts talk through
methods; plug-ins get :class:`kernel.port.KernelPort` (:attr:`Kernel.port`).

Concurrency contract: once started, everything but the registry is touched only on the
event loop thread. ``add_*``, ``remove_job``, ``pause_job``, ``resume_job`` and
``reschedule_job`` may be called from any thread: they change the registry under its
lock and hand the change to the job's actor on the loop (``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from types import MappingProxyType
from typing import Any

from anyio.streams.memory import MemoryObjectReceiveStream

from ..clock import Clock, RealClock
from ..coordination import Coordinator
from ..errors import InvalidJobError, JobLookupError, KernelNotRunningError
from ..job import Job, JobDefaults
from ..observe.events import Event, FailureRecordDropped
from ..observe.failures import FailureRecord, FailureStore, MemoryFailureStore
from ..observe.outbox import DEFAULT_OUTBOX_CAPACITY, FailureOutbox
from ..schedule.triggers import CronTrigger, DateTrigger, Trigger, resolve_timezone
from ..state import ScheduleStore
from ..state.memory import MemoryScheduleStore
from .callables import callable_info, interval_trigger, shared_interval_trigger
from .claims import ClaimGate
from .definitions import UNSET, checked_arguments, checked_trigger, job_options
from .dispatcher import Dispatcher
from .event_bus import EventBus
from .job_actor import JobActor, JobServices
from .journal import Journal
from .messages import ChangeKind
from .port import EnginePort
from .registry import Registry
from .restore import record_definition, report_interrupted, restore_job
from .runner import Runner

__all__ = ("Kernel",)

log = logging.getLogger("scheduler")
# The kwargs of every job view without keyword arguments (read-only, so it can be shared).
_NO_KWARGS: Mapping[str, Any] = MappingProxyType({})


class Kernel:
    """An embeddable asyncio scheduler: interval, cron and one-shot jobs.

    ``timezone`` is the default for cron jobs; ``job_defaults`` the options each job gets
    unless it sets its own; ``clock`` None means the real clock. Plain functions run in
    at most ``max_threads`` worker threads. ``wall_check_interval`` bounds how long a
    wall-clock step can go unnoticed while cron or date jobs are registered.
    ``coordinator`` shares scheduled runs between replicas (``kernel.coordination``);
    None runs everything here. ``schedule_store`` keeps the schedule state (interval
    anchors, the last time decided per job, runs in flight: ``kernel.state``) so that a
    restart loses nothing: times that fell while down are decided by grace and coalesce,
    runs in flight at a crash are recorded interrupted. None keeps it in memory. With a
    ``coordinator`` the claims do that instead (``kernel.distributed``).

    Failure records go to ``failure_store`` (default: a bounded ring in memory) through
    a :class:`~kernel.observe.outbox.FailureOutbox` (:attr:`failure_store`): a record the
    store cannot take is kept in memory, at most ``failure_outbox_size`` of them, and
    written when the store is back; at shutdown the kernel tries for at most
    ``failure_flush_timeout`` seconds to write what is still kept.
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
        failure_outbox_size: int = DEFAULT_OUTBOX_CAPACITY,
        failure_flush_timeout: float = 10.0,
        schedule_store: ScheduleStore | None = None,
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
        if failure_flush_timeout < 0:
            raise InvalidJobError(
                f"failure_flush_timeout={failure_flush_timeout} must be a number of seconds >= 0"
            )
        self.failure_flush_timeout = failure_flush_timeout
        self.wall_check_interval = wall_check_interval
        self._rng = rng if rng is not None else random.Random()
        self._coordinator = coordinator
        self._jobs: Registry[JobActor] = Registry()
        self._tasks: set[asyncio.Task[Any]] = set()  # runs, and actors working through a gate
        self._bus = EventBus()
        try:
            outbox = FailureOutbox(
                failure_store if failure_store is not None else MemoryFailureStore(),
                self.clock, capacity=failure_outbox_size, on_drop=self._failure_dropped,
            )
        except ValueError as exc:
            raise InvalidJobError(str(exc)) from None
        self.failure_outbox = outbox
        """Failure records waiting for the store (``pending``, ``dropped``, ``waiting()``)."""
        self.failure_store: FailureStore = self.failure_outbox
        """Where failure records are read and written: the outbox in front of the store."""
        self._dispatcher = Dispatcher(self.clock, wall_check_interval)
        self.schedule_store: ScheduleStore = (
            schedule_store if schedule_store is not None else MemoryScheduleStore()
        )
        self._journal = Journal(self.schedule_store, self.clock)
        self._undefined: set[str] = set()  # see _defined
        self._runner = Runner(self.clock, self._bus, self.failure_store, self._rng, max_threads,
                              self._tasks, self._journal)
        gate = None
        if coordinator is not None:
            gate = ClaimGate(coordinator, self.clock, self._runner.new_run_id,
                             lambda: self.running)
            self._dispatcher.tick_done = gate.tick_done
            self._dispatcher.lead = gate.lead
            gate.next_tick = self._dispatcher.next_tick
            coordinator.on_rebalance = self._on_rebalance
        self._services = JobServices(self.clock, self._dispatcher, self._runner, self._bus,
                                     self._rng, self._tasks, self._jobs, gate)
        self.port = EnginePort(self.clock, self._jobs.get, self._runner, lambda: self.running)
        """What plug-ins reach (:class:`kernel.port.KernelPort`)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    # -- lifecycle -----------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True between ``start()`` and ``shutdown()``."""
        return self._dispatcher.running

    @property
    def dropped_events(self) -> int:
        """Events subscriber streams dropped because their buffer was full."""
        return self._bus.dropped

    def _on_rebalance(self, old: tuple[str, ...], new: tuple[str, ...]) -> None:
        if self.running:
            self._replicas_changed()

    def _replicas_changed(self) -> None:
        """The live replicas changed (loop thread): every parked job (another replica
        fired it) is scheduled again from now; it parks again at its next fire unless it
        is this replica's now (:mod:`.job_actor`)."""
        for job in self._jobs.snapshot():
            if job.parked:
                job.change("unparked")

    @property
    def in_flight(self) -> int:
        """Runs (and claims of coordinated runs) not finished yet."""
        return len(self._tasks)

    async def start(self) -> None:
        """Start firing jobs (those added before start begin now)."""
        if self.running:
            return
        loop = asyncio.get_running_loop()
        # The schedule state is read before any timer starts.
        journal = self._journal
        await journal.store.open()
        states, in_flight = await journal.store.load()
        if self._coordinator is not None:
            # Replicas: the claims decide the times that fell while down and report the
            # runs a dead replica left (kernel.distributed); nothing is decided twice.
            states, in_flight = {}, []
        journal.open(loop)
        self._loop = self._services.loop = loop
        self._loop_thread = threading.get_ident()
        self._runner.open(loop)
        dispatcher = self._dispatcher
        dispatcher.start()
        if self._services.gate is not None:
            self._services.gate.started()
        jobs = self._jobs.snapshot()
        clock = self.clock
        wall, mono = clock.now(), clock.monotonic()
        downtime: list[tuple[JobActor, list[datetime]]] = []
        for job in jobs:
            # Jobs added before start begin now: "every 6 hours" counts from start-up,
            # unless the stored state says where its grid was.
            job.start(wall, mono, dispatcher.offset, self._rng)
            times = restore_job(journal, job, states.get(job.id), wall, mono, self._rng)
            if times:
                downtime.append((job, times))
            job.change("started")
        dispatcher.arm()
        for job, times in downtime:
            job.catch_up(tuple(times))
        for run in in_flight:
            task = loop.create_task(report_interrupted(self._runner, run,
                                                       self._jobs.get(run.job_id)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._coordinator is not None:
            await self._coordinator.attach(self.port)
        log.info(
            "Scheduler started (timezone=%s, %d job(s), defaults: coalesce=%s "
            "max_instances=%d misfire_grace_time=%s)",
            self.timezone.key, len(jobs), self.job_defaults.coalesce,
            self.job_defaults.max_instances, self.job_defaults.misfire_grace_time,
        )

    async def shutdown(self, wait: bool = True, grace: float | None = None) -> None:
        """Stop firing. With ``wait``, let running jobs finish (up to ``grace`` seconds of
        the kernel's clock, then cancel them); without, cancel them at once."""
        if not self.running:
            return
        self._dispatcher.stop(list(self._jobs.snapshot()))
        if self._services.gate is not None:
            self._services.gate.stopping()  # won claims waiting for their time start now
        await self._runner.drain(wait=wait, grace=grace)
        self._runner.close()
        if self._undefined:
            now = self.clock.now()
            for job_id in sorted(self._undefined):
                job = self._jobs.get(job_id)
                if job is not None:
                    record_definition(self._journal, job, now)
            self._undefined.clear()
        await self._journal.close()
        await self.failure_outbox.close(self.failure_flush_timeout)
        self._bus.close_streams()
        if self._coordinator is not None:
            await self._coordinator.detach()
        log.info("Scheduler stopped")

    def _failure_dropped(self, record: FailureRecord) -> None:
        self._bus.emit(FailureRecordDropped(
            job_id=record.job_id, scheduled_at=record.scheduled_at, failure_id=record.id,
            run_id=record.run_id,
        ))

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
        job_id: str | None = None,
        name: str | None = None,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        coalesce: bool = UNSET,
        max_instances: int = UNSET,
        misfire_grace_time: float | None = UNSET,
        timeout: float | None = UNSET,
        retry: Any = None,
        replace_existing: bool = False,
        **options: Any,
    ) -> Job:
        """Run ``func`` every interval; first one interval after now, or from ``start_date``.
        The other options are :meth:`add_job`'s (``options``: those a subclass's add_job
        takes besides)."""
        # The options spelled out rather than passed on as **options: adding many interval
        # jobs is the hot path of registering (a dict built and unpacked cost ~1 us an add).
        # Through add_job all the same, which subclasses may extend.
        parts = (weeks, days, hours, minutes, seconds, start_date, end_date, jitter)
        try:
            trigger = shared_interval_trigger(*parts)
        except TypeError:  # an unhashable argument: let the trigger explain what is wrong
            trigger = interval_trigger(*parts)
        if not options and type(self).add_job is _ADD_JOB:
            # Nothing extends add_job: straight to the registration (two calls of twelve
            # keyword arguments less, ~0.3 us an add).
            return self._add(func, trigger, job_id, name, args, kwargs, coalesce,
                             max_instances, misfire_grace_time, timeout, retry,
                             replace_existing)
        return self.add_job(
            func, trigger, job_id=job_id, name=name, args=args, kwargs=kwargs,
            coalesce=coalesce, max_instances=max_instances,
            misfire_grace_time=misfire_grace_time, timeout=timeout, retry=retry,
            replace_existing=replace_existing, **options,
        )

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
        coalesce: bool = UNSET,
        max_instances: int = UNSET,
        misfire_grace_time: float | None = UNSET,
        timeout: float | None = UNSET,
        retry: Any = None,
        replace_existing: bool = False,
    ) -> Job:
        """Register a job on any trigger; the other ``add_*`` methods end here."""
        return self._add(func, trigger, job_id, name, args, kwargs, coalesce, max_instances,
                         misfire_grace_time, timeout, retry, replace_existing)

    def _add(
        self, func: Callable[..., Any], trigger: Trigger, job_id: str | None, name: str | None,
        args: tuple[Any, ...] | list[Any], kwargs: Mapping[str, Any] | None, coalesce: bool,
        max_instances: int, misfire_grace_time: float | None, timeout: float | None,
        retry: Any, replace_existing: bool,
    ) -> Job:
        checked_arguments(func, job_id, name, args, kwargs, retry)
        trigger = checked_trigger(trigger, self.timezone)
        if job_id is None:
            job_id = uuid.uuid4().hex
        opts = job_options(self.job_defaults, coalesce, max_instances, misfire_grace_time,
                           timeout)
        info = callable_info(func)
        job = JobActor(
            self._services, job_id, name if name is not None else info.name, func,
            tuple(args) if args else (), dict(kwargs) if kwargs else None, info.is_coro,
            trigger, opts, retry,
        )
        old = self._jobs.put(job_id, job, replace=replace_existing)
        if old is not None:
            old.removed = True
        mono = self.clock.monotonic()
        job.start(self.clock.now(), mono, self._dispatcher.current_offset(mono), self._rng)
        if old is not None:
            self._on_loop(old.change, "superseded")
            self._on_loop(job.change, "replaced")
        elif self.running and threading.get_ident() == self._loop_thread:
            job.added()  # the common case, without the general change's dispatch
        else:
            self._on_loop(job.change, "added")
        if self.running:
            self._defined(job)
        return self._view(job, info.ref)

    # -- managing jobs -------------------------------------------------------------
    def get_jobs(self) -> list[Job]:
        """Every registered job, in the order they were added."""
        return [self._view(job) for job in self._jobs.snapshot()]

    def get_job(self, job_id: str) -> Job:
        """The job with this id (``JobLookupError`` if there is none)."""
        return self._view(self._jobs.require(job_id))

    def remove_job(self, job_id: str) -> None:
        """Unregister a job; a run in progress finishes."""
        job = self._jobs.pop(job_id)
        if job is None:
            raise JobLookupError(job_id)
        job.removed = True
        self._on_loop(job.change, "removed")
        if self.running:
            self._on_loop_call(self._journal.forgotten, job_id)

    def pause_job(self, job_id: str) -> Job:
        """Stop firing a job until ``resume_job``; fires due while paused never run."""
        job = self._jobs.require(job_id)
        job.paused = True
        self._on_loop(job.change, "paused")
        return self._view(job)

    def resume_job(self, job_id: str) -> Job:
        """Fire a paused job again from its next fire time at or after now (interval jobs
        keep their original grid); fires due while it was paused never run."""
        job = self._jobs.require(job_id)
        if job.paused:
            job.paused = False
            self._on_loop(job.change, "resumed")
        return self._view(job)

    def reschedule_job(self, job_id: str, trigger: Trigger) -> Job:
        """Give a job a new trigger; its next fire time is computed from now."""
        trigger = checked_trigger(trigger, self.timezone)
        job = self._jobs.require(job_id)
        with self._jobs.lock:
            job.set_trigger(trigger)
        if self.running:
            self._on_loop(job.change, "rescheduled")
            self._defined(job)
        else:
            mono = self.clock.monotonic()
            job.start(self.clock.now(), mono, self._dispatcher.current_offset(mono), self._rng)
        return self._view(job)

    def run_job(self, job_id: str) -> str:
        """Run a job now, outside its schedule; returns the run id.

        Bounded by ``max_instances`` like any run (``JobBusyError`` when at the limit).
        Call from the loop thread.
        """
        if not self.running:
            raise KernelNotRunningError("start the kernel before running a job by hand")
        return self._jobs.require(job_id).run_now()

    async def retry_failure(self, failure_id: str) -> str:
        """Re-run a failed call with the same arguments; the attempt is linked to the
        failure record. Returns the new run id."""
        record = await self.failure_store.get_failure(failure_id)
        if record is None:
            raise LookupError(f"no failure record with id {failure_id!r}; GET /failures lists them")
        job = self._jobs.require(record.job_id)
        if not self.running:
            raise KernelNotRunningError("start the kernel before running a job by hand")
        return job.run_now(attempt=record.attempt + 1, retry_of=record.retry_of or record.id)

    def _view(self, job: JobActor, func_ref: str | None = None) -> Job:
        o = job.opts
        return Job(
            id=job.id, name=job.name, trigger=job.trigger,
            next_run_time=None if job.paused else job.sched, paused=job.paused,
            func_ref=callable_info(job.func).ref if func_ref is None else func_ref,
            args=job.args,
            kwargs=_NO_KWARGS if job.kwargs is None else dict(job.kwargs),
            coalesce=o.coalesce, max_instances=o.max_instances,
            misfire_grace_time=o.misfire_grace_time, timeout=o.timeout, running=job.running,
            retry=job.retry,
        )

    # -- events --------------------------------------------------------------------
    def add_listener(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` on the loop for every event; returns the unsubscriber.

        Listeners must be cheap; an exception in one is logged and swallowed.
        """
        return self._bus.add_listener(callback)

    def subscribe(self, max_buffer: int = 10_000) -> MemoryObjectReceiveStream[Event]:
        """A stream of every event from now on. Events that find the buffer full are
        dropped for this subscriber (counted in ``dropped_events``), never block the kernel."""
        return self._bus.subscribe(max_buffer)

    # -- the loop thread -----------------------------------------------------------
    def _on_loop(self, change: Callable[[ChangeKind], None], kind: ChangeKind) -> None:
        """Deliver a change on the loop thread: now if we are on it, else thread-safely;
        not at all while stopped (``start`` schedules every job)."""
        if not self.running or self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            change(kind)
        else:
            self._loop.call_soon_threadsafe(self._deliver, change, kind)

    def _defined(self, job: JobActor) -> None:
        """A job added or rescheduled while running: its definition is recorded now in a
        store that outlives the process; in memory, at shutdown (no per-add cost: nothing
        can read it before)."""
        if self._journal.write_ahead:
            self._on_loop_call(record_definition, self._journal, job, self.clock.now())
        else:
            self._undefined.add(job.id)

    def _on_loop_call(self, func: Callable[..., None], *args: Any) -> None:
        """Call ``func(*args)`` on the loop thread (now if we are on it); not while stopped."""
        if not self.running or self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            func(*args)
        else:
            self._loop.call_soon_threadsafe(func, *args)

    def _deliver(self, change: Callable[[ChangeKind], None], kind: ChangeKind) -> None:
        if self.running:
            change(kind)


_ADD_JOB = Kernel.add_job
