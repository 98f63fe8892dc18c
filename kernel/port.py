"""The kernel's port: all a plug-in (a coordinator, :mod:`kernel.distributed`) reaches.

A plug-in is handed a :class:`KernelPort` when the kernel starts
(:meth:`kernel.coordination.Coordinator.attach`) and talks to the kernel only through it
and the kernel's public API: never through its parts. What it can do is small on
purpose: read the kernel's clock, hand scheduled times to a job's actor to be decided by
the kernel's policy, and report a run that ended elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from .clock import Clock
from .observe.failures import FailureRecord

__all__ = ("KernelPort",)


class KernelPort(Protocol):
    """What plug-ins may ask of a running kernel."""

    @property
    def clock(self) -> Clock:
        """The kernel's clock: every wait of a plug-in is on it."""
        ...

    @property
    def running(self) -> bool:
        """True between the kernel's ``start()`` and ``shutdown()``."""
        ...

    def catch_up(self, job_id: str, times: Sequence[datetime]) -> bool:
        """Scheduled times of a job that fell while no process ran it (oldest first):
        its actor decides them like any late fire (coalesce, misfire grace, claims).
        False when no such job is registered."""
        ...

    async def report_interrupted(self, record: FailureRecord) -> None:
        """A run that ended without its process (a replica died): record the failure,
        report ``RunFailed`` and let the job's retry policy decide, with its delay, whether
        it runs again. The job need not be registered here."""
        ...
