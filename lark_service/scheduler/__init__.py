"""``lark_service.scheduler``: the seed's scheduler, tasks and token monitor.

* :mod:`lark_service.scheduler.scheduler`: ``scheduler_service`` (a
  :class:`SchedulerService`: a kernel on its own loop thread, for synchronous code);
* :mod:`lark_service.scheduler.tasks`: ``sync_user_info_task`` and the other three;
* :mod:`lark_service.scheduler.token_monitor`: ``TokenExpiryMonitor``.
"""

from __future__ import annotations

from lark_service.scheduler._service import SchedulerService
from lark_service.scheduler.token_monitor import TokenExpiryMonitor

__all__ = ("SchedulerService", "TokenExpiryMonitor")
