"""From matching wall-clock times to real instants, across daylight-saving changes.

The rules (design.md): a matching local time in the skipped hour (spring forward) runs
once, at the first instant after the gap; in the repeated hour (fall back) a job whose hour
field is fixed runs once, at the first occurrence, while a job whose hour field covers all
24 hours fires at every real instant that matches.

So the fire instants of a schedule in a zone are: for each matching naive local time L,
``primary(L)`` (its only instant; the gap's end when L is skipped; the first occurrence
when L is repeated), plus, for all-hours jobs, the second occurrence of a repeated L.
``primary`` never decreases as L grows, which is what lets :meth:`Schedule.next_after`
stop at the first L whose primary instant is late enough.

One :class:`Schedule` exists per (expression, zone) and is shared by every job using that
pair, with a memo of answered intervals: if ``next_after(a)`` is N, then every ``x`` in
``[a, N)`` has the answer N too, so 10k jobs firing at the same instant, or added within
the same minute, pay for one computation.
"""

from __future__ import annotations

import bisect
import math
import threading
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import Final
from zoneinfo import ZoneInfo

from kernel.schedule._cron import ParsedCron

__all__ = ("Schedule", "gap_end", "schedule_for", "transition_between")

_MEMO_LIMIT: Final = 256  # answered intervals kept per schedule (about 40 KB when full)
_end_of: Final = itemgetter(0)
_ONE_SECOND: Final = timedelta(seconds=1)


def transition_between(zone: ZoneInfo, lo: datetime, hi: datetime) -> datetime:
    """The instant in ``(lo, hi]`` where ``zone``'s offset changes, exact to the second.

    ``lo`` and ``hi`` must straddle exactly one change (tzdata changes fall on whole seconds).
    """
    lo_ts, hi_ts = math.floor(lo.timestamp()), math.ceil(hi.timestamp())
    before = datetime.fromtimestamp(lo_ts, zone).utcoffset()
    # Invariant: the offset at lo_ts is the old one, the offset at hi_ts is the new one.
    while hi_ts - lo_ts > 1:
        mid = (lo_ts + hi_ts) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == before:
            lo_ts = mid
        else:
            hi_ts = mid
    return datetime.fromtimestamp(hi_ts, UTC)


@lru_cache(maxsize=1024)
def gap_end(zone: ZoneInfo, local: datetime) -> datetime:
    """The first real instant after the daylight-saving gap that contains naive ``local``.

    Read with fold=1, ``local`` takes the offset after the change, so it is an instant
    before the change; read with fold=0 it takes the offset before, an instant after it.
    """
    return transition_between(
        zone, local.replace(tzinfo=zone, fold=1), local.replace(tzinfo=zone, fold=0)
    )


class Schedule:
    """The fire instants of one parsed cron expression in one zone."""

    __slots__ = ("_lock", "_memo", "hour_is_wildcard", "parsed", "zone")

    def __init__(self, parsed: ParsedCron, zone: ZoneInfo) -> None:
        self.parsed = parsed
        self.zone = zone
        self.hour_is_wildcard = parsed.hour_is_wildcard
        # Sorted by end: (end, start) means next_after(x) == end for start <= x < end.
        # Replaced whole (copy on write) so lock-free readers always see a consistent list.
        self._memo: list[tuple[datetime, datetime]] = []
        self._lock = threading.Lock()

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire instant strictly after aware ``after``, as aware UTC, or None."""
        if after.tzinfo is None:
            raise ValueError(f"after must be an aware datetime, got naive {after.isoformat()}")
        memo = self._memo
        i = bisect.bisect_right(memo, after, key=_end_of)
        if i < len(memo) and memo[i][1] <= after:
            return memo[i][0]
        try:
            result = self._compute(after)
        except OverflowError:  # within a day of datetime.min/max: no representable answer
            return None
        if result is not None:
            # Kept in UTC: comparisons between datetimes sharing one tzinfo are the cheap ones.
            self._remember(after.astimezone(UTC), result)
        return result

    def _remember(self, start: datetime, end: datetime) -> None:
        with self._lock:
            memo = self._memo
            i = bisect.bisect_left(memo, end, key=_end_of)
            if i < len(memo) and memo[i][0] == end:
                if memo[i][1] <= start:
                    return
                new = [*memo[:i], (end, start), *memo[i + 1 :]]
            else:
                new = [*memo[:i], (end, start), *memo[i:]]
                if len(new) > _MEMO_LIMIT:
                    # The earliest answers are the ones least likely to be asked again.
                    del new[: _MEMO_LIMIT // 2]
            self._memo = new

    def _compute(self, after: datetime) -> datetime | None:
        zone = self.zone
        local = after.astimezone(zone)
        start = local.replace(tzinfo=None)
        best: datetime | None = None  # the earliest second occurrence found so far
        if self.hour_is_wildcard and local.fold == 0:
            overlap = local.utcoffset() - local.replace(fold=1).utcoffset()  # type: ignore[operator]
            if overlap > timedelta(0):
                best = self._pending_repeat(after, start, overlap)
        # Only wall times strictly after `start` can have a first occurrence after `after`:
        # `start` itself maps back to `after` (or, read as its other occurrence, to before it).
        naive = self.parsed.naive_next(start)
        while naive is not None:
            first = naive.replace(tzinfo=zone)
            second = naive.replace(tzinfo=zone, fold=1)
            off_first, off_second = first.utcoffset(), second.utcoffset()
            assert off_first is not None
            assert off_second is not None
            if off_first == off_second:
                primary = (naive - off_first).replace(tzinfo=UTC)
            elif off_first < off_second:  # skipped by a forward change
                primary = gap_end(zone, naive)
            else:  # repeated by a backward change
                primary = (naive - off_first).replace(tzinfo=UTC)
                if primary <= after:
                    # `after` is in the second pass, so is every repeated wall time from
                    # here on: their first occurrences are past.
                    if self.hour_is_wildcard:
                        # Later wall times repeat later, and those after the repeated
                        # range come later still: this second occurrence is the answer.
                        repeat = (naive - off_second).replace(tzinfo=UTC)
                        return repeat if best is None or repeat < best else best
                    naive = self.parsed.naive_next(_repeat_end(zone, naive) - _ONE_SECOND)
                    continue
                if self.hour_is_wildcard:
                    repeat = (naive - off_second).replace(tzinfo=UTC)
                    if best is None or repeat < best:
                        best = repeat
            if primary > after:
                return primary if best is None or primary < best else best
            naive = self.parsed.naive_next(naive)
        return best

    def _pending_repeat(
        self, after: datetime, start: datetime, overlap: timedelta
    ) -> datetime | None:
        """In the first pass of a repeated range, the earliest second occurrence still ahead.

        Wall times from the range's start up to ``start`` have run once and will come round
        again; the first matching one repeats first.
        """
        zone = self.zone
        second_pass = transition_between(zone, after, after + overlap).astimezone(zone)
        candidate = self.parsed.naive_next(second_pass.replace(tzinfo=None) - _ONE_SECOND)
        if candidate is None or candidate > start:
            return None
        return (candidate - second_pass.utcoffset()).replace(tzinfo=UTC)  # type: ignore[operator]


def _repeat_end(zone: ZoneInfo, naive: datetime) -> datetime:
    """The first wall time after the repeated range that contains naive ``naive``."""
    early = naive.replace(tzinfo=zone)
    late = naive.replace(tzinfo=zone, fold=1)
    off_early, off_late = early.utcoffset(), late.utcoffset()
    assert off_early is not None
    assert off_late is not None
    change = transition_between(zone, early, late)
    # The change's wall time on the later offset starts the repeated range; on the earlier
    # offset it ends it.
    return change.astimezone(zone).replace(tzinfo=None) + (off_early - off_late)


_SCHEDULES: dict[tuple[ParsedCron, ZoneInfo], Schedule] = {}
_SCHEDULE_LIMIT: Final = 20_000


def schedule_for(parsed: ParsedCron, zone: ZoneInfo) -> Schedule:
    """The shared schedule of ``parsed`` in ``zone`` (one per pair, so one memo per pair)."""
    key = (parsed, zone)
    schedule = _SCHEDULES.get(key)
    if schedule is None:
        if len(_SCHEDULES) >= _SCHEDULE_LIMIT:
            _SCHEDULES.clear()  # triggers keep their own reference; only sharing is lost
        schedule = _SCHEDULES.setdefault(key, Schedule(parsed, zone))
    return schedule
