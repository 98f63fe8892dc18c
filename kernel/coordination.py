"""Coordination of several kernel replicas: who runs each scheduled time of a job.

One process needs no coordinator (``Kernel(coordinator=None)``, the default, adds nothing
to the hot path). Replicas that share jobs each fire every scheduled time on their own
timers; before a *scheduled* run starts, the job's actor asks the coordinator (through
the kernel's claim gate, ``kernel/engine/claims.py``) to :meth:`Coordinator.claim` the
pair (job id, scheduled time), one time after the other. Exactly one replica wins
that claim and runs; the others log at DEBUG and emit nothing. Why claims are keyed by
the scheduled time and not by "the next run": every replica computes the same scheduled
times from the same trigger (interval jobs share a stored anchor), so a replica whose
clock is a few seconds off fires a few seconds early or late but asks for the same key,
and finds it taken. Leases are measured on the coordinator's clock (the database's), so
skewed replica clocks do not shorten or stretch them either.

``max_instances`` across replicas: the claim counts the job's live (lease not yet
expired) running claims, this replica's included, and answers ``"busy"`` when the job is
at its limit; the time is then recorded as skipped so no other replica runs it later.
The limit is the claim's to apply: a replica does not check its own running count first.

The winner renews its lease while the run lasts (every third of the lease) and finishes
the claim with the outcome. A replica that dies stops renewing; once the lease has
expired a reaper (any replica) marks the claim ``interrupted`` and records a failure,
so the run is never silently lost, and the scheduled time is never started again
because its claim row still exists. Manual runs and retries are not claimed: they are
not scheduled times, and a retry follows a failure this replica recorded.

Decisions that run nothing (a time missed past its grace, or coalesced into a later
one) are recorded too (:meth:`Coordinator.mark`), and only the replica that records one
first reports it: one ``RunMissed`` per missed time however many replicas there are,
and none at all from a replica whose loop was blocked while another ran that time.
"""

from __future__ import annotations

import contextvars
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

import msgspec

if TYPE_CHECKING:
    from .port import KernelPort

__all__ = (
    "ClaimState",
    "ClaimVerdict",
    "Coordinator",
    "RunContext",
    "current_run",
)

ClaimVerdict = Literal["won", "taken", "busy"]
"""``won``: run it; ``taken``: another replica has (or had) this time;
``busy``: the job is at ``max_instances`` across replicas (recorded as skipped)."""

ClaimState = Literal[
    "running", "succeeded", "failed", "interrupted", "skipped", "missed", "coalesced",
]


class RunContext(msgspec.Struct, frozen=True, kw_only=True):
    """The claimed run the current task is executing (see :data:`current_run`)."""

    job_id: str
    scheduled_at: datetime
    run_id: str
    attempt: int = 1


current_run: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "current_run", default=None
)
"""Set while a claimed run executes, so a remote executor can key its message by it."""


class Coordinator(Protocol):
    """Decides which replica runs each scheduled time; shared by all replicas."""

    replica_id: str
    lease: float
    """Seconds a claim stays live without renewal; the winner renews every third."""

    async def attach(self, port: KernelPort) -> None:
        """Called at the end of ``Kernel.start`` with the kernel's port: start background
        work (the reaper)."""
        ...

    async def detach(self) -> None:
        """Called at the end of ``Kernel.shutdown``: stop background work."""
        ...

    async def claim(
        self, job_id: str, scheduled_at: datetime, run_id: str, *, max_instances: int
    ) -> ClaimVerdict:
        """Claim one scheduled time of a job for this replica (see the module doc)."""
        ...

    async def renew(self, job_id: str, scheduled_at: datetime, run_id: str) -> bool:
        """Extend a won claim's lease; False if the claim is no longer this run's."""
        ...

    async def finish(
        self, job_id: str, scheduled_at: datetime, run_id: str, state: ClaimState
    ) -> None:
        """Record how a won claim ended (``succeeded`` or ``failed``)."""
        ...

    async def mark(self, job_id: str, scheduled_at: datetime, state: ClaimState) -> bool:
        """Record a scheduled time that runs nothing (``missed``, ``coalesced``); True if
        this replica recorded it first, and so reports it."""
        ...
