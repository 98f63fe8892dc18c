"""The run half of a job actor: starting runs, recording outcomes, manual runs, retries."""

from __future__ import annotations

import asyncio
import logging
import traceback
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._run import call_job
from .errors import JobBusyError, JobLookupError, JobTimeoutError, KernelNotRunningError
from .events import RunFailed, RunStarted, RunSucceeded
from .failures import FailureRecord, RetryAttempt

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from ._records import JobRecord
    from .clock import Clock
    from .events import Event, SkipReason
    from .failures import FailureStore

__all__ = ()

run_log = logging.getLogger("scheduler.job")


class RunsMixin:
    """Runs of jobs. Mixed into :class:`kernel.Kernel`; loop thread only."""

    if TYPE_CHECKING:  # provided by Kernel
        import random

        clock: Clock
        failure_store: FailureStore
        _observed: bool
        _running: bool
        _loop: asyncio.AbstractEventLoop | None
        _executor: ThreadPoolExecutor | None
        _tasks: set[asyncio.Task[None]]
        _rng: random.Random
        _run_prefix: str
        _run_seq: int

        def _emit(self, event: Event) -> None: ...
        def _skipped(self, rec: JobRecord, sched: datetime | None, reason: SkipReason) -> None: ...
        def _record(self, job_id: str) -> JobRecord: ...

    def _new_run_id(self) -> str:
        self._run_seq += 1
        return f"{self._run_prefix}-{self._run_seq:x}"

    def _start_run(
        self,
        rec: JobRecord,
        sched: datetime | None,
        late: float,
        *,
        manual: bool = False,
        attempt: int = 1,
        retry_of: str | None = None,
    ) -> str | None:
        """Start one run if ``max_instances`` allows; the run id, or None when skipped."""
        if rec.running >= rec.opts.max_instances:
            self._skipped(rec, sched, "max_instances")
            return None
        rec.running += 1
        run_id = self._new_run_id()
        clock = self.clock
        started = clock.now()
        if self._observed:
            self._emit(RunStarted(
                job_id=rec.id, scheduled_at=sched, run_id=run_id, started_at=started,
                lateness=late, manual=manual, attempt=attempt, retry_of=retry_of,
            ))
        loop = self._loop
        assert loop is not None
        task = loop.create_task(self._execute(
            rec, run_id, sched, late, started, clock.monotonic(), manual, attempt, retry_of,
        ))
        self._tasks.add(task)  # _execute discards it when done (cheaper than a callback)
        return run_id

    async def _execute(
        self,
        rec: JobRecord,
        run_id: str,
        sched: datetime | None,
        late: float,
        started: datetime,
        t0: float,
        manual: bool,
        attempt: int,
        retry_of: str | None,
    ) -> None:
        try:
            clock = self.clock
            if run_log.isEnabledFor(logging.INFO):
                run_log.info(
                    "Running job %s (run %s, scheduled %s, late %.3f s%s)", rec.id, run_id,
                    sched.isoformat() if sched else "manual", late,
                    f", attempt {attempt}" if attempt > 1 else "",
                )
            executor = self._executor
            assert executor is not None
            try:
                if rec.is_coro and rec.opts.timeout is None:
                    # The common case, without call_job's extra coroutine layer.
                    func = rec.func
                    await (func(*rec.args, **rec.kwargs) if rec.kwargs else func(*rec.args))
                else:
                    await call_job(clock, executor, rec.func, rec.args, rec.kwargs, rec.is_coro,
                                   rec.opts.timeout, rec.id)
            except asyncio.CancelledError:
                rec.running -= 1
                duration = clock.monotonic() - t0
                run_log.warning("Job %s (run %s) cancelled after %.3f s", rec.id, run_id, duration)
                await self._failed(rec, run_id, sched, started, duration, manual, attempt, retry_of,
                                   asyncio.CancelledError("cancelled at shutdown"), "")
                raise
            except Exception as exc:
                rec.running -= 1
                duration = clock.monotonic() - t0
                await self._failed(rec, run_id, sched, started, duration, manual, attempt, retry_of,
                                   exc, traceback.format_exc())
            else:
                rec.running -= 1
                duration = clock.monotonic() - t0
                if run_log.isEnabledFor(logging.INFO):
                    run_log.info("Job %s (run %s) succeeded in %.3f s", rec.id, run_id, duration)
                if self._observed:
                    self._emit(RunSucceeded(
                        job_id=rec.id, scheduled_at=sched, run_id=run_id, started_at=started,
                        duration=duration, manual=manual, attempt=attempt, retry_of=retry_of,
                    ))
                if retry_of is not None:
                    await self._link_retry(retry_of, run_id, started, "succeeded", None, manual)
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)

    async def _failed(
        self,
        rec: JobRecord,
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
        run_log.error(
            "Failed scheduled task %s (run %s, scheduled %s, after %.3f s%s): %s: %s\n%s",
            rec.id, run_id, sched.isoformat() if sched else "manual", duration,
            ", timed out" if timed_out else "", type(exc).__name__, exc, tb.rstrip(),
        )
        record = FailureRecord(
            id=uuid.uuid4().hex, job_id=rec.id, run_id=run_id, scheduled_at=sched,
            started_at=started, duration=duration, exc_type=type(exc).__name__,
            message=str(exc), traceback=tb, timed_out=timed_out, attempt=attempt,
            retry_of=retry_of,
        )
        if self._observed:
            self._emit(RunFailed(
                job_id=rec.id, scheduled_at=sched, run_id=run_id, started_at=started,
                duration=duration, exc_type=record.exc_type, message=record.message,
                traceback=tb, timed_out=timed_out, manual=manual, attempt=attempt,
                retry_of=retry_of,
            ))
        try:
            await self.failure_store.add_failure(record)
        except Exception:
            run_log.exception("could not store the failure record of job %s run %s", rec.id, run_id)
        if retry_of is not None:
            await self._link_retry(retry_of, run_id, started, "failed", record.id, manual)
        if isinstance(exc, asyncio.CancelledError):
            return
        policy = rec.retry
        if policy is not None and attempt < policy.max_attempts and self._running:
            delay = policy.delay(attempt, self._rng)
            origin = retry_of or record.id
            run_log.info("Job %s will be retried in %.3f s (attempt %d of %d)",
                         rec.id, delay, attempt + 1, policy.max_attempts)
            self.clock.call_at(
                self.clock.monotonic() + delay,
                lambda: self._auto_retry(rec, sched, attempt + 1, origin),
            )

    def _auto_retry(self, rec: JobRecord, sched: datetime | None, attempt: int,
                    origin: str) -> None:
        if not self._running or rec.removed:
            return
        self._start_run(rec, sched, 0.0, attempt=attempt, retry_of=origin)

    async def _link_retry(self, failure_id: str, run_id: str, started: datetime,
                          outcome: Any, new_failure: str | None, manual: bool) -> None:
        try:
            await self.failure_store.set_retry(failure_id, RetryAttempt(
                run_id=run_id, started_at=started, outcome=outcome, manual=manual,
                failure_id=new_failure,
            ))
        except Exception:
            run_log.exception("could not link retry %s to failure %s", run_id, failure_id)

    # -- public: run now, retry ------------------------------------------------------
    def run_job(self, job_id: str) -> str:
        """Run a job now, outside its schedule; returns the run id.

        Bounded by ``max_instances`` like any run (``JobBusyError`` when at the limit).
        Call from the loop thread.
        """
        rec = self._record(job_id)
        return self._manual(rec, attempt=1, retry_of=None)

    async def retry_failure(self, failure_id: str) -> str:
        """Re-run a failed call with the same arguments; the attempt is linked to the
        failure record. Returns the new run id."""
        record = await self.failure_store.get_failure(failure_id)
        if record is None:
            raise LookupError(f"no failure record with id {failure_id!r}; GET /failures lists them")
        try:
            rec = self._record(record.job_id)
        except JobLookupError:
            raise JobLookupError(record.job_id) from None
        return self._manual(rec, attempt=record.attempt + 1, retry_of=record.retry_of or record.id)

    def _manual(self, rec: JobRecord, attempt: int, retry_of: str | None) -> str:
        if not self._running:
            raise KernelNotRunningError("start the kernel before running a job by hand")
        if rec.running >= rec.opts.max_instances:
            raise JobBusyError(rec.id, rec.opts.max_instances)
        run_id = self._start_run(rec, None, 0.0, manual=True, attempt=attempt, retry_of=retry_of)
        assert run_id is not None
        return run_id
