"""The fire times of one job, on both clocks (pure arithmetic: every time is passed in).

``sched`` is the scheduled wall time (aware UTC) reported in events; ``deadline`` is the
same instant on the monotonic clock, which is what the timer waits for. Interval jobs
live on elapsed time: fire ``k`` is due at ``anchor_mono + k * interval``, so a slow run
never shifts later ones and a wall-clock step never moves them. Cron and date jobs live
on wall time: their deadline is their wall time mapped through the current
wall-minus-monotonic ``offset``, and is mapped again (:meth:`FireTimes.remap`) when the
wall clock steps.

:class:`FireTimes` is a base class, not a member: a job actor *is* its fire times, so an
idle job stays one compact object.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from .triggers import CronTrigger, DateTrigger, IntervalTrigger, Trigger

__all__ = ("FireTimes",)

NO_INTERVAL = timedelta(0)
"""``interval_td`` of a job that is not on an interval (shared: timedeltas are immutable)."""


class FireTimes:
    """Where a job is on its trigger's sequence of fire times."""

    __slots__ = (
        "anchor_mono",
        "anchor_wall",
        "deadline",
        "interval",
        "interval_td",
        "k",
        "sched",
        "trigger",
        "wall_based",
    )

    def __init__(self, trigger: Trigger) -> None:
        self.deadline = math.inf
        self.sched: datetime | None = None
        self.k = 0
        self.anchor_mono = 0.0
        self.anchor_wall: datetime | None = None
        self.interval = 0.0
        self.interval_td = NO_INTERVAL
        self.trigger = trigger
        self.wall_based = not isinstance(trigger, IntervalTrigger)

    def set_trigger(self, trigger: Trigger) -> None:
        """A new trigger; call :meth:`start` before asking for times again."""
        self.trigger = trigger
        self.wall_based = not isinstance(trigger, IntervalTrigger)

    def start(self, wall_now: datetime, mono_now: float, offset: float, rng: random.Random) -> None:
        """Point at the first fire at or after now (``sched`` None = no more)."""
        trigger = self.trigger
        if isinstance(trigger, IntervalTrigger):
            self.interval_td = interval = trigger.interval
            self.interval = interval.total_seconds()
            if trigger.start_date is None:
                self.anchor_wall = wall_now + trigger.interval
                self.anchor_mono = mono_now + self.interval
                self.k = 0
            else:
                self.anchor_wall = trigger.start_date
                self.anchor_mono = mono_now + (trigger.start_date - wall_now).total_seconds()
                behind = mono_now - self.anchor_mono
                self.k = max(0, math.ceil(behind / self.interval)) if behind > 0 else 0
            self._interval_point(rng)
        elif isinstance(trigger, CronTrigger):
            self._wall_point(trigger.first_fire_time(wall_now), offset)
        elif isinstance(trigger, DateTrigger):
            self._wall_point(trigger.run_date, offset)
        else:  # pragma: no cover - the kernel validates triggers on add
            raise TypeError(f"unsupported trigger {trigger!r}")

    def restore_anchor(
        self, anchor_wall: datetime, wall_now: datetime, mono_now: float, rng: random.Random
    ) -> None:
        """After a restart: an interval job without ``start_date`` goes back to the grid
        whose first fire was ``anchor_wall``, at its first time at or after now."""
        self.anchor_wall = anchor_wall
        self.anchor_mono = mono_now + (anchor_wall - wall_now).total_seconds()
        behind = mono_now - self.anchor_mono
        self.k = max(0, math.ceil(behind / self.interval)) if behind > 0 else 0
        self._interval_point(rng)

    def resume(
        self, wall_now: datetime, mono_now: float, offset: float, rng: random.Random
    ) -> None:
        """After a pause: the next fire at or after now, on the job's original grid."""
        trigger = self.trigger
        if isinstance(trigger, IntervalTrigger):
            behind = mono_now - self.anchor_mono
            if behind > 0:
                self.k = max(self.k, math.ceil(behind / self.interval))
            self._interval_point(rng)
        elif isinstance(trigger, CronTrigger):
            self._wall_point(trigger.first_fire_time(wall_now), offset)
        # A date job keeps its date: if it passed while paused, grace decides.

    def advance(self, offset: float, rng: random.Random) -> None:
        """Move to the fire after the current one (``sched`` None = no more)."""
        trigger = self.trigger
        if isinstance(trigger, IntervalTrigger):
            self.k += 1
            self._interval_point(rng)
        elif isinstance(trigger, CronTrigger):
            assert self.sched is not None
            self._wall_point(trigger.next_fire_time(self.sched), offset)
        else:
            self._wall_point(None, offset)

    def remap(self, offset: float) -> None:
        """The wall clock stepped: map the wall-clock fire time to the monotonic clock again."""
        if self.sched is not None:
            self.deadline = self.sched.timestamp() - offset

    def _interval_point(self, rng: random.Random) -> None:
        trigger = self.trigger
        assert isinstance(trigger, IntervalTrigger)
        assert self.anchor_wall is not None
        k = self.k
        # The first point (every add) is the anchor itself: no timedelta arithmetic.
        nominal = self.anchor_wall + self.interval_td * k if k else self.anchor_wall
        if trigger.end_date is not None and nominal > trigger.end_date:
            self.sched = None
            self.deadline = math.inf
            return
        deadline = self.anchor_mono + self.interval * k
        if trigger.jitter:
            shift = rng.uniform(0.0, trigger.jitter)
            deadline += shift
            nominal += timedelta(seconds=shift)
        self.sched = nominal
        self.deadline = deadline

    def _wall_point(self, when: datetime | None, offset: float) -> None:
        self.sched = when
        self.deadline = math.inf if when is None else when.timestamp() - offset
