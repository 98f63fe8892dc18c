"""The schedule-state port: what the engine needs of a store (see the package doc)."""

from __future__ import annotations

from typing import Protocol

from ._records import Batch, InFlight, JobState

__all__ = ("ScheduleStore",)


class ScheduleStore(Protocol):
    """Keeps the schedule state of a kernel's jobs.

    Concurrency contract: the kernel calls ``open``, ``load``, ``commit`` and ``close`` on
    its event loop, never two ``commit`` at once and never out of order; ``apply`` is only
    called (synchronously, on the loop) for stores whose ``write_ahead`` is false.
    """

    write_ahead: bool
    """True: a run's body waits until its start is committed (a store that outlives the
    process). False: ``apply`` records a batch at once (memory)."""

    async def open(self) -> None:
        """Connect and create what is missing (idempotent)."""
        ...

    async def close(self) -> None:
        """Release connections and threads (after the last commit)."""
        ...

    async def load(self) -> tuple[dict[str, JobState], list[InFlight]]:
        """Every job's state by job id, and every run in flight (oldest first)."""
        ...

    async def commit(self, batch: Batch) -> None:
        """Record ``batch`` in order, all or nothing (one transaction)."""
        ...

    def apply(self, batch: Batch) -> None:
        """Record ``batch`` at once (stores whose ``write_ahead`` is false)."""
        ...
