"""The seam between a job actor's decisions and their effects.

A job actor decides what its due times mean (:mod:`kernel.schedule.policy`) and, in one
process, applies the decisions at once. With a :class:`Gate` the decisions first go
through it, in order, and the gate answers a :data:`Verdict` per decision: today the
claims of several replicas (:mod:`.claims`: one replica runs each scheduled time, a
time another replica decided is not reported twice). While a gate works on a job's
decisions, that job's later messages wait in its mailbox, so they stay in order.

Where later work plugs in:

* a schedule-state store (issue 12) journals each decision and each run start before
  the run's body starts: a gate whose verdict is given once the journal write is done;
* claims with fencing tokens, batched (issue 13, :mod:`.claims`): the actors one tick
  wakes ask in the same turn of the loop, and the claim gate sends their claims (and,
  later, their outcomes) in one statement per turn.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Literal, NamedTuple, Protocol

from ..job import JobOptions
from ..schedule.policy import Action

__all__ = ("Gate", "GatedJob", "Lease", "Plan", "RetryOwner", "Verdict")

Verdict = Literal["run", "missed", "coalesced", "max_instances", "elsewhere"]
"""What to do with a decision: run it; report it missed or skipped (coalesced,
max_instances); or say nothing because another replica decided this time."""


class Plan(NamedTuple):
    """One decision of a job actor, on its way through a gate."""

    action: Action
    scheduled_at: datetime
    lateness: float  # seconds, when decided
    decided_at: float  # monotonic time of the decision


class Lease(Protocol):
    """A run's hold on its scheduled time (a claim), kept while the run lasts."""

    run_id: str
    @property
    def lost(self) -> str | None:
        """Set when the hold ended early (the run was then cancelled by the lease)."""
        ...

    def begin(self) -> None:
        """Called in the run's task just before the body starts; sets :attr:`lost` at
        once if the hold is gone already (the body then does not start)."""
        ...

    def settle(self) -> None:
        """Called in the run's task as soon as the body has ended."""
        ...

    async def end(self, ok: bool) -> None:
        """Called in the run's task once its outcome is recorded."""
        ...


class GatedJob(Protocol):
    """What a gate sees of a job actor."""

    id: str
    opts: JobOptions
    running: int
    """This replica's runs of the job that have not ended."""

    def apply_verdict(
        self, plan: Plan, verdict: Verdict, lateness: float, lease: Lease | None
    ) -> None:
        """Carry out ``verdict`` for ``plan`` (``lateness``: as of now)."""
        ...


class RetryOwner(GatedJob, Protocol):
    """What a gate needs of a job actor to start a claimed retry."""

    def start_retry(self, scheduled_at: datetime, attempt: int, retry_of: str,
                    lease: Lease) -> None:
        """Start attempt ``attempt`` of ``scheduled_at`` holding ``lease``."""
        ...

    def report_retry_skipped(self, scheduled_at: datetime) -> None:
        """The retry was refused by ``max_instances``."""
        ...


class Gate(Protocol):
    """Gives each decision of a job actor its verdict (see the module doc)."""

    max_instances_across_replicas: bool
    """True when the gate applies ``max_instances`` itself (the policy then does not)."""

    lead: float
    """Seconds before its time a decision may be handed to the gate (the dispatcher fires
    that early); the gate starts a run at its time, not before."""

    def owns(self, job_id: str) -> bool:
        """Whether this replica fires ``job_id`` now; a job it does not is parked (out of
        the timer wheel) until the replicas change."""
        ...

    def admit(self, job: GatedJob, plans: Sequence[Plan]) -> Awaitable[None] | None:
        """Resolve ``plans`` in order, calling ``job.apply_verdict`` for each; None when
        there is nothing to wait for (and nothing is applied: another replica fires the
        job)."""
        ...

    def retry(self, job: RetryOwner, scheduled_at: datetime, attempt: int,
              retry_of: str) -> Awaitable[None]:
        """Claim a retry of a scheduled time and start it through ``job`` if won."""
        ...

    def tick_done(self) -> None:
        """The timer tick that called ``admit`` for its jobs is over."""
        ...

    def started(self) -> None:
        """The kernel starts (again)."""
        ...

    def stopping(self) -> None:
        """The kernel is stopping: nothing admitted waits for its time any more."""
        ...
