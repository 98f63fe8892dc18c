"""Placeholder timer queue with the TimerWheel API (a binary heap), until the
hierarchical wheel lands. Only the loop thread touches it."""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ("TimerWheel", "WheelEntry")


class WheelEntry(Generic[T]):
    __slots__ = ("deadline", "item", "pending", "seq")

    def __init__(self, deadline: float, seq: int, item: T) -> None:
        self.deadline = deadline
        self.seq = seq
        self.item = item
        self.pending = True

    def __lt__(self, other: WheelEntry[T]) -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)


class TimerWheel(Generic[T]):
    def __init__(self, start: float, tick: float = 0.001, wheel_size: int = 256) -> None:
        self._heap: list[WheelEntry[T]] = []
        self._seq = itertools.count()
        self._count = 0

    def insert(self, deadline: float, item: T) -> WheelEntry[T]:
        entry = WheelEntry(deadline, next(self._seq), item)
        heapq.heappush(self._heap, entry)
        self._count += 1
        return entry

    def cancel(self, entry: WheelEntry[T]) -> bool:
        if not entry.pending:
            return False
        entry.pending = False
        self._count -= 1
        return True

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and not heap[0].pending:
            heapq.heappop(heap)
        return heap[0].deadline if heap else None

    def expire(self, now: float) -> list[T]:
        heap = self._heap
        out: list[T] = []
        while heap and heap[0].deadline <= now:
            entry = heapq.heappop(heap)
            if entry.pending:
                entry.pending = False
                self._count -= 1
                out.append(entry.item)
        return out

    def __len__(self) -> int:
        return self._count
