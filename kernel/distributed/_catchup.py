"""Catch-up after downtime: the scheduled times no replica decided while all were down.

Fed through the same decision as a late fire in one process (``kernel._policy.decide``:
coalesce, then misfire grace), then through claims, so replicas that start together
still run each time once. Times that run nothing are recorded as ``missed``/``coalesced``
claim rows; only the replica that recorded one reports it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .._policy import decide
from ._pgstore import StoredJob
from ._refs import missed_times

if TYPE_CHECKING:
    from .persistent import PersistentKernel

__all__ = ("catch_up",)

log = logging.getLogger("scheduler.store")


async def catch_up(kernel: PersistentKernel, row: StoredJob) -> None:
    """Decide the scheduled times missed while no replica ran (see the module doc)."""
    with kernel._lock:
        rec = kernel._jobs.get(row.id)
    after = row.last_fire if row.last_fire is not None else row.created_at
    if rec is None or rec.paused or after is None:
        return
    now = kernel.clock.now()
    times, dropped = missed_times(rec.trigger, after, now, rec.sched)
    if dropped:
        log.warning("Job %s: %d scheduled time(s) before %s were missed while no replica "
                    "was running", row.id, dropped, times[0] if times else now)
    if not times:
        return
    late = [(now - t).total_seconds() for t in times]
    actions = decide(late, coalesce=rec.opts.coalesce, grace=rec.opts.misfire_grace_time)
    for when, lateness, action in zip(times, late, actions, strict=True):
        if action == "run":
            kernel._start_run(rec, when, lateness)
            continue
        try:
            first = await kernel.coordinator.mark(row.id, when, action)
        except Exception as exc:
            log.warning("could not record the %s time %s of job %s: %s", action, when,
                        row.id, exc)
            first = False
        if not first:
            continue
        if action == "missed":
            kernel._missed(rec, when, lateness, decided=True)
        else:
            kernel._skipped(rec, when, "coalesced", decided=True)
