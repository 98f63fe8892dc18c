"""The user-sync actor: every active app's complete user listing into the store.

Per app, every page is fetched before anything is written, then one transaction
(:meth:`Store.replace_app_users`) makes the stored users match the listing. A failure while
listing (rate limits past the retries, Lark down, a bad secret) changes nothing for that app
and is reported in its :class:`AppSyncResult`; the other apps still sync. A database that is
unreachable fails the whole run (every other app would fail the same way).
"""

from __future__ import annotations

import logging
from typing import Any

from actors.jobs.clients import LarkClientPool
from actors.jobs.messages import AppSyncResult, SyncReport, SyncUsers
from actors.lark.models import LarkUser
from actors.runtime import Actor
from actors.store import Store, StoreUnavailableError, UserInfo
from kernel.clock import Clock

__all__ = ("UserSyncActor", "to_user_info")

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


class UserSyncActor(Actor[SyncUsers]):
    """Answers :class:`SyncUsers` with a :class:`SyncReport`."""

    def __init__(self, store: Store, clients: LarkClientPool, clock: Clock) -> None:
        self._store = store
        self._clients = clients
        self._clock = clock

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
            listed = await client.list_all_users()
            users = [to_user_info(user) for user in listed]
            summary = await self._store.replace_app_users(app_id, users, self._clock.now())
        except StoreUnavailableError:
            raise
        except Exception as error:
            logger.error("sync of app %s failed; its users are unchanged: %s", app_id, error)
            return AppSyncResult(
                app_id=app_id, status="failed", error=f"{type(error).__name__}: {error}"
            )
        logger.info(
            "synced app %s: %d users (%d added, %d updated, %d deactivated)",
            app_id,
            len(users),
            summary.added,
            summary.updated,
            summary.deactivated,
        )
        return AppSyncResult(
            app_id=app_id,
            status="ok",
            users=len(users),
            added=summary.added,
            updated=summary.updated,
            deactivated=summary.deactivated,
        )
