"""Health of a replica: its connections (as a dict and as an admin-API readiness report)
and stored jobs it cannot load."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from ..admin.api_models import ReadyCheck, ReadyReport
from ..observe.failures import FailureRecord

if TYPE_CHECKING:
    from ._pgstore import StoredJob
    from .persistent import PersistentKernel

__all__ = ("health", "readiness", "report_unresolvable")

log = logging.getLogger("scheduler.store")


def health(kernel: PersistentKernel) -> dict[str, Any]:
    """PostgreSQL up/down with the last ``error``, whether change notifications are
    ``listening``, stored jobs that could not be loaded, and each executor's own report
    (``{"state": "up" | "down", ...}``)."""
    out: dict[str, Any] = {
        "postgres": kernel.db.health.state, "error": kernel.db.health.error,
        "listening": kernel.listener.connected, "unresolved_jobs": sorted(kernel.unresolved),
    }
    for name, executor in kernel.executors.items():
        report = getattr(executor, "health", None)
        if callable(report):
            out[f"executor:{name}"] = report()
    return out


def readiness(kernel: PersistentKernel) -> ReadyReport:
    """Ready while PostgreSQL answers, changes are heard and every executor is up."""
    h = health(kernel)
    checks = [
        ReadyCheck(name="postgres", ok=h["postgres"] == "up",
                   detail="" if h["postgres"] == "up" else f"unreachable: {h['error']}"),
        ReadyCheck(name="job-changes", ok=h["listening"],
                   detail="" if h["listening"] else "not listening for job changes; "
                   "reconnecting"),
    ]
    for key, report in h.items():
        if key.startswith("executor:") and isinstance(report, dict):
            up = report.get("state") == "up"
            checks.append(ReadyCheck(name=key, ok=up, detail="" if up else
                                     f"down: {report.get('error') or 'not connected'}"))
    return ReadyReport(ready=all(c.ok for c in checks), checks=tuple(checks))


async def report_unresolvable(kernel: PersistentKernel, row: StoredJob, exc: Exception) -> None:
    """A stored job whose function cannot be loaded: log it, list it in ``unresolved`` and
    record a failure (``exc_type="ImportError"``); the other jobs are not affected."""
    message = (f"stored job {row.id!r} names {row.func_ref!r}, which cannot be loaded "
               f"({type(exc).__name__}: {exc}); it will not run until its code is "
               "deployed again or the job is removed")
    log.error("%s", message)
    kernel.unresolved[row.id] = message
    record = FailureRecord(
        id=uuid.uuid4().hex, job_id=row.id, run_id="", scheduled_at=None,
        started_at=kernel.clock.now(), duration=0.0, exc_type="ImportError",
        message=message, traceback="",
    )
    # The kernel's failure outbox: kept in memory while the database is down.
    await kernel.failure_store.add_failure(record)
