"""A hierarchical timer wheel: O(1) insert and cancel, expiry in deadline order.

Pure data structure: no event loop and no clock. The caller passes every time, as float
seconds on the monotonic clock, and asks :meth:`TimerWheel.next_deadline` when to come back.
"""

from __future__ import annotations

import heapq
import itertools
import math
from bisect import bisect_right
from operator import attrgetter
from typing import Generic, TypeVar

import msgspec

__all__ = ("TimerWheel", "WheelEntry")

T = TypeVar("T")

_DEADLINE = attrgetter("deadline")
_SEQ = attrgetter("_seq")

# Chosen with bench/wheel_micro.py --sweep (Python 3.11, 2 cores, N = 100k; µs of CPU):
# ticks of 0.5-5 ms with 1024+ slots all land within noise of each other (insert 0.4-0.7,
# expire 1.5-2.2 per entry, a 1 s steady fire cycle 0.58-0.9); a 0.1 ms tick costs more
# (expire 1.7-3.2, steady up to 1.6) because every entry gets its own slot and heap item.
# 1 ms keeps a level-0 slot at ~10 entries at 10k fires/s and ~100 at 100k/s, so re-sorting
# a slot the caller wakes into between its deadlines stays cheap (5 ms would mean 500), and
# it costs no precision: next_deadline() gives a level-0 slot's exact earliest deadline.
# 4096 slots: level 0 spans 4.1 s (jobs every 1-4 s never cascade), level 1 spans 4.7 h
# (hourly jobs cascade once). Only non-empty slots exist, so the size costs no memory
# (125-138 bytes per entry over the whole sweep) and the heap holds a few thousand slots.
DEFAULT_TICK = 0.001
DEFAULT_WHEEL_SIZE = 4096


# gc=False: entries are not tracked by the cyclic garbage collector. A kernel inserts a new
# long-lived entry per fire; tracked, 100k fires/s promote 100k objects a second into the
# oldest generation and set off a full collection several times a second (measured: 21.9
# -> 5.4 us per fire at 100k jobs/s). The price: an entry must not be the only link of a
# reference cycle. The kernel's record <-> entry pair is broken whenever an entry leaves
# the wheel (expiry, cancel) and for every record at shutdown.
class WheelEntry(msgspec.Struct, Generic[T], eq=False, gc=False):
    """The handle :meth:`TimerWheel.insert` returns: pass it to :meth:`TimerWheel.cancel`.

    Only the wheel creates entries. ``deadline`` and ``item`` are read-only by contract.
    """

    deadline: float
    item: T
    # Global insertion number: ties on ``deadline`` expire in this order.
    _seq: int
    # The bucket holding this entry while it is pending; None once expired or cancelled.
    _bucket: _Bucket[T] | None

    @property
    def pending(self) -> bool:
        """True until the entry expires or is cancelled."""
        return self._bucket is not None

    def __repr__(self) -> str:
        state = "pending" if self._bucket is not None else "done"
        return f"WheelEntry(deadline={self.deadline!r}, item={self.item!r}, {state})"


class _Bucket(msgspec.Struct, Generic[T], eq=False):
    """One slot of one level: the entries whose tick falls in the slot's span.

    ``entries`` may hold cancelled entries (``_bucket is None``) until the next drain or
    compaction; ``dead`` counts them. ``ordered`` is True while a stable sort by deadline
    alone yields (deadline, insertion) order, i.e. no two entries with the same deadline sit
    out of insertion order; only a cascade into a non-empty bucket can break that.
    ``sorted_len`` saves re-sorting a level-0 bucket that nothing joined since its last drain.
    ``wake`` is when the caller must next look at the bucket: the earliest deadline in it
    (possibly of an entry cancelled since) at level 0, the slot's start time above.
    """

    wake: float
    level: int
    key: int
    entries: list[WheelEntry[T]] = msgspec.field(default_factory=list)
    dead: int = 0
    ordered: bool = True
    # len(entries) right after the last sort by deadline: equal means still sorted, since
    # entries only leave the list where this is updated.
    sorted_len: int = 0


class TimerWheel(Generic[T]):
    """Pending items keyed by deadline, expired in (deadline, insertion) order.

    Levels of slots, as in Kafka's ``TimingWheel``: a level-0 slot spans ``tick`` seconds, a
    level-L slot spans a whole level L-1 (``tick * wheel_size**L`` seconds), and an entry too
    far ahead for level L goes to level L+1 (levels are added on demand, so deadlines years
    ahead work). When time reaches a higher-level slot its entries cascade down. Only
    non-empty slots exist; a small heap of their wake times makes :meth:`next_deadline` cheap
    and lets the caller sleep without ticking while idle.

    Concurrency contract: not thread-safe and never awaits. Only the kernel task touches
    the wheel; other threads hand their changes to that task.
    """

    __slots__ = (
        "_counter",
        "_cur",
        "_heap",
        "_heap_limit",
        "_len",
        "_level0",
        "_level1",
        "_levels",
        "_now",
        "_size",
        "_start",
        "_tick",
    )

    def __init__(
        self, start: float, tick: float = DEFAULT_TICK, wheel_size: int = DEFAULT_WHEEL_SIZE
    ) -> None:
        if not math.isfinite(start):
            raise ValueError(f"start {start!r}: must be a finite monotonic time in seconds")
        if not (math.isfinite(tick) and tick > 0):
            raise ValueError(f"tick {tick!r}: must be a positive number of seconds, e.g. 0.001")
        if wheel_size < 2:
            raise ValueError(f"wheel_size {wheel_size!r}: must be at least 2, e.g. 4096")
        self._start = start
        self._tick = tick
        self._size = wheel_size
        # The wheel's current tick and time, as of the last expire() that found something
        # due. Slots are chosen relative to _cur, which never moves back; a stale _cur only
        # puts new entries a level higher than needed.
        self._cur = 0
        self._now = start
        # _levels[L] maps a level-L slot number (absolute, not modulo wheel_size) to its
        # bucket; about wheel_size slots per level are non-empty at most (level 0 also keeps
        # overdue slots until the next expire()).
        self._levels: list[dict[int, _Bucket[T]]] = [{}, {}]
        self._level0 = self._levels[0]
        self._level1 = self._levels[1]
        # (wake, -level, slot) per bucket, higher levels first on equal wake so that a slot
        # cascades before any lower slot it covers is drained. Stale items (the bucket is
        # gone or its wake changed) are skipped when they surface.
        self._heap: list[tuple[float, int, int]] = []
        self._heap_limit = 1024
        self._counter = itertools.count()
        self._len = 0

    def __len__(self) -> int:
        """The number of pending entries."""
        return self._len

    def insert(self, deadline: float, item: T) -> WheelEntry[T]:
        """Schedule ``item`` for ``deadline`` (monotonic seconds) in O(1); return its handle.

        A deadline already past is returned by the next :meth:`expire`.
        """
        start = self._start
        try:
            k = int((deadline - start) / self._tick)
        except (OverflowError, ValueError):
            raise ValueError(
                f"deadline {deadline!r}: must be a finite monotonic time in seconds"
            ) from None
        cur = self._cur
        size = self._size
        if k - cur < size:
            level0 = self._level0
            bucket = level0.get(k)
            if bucket is None:
                bucket = level0[k] = _Bucket(deadline, 0, k)
                heapq.heappush(self._heap, (deadline, 0, k))
            elif deadline < bucket.wake:
                bucket.wake = deadline
                self._push(deadline, 0, k)
        elif (key := k // size) - cur // size < size:
            # Level 1 inline: the common home of anything a few seconds to hours ahead.
            bucket = self._level1.get(key)
            if bucket is None:
                bucket = self._new_far_bucket(1, key)
        else:
            entry = WheelEntry(deadline, item, next(self._counter), None)
            self._place_far(entry, k)
            self._len += 1
            return entry
        # A new entry has the highest insertion number: appending keeps ``ordered``.
        entry = WheelEntry(deadline, item, next(self._counter), bucket)
        bucket.entries.append(entry)
        self._len += 1
        return entry

    def cancel(self, entry: WheelEntry[T]) -> bool:
        """Withdraw ``entry`` in O(1). True if it was pending; False (no-op) otherwise."""
        bucket = entry._bucket
        if bucket is None:
            return False
        entry._bucket = None
        self._len -= 1
        entries = bucket.entries
        dead = bucket.dead + 1
        if dead == len(entries):
            del self._levels[bucket.level][bucket.key]
            # The bucket's heap item is now stale; bound how many such items pile up.
            if len(self._heap) > self._heap_limit:
                self._rebuild_heap()
        elif dead > 8 and dead * 2 > len(entries):
            # Compact so that churn (cancel and re-insert) cannot grow a far bucket without
            # bound; amortised O(1) because at least half the list is dead.
            was_sorted = bucket.sorted_len == len(entries)
            entries[:] = [e for e in entries if e._bucket is not None]
            bucket.sorted_len = len(entries) if was_sorted else -1
            dead = 0
        bucket.dead = dead
        return True

    def next_deadline(self) -> float | None:
        """When to call :meth:`expire` next, or None when nothing is pending.

        Never later than the earliest pending deadline. For a level-0 slot this is the
        exact earliest deadline in it; for a higher slot it is the slot's start. It may be
        earlier than any pending deadline (after cancels); then expire() returns nothing
        and this moves on. After ``expire(now)`` it is greater than ``now``.
        """
        heap = self._heap
        levels = self._levels
        while heap:
            wake, neg_level, key = heap[0]
            bucket = levels[-neg_level].get(key)
            if bucket is not None and bucket.wake == wake:
                return wake
            heapq.heappop(heap)
        return None

    def expire(self, now: float) -> list[T]:
        """Remove and return every pending item with deadline <= ``now``.

        Ordered by (deadline, insertion order); never an item whose deadline is later.
        """
        return [entry.item for entry in self.expire_entries(now)]

    def expire_entries(self, now: float) -> list[WheelEntry[T]]:
        """:meth:`expire`, returning the entries (each no longer pending) instead of the
        items: a caller that works through them later can tell, by its own reference to
        an item's current entry, which ones were cancelled or replaced meanwhile."""
        heap = self._heap
        if not heap or heap[0][0] > now:
            # Nothing due: leave _cur alone (placing relative to an older tick stays correct).
            return []
        if now > self._now:
            self._now = now
            k = int((now - self._start) / self._tick)
            if k > self._cur:
                self._cur = k
        levels = self._levels
        level0 = self._level0
        out: list[WheelEntry[T]] = []
        append = out.append
        heappop = heapq.heappop
        heappush = heapq.heappush
        while heap and heap[0][0] <= now:
            wake, neg_level, key = heappop(heap)
            if neg_level:
                bucket = levels[-neg_level].get(key)
                if bucket is not None and bucket.wake == wake:
                    del levels[-neg_level][key]
                    self._cascade(bucket)
                continue
            bucket = level0.get(key)
            if bucket is None or bucket.wake != wake:
                continue
            entries = bucket.entries
            if len(entries) != bucket.sorted_len:
                if not bucket.ordered:
                    entries.sort(key=_SEQ)
                    bucket.ordered = True
                # Cheap when little changed since the last drain: timsort finds the runs.
                entries.sort(key=_DEADLINE)
            if entries[-1].deadline <= now:
                del level0[key]
                due = entries
            else:
                cut = bisect_right(entries, now, key=_DEADLINE)
                due = entries[:cut]
                del entries[:cut]
                if entries[0]._bucket is None:
                    # Drop cancelled entries at the head so the new wake is a live deadline.
                    dead = 0
                    for entry in entries:
                        if entry._bucket is not None:
                            break
                        dead += 1
                    del entries[:dead]
                    bucket.dead -= dead
                if entries:
                    bucket.sorted_len = len(entries)
                    wake = bucket.wake = entries[0].deadline
                    heappush(heap, (wake, 0, key))
                else:
                    del level0[key]
            for entry in due:
                if entry._bucket is not None:
                    entry._bucket = None
                    append(entry)
                else:
                    bucket.dead -= 1
        self._len -= len(out)
        return out

    def _place_far(self, entry: WheelEntry[T], k: int) -> None:
        """Put ``entry`` (tick ``k``, beyond level 0) into the lowest level that spans it."""
        cur = self._cur
        size = self._size
        level = 1
        span = size
        while k // span - cur // span >= size:
            level += 1
            span *= size
        levels = self._levels
        while len(levels) <= level:
            levels.append({})
        key = k // span
        bucket = levels[level].get(key)
        if bucket is None:
            bucket = self._new_far_bucket(level, key)
        entries = bucket.entries
        if entries and entries[-1]._seq > entry._seq:
            bucket.ordered = False
        entry._bucket = bucket
        entries.append(entry)

    def _new_far_bucket(self, level: int, key: int) -> _Bucket[T]:
        """Create slot ``key`` of ``level`` >= 1, waking at the slot's start."""
        wake = self._tick_start(key * self._size**level)
        bucket = self._levels[level][key] = _Bucket(wake, level, key)
        heapq.heappush(self._heap, (wake, -level, key))
        return bucket

    def _cascade(self, bucket: _Bucket[T]) -> None:
        """Re-insert a due higher-level bucket's entries into lower levels."""
        start = self._start
        tick = self._tick
        cur = self._cur
        size = self._size
        level0 = self._level0
        for entry in bucket.entries:
            if entry._bucket is None:
                continue
            deadline = entry.deadline
            k = int((deadline - start) / tick)
            if k - cur >= size:
                self._place_far(entry, k)
                continue
            target = level0.get(k)
            if target is None:
                target = level0[k] = _Bucket(deadline, 0, k)
                heapq.heappush(self._heap, (deadline, 0, k))
            else:
                if deadline < target.wake:
                    target.wake = deadline
                    self._push(deadline, 0, k)
                entries = target.entries
                if entries and entries[-1]._seq > entry._seq:
                    target.ordered = False
            entry._bucket = target
            target.entries.append(entry)

    def _tick_start(self, k: int) -> float:
        """The earliest time whose tick is >= ``k``: no deadline in tick ``k`` is earlier.

        ``start + k * tick`` can be off by an ulp either way; step to the exact boundary so
        that a slot's wake never comes after a deadline in it.
        """
        start = self._start
        tick = self._tick

        def reached(t: float) -> bool:  # monotonic in t
            return int((t - start) / tick) >= k

        t = start + k * tick
        # Usually the boundary is within an ulp or two of t: step there.
        for _ in range(4):
            before = math.nextafter(t, -math.inf)
            if reached(t) and not reached(before):
                return t
            t = before if reached(t) else math.nextafter(t, math.inf)
        # Where t's ulp is far finer than start's (t near zero, start far from it), one
        # ulp changes nothing and stepping would take forever: bisect between a time
        # before the slot and one in it instead (at most ~64 halvings).
        width = 2 * tick
        lo, hi = start + k * tick - width, start + k * tick + width
        while reached(lo) or not reached(hi):
            width *= 2
            lo, hi = start + k * tick - width, start + k * tick + width
        while True:
            mid = lo + (hi - lo) / 2
            if mid <= lo or mid >= hi:
                return hi
            if reached(mid):
                hi = mid
            else:
                lo = mid

    def _push(self, wake: float, neg_level: int, key: int) -> None:
        """Push a new wake for an existing bucket (its older item goes stale)."""
        heapq.heappush(self._heap, (wake, neg_level, key))
        if len(self._heap) > self._heap_limit:
            self._rebuild_heap()

    def _rebuild_heap(self) -> None:
        """Drop stale heap items; O(buckets), run when stale items outnumber live ones."""
        heap = [
            (bucket.wake, -level, key)
            for level, buckets in enumerate(self._levels)
            for key, bucket in buckets.items()
        ]
        heapq.heapify(heap)
        self._heap = heap
        self._heap_limit = max(1024, 4 * len(heap))
