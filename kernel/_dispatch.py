"""The timer half of the kernel and the fire half of each job actor (loop thread only).

One clock timer is armed for the wheel's next deadline (or for the wall-clock check while
wall-clock jobs exist); when it fires, every due entry is handed to its job's actor logic,
which maps the due scheduled times through misfire grace, coalescing and max_instances and
starts runs. Mixed into :class:`kernel.Kernel`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from ._coordinated import record_decision
from ._policy import decide
from ._records import JobRecord
from .events import JobRemoved, RunMissed, RunSkipped

if TYPE_CHECKING:
    import asyncio
    import random

    from ._wheel import TimerWheel
    from .clock import Clock, TimerHandle
    from .coordination import Coordinator
    from .events import Event
    from .kernel import Kernel

__all__ = ()

log = logging.getLogger("scheduler")
# Timers due within a microsecond count as due: wall times have microsecond resolution.
_EPSILON = 1e-6
# A change of wall-minus-monotonic offset larger than this is a clock step, not drift.
_STEP_TOLERANCE = 1.0


class DispatchMixin:
    """Arming the kernel's timer, expiring the wheel, and handling each Fire."""

    if TYPE_CHECKING:  # provided by Kernel
        clock: Clock
        wall_check_interval: float
        _running: bool
        _loop: asyncio.AbstractEventLoop | None
        _loop_thread: int | None
        _lock: threading.RLock
        _jobs: dict[str, JobRecord]
        _wheel: TimerWheel[JobRecord]
        _wall_jobs: int
        _offset: float
        _last_wall_check: float
        _timer: TimerHandle | None
        _timer_deadline: float
        _rng: random.Random
        _observed: bool
        _coordinator: Coordinator | None

        def _emit(self, event: Event) -> None: ...
        def _start_run(
            self, rec: JobRecord, sched: datetime | None, late: float, *,
            manual: bool = False, attempt: int = 1, retry_of: str | None = None,
        ) -> str | None: ...

    # -- the wheel and the timer (loop thread only) -----------------------------------
    def _on_loop(self, func: Callable[..., None], *args: Any) -> None:
        """Run ``func`` on the loop thread: now if we are on it, else thread-safely."""
        if not self._running or self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            func(*args)
        else:
            self._loop.call_soon_threadsafe(self._guarded, func, *args)

    def _guarded(self, func: Callable[..., None], *args: Any) -> None:
        if self._running:
            func(*args)

    def _schedule(self, rec: JobRecord) -> None:
        if rec.paused or rec.removed or rec.entry is not None:
            return
        if rec.sched is None:
            self._finish(rec)
            return
        rec.entry = self._wheel.insert(rec.deadline, rec)
        if rec.wall_based:
            self._wall_jobs += 1

    def _unschedule(self, rec: JobRecord) -> None:
        if rec.entry is not None:
            self._wheel.cancel(rec.entry)
            rec.entry = None
            if rec.wall_based:
                self._wall_jobs -= 1

    def _finish(self, rec: JobRecord) -> None:
        """The trigger has no more fire times: the job leaves the registry."""
        with self._lock:
            if self._jobs.get(rec.id) is rec:
                del self._jobs[rec.id]
        rec.removed = True
        if self._observed:
            self._emit(JobRemoved(job_id=rec.id, scheduled_at=None))

    def _current_offset(self, mono: float) -> float:
        if not self._running:
            return self.clock.now().timestamp() - mono
        return self._offset

    def _arm(self) -> None:
        if not self._running:
            return
        deadline = self._wheel.next_deadline()
        if deadline is None:
            deadline = math.inf
        if self._wall_jobs:
            deadline = min(deadline, self._last_wall_check + self.wall_check_interval)
        if deadline == self._timer_deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = deadline
        if deadline != math.inf:
            self._timer = self.clock.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = math.inf
        if not self._running:
            return
        clock = self.clock
        now = clock.monotonic()
        if self._wall_jobs:
            self._check_wall(now)
        for rec in self._wheel.expire(now + _EPSILON):
            rec.entry = None
            if rec.wall_based:
                self._wall_jobs -= 1
            self._fire(rec, now)
        self._arm()

    def _check_wall(self, mono: float) -> None:
        """Notice a wall-clock step and map every wall-clock job's time again."""
        self._last_wall_check = mono
        offset = self.clock.now().timestamp() - mono
        step = offset - self._offset
        if abs(step) <= _STEP_TOLERANCE:
            return
        self._offset = offset
        with self._lock:
            records = [r for r in self._jobs.values() if r.wall_based and r.entry is not None]
        for rec in records:
            self._unschedule(rec)
            rec.remap(offset)
            self._schedule(rec)
        log.warning(
            "wall clock stepped by %+.3f s; fire times of %d wall-clock job(s) recomputed",
            step, len(records),
        )

    # -- the job actor: one fire --------------------------------------------------------
    def _fire(self, rec: JobRecord, now: float) -> None:
        """Handle a Fire for ``rec``: every scheduled time now due, then the next one."""
        if rec.removed or rec.paused:
            return
        if rec.wall_based and rec.sched is not None:
            # Against the wall clock itself, not the offset recorded at the last step: a
            # drift or a step below _STEP_TOLERANCE can wake the kernel a little early.
            early = rec.sched.timestamp() - self.clock.now().timestamp()
            if early > _EPSILON:
                # Woken before the wall clock reached the fire time: wait the rest.
                rec.deadline = now + early
                self._schedule(rec)
                return
        offset = self._offset
        rng = self._rng
        sched = rec.sched
        late = now - rec.deadline
        rec.advance(offset, rng)
        opts = rec.opts
        if rec.deadline > now + _EPSILON:
            # The common case: exactly one scheduled time is due.
            grace = opts.misfire_grace_time
            if grace is not None and late > grace:
                self._missed(rec, sched, late)
            else:
                self._start_run(rec, sched, late)
        else:
            due = [(sched, late)]
            while rec.sched is not None and rec.deadline <= now + _EPSILON:
                due.append((rec.sched, now - rec.deadline))
                rec.advance(offset, rng)
            actions = decide([d[1] for d in due], coalesce=opts.coalesce,
                             grace=opts.misfire_grace_time)
            for (when, lateness), action in zip(due, actions, strict=True):
                if action == "run":
                    self._start_run(rec, when, lateness)
                elif action == "missed":
                    self._missed(rec, when, lateness)
                else:
                    self._skipped(rec, when, "coalesced")
        if not rec.removed:
            self._schedule(rec)

    def _missed(self, rec: JobRecord, sched: datetime | None, late: float, *,
                decided: bool = False) -> None:
        if self._coordinator is not None and sched is not None and not decided:
            # Replicas: reported by the one that records the decision first (if any).
            record_decision(cast("Kernel", self), rec, sched, "missed", late)
            return
        log.warning(
            "Run of job %s scheduled at %s was missed by %.3f s (misfire_grace_time=%s)",
            rec.id, sched, late, rec.opts.misfire_grace_time,
        )
        if self._observed:
            self._emit(RunMissed(job_id=rec.id, scheduled_at=sched, lateness=late))

    def _skipped(self, rec: JobRecord, sched: datetime | None, reason: Any, *,
                 decided: bool = False) -> None:
        if (self._coordinator is not None and sched is not None and not decided
                and reason == "coalesced"):
            record_decision(cast("Kernel", self), rec, sched, "coalesced", 0.0)
            return
        if reason == "max_instances":
            log.warning(
                "Run of job %s scheduled at %s skipped: maximum number of running instances "
                "reached (%d)", rec.id, sched, rec.opts.max_instances,
            )
        elif log.isEnabledFor(logging.INFO):
            log.info("Run of job %s scheduled at %s skipped: coalesced", rec.id, sched)
        if self._observed:
            self._emit(RunSkipped(job_id=rec.id, scheduled_at=sched, reason=reason))
