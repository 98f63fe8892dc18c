"""The gate for several replicas: each decision of a job actor goes through the claims
of a :class:`~kernel.coordination.Coordinator` (see that module for the protocol).

Only used when the kernel has a coordinator; the single-process path never enters this
module. For each decision of a job, in order:

* **run** - the (job, scheduled time) pair is claimed. ``won``: the run starts here,
  holding a :class:`ClaimLease` (renewed every third of the lease while it runs, finished
  with the outcome; :data:`~kernel.coordination.current_run` is set inside the run).
  ``taken``: another replica has it, nothing is reported. ``busy``: the job is at
  ``max_instances`` across replicas (the claim applies the limit; the local count is not
  consulted), reported skipped. A coordinator that stays unreachable is retried with
  backoff on the kernel's clock until the time would be past the job's misfire grace
  (at most ``CLAIM_PATIENCE`` seconds), then the time is reported missed.
* **missed / coalesced** - recorded with :meth:`Coordinator.mark`; only the replica that
  records it first reports it, so each is reported once however many replicas decided it.

Manual runs and retries do not come here: they are not scheduled times.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from ..clock import Clock
from ..coordination import ClaimState, ClaimVerdict, Coordinator, RunContext, current_run
from ..schedule.policy import decide_one
from .gate import GatedJob, Plan, Verdict

__all__ = ("CLAIM_PATIENCE", "ClaimGate", "ClaimLease")

log = logging.getLogger("scheduler.coordination")

# How long a claim may keep failing (database unreachable) before the scheduled time is
# reported missed, when the job has no shorter misfire grace of its own.
CLAIM_PATIENCE = 60.0
_FINISH_ATTEMPTS = 8


class ClaimLease:
    """A won claim: ``begin`` in the run's task, ``end`` with the outcome."""

    def __init__(self, coordinator: Coordinator, clock: Clock, job_id: str,
                 scheduled_at: datetime, run_id: str) -> None:
        self.coordinator = coordinator
        self.clock = clock
        self.job_id = job_id
        self.scheduled_at = scheduled_at
        self.run_id = run_id
        self._beat: asyncio.Task[None] | None = None

    def begin(self) -> None:
        # The run's task has a context of its own: this setting stays inside the run.
        current_run.set(RunContext(job_id=self.job_id, scheduled_at=self.scheduled_at,
                                   run_id=self.run_id))
        self._beat = asyncio.get_running_loop().create_task(self._heartbeat())

    async def end(self, ok: bool) -> None:
        if self._beat is not None:
            self._beat.cancel()
        delay = 0.2
        for attempt in range(_FINISH_ATTEMPTS):
            try:
                await self.coordinator.finish(self.job_id, self.scheduled_at, self.run_id,
                                              "succeeded" if ok else "failed")
                return
            except Exception as exc:
                if attempt == _FINISH_ATTEMPTS - 1:
                    log.error("Could not record the end of job %s run %s: %s: %s; its lease "
                              "will expire and it will be reported interrupted", self.job_id,
                              self.run_id, type(exc).__name__, exc)
                    return
                await self.clock.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _heartbeat(self) -> None:
        period = self.coordinator.lease / 3
        while True:
            await self.clock.sleep(period)
            try:
                if not await self.coordinator.renew(self.job_id, self.scheduled_at,
                                                    self.run_id):
                    log.error(
                        "Lease of job %s run %s (scheduled %s) was lost: another replica "
                        "marked it interrupted; the run goes on here but its outcome will not "
                        "be recorded in the claim", self.job_id, self.run_id, self.scheduled_at,
                    )
                    return
            except Exception as exc:
                log.warning("Could not renew the lease of job %s run %s: %s: %s",
                            self.job_id, self.run_id, type(exc).__name__, exc)


class ClaimGate:
    """The :class:`~.gate.Gate` of a coordinated kernel (see the module doc)."""

    max_instances_across_replicas = True

    def __init__(self, coordinator: Coordinator, clock: Clock, new_run_id: Callable[[], str],
                 running: Callable[[], bool]) -> None:
        self.coordinator = coordinator
        self.clock = clock
        self._new_run_id = new_run_id
        self._running = running

    def tick_done(self) -> None:
        """Claims are made one by one today; a batching coordinator would send here."""

    async def admit(self, job: GatedJob, plans: Sequence[Plan]) -> None:
        for plan in plans:
            if plan.action == "run":
                await self._claim_and_apply(job, plan)
            elif plan.action in ("missed", "coalesced"):
                first = await self._mark(job.id, plan.scheduled_at, plan.action)
                verdict: Verdict = plan.action if first else "elsewhere"
                job.apply_verdict(plan, verdict, plan.lateness, None)
            else:  # max_instances is the claim's to decide; a policy never says it here
                job.apply_verdict(plan, plan.action, plan.lateness, None)

    async def _claim_and_apply(self, job: GatedJob, plan: Plan) -> None:
        run_id = self._new_run_id()
        answer = await self._claim(job, plan, run_id)
        lateness = plan.lateness + self.clock.monotonic() - plan.decided_at
        if answer == "won":
            lease = ClaimLease(self.coordinator, self.clock, job.id, plan.scheduled_at, run_id)
            job.apply_verdict(plan, "run", lateness, lease)
        elif answer == "busy":
            job.apply_verdict(plan, "max_instances", lateness, None)
        elif answer == "taken":
            log.debug("Run of job %s scheduled at %s is another replica's", job.id,
                      plan.scheduled_at)
        else:
            job.apply_verdict(plan, "missed", lateness, None)

    async def _claim(self, job: GatedJob, plan: Plan, run_id: str) -> ClaimVerdict | None:
        """The verdict, or None when the coordinator stayed unreachable past the job's
        grace (or ``CLAIM_PATIENCE``)."""
        clock = self.clock
        grace = job.opts.misfire_grace_time
        patience = CLAIM_PATIENCE if grace is None else min(grace, CLAIM_PATIENCE)
        delay = 0.1
        while True:
            try:
                return await self.coordinator.claim(job.id, plan.scheduled_at, run_id,
                                                    max_instances=job.opts.max_instances)
            except Exception as exc:
                waited = plan.lateness + clock.monotonic() - plan.decided_at
                gave_up = decide_one(waited + delay, grace=patience, max_instances=None,
                                     running=0) == "missed"
                if gave_up or not self._running():
                    log.error(
                        "Could not claim job %s scheduled at %s for %.1f s (%s: %s); "
                        "not running it here", job.id, plan.scheduled_at, waited,
                        type(exc).__name__, exc,
                    )
                    return None
                log.warning("Claim of job %s scheduled at %s failed (%s: %s); retrying in "
                            "%.1f s", job.id, plan.scheduled_at, type(exc).__name__, exc, delay)
                await clock.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _mark(self, job_id: str, scheduled_at: datetime, state: ClaimState) -> bool:
        try:
            return await self.coordinator.mark(job_id, scheduled_at, state)
        except Exception as exc:
            log.warning("could not record the %s time %s of job %s (%s: %s); reporting it "
                        "here", state, scheduled_at, job_id, type(exc).__name__, exc)
            return True
