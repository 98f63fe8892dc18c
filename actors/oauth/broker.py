"""The token API's side: a valid user access token for another service, refreshed when due.

Concurrency contract: one refresh at a time per user in a process (a lock per app and user;
callers that waited use the refreshed token). Across processes (replicas), the store's row
version decides: a refresh stores its result only over the version it started from, and a
refusal by Lark marks the token invalid only if no other process rotated it meanwhile (then
this caller reads the rotated token instead of failing).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import anyio
import msgspec

from actors.jobs.clients import LarkClientPool, MissingSecretError
from actors.lark import LarkError, LarkRefreshTokenError
from actors.oauth.flow import LinkFor, OnChange, recount
from actors.store import Store, StoreUnavailableError, UserCredentials
from kernel.clock import Clock

__all__ = ("REFRESH_MARGIN", "ServedToken", "TokenBroker", "TokenError")

logger = logging.getLogger("actors.oauth")

#: An access token expiring within this is refreshed before it is served.
REFRESH_MARGIN = timedelta(minutes=5)
# Another process rotating the token between our read and our refresh is rare; a caller
# retries at most this many times before giving up.
_MAX_ATTEMPTS = 3


class ServedToken(msgspec.Struct, frozen=True, kw_only=True):
    """A user access token valid for at least :data:`REFRESH_MARGIN` (or until
    ``expires_at``, in ``expires_in`` seconds when served). ``refreshed``: this call
    refreshed it. ``repr`` hides the token."""

    app_id: str
    open_id: str
    access_token: str
    expires_at: datetime
    expires_in: int
    refresh_expires_at: datetime
    refreshed: bool

    def __repr__(self) -> str:
        return (
            f"ServedToken(app_id={self.app_id!r}, open_id={self.open_id!r}, "
            f"access_token='<redacted>', expires_at={self.expires_at.isoformat()!r}, "
            f"refreshed={self.refreshed})"
        )


class TokenError(Exception):
    """No token can be served: ``code`` (``unknown_app``, ``no_token``,
    ``reauthorization_required``, ``lark_unavailable``, ``store_unavailable``), the HTTP
    ``status`` the token API answers, and ``authorize_url`` when the user can fix it."""

    def __init__(
        self, code: str, status: int, message: str, authorize_url: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.authorize_url = authorize_url


class _UserLocks:
    """One lock per (app, user), dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[anyio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: tuple[str, str]) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (anyio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class TokenBroker:
    """Serves users' access tokens from ``store``, refreshing them through ``clients``."""

    def __init__(
        self,
        store: Store,
        clients: LarkClientPool,
        clock: Clock,
        *,
        authorize_url: LinkFor,
        on_change: OnChange | None = None,
    ) -> None:
        self._store = store
        self._clients = clients
        self._clock = clock
        self._authorize_url = authorize_url
        self._on_change = on_change
        self._locks = _UserLocks()

    async def access_token(self, app_id: str, open_id: str) -> ServedToken:
        """A valid access token of ``open_id`` for ``app_id``; :class:`TokenError` when
        there is none to serve."""
        async with self._locks.hold((app_id, open_id)):
            try:
                return await self._serve(app_id, open_id)
            except StoreUnavailableError as exc:
                raise TokenError(
                    "store_unavailable", 503, f"the store is unavailable ({exc}); try again"
                ) from None

    async def _serve(self, app_id: str, open_id: str) -> ServedToken:
        app = await self._store.get_app(app_id)
        if app is None or not app.active:
            raise TokenError(
                "unknown_app",
                404,
                f"no active app {app_id} is registered; 'lark-scheduler apps list --all' "
                "shows the apps",
            )
        link = self._authorize_url(app_id)
        for _ in range(_MAX_ATTEMPTS):
            credentials = await self._store.get_user_credentials(app_id, open_id)
            if credentials is None:
                raise TokenError(
                    "no_token",
                    404,
                    f"user {open_id} has not authorised app {app_id} on this service"
                    + (f"; they can at {link}" if link else ""),
                    link,
                )
            self._check_usable(credentials, link)
            now = self._clock.now()
            token = credentials.token
            assert token.access_expires_at is not None  # stored with the credentials
            if token.access_expires_at - now > REFRESH_MARGIN:
                return ServedToken(
                    app_id=app_id,
                    open_id=open_id,
                    access_token=credentials.access_token,
                    expires_at=token.access_expires_at,
                    expires_in=int((token.access_expires_at - now).total_seconds()),
                    refresh_expires_at=token.refresh_expires_at,
                    refreshed=False,
                )
            served = await self._refresh(credentials, link)
            if served is not None:
                return served
        raise TokenError(
            "lark_unavailable",
            502,
            f"the token of user {open_id} for app {app_id} kept changing while it was "
            "refreshed (other processes); try again",
        )

    def _check_usable(self, credentials: UserCredentials, link: str | None) -> None:
        token = credentials.token
        again = "; they must authorise the app again" + (f" at {link}" if link else "")
        if token.invalid_reason is not None:
            raise TokenError(
                "reauthorization_required",
                409,
                f"Lark refused the refresh token of user {token.open_id} for app "
                f"{token.app_id} ({token.invalid_reason}){again}",
                link,
            )
        if token.refresh_expires_at <= self._clock.now():
            raise TokenError(
                "reauthorization_required",
                409,
                f"the authorization of user {token.open_id} for app {token.app_id} expired "
                f"on {token.refresh_expires_at.isoformat()}{again}",
                link,
            )

    async def _refresh(
        self, credentials: UserCredentials, link: str | None
    ) -> ServedToken | None:
        """The refreshed token; ``None`` when another process changed the row meanwhile
        (the caller reads it again)."""
        token = credentials.token
        app_id, open_id = token.app_id, token.open_id
        try:
            client = await self._clients.get(app_id)
        except MissingSecretError as exc:
            raise TokenError("lark_unavailable", 502, str(exc)) from None
        try:
            grant = await client.refresh_user_token(credentials.refresh_token)
        except LarkRefreshTokenError as exc:
            current = await self._store.get_user_credentials(app_id, open_id)
            if current is not None and current.version != credentials.version:
                return None  # rotated (or re-authorised) elsewhere: that token is the one
            marked = await self._store.invalidate_user_token(
                app_id, open_id, credentials.version, exc.reason
            )
            if marked:
                logger.warning(
                    "user %s of app %s: Lark refused the refresh token (%s, code %s); "
                    "marked invalid, the user must authorise the app again",
                    open_id,
                    app_id,
                    exc.reason,
                    exc.code,
                )
                await recount(self._on_change, app_id)
            refused = await self._store.get_user_credentials(app_id, open_id)
            self._check_usable(refused or credentials, link)
            return None
        except LarkError as exc:
            raise TokenError(
                "lark_unavailable",
                502,
                f"refreshing the token of user {open_id} for app {app_id} failed: {exc}; "
                "the stored token is unchanged, try again",
            ) from None
        stored = await self._store.rotate_user_tokens(app_id, open_id, credentials.version, grant)
        if stored is None:
            # A new authorization landed while Lark answered: it is newer than ours.
            return None
        logger.info(
            "user %s of app %s: access token refreshed (refresh token rotated, expires %s)",
            open_id,
            app_id,
            stored.refresh_expires_at.isoformat(),
        )
        await recount(self._on_change, app_id)
        left = (grant.access_expires_at - self._clock.now()).total_seconds()
        return ServedToken(
            app_id=app_id,
            open_id=open_id,
            access_token=grant.access_token,
            expires_at=grant.access_expires_at,
            expires_in=max(0, int(left)),
            refresh_expires_at=grant.refresh_expires_at,
            refreshed=True,
        )
