"""The runner: every run of every job is started and recorded here (loop thread only).

Start (``RunStarted``), execute (:func:`.invoke.call_job`: on the loop or in a worker
thread, with the job's timeout on the kernel's clock), record the outcome (a log line,
``RunSucceeded`` or ``RunFailed``, a failure record, kept by the kernel's failure outbox
while the store fails, the link from a retry to the failure it retries) and ask the policy
whether a failed attempt is retried, and when.
Runs that end elsewhere (a replica that died: its claim was reaped as interrupted) are
reported through :meth:`Runner.report_failure`, the same recording and retry path.

The hot path, a scheduled time decided at once in a timer tick for a coroutine job
without a timeout (:meth:`Runner.start_due`), runs in a leaner coroutine than
:meth:`Runner._execute` (no lease, no retry link, no timeout layer, no options to pass
along); its log lines and events are the same, and a failure goes through the same
``_failed`` path.

The runner tells the run's job actor when the body has ended (``run_finished``, before
anything is awaited, so a fire right after sees the run gone) and when a retry is due
(``retry_due``); the actor decides whether that retry starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Protocol

from ..clock import Clock
from ..errors import JobTimeoutError
from ..job import JobOptions
from ..observe.events import RunFailed, RunStarted, RunSucceeded
from ..observe.failures import FailureRecord, FailureStore, RetryAttempt
from ..observe.redaction import redact
from ..retry import RetryPolicy
from ..schedule.policy import retry_at
from .event_bus import EventBus
from .gate import Lease
from .invoke import call_job
from .journal import Journal

__all__ = ("RunOwner", "Runner", "failed_event")

run_log = logging.getLogger("scheduler.job")


class RunOwner(Protocol):
    """What a run needs of its job (a job actor)."""

    id: str
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any] | None
    is_coro: bool
    opts: JobOptions
    retry: RetryPolicy | None

    def run_finished(self) -> None: ...

    def retry_due(self, scheduled_at: datetime | None, attempt: int, retry_of: str) -> None: ...


def failed_event(record: FailureRecord, *, manual: bool) -> RunFailed:
    """The ``RunFailed`` event of a failure record (the one place it is built)."""
    return RunFailed(
        job_id=record.job_id, scheduled_at=record.scheduled_at, run_id=record.run_id,
        started_at=record.started_at, duration=record.duration, exc_type=record.exc_type,
        message=record.message, traceback=record.traceback, timed_out=record.timed_out,
        manual=manual, attempt=record.attempt, retry_of=record.retry_of, failure_id=record.id,
    )


class Runner:
    """Starts runs as tasks (kept in ``tasks`` until they are completely done)."""

    def __init__(
        self,
        clock: Clock,
        bus: EventBus,
        failure_store: FailureStore,
        rng: random.Random,
        max_threads: int,
        tasks: set[asyncio.Task[Any]],
        journal: Journal,
    ) -> None:
        self.clock = clock
        self.journal = journal
        self.bus = bus
        self.failure_store = failure_store
        self.rng = rng
        self.max_threads = max_threads
        self.tasks = tasks
        self.accepting = False  # retries are scheduled only while the kernel runs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._prefix = os.urandom(4).hex()
        self._seq = 0

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._executor = ThreadPoolExecutor(self.max_threads, thread_name_prefix="scheduler-job")
        self.accepting = True

    async def drain(self, *, wait: bool, grace: float | None) -> None:
        """At shutdown: with ``wait``, let every task finish (at most ``grace`` seconds of
        the clock, None = as long as it takes); then cancel what is left."""
        self.accepting = False
        tasks = list(self.tasks)
        if tasks and wait:
            if grace is None:
                while tasks:  # a claim settled meanwhile may have started one more run
                    await asyncio.gather(*tasks, return_exceptions=True)
                    tasks = [task for task in self.tasks if not task.done()]
            else:
                await _wait_with_grace(self.clock, tasks, grace)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def close(self) -> None:
        """After the run tasks are done or cancelled: release the worker threads."""
        self.accepting = False
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def new_run_id(self) -> str:
        self._seq += 1
        return f"{self._prefix}-{self._seq:x}"

    def start(
        self,
        job: RunOwner,
        sched: datetime | None,
        late: float,
        *,
        manual: bool = False,
        attempt: int = 1,
        retry_of: str | None = None,
        lease: Lease | None = None,
    ) -> str:
        """Start one run of ``job`` (its actor has counted it); the run id."""
        if lease is None:
            self._seq += 1
            run_id = f"{self._prefix}-{self._seq:x}"  # new_run_id(), inline: the hot path
        else:
            run_id = lease.run_id
        clock = self.clock
        started = clock.now()
        # Write-ahead: the body waits until this start is committed (None: nothing to wait).
        written = self.journal.started(job.id, run_id, sched, started, attempt)
        if self.bus.observed:
            self.bus.emit(RunStarted(
                job_id=job.id, scheduled_at=sched, run_id=run_id, started_at=started,
                lateness=late, manual=manual, attempt=attempt, retry_of=retry_of,
            ))
        loop = self._loop
        assert loop is not None
        task = loop.create_task(self._execute(
            job, run_id, sched, late, started, clock.monotonic(), manual, attempt, retry_of,
            lease, written,
        ))
        self.tasks.add(task)  # _execute discards it when done (cheaper than a callback)
        return run_id

    def start_due(self, job: RunOwner, sched: datetime, late: float, started: datetime) -> None:
        """Start the run of a scheduled time decided at once (the hot path: a timer tick's
        fire, no gate): :meth:`start` without its options; ``started`` is the tick's wall
        time (:meth:`.dispatcher.Dispatcher.wall_now`)."""
        self._seq += 1
        run_id = f"{self._prefix}-{self._seq:x}"
        # Write-ahead: the body waits until this start is committed (None: nothing to wait).
        written = self.journal.started(job.id, run_id, sched, started, 1)
        if self.bus.observed:
            self.bus.emit(RunStarted(
                job_id=job.id, scheduled_at=sched, run_id=run_id, started_at=started,
                lateness=late, manual=False, attempt=1, retry_of=None,
            ))
        loop = self._loop
        assert loop is not None
        if written is None and job.is_coro and job.opts.timeout is None:
            coro = self._run_due(job, run_id, sched, late, started)
        else:
            coro = self._execute(job, run_id, sched, late, started, self.clock.monotonic(),
                                 False, 1, None, None, written)
        self.tasks.add(loop.create_task(coro))

    async def _run_due(
        self, job: RunOwner, run_id: str, sched: datetime, late: float, started: datetime
    ) -> None:
        """:meth:`_execute` for the common run: a coroutine function without a timeout,
        a first attempt with no lease, whose start the journal needs no wait for. Its
        outcome is recorded by the same methods."""
        clock = self.clock
        t0 = clock.monotonic()
        outcome = "failed"
        try:
            if run_log.isEnabledFor(logging.INFO):
                run_log.info("Running job %s (run %s, scheduled %s, late %.3f s)", job.id,
                             run_id, sched.isoformat(), late)
            try:
                func = job.func
                kwargs = job.kwargs
                await (func(*job.args, **kwargs) if kwargs else func(*job.args))
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError):
                    outcome = "cancelled"
                await self._ended_with(job, run_id, sched, started, t0, exc)
            else:
                job.run_finished()
                outcome = "succeeded"
                if run_log.isEnabledFor(logging.INFO) or self.bus.observed:
                    self._succeeded(job, run_id, sched, started, clock.monotonic() - t0)
        finally:
            self.journal.ended(job.id, run_id, outcome)
            task = asyncio.current_task()
            if task is not None:
                self.tasks.discard(task)

    def _succeeded(self, job: RunOwner, run_id: str, sched: datetime | None,
                   started: datetime, duration: float, manual: bool = False, attempt: int = 1,
                   retry_of: str | None = None) -> None:
        """The log line and event of a run that succeeded (callers skip the call when
        neither INFO is logged nor the bus observed: the hot path)."""
        run_log.info("Job %s (run %s) succeeded in %.3f s", job.id, run_id, duration)
        if self.bus.observed:
            self.bus.emit(RunSucceeded(
                job_id=job.id, scheduled_at=sched, run_id=run_id, started_at=started,
                duration=duration, manual=manual, attempt=attempt, retry_of=retry_of,
            ))

    async def _ended_with(self, job: RunOwner, run_id: str, sched: datetime,
                          started: datetime, t0: float, exc: BaseException) -> None:
        """A run of :meth:`_run_due` raised: recorded exactly as :meth:`_execute` does."""
        job.run_finished()
        duration = self.clock.monotonic() - t0
        if isinstance(exc, asyncio.CancelledError):
            run_log.warning("Job %s (run %s) cancelled after %.3f s", job.id, run_id, duration)
            await self._failed(job, run_id, sched, started, duration, False, 1, None,
                               asyncio.CancelledError("cancelled at shutdown"), "")
            raise exc
        if not isinstance(exc, Exception):
            raise exc  # KeyboardInterrupt, SystemExit: not a job failure
        await self._failed(job, run_id, sched, started, duration, False, 1, None, exc,
                           "".join(traceback.format_exception(exc)))

    async def _execute(
        self,
        job: RunOwner,
        run_id: str,
        sched: datetime | None,
        late: float,
        started: datetime,
        t0: float,
        manual: bool,
        attempt: int,
        retry_of: str | None,
        lease: Lease | None,
        written: asyncio.Future[None] | None,
    ) -> None:
        ok = False
        outcome = "failed"
        try:
            clock = self.clock
            if run_log.isEnabledFor(logging.INFO):
                run_log.info(
                    "Running job %s (run %s, scheduled %s, late %.3f s%s)", job.id, run_id,
                    sched.isoformat() if sched else "manual", late,
                    f", attempt {attempt}" if attempt > 1 else "",
                )
            if lease is not None:
                lease.begin()
            try:
                if lease is not None and lease.lost is not None:
                    # Lost before the body started (this process was paused past most of
                    # the lease since its claim was won): the body does not run; the
                    # reaper records the claim interrupted, once, and retries it.
                    raise asyncio.CancelledError
                if written is not None:
                    await written
                if job.is_coro and job.opts.timeout is None:
                    # The common case, without call_job's extra coroutine layer.
                    func = job.func
                    await (func(*job.args, **job.kwargs) if job.kwargs else func(*job.args))
                else:
                    executor = self._executor
                    assert executor is not None
                    await call_job(clock, executor, job.func, job.args, job.kwargs,
                                   job.is_coro, job.opts.timeout, job.id)
            except asyncio.CancelledError:
                outcome = "cancelled"
                job.run_finished()
                duration = clock.monotonic() - t0
                if lease is not None and lease.lost is not None:
                    task = asyncio.current_task()
                    if task is not None and task.uncancel() == 0:
                        # Cancelled by its lease (lost, or not renewable in time): the
                        # claim's reaper records it interrupted, once, and retries it.
                        lease.settle()
                        run_log.error("Job %s (run %s) cancelled after %.3f s: its lease was "
                                      "%s", job.id, run_id, duration, lease.lost)
                        return
                run_log.warning("Job %s (run %s) cancelled after %.3f s", job.id, run_id,
                                duration)
                await self._failed(job, run_id, sched, started, duration, manual, attempt,
                                   retry_of, asyncio.CancelledError("cancelled at shutdown"), "")
                raise
            except Exception as exc:
                job.run_finished()
                if lease is not None:
                    lease.settle()
                duration = clock.monotonic() - t0
                await self._failed(job, run_id, sched, started, duration, manual, attempt,
                                   retry_of, exc, traceback.format_exc())
            else:
                job.run_finished()
                if lease is not None:
                    lease.settle()
                ok = True
                outcome = "succeeded"
                duration = clock.monotonic() - t0
                if run_log.isEnabledFor(logging.INFO) or self.bus.observed:
                    self._succeeded(job, run_id, sched, started, duration, manual, attempt,
                                    retry_of)
                if retry_of is not None:
                    await self._link_retry(retry_of, run_id, started, "succeeded", None, manual)
        finally:
            self.journal.ended(job.id, run_id, outcome)
            if lease is not None:
                # Shielded: a cancellation at shutdown must not leave the claim looking alive.
                await asyncio.shield(lease.end(ok))
            task = asyncio.current_task()
            if task is not None:
                self.tasks.discard(task)

    async def _failed(
        self,
        job: RunOwner,
        run_id: str,
        sched: datetime | None,
        started: datetime,
        duration: float,
        manual: bool,
        attempt: int,
        retry_of: str | None,
        exc: BaseException,
        tb: str,
    ) -> None:
        timed_out = isinstance(exc, JobTimeoutError)
        # An exception message or traceback can carry a credential (a request body, a
        # config repr): mask it before it reaches a log line, an event or a stored record.
        message = redact(str(exc))
        tb = redact(tb)
        run_log.error(
            "Failed scheduled task %s (run %s, scheduled %s, after %.3f s%s): %s: %s\n%s",
            job.id, run_id, sched.isoformat() if sched else "manual", duration,
            ", timed out" if timed_out else "", type(exc).__name__, message, tb.rstrip(),
        )
        record = FailureRecord(
            id=uuid.uuid4().hex, job_id=job.id, run_id=run_id, scheduled_at=sched,
            started_at=started, duration=duration, exc_type=type(exc).__name__,
            message=message, traceback=tb, timed_out=timed_out, attempt=attempt,
            retry_of=retry_of,
        )
        await self.report_failure(job, record, manual=manual,
                                  retried=not isinstance(exc, asyncio.CancelledError))

    async def report_failure(
        self, job: RunOwner | None, record: FailureRecord, *, manual: bool = False,
        retried: bool = True,
    ) -> None:
        """Record a failed run (``RunFailed``, the failure record, the link from a retry)
        and, if ``retried`` and the job's policy says so, schedule its next attempt."""
        if self.bus.observed:
            self.bus.emit(failed_event(record, manual=manual))
        # The kernel's failure outbox: stored, or kept in memory (and said in the log) to
        # be written when the store is back; it does not raise for a store error.
        await self.failure_store.add_failure(record)
        if record.retry_of is not None:
            await self._link_retry(record.retry_of, record.run_id, record.started_at,
                                   "failed", record.id, manual)
        if retried and job is not None:
            self._schedule_retry(job, record)

    def _schedule_retry(self, job: RunOwner, record: FailureRecord) -> None:
        clock = self.clock
        when = retry_at(job.retry, record.attempt, clock.monotonic(), self.rng)
        if when is None or not self.accepting:
            return
        policy = job.retry
        assert policy is not None
        origin = record.retry_of or record.id
        attempt = record.attempt + 1
        run_log.info("Job %s will be retried in %.3f s (attempt %d of %d)",
                     job.id, when - clock.monotonic(), attempt, policy.max_attempts)
        sched = record.scheduled_at
        clock.call_at(when, lambda: job.retry_due(sched, attempt, origin))

    async def _link_retry(self, failure_id: str, run_id: str, started: datetime,
                          outcome: Any, new_failure: str | None, manual: bool) -> None:
        try:
            await self.failure_store.set_retry(failure_id, RetryAttempt(
                run_id=run_id, started_at=started, outcome=outcome, manual=manual,
                failure_id=new_failure,
            ))
        except Exception:
            run_log.exception("could not link retry %s to failure %s", run_id, failure_id)


async def _wait_with_grace(clock: Clock, tasks: list[asyncio.Task[Any]], grace: float) -> None:
    """Wait until every task is done or ``grace`` seconds of ``clock`` pass."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    pending = set(tasks)

    def expire() -> None:
        if not done.done():
            done.set_result(None)

    def finished(task: asyncio.Task[Any]) -> None:
        pending.discard(task)
        if not pending:
            expire()

    for task in tasks:
        task.add_done_callback(finished)
    timer = clock.call_at(clock.monotonic() + grace, expire)
    try:
        await done
    finally:
        timer.cancel()
        for task in tasks:
            task.remove_done_callback(finished)
