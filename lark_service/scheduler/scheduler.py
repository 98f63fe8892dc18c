"""``from lark_service.scheduler.scheduler import scheduler_service``: the seed's scheduler.

``scheduler_service`` is created with the seed's defaults and not started; the application
starts it once (``scheduler_service.start()``) and shuts it down on exit. ``lark-scheduler
serve`` does not use it: it runs its own kernel with the built-in jobs.
"""

from __future__ import annotations

from lark_service.scheduler._service import SchedulerService

__all__ = ("SchedulerService", "scheduler_service")

scheduler_service = SchedulerService()
"""The process-wide scheduler the seed's snippets use."""
