"""The cleanup actor: deletes what is past its retention, in batches.

User tokens go when their refresh token expired, or Lark refused it, more than
``retention_days`` ago (a live or recently expired token is never touched: the cutoff is
strictly in the past), so a user is told for at most that many days; notice slots and health
results older than the retention go with them. Failure records have their own retention
(``failure_retention_days``, the config's ``failures.retention_days``): those of runs started
longer ago are deleted, oldest first, ``batch_size`` per transaction.
"""

from __future__ import annotations

import logging
from datetime import timedelta, tzinfo
from typing import Any

from actors.jobs.messages import CleanupReport, CleanupTokens
from actors.runtime import Actor
from actors.store import Store
from kernel.clock import Clock

__all__ = ("CleanupActor",)

logger = logging.getLogger("actors.jobs.cleanup")


class CleanupActor(Actor[CleanupTokens]):
    """Answers :class:`CleanupTokens` with a :class:`CleanupReport`."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        retention_days: int = 7,
        failure_retention_days: int = 30,
        batch_size: int = 500,
        timezone: tzinfo,
    ) -> None:
        if retention_days < 0:
            raise ValueError(f"retention_days={retention_days!r} must be >= 0")
        if failure_retention_days < 1:
            raise ValueError(f"failure_retention_days={failure_retention_days!r} must be >= 1")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be >= 1")
        self._store = store
        self._clock = clock
        self._retention = timedelta(days=retention_days)
        self._failure_retention = timedelta(days=failure_retention_days)
        self._batch_size = batch_size
        self._timezone = timezone

    async def receive(self, message: CleanupTokens) -> Any:
        now = self._clock.now()
        cutoff = now - self._retention
        tokens = await self._store.delete_tokens_expired_before(cutoff, batch_size=self._batch_size)
        notices = await self._store.delete_notices_before(cutoff.astimezone(self._timezone).date())
        health = await self._store.delete_health_before(cutoff)
        failures_cutoff = now - self._failure_retention
        failures = await self._store.delete_failures_before(
            failures_cutoff, batch_size=self._batch_size
        )
        logger.info(
            "cleanup: %d expired tokens, %d notice slots, %d health results deleted (before %s); "
            "%d failure records deleted (runs started before %s)",
            tokens,
            notices,
            health,
            cutoff.isoformat(),
            failures,
            failures_cutoff.isoformat(),
        )
        return CleanupReport(
            cutoff=cutoff,
            tokens_deleted=tokens,
            notices_deleted=notices,
            health_deleted=health,
            failures_cutoff=failures_cutoff,
            failures_deleted=failures,
        )
