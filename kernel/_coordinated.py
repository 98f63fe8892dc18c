"""A scheduled run under a coordinator: claim, run with a renewed lease, finish.

Only used when the kernel has a coordinator (see :mod:`kernel.coordination`); the
single-process path never enters this module. The local ``max_instances`` check and
the local running count happen before the claim, as without a coordinator, so a
replica never exceeds the limit on its own either.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from .coordination import ClaimState, ClaimVerdict, RunContext, current_run
from .events import RunStarted

if TYPE_CHECKING:
    from ._records import JobRecord
    from .coordination import Coordinator
    from .kernel import Kernel

__all__ = ()

log = logging.getLogger("scheduler.coordination")

# How long a claim may keep failing (database unreachable) before the scheduled time is
# reported missed, when the job has no misfire grace of its own.
_CLAIM_PATIENCE = 60.0
_FINISH_ATTEMPTS = 8


def start_claimed(kernel: Kernel, rec: JobRecord, sched: datetime, late: float) -> str:
    """Start the task that claims ``sched`` of ``rec`` and runs it if the claim wins.

    The caller has already counted the run in ``rec.running``.
    """
    run_id = kernel._new_run_id()
    loop = kernel._loop
    assert loop is not None
    task = loop.create_task(_claimed_run(kernel, rec, run_id, sched, late))
    kernel._tasks.add(task)
    task.add_done_callback(kernel._tasks.discard)
    return run_id


async def _claimed_run(
    kernel: Kernel, rec: JobRecord, run_id: str, sched: datetime, late: float
) -> None:
    coord = kernel._coordinator
    assert coord is not None
    clock = kernel.clock
    t_claim = clock.monotonic()
    # Several times of one job due at once are claimed oldest first, as one process
    # would start them (max_instances then keeps the oldest, not a random one).
    chain = kernel._claim_chain
    previous = chain.get(rec.id)
    mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    chain[rec.id] = mine
    try:
        if previous is not None:
            await asyncio.shield(previous)
        verdict = await _claim(kernel, coord, rec, run_id, sched, late)
    except asyncio.CancelledError:
        # Shutdown while claiming: if the claim did land, its lease expires and the
        # reaper reports the run interrupted.
        rec.running -= 1
        raise
    finally:
        mine.set_result(None)
        if chain.get(rec.id) is mine:
            del chain[rec.id]
    late += clock.monotonic() - t_claim
    if verdict != "won":
        rec.running -= 1
        if verdict == "busy":
            kernel._skipped(rec, sched, "max_instances", decided=True)
        elif verdict == "taken":
            log.debug("Run of job %s scheduled at %s is another replica's", rec.id, sched)
        else:
            kernel._missed(rec, sched, late, decided=True)
        return
    started = clock.now()
    if kernel._observed:
        kernel._emit(RunStarted(
            job_id=rec.id, scheduled_at=sched, run_id=run_id, started_at=started, lateness=late,
        ))
    token = current_run.set(RunContext(job_id=rec.id, scheduled_at=sched, run_id=run_id))
    beat = asyncio.get_running_loop().create_task(_heartbeat(kernel, coord, rec.id, sched, run_id))
    ok = False
    task = asyncio.current_task()
    try:
        ok = await kernel._execute(rec, run_id, sched, late, started, clock.monotonic(),
                                   False, 1, None)
    finally:
        beat.cancel()
        current_run.reset(token)
        # _execute takes its task out of the kernel's set; shutdown must still wait for
        # the claim to be finished.
        if task is not None:
            kernel._tasks.add(task)
        # Shielded: a cancellation at shutdown must not leave the claim looking alive.
        await asyncio.shield(_finish(coord, rec.id, sched, run_id, ok))


def record_decision(
    kernel: Kernel, rec: JobRecord, sched: datetime, state: ClaimState, late: float
) -> None:
    """A scheduled time this replica decided not to run (missed or coalesced): record it
    with the coordinator and report it only if this replica recorded it first; another
    replica may have run that time already."""
    loop = kernel._loop
    assert loop is not None
    task = loop.create_task(_record(kernel, rec, sched, state, late))
    kernel._tasks.add(task)
    task.add_done_callback(kernel._tasks.discard)


async def _record(
    kernel: Kernel, rec: JobRecord, sched: datetime, state: ClaimState, late: float
) -> None:
    coord = kernel._coordinator
    assert coord is not None
    try:
        first = await coord.mark(rec.id, sched, state)
    except Exception as exc:
        log.warning("could not record the %s time %s of job %s (%s: %s); reporting it here",
                    state, sched, rec.id, type(exc).__name__, exc)
        first = True
    if not first:
        log.debug("Scheduled time %s of job %s was decided by another replica", sched, rec.id)
    elif state == "missed":
        kernel._missed(rec, sched, late, decided=True)
    else:
        kernel._skipped(rec, sched, state, decided=True)


async def _claim(
    kernel: Kernel, coord: Coordinator, rec: JobRecord, run_id: str, sched: datetime,
    late: float,
) -> ClaimVerdict | None:
    """The verdict, or None when the coordinator stayed unreachable past the job's grace."""
    clock = kernel.clock
    grace = rec.opts.misfire_grace_time
    patience = _CLAIM_PATIENCE if grace is None else min(grace, _CLAIM_PATIENCE)
    t0 = clock.monotonic()
    delay = 0.1
    while True:
        try:
            return await coord.claim(rec.id, sched, run_id, max_instances=rec.opts.max_instances)
        except Exception as exc:
            waited = late + clock.monotonic() - t0
            if waited + delay > patience or not kernel._running:
                log.error(
                    "Could not claim job %s scheduled at %s for %.1f s (%s: %s); "
                    "not running it here", rec.id, sched, waited, type(exc).__name__, exc,
                )
                return None
            log.warning("Claim of job %s scheduled at %s failed (%s: %s); retrying in %.1f s",
                        rec.id, sched, type(exc).__name__, exc, delay)
            await clock.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _heartbeat(
    kernel: Kernel, coord: Coordinator, job_id: str, sched: datetime, run_id: str
) -> None:
    period = coord.lease / 3
    while True:
        await kernel.clock.sleep(period)
        try:
            if not await coord.renew(job_id, sched, run_id):
                log.error(
                    "Lease of job %s run %s (scheduled %s) was lost: another replica marked it "
                    "interrupted; the run goes on here but its outcome will not be recorded "
                    "in the claim", job_id, run_id, sched,
                )
                return
        except Exception as exc:
            log.warning("Could not renew the lease of job %s run %s: %s: %s",
                        job_id, run_id, type(exc).__name__, exc)


async def _finish(
    coord: Coordinator, job_id: str, sched: datetime, run_id: str, ok: bool
) -> None:
    delay = 0.2
    for attempt in range(_FINISH_ATTEMPTS):
        try:
            await coord.finish(job_id, sched, run_id, "succeeded" if ok else "failed")
            return
        except Exception as exc:
            if attempt == _FINISH_ATTEMPTS - 1:
                log.error("Could not record the end of job %s run %s: %s: %s; its lease will "
                          "expire and it will be reported interrupted", job_id, run_id,
                          type(exc).__name__, exc)
                return
            # Real time on purpose: this backs off from an outage of the database.
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
