"""APScheduler 4: measured only where it is installed, and not by this harness yet.

APScheduler 3 and 4 share the import name ``apscheduler``, and the bench extra pins 3, so
in the bench environment 4 is never importable. Where 4 is installed instead, the engine is
still reported unavailable: its API is asynchronous (``await scheduler.add_schedule(...)``)
and no adapter has been written and checked against it.
"""

from __future__ import annotations

__all__ = ("probe",)


def probe() -> str | None:
    """Why APScheduler 4 is not measured in this environment."""
    try:
        import apscheduler
    except ImportError:
        return "apscheduler 4 is not installed"
    version = str(getattr(apscheduler, "__version__", "3"))
    if not version.startswith("4."):
        return (
            f"apscheduler {version} is installed, not 4.x (3 and 4 share the import name; "
            "the bench extra pins 3)"
        )
    return "apscheduler 4 is installed but this harness has no adapter for its async API yet"
