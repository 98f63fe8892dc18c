"""Schedule state: what the kernel must remember across a restart, and where it keeps it.

Per job (keyed by job id): the definition reference (the callable's import reference and
the trigger's spec), the interval anchor (the first fire time of an interval job without
``start_date``, so its grid survives a restart), since when the definition holds, the
latest scheduled time decided (ran, missed, coalesced or skipped) and the runs in flight.

The engine writes it through a journal (``kernel.engine.journal``) in batches, one per
timer tick: a run's start is recorded before its body starts (write-ahead, for stores
whose ``write_ahead`` is true) and its end after. At start the kernel reads it back
(``kernel.engine.restore``): scheduled times that fell while no process ran are decided
by the usual policy, runs in flight at a crash are recorded ``interrupted``.

Implementations: :class:`~kernel.state.memory.MemoryScheduleStore` (the library's
default: one process's lifetime), :class:`~kernel.state.sqlite.SqliteScheduleStore`
(the service's embedded default, in the service's own database file) and
``kernel.distributed.state_pg.PostgresScheduleStore`` (the cluster tables).
"""

from __future__ import annotations

from ._records import (
    Batch,
    Decided,
    Defined,
    Forgotten,
    InFlight,
    JobState,
    Record,
    RunEnded,
    RunStarted,
    trigger_key,
)
from .port import ScheduleStore

__all__ = (
    "Batch",
    "Decided",
    "Defined",
    "Forgotten",
    "InFlight",
    "JobState",
    "Record",
    "RunEnded",
    "RunStarted",
    "ScheduleStore",
    "trigger_key",
)
