"""Coordination of several kernel replicas: who runs each scheduled time of a job.

One process needs no coordinator (``Kernel(coordinator=None)``, the default, adds nothing
to the hot path). Each replica fires the jobs it owns (:meth:`Coordinator.owns`: the job
set is partitioned among the live replicas; the others' jobs are parked) on its own
timers; before a *scheduled* run starts, the job's actor asks the coordinator (through
the kernel's claim gate, ``kernel/engine/claims.py``, which batches the claims of one
timer tick and asks them a little ahead of their times) to claim the pair (job id,
scheduled time), one time after the other. Exactly one replica wins
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

**Fencing.** Every won claim carries a *fencing token*, a number the coordinator draws
from one increasing sequence (so it grows per job too), readable inside the run as
``current_run.get().token``. The coordinator keeps the leases of this replica's running
claims alive (:meth:`Coordinator.hold`: one renewal statement per replica per renewal
period, on a connection of its own) and tells the run when its lease is lost (another
replica reaped it) or could not be renewed in time: the run is cancelled at once. Its
outcome is stored only while its token is still the claim's
(:meth:`Coordinator.finish` answers False otherwise), and a side effect in the same
database can be fenced the same way (write only while the claim row still has the
run's token). A replica that dies or pauses past its lease stops renewing; once the
lease has expired a reaper (any replica) marks the claim ``interrupted`` and records a
failure, so the run is never silently lost; the job's retry policy then decides, with
its delay, whether the scheduled time runs again, and that retry takes a claim of its
own (:meth:`Coordinator.claim_retry`: a new token on the same row), never an unclaimed
re-run. Manual runs are not claimed: they are not scheduled times.

**The coordinator's clock decides "due".** A claim for a scheduled time later than the
coordinator's own now (beyond a small tolerance) is not granted: the answer is
``early`` with the seconds to wait, and the replica asks again then. A replica whose
clock runs ahead therefore neither runs early nor takes the time from the others.

Decisions that run nothing (a time missed past its grace, or coalesced into a later
one) are recorded too (:meth:`Coordinator.mark`), and only the replica that records one
first reports it: one ``RunMissed`` per missed time however many replicas there are,
and none at all from a replica whose loop was blocked while another ran that time.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

import msgspec

if TYPE_CHECKING:
    from .port import KernelPort

__all__ = (
    "Claim",
    "ClaimRequest",
    "ClaimState",
    "ClaimVerdict",
    "Coordinator",
    "FinishRequest",
    "LeaseLost",
    "MarkRequest",
    "RunContext",
    "current_run",
)

ClaimVerdict = Literal["won", "taken", "busy", "early"]
"""``won``: run it; ``taken``: another replica has (or had) this time;
``busy``: the job is at ``max_instances`` across replicas (recorded as skipped);
``early``: the time is not due yet on the coordinator's clock (ask again later)."""

ClaimState = Literal[
    "running", "succeeded", "failed", "interrupted", "skipped", "missed", "coalesced",
]


class Claim(msgspec.Struct, frozen=True):
    """The answer to a claim: the verdict, the fencing token of a won claim, and for an
    ``early`` one the seconds until the time is due on the coordinator's clock."""

    verdict: ClaimVerdict
    token: int = 0
    wait: float = 0.0


class ClaimRequest(NamedTuple):
    """One claim of a batch (:meth:`Coordinator.claim_many`)."""

    job_id: str
    scheduled_at: datetime
    run_id: str
    max_instances: int


class MarkRequest(NamedTuple):
    """One decision that runs nothing, of a batch (:meth:`Coordinator.mark_many`)."""

    job_id: str
    scheduled_at: datetime
    state: ClaimState


class FinishRequest(NamedTuple):
    """One outcome of a batch (:meth:`Coordinator.finish_many`)."""

    job_id: str
    scheduled_at: datetime
    run_id: str
    state: ClaimState
    token: int


LeaseLost = Literal["lost", "unrenewable"]
"""Why a held lease ended: ``lost`` (the claim is no longer this run's: reaped or
retried elsewhere), ``unrenewable`` (the coordinator could not be reached before the
lease would expire)."""


class RunContext(msgspec.Struct, frozen=True, kw_only=True):
    """The claimed run the current task is executing (see :data:`current_run`).

    ``token`` is the claim's fencing token: a write fenced by it (kept only while the
    claim still holds this token) is never done twice for one scheduled time."""

    job_id: str
    scheduled_at: datetime
    run_id: str
    attempt: int = 1
    token: int = 0


current_run: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "current_run", default=None
)
"""Set while a claimed run executes, so a remote executor can key its message by it."""


class Coordinator(Protocol):
    """Decides which replica runs each scheduled time; shared by all replicas."""

    replica_id: str
    lease: float
    """Seconds a claim stays live without renewal; the winner renews every third."""
    on_rebalance: Callable[[tuple[str, ...], tuple[str, ...]], None] | None
    """Set by the kernel: called on its loop with the (old, new) live replicas when they
    change, so the jobs it parked (:meth:`owns` said another replica fires them) are timed
    again. A coordinator that never partitions the jobs never calls it."""

    async def attach(self, port: KernelPort) -> None:
        """Called at the end of ``Kernel.start`` with the kernel's port: start background
        work (the reaper)."""
        ...

    async def detach(self) -> None:
        """Called at the end of ``Kernel.shutdown``: stop background work."""
        ...

    def owns(self, job_id: str) -> bool:
        """Whether this replica fires ``job_id`` now (the job set is partitioned among the
        live replicas; the claim still decides who runs each time)."""
        ...

    async def claim(
        self, job_id: str, scheduled_at: datetime, run_id: str, *, max_instances: int
    ) -> Claim:
        """Claim one scheduled time of a job for this replica (see the module doc)."""
        ...

    async def claim_many(self, requests: Sequence[ClaimRequest]) -> Sequence[Claim]:
        """Several claims in one round trip (those of one timer tick), answered in order;
        each as :meth:`claim` would answer it."""
        ...

    async def claim_retry(
        self, job_id: str, scheduled_at: datetime, run_id: str, *, attempt: int,
        max_instances: int,
    ) -> Claim:
        """Claim attempt ``attempt`` of a scheduled time whose previous attempt failed or
        was interrupted: ``won`` with a new token, or ``taken`` (another replica retries
        it, or it is no longer to be retried), or ``busy``."""
        ...

    def hold(self, token: int, on_lost: Callable[[LeaseLost], None]) -> None:
        """Keep the lease of won claim ``token`` alive until :meth:`release`; call
        ``on_lost`` (on the loop) once if it is lost or cannot be renewed in time, at once
        (before returning) if that is so already: the run then does not start."""
        ...

    def release(self, token: int) -> None:
        """Stop renewing the lease of claim ``token``."""
        ...

    async def finish(
        self, job_id: str, scheduled_at: datetime, run_id: str, state: ClaimState, *,
        token: int,
    ) -> bool:
        """Record how a won claim ended (``succeeded`` or ``failed``); False when refused
        because ``token`` is no longer the claim's (fenced off)."""
        ...

    async def finish_many(self, requests: Sequence[FinishRequest]) -> Sequence[bool]:
        """Several outcomes in one round trip, answered in order (as :meth:`finish`)."""
        ...

    async def settle_many(
        self, claims: Sequence[ClaimRequest], finishes: Sequence[FinishRequest]
    ) -> tuple[Sequence[Claim], Sequence[bool]]:
        """:meth:`finish_many` then :meth:`claim_many` in one round trip (and, where the
        coordinator has transactions, one transaction): the outcomes are stored first,
        so the claims do not count the runs they end against ``max_instances``."""
        ...

    async def mark(self, job_id: str, scheduled_at: datetime, state: ClaimState) -> bool:
        """Record a scheduled time that runs nothing (``missed``, ``coalesced``); True if
        this replica recorded it first, and so reports it."""
        ...

    async def mark_many(self, requests: Sequence[MarkRequest]) -> Sequence[bool]:
        """Several :meth:`mark` in one round trip, answered in order (catch-up after
        downtime decides many times that run nothing at once)."""
        ...
