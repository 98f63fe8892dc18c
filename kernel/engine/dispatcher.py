"""The dispatcher: one clock timer, the timer wheel and the wall-clock watch.

Concurrency contract: loop thread only; nothing else touches the wheel.

The dispatcher does not run a polling task: it arms one clock timer for the wheel's
next deadline (or for the next wall-clock check while wall-clock jobs are scheduled)
and re-arms it only when that deadline changes. When the timer fires it hands every
due job a Fire (:meth:`Schedulable.fire`); the job's actor decides what the fire means
and schedules its next one. Between ticks, ``schedule``/``unschedule`` re-arm at once.

Bounded ticks: one loop callback fires at most ``_BATCH`` jobs. When more are due at once
(a burst: 100k one-shot jobs at the same instant), the rest wait in ``_due`` and the tick
goes on in the next loop iteration (``loop.call_soon``), after the runs it started have
taken their first step. So the loop stays responsive (I/O, other tasks, a scrape) and
each run's task lives only briefly: a burst never holds 100k fresh tasks at once, which
would promote them into the oldest GC generation and set off full collections over the
whole heap (measured with bench/profile_burst.py). A job waiting in ``_due`` still holds
its expired wheel entry; a job unscheduled meanwhile (or scheduled again) no longer does,
and is skipped: its fire is its new entry's business.

Lead (``lead`` seconds, 0 unless a gate asks for it): a job is fired up to ``lead``
seconds before its deadline, and ticks come at least ``lead / 2`` apart, so the fires of
that half-window go out together. A gate that asks a coordinator before each run (the
claims of several replicas) sets it: the claims of a tick go in one statement, answered
before the times are due, and the gate starts each run at its time (:mod:`.claims`).
Without a gate nothing is fired early.

Wall-clock watch: cron and date jobs are due at wall times, waited for on the
monotonic clock through the wall-minus-monotonic offset. While any of them is in the
wheel, the offset is checked at least every ``wall_check_interval`` seconds; a step
larger than ``_STEP_TOLERANCE`` maps each of them again. The dispatcher keeps the set
of wall-clock jobs in the wheel, maintained where entries are made and dropped, so
whether the watch is on is derived from it, never counted.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from ..clock import Clock, TimerHandle
from .wheel import TimerWheel, WheelEntry

__all__ = ("EPSILON", "Dispatcher", "Schedulable")

log = logging.getLogger("scheduler")
# Timers due within a microsecond count as due: wall times have microsecond resolution.
EPSILON = 1e-6
# A change of wall-minus-monotonic offset larger than this is a clock step, not drift.
_STEP_TOLERANCE = 1.0
# Fires per loop callback (see the module doc). A fire allocates about 6 objects the GC
# tracks (the run's task, coroutine, context, loop handle...), alive until the run's first
# step: 128 fires stay under CPython's gen-0 threshold (700), so a burst runs no collection
# (256 set off one per batch and a full one per 100k). A callback stays well under 1 ms,
# and its own cost (a clock read, a loop handle) is spread over 128 fires.
_BATCH = 128


class Schedulable(Protocol):
    """What the dispatcher needs of a job (a job actor)."""

    entry: WheelEntry[Schedulable] | None
    deadline: float
    sched: datetime | None
    wall_based: bool

    def fire(self, now: float) -> None: ...

    def remap(self, offset: float) -> None: ...


class Dispatcher:
    """Arms the clock for the wheel and the wall-clock watch; fires due jobs."""

    def __init__(self, clock: Clock, wall_check_interval: float) -> None:
        self.clock = clock
        self.wall_check_interval = wall_check_interval
        self.running = False
        self.offset = 0.0  # wall minus monotonic, in seconds, at the last check
        self.wheel: TimerWheel[Schedulable] = TimerWheel(clock.monotonic())
        # The wall-clock jobs in the wheel, in the order they entered it (a dict, so a
        # remap keeps equal deadlines in a deterministic order).
        self._wall: dict[Schedulable, None] = {}
        self._last_wall_check = 0.0
        self._timer: TimerHandle | None = None
        self._timer_deadline = math.inf
        # Expired wheel entries whose jobs have not been fired yet (bounded ticks).
        self._due: deque[WheelEntry[Schedulable]] = deque()
        # The wall time read once for the current loop callback of a tick (None outside).
        self._tick_wall: datetime | None = None
        self._in_tick = False
        self.tick_done: Callable[[], None] | None = None
        """Called after each tick's fires (a gate batches what the tick decided)."""
        self.lead = 0.0
        """Seconds before its deadline a job may be fired (see the module doc)."""
        self._last_tick = -math.inf

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        mono = self.clock.monotonic()
        self.wheel = TimerWheel(mono)
        self.offset = self.clock.now().timestamp() - mono
        self._last_wall_check = mono
        self.running = True

    def stop(self, jobs: list[Schedulable]) -> None:
        """Stop the timer and forget the wheel; ``jobs`` lose their entries (a restart
        schedules each again, and no job <-> entry cycle outlives the wheel)."""
        self.running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = math.inf
        self._due.clear()
        for job in jobs:
            job.entry = None
        self._wall.clear()

    # -- the wheel ------------------------------------------------------------------
    def schedule(self, job: Schedulable) -> None:
        """Put ``job`` in the wheel at its deadline (no-op if it is in already)."""
        if job.entry is not None:
            return
        deadline = job.deadline
        job.entry = self.wheel.insert(deadline, job)
        if job.wall_based:
            wall = self._wall
            wall[job] = None
            if len(wall) == 1 and not self._in_tick:
                self.arm()  # the wall-clock watch starts
                return
        if deadline - self.lead < self._timer_deadline and not self._in_tick:
            # Only a job due before the armed timer moves it: adding 100k jobs due later
            # re-arms nothing.
            self.arm()

    def unschedule(self, job: Schedulable) -> None:
        """Take ``job`` out of the wheel (no-op if it is not in)."""
        entry = job.entry
        if entry is None:
            return
        self.wheel.cancel(entry)
        job.entry = None
        self._wall.pop(job, None)
        if not self._in_tick:
            self.arm()

    def next_tick(self) -> float:
        """When the armed timer is due (monotonic; inf when none, -inf when a bounded
        tick goes on in the next loop iteration)."""
        return self._timer_deadline

    def wall_now(self) -> datetime:
        """The wall time: during a tick, the one reading of this loop callback (every fire
        it hands out starts "now", and a 100k burst does not read the clock 100k times);
        otherwise read now."""
        wall = self._tick_wall
        if wall is None:
            wall = self.clock.now()
            if self._in_tick:
                self._tick_wall = wall
        return wall

    def current_offset(self, mono: float) -> float:
        """Wall minus monotonic: the watched offset while running, else read now."""
        if not self.running:
            return self.clock.now().timestamp() - mono
        return self.offset

    def arm(self) -> None:
        """Arm the clock timer for the next thing due, if that changed."""
        if not self.running or self._due:
            return  # with fires left from a bounded tick, its continuation is queued
        deadline = self.wheel.next_deadline()
        if deadline is None:
            deadline = math.inf
        elif self.lead:
            # Up to lead early, and at least lead / 2 after the last tick.
            deadline = max(deadline - self.lead, self._last_tick + self.lead / 2)
        if self._wall:
            deadline = min(deadline, self._last_wall_check + self.wall_check_interval)
        if deadline == self._timer_deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = deadline
        if deadline != math.inf:
            self._timer = self.clock.call_at(deadline, self._on_timer)

    # -- a tick ---------------------------------------------------------------------
    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = math.inf
        if not self.running:
            return
        now = self.clock.monotonic()
        self._last_tick = now
        self._in_tick = True
        try:
            wall = self._wall
            if wall:
                self._check_wall(now)
            due = self._due
            if not due:
                due.extend(self.wheel.expire_entries(now + self.lead + EPSILON))
            popleft = due.popleft
            for _ in range(min(len(due), _BATCH)):
                entry = popleft()
                job = entry.item
                if job.entry is not entry:
                    continue  # unscheduled (and maybe scheduled again) since it expired
                job.entry = None
                if wall:
                    wall.pop(job, None)
                job.fire(now)
            if self.tick_done is not None:
                self.tick_done()
        finally:
            self._in_tick = False
            self._tick_wall = None
            if self._due:  # (even if a fire raised: the others must not wait forever)
                # Go on in the next loop iteration, after what this part of the tick started.
                self._timer = asyncio.get_running_loop().call_soon(self._on_timer)
                self._timer_deadline = -math.inf
            else:
                self.arm()

    def _check_wall(self, mono: float) -> None:
        """Notice a wall-clock step and map every wall-clock job's time again."""
        self._last_wall_check = mono
        offset = self.wall_now().timestamp() - mono
        step = offset - self.offset
        if abs(step) <= _STEP_TOLERANCE:
            return
        self.offset = offset
        jobs = list(self._wall)
        for job in jobs:
            self.unschedule(job)
            job.remap(offset)
            self.schedule(job)
        log.warning(
            "wall clock stepped by %+.3f s; fire times of %d wall-clock job(s) recomputed",
            step, len(jobs),
        )
