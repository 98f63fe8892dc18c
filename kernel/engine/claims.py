"""The gate for several replicas: each decision of a job actor goes through the claims
of a :class:`~kernel.coordination.Coordinator` (see that module for the protocol).

Only used when the kernel has a coordinator; the single-process path never enters this
module. For each decision of a job, in order:

* **run** - the (job, scheduled time) pair is claimed, ``CLAIM_LEAD`` seconds before the
  time (the dispatcher fires the job that early, and the fires of half that window
  together, so their claims go in one statement and are answered before the time:
  the round trip is not lateness). ``won``: the run starts here at the time,
  holding a :class:`ClaimLease` (its fencing token in
  :data:`~kernel.coordination.current_run`; the coordinator keeps the lease alive and
  the run is cancelled at once if it is lost; finished with the outcome, fenced by the
  token). ``taken``: another replica has it, nothing is reported. ``busy``: the job is
  at ``max_instances`` across replicas (the claim applies the limit; the local count is
  not consulted), reported skipped. ``early``: not due yet on the coordinator's clock
  (this replica's clock runs ahead): wait what it says and ask again, in the
  batch of that turn of the loop. A coordinator that
  stays unreachable is retried with backoff on the kernel's clock until the time would
  be past the job's misfire grace (at most ``CLAIM_PATIENCE`` seconds), then the time is
  reported missed.
* **missed / coalesced** - recorded with :meth:`Coordinator.mark_many` (those asked in one
  turn of the loop together: catch-up after downtime decides thousands at once); only the
  replica that records one first reports it, so each is reported once however many
  replicas decided it.

Claims asked in one turn of the loop go to the coordinator together, with the outcomes
waiting to be stored (:meth:`Coordinator.settle_many`: outcomes first, one statement and
one commit; :meth:`Coordinator.claim_many` when there are none). An outcome waits for the
next tick's claims when that tick is at most half the lead away (a busy replica), else it
is stored at once (:meth:`Coordinator.finish_many`, with the others of that turn). At most
``MAX_IN_FLIGHT`` statements of each kind are in flight, and what is asked meanwhile
waits for one of them to answer and goes in the next (group commit: no added wait while
the coordinator keeps up, bigger batches and fewer statements per fire when it does not).

Retries of a scheduled run (:meth:`ClaimGate.retry`) take a claim of their own
(:meth:`Coordinator.claim_retry`), so one attempt runs once across replicas. Manual runs
do not come here: they are not scheduled times.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from ..clock import Clock, TimerHandle
from ..coordination import (
    Claim,
    ClaimRequest,
    ClaimState,
    Coordinator,
    FinishRequest,
    LeaseLost,
    MarkRequest,
    RunContext,
    current_run,
)
from ..schedule.policy import decide_one
from .gate import GatedJob, Plan, RetryOwner, Verdict

__all__ = ("CLAIM_PATIENCE", "ClaimGate", "ClaimLease")

R = TypeVar("R")
A = TypeVar("A")

log = logging.getLogger("scheduler.coordination")

# How long a claim may keep failing (database unreachable) before the scheduled time is
# reported missed, when the job has no shorter misfire grace of its own.
CLAIM_PATIENCE = 60.0
_FINISH_ATTEMPTS = 8


# How often a replica whose clock runs ahead says so as a warning (seconds).
_AHEAD_WARN_EVERY = 600

# The longest wait for a time that is not due yet on the coordinator's clock before asking
# again (a clock far ahead still asks at least this often).
_EARLY_WAIT_MAX = 30.0
# Batches being sent (a reference keeps each task alive until it is done).
_SENDING: set[asyncio.Task[None]] = set()
MAX_IN_FLIGHT = 2
"""Claim (and outcome) statements a replica has in flight at once; see ``ClaimGate``."""
CLAIM_LEAD = 0.03
"""Seconds before a scheduled time its claim is asked (see ``ClaimGate``). Below the
coordinator's due tolerance (50 ms for PostgreSQL) with room for a replica clock a little
ahead of the database's: such a claim is granted, and its run starts at the time."""


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _settle_all(batch: Sequence[tuple[object, asyncio.Future[Any]]],
                answers: Sequence[Any]) -> None:
    """Give each asker of ``batch`` its answer (one still waiting: a cancelled one is not)."""
    for (_, future), answer in zip(batch, answers, strict=True):
        if not future.done():
            future.set_result(answer)


def _fail(batch: Sequence[tuple[object, asyncio.Future[Any]]], exc: Exception) -> None:
    """A statement carrying these outcomes failed: each lease retries its own alone."""
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
            # Retrieved here: a run cancelled meanwhile (shutdown) no longer waits for
            # it, and the loop would report it; one still waiting gets it.
            future.exception()


class _Batcher(Generic[R, A]):
    """Requests asked in one turn of the loop go to ``send`` together, in one statement; at
    most ``MAX_IN_FLIGHT`` statements are in flight, and what is asked meanwhile goes in
    the next. Each asker's future gets its answer, or the statement's exception."""

    def __init__(self, send: Callable[[list[R]], Awaitable[Sequence[A]]]) -> None:
        self._send = send
        self._queue: list[tuple[R, asyncio.Future[A]]] = []
        self._in_flight = 0

    @property
    def pending(self) -> bool:
        """Requests are waiting to be sent."""
        return bool(self._queue)

    def ask(self, request: R) -> asyncio.Future[A]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[A] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((request, future))
        return future

    def _flush(self) -> None:
        if self._in_flight >= MAX_IN_FLIGHT or not self._queue:
            return  # sent when a statement in flight answers, with what comes meanwhile
        batch, self._queue = self._queue, []
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._run(batch))
        _SENDING.add(task)
        task.add_done_callback(_SENDING.discard)

    async def _run(self, batch: list[tuple[R, asyncio.Future[A]]]) -> None:
        try:
            answers = await self._send([request for request, _ in batch])
        except Exception as exc:
            _fail(batch, exc)
            return
        finally:
            self._in_flight -= 1
            self._flush()
        _settle_all(batch, answers)


class ClaimLease:
    """A won claim: ``begin`` in the run's task, ``settle`` when the body has ended,
    ``end`` with the outcome. ``lost`` says why the lease ended early (None: held)."""

    __slots__ = ("_begun", "_task", "attempt", "clock", "coordinator", "finisher", "job_id", "lost",
                 "run_id", "scheduled_at", "token")

    def __init__(self, coordinator: Coordinator, clock: Clock, job_id: str,
                 scheduled_at: datetime, run_id: str, token: int, attempt: int = 1,
                 finisher: Callable[[FinishRequest], Awaitable[bool]] | None = None) -> None:
        self.finisher = finisher
        self.coordinator = coordinator
        self.clock = clock
        self.job_id = job_id
        self.scheduled_at = scheduled_at
        self.run_id = run_id
        self.token = token
        self.attempt = attempt
        self.lost: LeaseLost | None = None
        self._task: asyncio.Task[object] | None = None
        self._begun = False

    def begin(self) -> None:
        # The run's task has a context of its own: this setting stays inside the run.
        current_run.set(RunContext(job_id=self.job_id, scheduled_at=self.scheduled_at,
                                   run_id=self.run_id, attempt=self.attempt, token=self.token))
        self.coordinator.hold(self.token, self._on_lost)
        self._begun = True
        if self.lost is None:  # else lost already: the runner does not start the body
            self._task = asyncio.current_task()

    def settle(self) -> None:
        """The body has ended: a lease lost from now on no longer cancels anything."""
        self._task = None

    def _on_lost(self, why: LeaseLost) -> None:
        if self.lost is not None:
            return
        self.lost = why
        task = self._task
        log.error(
            "Lease of job %s run %s (scheduled %s, token %d) %s; %s", self.job_id, self.run_id,
            self.scheduled_at, self.token,
            "was lost: another replica recorded it interrupted" if why == "lost" else
            "could not be renewed before it would expire",
            "cancelling the run" if task is not None else
            "not starting the run" if not self._begun else "its outcome will not be stored",
        )
        if task is not None and not task.done():
            task.cancel()

    async def end(self, ok: bool) -> None:
        self.coordinator.release(self.token)
        self._task = None
        if self.lost is not None:
            # The claim is (or will be, once its lease expires) recorded interrupted by a
            # reaper, with the failure record and the job's retry policy: nothing to store.
            return
        delay = 0.2
        for attempt in range(_FINISH_ATTEMPTS):
            state: ClaimState = "succeeded" if ok else "failed"
            try:
                if self.finisher is not None and attempt == 0:
                    # With the other outcomes of this turn of the loop, in one statement.
                    stored = await self.finisher(FinishRequest(
                        self.job_id, self.scheduled_at, self.run_id, state, self.token))
                else:
                    stored = await self.coordinator.finish(
                        self.job_id, self.scheduled_at, self.run_id, state, token=self.token)
            except Exception as exc:
                if attempt == _FINISH_ATTEMPTS - 1:
                    log.error("Could not record the end of job %s run %s: %s: %s; its lease "
                              "will expire and it will be reported interrupted", self.job_id,
                              self.run_id, type(exc).__name__, exc)
                    return
                await self.clock.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                if not stored:
                    log.warning(
                        "Outcome of job %s run %s (scheduled %s) refused: its fencing token "
                        "%d is stale (its lease was lost while this process was paused or cut "
                        "off; the claim stays as the reaper recorded it, and writes fenced by "
                        "the token were refused too)", self.job_id, self.run_id,
                        self.scheduled_at, self.token)
                return


class ClaimGate:
    """The :class:`~.gate.Gate` of a coordinated kernel (see the module doc)."""

    max_instances_across_replicas = True

    def __init__(self, coordinator: Coordinator, clock: Clock, new_run_id: Callable[[], str],
                 running: Callable[[], bool], lead: float = CLAIM_LEAD) -> None:
        if not 0 <= lead < 1:
            raise ValueError(f"lead={lead!r} must be at least 0 and below 1 second")
        self.lead = lead
        self.next_tick: Callable[[], float] = lambda: math.inf
        """When the dispatcher's next tick is due (monotonic; set by the kernel)."""
        self.coordinator = coordinator
        self.clock = clock
        self._new_run_id = new_run_id
        self._running = running
        # Claims asked in this turn of the loop: sent together, in one statement, with the
        # outcomes waiting to be stored (_send_claims). Statements of each kind in flight:
        # while MAX_IN_FLIGHT are, what is asked waits for one to answer and goes with
        # everything else asked meanwhile (group commit: no wait while the database keeps
        # up, bigger batches when it does not).
        self._claims: _Batcher[ClaimRequest, Claim] = _Batcher(self._send_claims)
        self._finishes: list[tuple[FinishRequest, asyncio.Future[bool]]] = []
        self._finishes_in_flight = 0
        # Outcomes wait for the next tick's claims when that tick is at most lead / 2 away
        # (one statement and one commit for both); this timer sends them alone should
        # that tick be moved away.
        self._finish_timer: TimerHandle | None = None
        self._finishes_blocked = False  # MAX_IN_FLIGHT outcome statements were in flight
        # Missed and coalesced times to record (catch-up decides many at once).
        self._marks: _Batcher[MarkRequest, bool] = _Batcher(coordinator.mark_many)
        # When "this replica's clock runs ahead" was last said as a warning (monotonic).
        self._ahead_said_at: float | None = None
        # Won claims waiting for their time (see _until); None once the kernel stops.
        self._waiting: set[asyncio.Future[None]] | None = set()

    async def _until(self, deadline: float) -> None:
        """Wait until monotonic ``deadline``, or until the kernel stops: a won claim's
        time may be up to the lead ahead, and a stopping kernel starts such runs at once
        rather than make its shutdown wait (the claim was granted, so the time is due on
        the coordinator's clock within its tolerance: starting now is not early)."""
        waiting = self._waiting
        if waiting is None:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self.clock.call_at(deadline, lambda: _resolve(future))
        waiting.add(future)
        try:
            await future
        finally:
            timer.cancel()
            waiting.discard(future)

    def stopping(self) -> None:
        """The kernel stops: runs whose claims are won start now (see :meth:`_until`), and
        outcomes are stored without waiting for a claim statement to ride with."""
        waiting, self._waiting = self._waiting, None
        for future in waiting or ():
            if not future.done():
                future.set_result(None)
        if self._finish_timer is not None:
            self._send_finishes()

    def started(self) -> None:
        """The kernel (re)starts: won claims wait for their time again."""
        if self._waiting is None:
            self._waiting = set()

    def tick_done(self) -> None:
        """The claims asked in one turn of the loop, which holds every job actor a tick
        woke, are sent together when the turn is over, with the outcomes waiting for this
        tick; if the tick asked no claims, those outcomes go alone then."""
        if self._finishes:
            asyncio.get_running_loop().call_soon(self._after_tick)

    def _after_tick(self) -> None:
        # Runs after the first step of every actor the tick woke (their tasks were
        # scheduled first): a claim asked there is in the batch, which takes the outcomes.
        if self._finishes and not self._claims.pending:
            self._send_finishes()

    def owns(self, job_id: str) -> bool:
        return self.coordinator.owns(job_id)

    def admit(self, job: GatedJob, plans: Sequence[Plan]) -> Awaitable[None] | None:
        if not self.coordinator.owns(job.id):
            # Another live replica fires this job (it catches up when the job moves):
            # nothing to wait for, so the actor stays idle (no task, no coroutine).
            return None
        return self._admit(job, plans)

    async def _admit(self, job: GatedJob, plans: Sequence[Plan]) -> None:
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
        clock = self.clock
        due = plan.decided_at - plan.lateness  # the time, on the monotonic clock
        if job.running and due > clock.monotonic():
            # A run of this job is going: its claim is asked at the time, not ahead, so a
            # run that has ended by then is not counted against max_instances (its outcome
            # goes first, in the same statement).
            await self._until(due)
        if not self._running():
            return  # stopping: the time is left to the replicas that go on (or catch-up)
        run_id = self._new_run_id()
        request = ClaimRequest(job.id, plan.scheduled_at, run_id, job.opts.max_instances)
        # In the batch of this turn of the loop; asked again (with backoff when the
        # database failed the batch, after the wait when the time is not due yet on its
        # clock) in the batch of that later turn: a replica whose clock runs ahead still
        # sends its claims together.
        answer = await self._claim(job, plan.scheduled_at, plan.lateness, plan.decided_at,
                                   lambda: self._claims.ask(request))
        lateness = plan.lateness + clock.monotonic() - plan.decided_at
        verdict = None if answer is None else answer.verdict
        if verdict == "won":
            assert answer is not None
            if lateness < 0:
                # Claimed ahead (the dispatcher's lead): the run starts at its time.
                await self._until(due)
                lateness = plan.lateness + clock.monotonic() - plan.decided_at
            lease = ClaimLease(self.coordinator, self.clock, job.id, plan.scheduled_at, run_id,
                               answer.token, finisher=self._finish_in_batch)
            job.apply_verdict(plan, "run", lateness, lease)
        elif verdict == "busy":
            job.apply_verdict(plan, "max_instances", lateness, None)
        elif verdict == "taken":
            log.debug("Run of job %s scheduled at %s is another replica's", job.id,
                      plan.scheduled_at)
        else:
            job.apply_verdict(plan, "missed", lateness, None)

    async def _send_claims(self, requests: list[ClaimRequest]) -> Sequence[Claim]:
        """One claim statement for ``requests`` (those of one turn of the loop), carrying
        the outcomes waiting to be stored: one statement and one commit for both."""
        finishes = self._take_finishes()
        try:
            if not finishes:
                return await self.coordinator.claim_many(requests)
            answers, stored = await self.coordinator.settle_many(
                requests, [request for request, _ in finishes])
        except Exception as exc:
            log.warning("A batch of %d claims%s failed (%s: %s); each is asked again",
                        len(requests), f" and {len(finishes)} outcomes" if finishes else "",
                        type(exc).__name__, exc)
            _fail(finishes, exc)
            raise
        _settle_all(finishes, stored)
        return answers

    def _finish_in_batch(self, request: FinishRequest) -> asyncio.Future[bool]:
        """Store an outcome with the others of this turn of the loop, in one statement;
        the future fails as the statement did (the lease then retries alone)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._finishes.append((request, future))
        if len(self._finishes) == 1:
            now = self.clock.monotonic()
            tick = self.next_tick()
            if self._waiting is not None and now < tick <= now + self.lead / 2:
                # The next tick is near (busy replica): go with its claims.
                self._finish_timer = self.clock.call_at(tick + self.lead / 2,
                                                        self._send_finishes)
            else:
                loop.call_soon(self._send_finishes)
        return future

    def _take_finishes(self) -> list[tuple[FinishRequest, asyncio.Future[bool]]]:
        batch, self._finishes = self._finishes, []
        if self._finish_timer is not None:
            self._finish_timer.cancel()
            self._finish_timer = None
        return batch

    def _send_finishes(self) -> None:
        self._finish_timer = None
        if self._finishes_in_flight >= MAX_IN_FLIGHT:
            # Sent when a statement in flight answers, with what comes meanwhile.
            self._finishes_blocked = True
            return
        self._finishes_blocked = False
        batch = self._take_finishes()
        if batch:
            self._finishes_in_flight += 1
            task = asyncio.get_running_loop().create_task(self._store_finishes(batch))
            _SENDING.add(task)
            task.add_done_callback(_SENDING.discard)

    async def _store_finishes(self, batch: list[tuple[FinishRequest, asyncio.Future[bool]]]
                              ) -> None:
        try:
            stored = await self.coordinator.finish_many([request for request, _ in batch])
        except Exception as exc:
            _fail(batch, exc)
            return
        finally:
            self._finishes_in_flight -= 1
            if self._finishes_blocked:
                self._send_finishes()
        _settle_all(batch, stored)

    def retry(self, job: RetryOwner, scheduled_at: datetime, attempt: int,
              retry_of: str) -> Awaitable[None]:
        """Claim attempt ``attempt`` of ``scheduled_at`` and start it if won."""
        return self._retry(job, scheduled_at, attempt, retry_of)

    async def _retry(self, job: RetryOwner, scheduled_at: datetime, attempt: int,
                     retry_of: str) -> None:
        run_id = self._new_run_id()
        answer = await self._claim(
            job, scheduled_at, 0.0, self.clock.monotonic(),
            lambda: self.coordinator.claim_retry(job.id, scheduled_at, run_id,
                                                 attempt=attempt,
                                                 max_instances=job.opts.max_instances))
        if answer is None or not self._running():
            log.error("Attempt %d of job %s (scheduled %s) was not started: its claim could "
                      "not be made", attempt, job.id, scheduled_at)
        elif answer.verdict == "won":
            job.start_retry(scheduled_at, attempt, retry_of,
                            ClaimLease(self.coordinator, self.clock, job.id, scheduled_at,
                                       run_id, answer.token, attempt,
                                       finisher=self._finish_in_batch))
        elif answer.verdict == "busy":
            job.report_retry_skipped(scheduled_at)
        else:
            log.info("Attempt %d of job %s (scheduled %s) is another replica's", attempt,
                     job.id, scheduled_at)

    async def _claim(self, job: GatedJob, scheduled_at: datetime, lateness: float,
                     decided_at: float, ask: Callable[[], Awaitable[Claim]]) -> Claim | None:
        """The coordinator's answer (never ``early``: such a time is waited for and asked
        again), or None when it stayed unreachable past the job's grace (or
        ``CLAIM_PATIENCE``)."""
        clock = self.clock
        grace = job.opts.misfire_grace_time
        patience = CLAIM_PATIENCE if grace is None else min(grace, CLAIM_PATIENCE)
        delay = 0.1
        while True:
            try:
                answer = await ask()
            except Exception as exc:
                waited = lateness + clock.monotonic() - decided_at
                gave_up = decide_one(waited + delay, grace=patience, max_instances=None,
                                     running=0) == "missed"
                if gave_up or not self._running():
                    log.error(
                        "Could not claim job %s scheduled at %s for %.1f s (%s: %s); "
                        "not running it here", job.id, scheduled_at, waited,
                        type(exc).__name__, exc,
                    )
                    return None
                log.warning("Claim of job %s scheduled at %s failed (%s: %s); retrying in "
                            "%.1f s", job.id, scheduled_at, type(exc).__name__, exc, delay)
                await clock.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if answer.verdict != "early":
                return answer
            if not self._running():
                return Claim("taken")
            # Due later on the coordinator's clock than on ours: ours runs ahead.
            wait = min(max(answer.wait, 0.001), _EARLY_WAIT_MAX)
            self._say_clock_ahead(job.id, scheduled_at, answer.wait)
            await clock.sleep(wait)
            # Waiting is not lateness: the time was early.
            decided_at += wait

    def _say_clock_ahead(self, job_id: str, scheduled_at: datetime, to_go: float) -> None:
        """A replica whose clock runs ahead meets this on every fire: a warning at most
        once per ``_AHEAD_WARN_EVERY`` seconds, each fire at DEBUG."""
        now = self.clock.monotonic()
        said = self._ahead_said_at
        if said is None or now - said >= _AHEAD_WARN_EVERY:
            self._ahead_said_at = now
            log.warning("Job %s scheduled at %s is not due yet on the database's clock "
                        "(%.3f s to go): this replica's clock runs ahead of the database's; "
                        "its fires wait for the database's time (check NTP on this host; "
                        "said again at most every %d s, each fire at DEBUG)", job_id,
                        scheduled_at, to_go, _AHEAD_WARN_EVERY)
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("Job %s scheduled at %s is not due yet on the database's clock (%.3f s "
                      "to go); waiting", job_id, scheduled_at, to_go)

    async def _mark(self, job_id: str, scheduled_at: datetime, state: ClaimState) -> bool:
        try:
            return await self._marks.ask(MarkRequest(job_id, scheduled_at, state))
        except Exception as exc:
            log.warning("could not record the %s time %s of job %s (%s: %s); reporting it "
                        "here", state, scheduled_at, job_id, type(exc).__name__, exc)
            return True
