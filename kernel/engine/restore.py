"""Restore at start: the schedule state read back from the store, applied to the jobs.

Called by the facade's ``start`` in two steps, on the loop thread:

* :func:`restore_job`, for each job before the timers start, right after the job has
  pointed at its first fire time: with a stored state for the same trigger, an interval
  job without ``start_date`` goes back to its stored grid (anchor), a one-shot job whose
  time was decided already leaves, and the times that fell while no process ran (after
  the latest time decided, before the first fire handled now) are returned; a job that
  is new or whose trigger changed gets its definition recorded and starts afresh.
* :func:`report_interrupted`, once the timers run: each run whose start was recorded and
  whose end was not was in flight when the process stopped. It is recorded
  ``interrupted`` (log line, ``RunFailed``, a failure record with
  ``exc_type="Interrupted"``) and the job's retry policy decides whether it runs again.

The downtime times themselves go to the job's actor (``catch_up``), which decides them
by the policy like any late fire: run late within misfire grace, else missed (log line,
``RunMissed``, the missed counter); with ``coalesce`` only the latest can run.
"""

from __future__ import annotations

import logging
import random
import uuid
from datetime import datetime

from ..observe.failures import FailureRecord
from ..schedule.downtime import times_between
from ..schedule.triggers import DateTrigger, IntervalTrigger
from ..state import InFlight, JobState, trigger_key
from .callables import callable_info
from .job_actor import JobActor
from .journal import Journal
from .runner import Runner

__all__ = ("record_definition", "report_interrupted", "restore_job")

log = logging.getLogger("scheduler.state")


def record_definition(journal: Journal, job: JobActor, now: datetime) -> None:
    """Record ``job``'s definition (new or changed): its state starts again from now."""
    trigger = job.trigger
    anchor = job.anchor_wall if isinstance(trigger, IntervalTrigger) and \
        trigger.start_date is None else None
    journal.defined(job.id, callable_info(job.func).ref, trigger, anchor, now)


def restore_job(journal: Journal, job: JobActor, state: JobState | None, wall: datetime,
                mono: float, rng: random.Random) -> list[datetime]:
    """Apply ``state`` to ``job`` (see the module doc); the downtime times to decide."""
    if state is None or state.trigger != trigger_key(job.trigger):
        if state is not None:
            log.info("Job %s: its trigger changed since the last run; its schedule starts "
                     "afresh", job.id)
        record_definition(journal, job, wall)
        return []
    trigger = job.trigger
    if isinstance(trigger, DateTrigger):
        if state.last_decided is not None:
            log.info("Job %s: its one run (%s) was decided before the restart (%s); it is "
                     "done", job.id, state.last_decided.isoformat(), state.last_outcome)
            job.retire()
        return []
    if isinstance(trigger, IntervalTrigger) and trigger.start_date is None and \
            state.anchor is not None:
        job.restore_anchor(state.anchor, wall, mono, rng)
    if job.paused:
        return []
    after = state.last_decided if state.last_decided is not None else state.since
    times, dropped = times_between(trigger, job.anchor_wall, after, job.sched)
    if dropped:
        log.warning("Job %s: %d scheduled time(s) after %s fell while the scheduler was down "
                    "and are too many to decide one by one; only the newest %d are",
                    job.id, dropped, after.isoformat(), len(times))
    if times:
        log.info("Job %s: %d scheduled time(s) fell while the scheduler was down (%s to %s); "
                 "deciding them now", job.id, len(times), times[0].isoformat(),
                 times[-1].isoformat())
    return times


async def report_interrupted(runner: Runner, run: InFlight, job: JobActor | None) -> None:
    """Record a run that was in flight when the process stopped (see the module doc)."""
    log.warning(
        "Run %s of job %s (scheduled %s, started %s) was interrupted: the process stopped "
        "while it ran", run.run_id, run.job_id,
        run.scheduled_at.isoformat() if run.scheduled_at else "manual",
        run.started_at.isoformat(),
    )
    record = FailureRecord(
        id=uuid.uuid4().hex, job_id=run.job_id, run_id=run.run_id,
        scheduled_at=run.scheduled_at, started_at=run.started_at,
        duration=0.0,  # unknown: the process died without a word
        exc_type="Interrupted",
        message=("the scheduler process stopped (killed or crashed) while this run was in "
                 "progress; its outcome is unknown"),
        traceback="", attempt=run.attempt,
    )
    try:
        await runner.report_failure(job, record)
    finally:
        runner.journal.ended(run.job_id, run.run_id, "interrupted")
