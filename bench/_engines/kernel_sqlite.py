"""``kernel.Kernel`` with its schedule state journaled to SQLite (issue 12).

``kernel-sqlite`` is the ``kernel`` engine with ``schedule_store=SqliteScheduleStore``
on a fresh file in a temporary directory (removed by ``stop()``): WAL mode,
``synchronous=NORMAL``, one transaction per timer tick, each run's body waiting until its
start is committed (write-ahead). ``kernel-sqlite-full`` is the same with
``synchronous=FULL`` (an fsync per commit), to show what that setting costs. Settings
otherwise as for ``kernel``: ``coalesce=False``, ``max_instances=1000``,
``misfire_grace_time=3600``, timezone UTC.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench._engines.kernel import KernelEngine, probe
from bench._measure import TimeBase

__all__ = ("SqliteFullKernelEngine", "SqliteKernelEngine", "probe")


class SqliteKernelEngine(KernelEngine):
    """``kernel.Kernel`` journaling to a SQLite file (see the module doc)."""

    synchronous = "NORMAL"

    def __init__(self, tb: TimeBase) -> None:
        from kernel import JobDefaults, Kernel
        from kernel.state.sqlite import SqliteScheduleStore

        super().__init__(tb)
        self.dir = Path(tempfile.mkdtemp(prefix="bench-state-"))
        self.k = Kernel(
            timezone="UTC",
            job_defaults=JobDefaults(coalesce=False, max_instances=1000, misfire_grace_time=3600),
            schedule_store=SqliteScheduleStore(self.dir / "state.db",
                                               synchronous=self.synchronous),
        )

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class SqliteFullKernelEngine(SqliteKernelEngine):
    """The same with ``synchronous=FULL``."""

    synchronous = "FULL"
