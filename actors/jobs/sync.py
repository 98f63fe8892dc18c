"""The user-sync actor: every active app's complete user listing into the store.

Per app, every page is fetched before anything is written, then one transaction
(:meth:`Store.replace_app_users`) makes the stored users match the listing. A failure while
listing (rate limits past the retries, Lark down, a bad secret) changes nothing for that app
and is reported in its :class:`AppSyncResult`; the other apps still sync. A database that is
unreachable fails the whole run (every other app would fail the same way).

One department whose users cannot be listed (e.g. the root, when the app's contact scope does
not include all members) does not fail its app: it is skipped, logged, counted in
``lark_sync_departments_failed_total{app_id}``, and the app's result is ``partial``: the users
listed are written and nobody is deactivated, since the missing ones may only be in the
skipped departments.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from aioprometheus.collectors import Counter, Registry

from actors.jobs.clients import LarkClientPool
from actors.jobs.messages import AppSyncResult, SyncReport, SyncUsers
from actors.lark.models import Directory, LarkUser
from actors.runtime import Actor
from actors.store import Store, StoreUnavailableError, UserInfo
from kernel.clock import Clock

__all__ = ("SyncMetrics", "UserSyncActor", "to_user_info")

logger = logging.getLogger("actors.jobs.sync")


def to_user_info(user: LarkUser) -> UserInfo:
    """The store's view of a user Lark listed (empty strings become ``None``)."""
    return UserInfo(
        open_id=user.open_id,
        union_id=user.union_id or None,
        user_id=user.user_id or None,
        name=user.name,
        en_name=user.en_name or None,
        email=user.email or None,
        mobile=user.mobile or None,
        department_ids=user.department_ids,
        is_frozen=user.status.is_frozen,
        is_resigned=user.status.is_resigned,
        is_activated=user.status.is_activated,
        is_exited=user.status.is_exited,
    )


class SyncMetrics:
    """``lark_sync_departments_failed_total{app_id}``: departments a sync had to skip."""

    def __init__(self, registry: Registry) -> None:
        self.departments_failed = Counter(
            "lark_sync_departments_failed_total",
            "Departments whose users a user sync could not list and skipped, by app.",
            registry=registry,
        )


class UserSyncActor(Actor[SyncUsers]):
    """Answers :class:`SyncUsers` with a :class:`SyncReport`."""

    def __init__(
        self,
        store: Store,
        clients: LarkClientPool,
        clock: Clock,
        metrics: SyncMetrics | None = None,
    ) -> None:
        self._store = store
        self._clients = clients
        self._clock = clock
        self._metrics = metrics if metrics is not None else SyncMetrics(Registry())

    async def receive(self, message: SyncUsers) -> Any:
        started = self._clock.now()
        apps = await self._store.list_apps(active_only=True)
        if message.app_ids is not None:
            wanted = set(message.app_ids)
            apps = [app for app in apps if app.app_id in wanted]
        results = [await self._sync_app(app.app_id) for app in apps]
        return SyncReport(started_at=started, apps=tuple(results))

    async def _sync_app(self, app_id: str) -> AppSyncResult:
        try:
            client = await self._clients.get(app_id)
            directory = await client.list_directory()
            users = [to_user_info(user) for user in directory.users]
            summary = await self._store.replace_app_users(
                app_id, users, self._clock.now(), deactivate_missing=directory.complete
            )
        except StoreUnavailableError:
            raise
        except Exception as error:
            logger.error("sync of app %s failed; its users are unchanged: %s", app_id, error)
            return AppSyncResult(
                app_id=app_id, status="failed", error=f"{type(error).__name__}: {error}"
            )
        result = AppSyncResult(
            app_id=app_id,
            status="ok",
            users=len(users),
            added=summary.added,
            updated=summary.updated,
            deactivated=summary.deactivated,
        )
        if directory.failed:
            return self._partial(result, directory)
        logger.info(
            "synced app %s: %d users (%d added, %d updated, %d deactivated)",
            app_id,
            len(users),
            summary.added,
            summary.updated,
            summary.deactivated,
        )
        return result

    def _partial(self, result: AppSyncResult, directory: Directory) -> AppSyncResult:
        failed = directory.failed
        self._metrics.departments_failed.add({"app_id": result.app_id}, len(failed))
        why = "; ".join(f"{f.department_id}: {f.error}" for f in failed)
        error = (
            f"{len(failed)} of {directory.departments} departments could not be listed and "
            f"were skipped ({why})"
        )
        logger.warning(
            "synced app %s partially: %d users (%d added, %d updated), none deactivated "
            "because %s",
            result.app_id,
            result.users,
            result.added,
            result.updated,
            error,
        )
        return msgspec.structs.replace(
            result,
            status="partial",
            error=error,
            departments_failed=tuple(f.department_id for f in failed),
        )
