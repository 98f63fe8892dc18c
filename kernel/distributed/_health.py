"""Health of a replica's connections, as a dict and as an admin-API readiness report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..api_models import ReadyCheck, ReadyReport

if TYPE_CHECKING:
    from .persistent import PersistentKernel

__all__ = ("health", "readiness")


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
