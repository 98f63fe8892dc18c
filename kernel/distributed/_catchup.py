"""Catch-up after downtime: the scheduled times no replica decided while all were down.

The times between a job's stored ``last_fire`` (the latest time any replica decided)
and now are handed to the job's actor (:meth:`kernel.port.KernelPort.catch_up`), which
decides them like any late fire: coalesce and misfire grace by the kernel's policy, then
claims, so replicas that start together still run each time once, and a time that runs
nothing is recorded and reported by one replica only.
"""

from __future__ import annotations

import logging
from datetime import datetime

from ..job import Job
from ..port import KernelPort
from ._pgstore import StoredJob
from ._refs import missed_times

__all__ = ("catch_up",)

log = logging.getLogger("scheduler.store")


def catch_up(port: KernelPort, job: Job, row: StoredJob, now: datetime) -> None:
    """Hand ``job`` the scheduled times missed while no replica ran (see the module doc)."""
    after = row.last_fire if row.last_fire is not None else row.created_at
    if job.paused or after is None:
        return
    times, dropped = missed_times(job.trigger, after, now, job.next_run_time)
    if dropped:
        log.warning("Job %s: %d scheduled time(s) before %s were missed while no replica "
                    "was running", row.id, dropped, times[0] if times else now)
    if times:
        port.catch_up(row.id, times)
