"""The seed's task functions, runnable by hand outside a running service::

    import asyncio
    from actors.tasks import sync_user_info_task

    asyncio.run(sync_user_info_task())

Each loads the configuration (the TOML file named by ``LARK_SCHEDULER_CONFIG``, if any, and
the ``LARK_SCHEDULER_*`` environment), opens a :class:`~actors.service.LarkService`, does
its one job, closes everything and answers the job's report.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

from actors.config import Config, load_config
from actors.jobs import CleanupReport, ExpiryReport, HealthReport, SyncReport
from actors.service import LarkService

__all__ = (
    "check_token_expiry_task",
    "cleanup_expired_tokens_task",
    "health_check_task",
    "sync_user_info_task",
)

R = TypeVar("R")


async def _run(job: Callable[[LarkService], Awaitable[R]], config: Config | None) -> R:
    if config is None:
        config = load_config(os.environ.get("LARK_SCHEDULER_CONFIG"), os.environ)
    async with LarkService(config) as service:
        return await job(service)


async def sync_user_info_task(config: Config | None = None) -> SyncReport:
    """Sync every active app's users once (``sync_user_info``)."""
    return await _run(LarkService.sync_user_info, config)


async def check_token_expiry_task(config: Config | None = None) -> ExpiryReport:
    """Check refresh-token expiry and send due notices once (``check_token_expiry``)."""
    return await _run(LarkService.check_token_expiry, config)


async def cleanup_expired_tokens_task(config: Config | None = None) -> CleanupReport:
    """Delete tokens past their retention once (``cleanup_expired_tokens``)."""
    return await _run(LarkService.cleanup_expired_tokens, config)


async def health_check_task(config: Config | None = None) -> HealthReport:
    """Probe the database, RabbitMQ and Lark once (``health_check``)."""
    return await _run(LarkService.health_check, config)
