"""The scheduled times that fell while no process ran a job (pure arithmetic).

Used at start with the schedule state read back (``kernel.engine.restore``): the times
after the latest one decided before the stop and before the first fire the restarted
kernel handles itself go to the job's actor, which decides them by the policy (misfire
grace, coalesce) like any late fire.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .triggers import CronTrigger, IntervalTrigger, Trigger

__all__ = ("CATCH_UP_LIMIT", "times_between")

# At most this many downtime times are handed over (the newest); older ones are counted.
CATCH_UP_LIMIT = 10_000


def times_between(
    trigger: Trigger, anchor: datetime | None, after: datetime, before: datetime | None
) -> tuple[list[datetime], int]:
    """The trigger's times in (``after``, ``before``), oldest first (``before`` None: no
    bound but the trigger's end); at most the newest :data:`CATCH_UP_LIMIT`, and how many
    older ones were left out. ``anchor`` is an interval job's first fire time (its grid);
    a date job's one time is never a downtime time: the kernel fires it itself."""
    if isinstance(trigger, IntervalTrigger):
        return _interval(trigger, anchor, after, before)
    if not isinstance(trigger, CronTrigger) or before is None:
        return [], 0
    times: list[datetime] = []
    current = trigger.next_fire_time(after)
    while current is not None and current < before:
        times.append(current)
        current = trigger.next_fire_time(current)
    dropped = max(0, len(times) - CATCH_UP_LIMIT)
    return times[dropped:], dropped


def _interval(trigger: IntervalTrigger, anchor: datetime | None, after: datetime,
              before: datetime | None) -> tuple[list[datetime], int]:
    start = trigger.start_date if trigger.start_date is not None else anchor
    if start is None or before is None:
        return [], 0
    step = trigger.interval
    limit = before - timedelta(microseconds=1)
    if trigger.end_date is not None:
        limit = min(limit, trigger.end_date)
    first = 0 if after < start else (after - start) // step + 1
    last = (limit - start) // step if limit >= start else -1
    dropped = max(0, last - first + 1 - CATCH_UP_LIMIT)
    first += dropped
    return [start + step * k for k in range(first, last + 1)], dropped
