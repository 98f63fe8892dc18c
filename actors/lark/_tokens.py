"""An app-level access token (tenant or app token), cached and refreshed before expiry.

Concurrency contract: any number of tasks may call :meth:`TokenCache.get` at once; at
most one fetch runs at a time, and the tasks that waited for it use its result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import msgspec

__all__ = ("CachedToken", "TokenCache")


class CachedToken(msgspec.Struct, frozen=True, kw_only=True):
    """A token with the time to refresh it and the time Lark stops accepting it."""

    value: str
    refresh_at: datetime
    expires_at: datetime

    def __repr__(self) -> str:
        return (
            f"CachedToken(value='<redacted>', refresh_at={self.refresh_at.isoformat()!r}, "
            f"expires_at={self.expires_at.isoformat()!r})"
        )


class TokenCache:
    """One token of one app.

    ``fetch`` obtains a fresh token and answers ``(token, lifetime_seconds)``. The token
    is refreshed ``margin`` seconds before it expires; a token that lives less than
    twice the margin is refreshed halfway through its life instead, so a short-lived
    token is not refetched on every call.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[tuple[str, int]]],
        *,
        now: Callable[[], datetime],
        margin: float,
    ) -> None:
        self._fetch = fetch
        self._now = now
        self._margin = margin
        self._token: CachedToken | None = None
        self._lock = asyncio.Lock()

    @property
    def cached(self) -> CachedToken | None:
        """The cached token, if any (fresh or not)."""
        return self._token

    def _fresh(self) -> CachedToken | None:
        token = self._token
        if token is not None and self._now() < token.refresh_at:
            return token
        return None

    async def get(self) -> str:
        """A token that is not due for refresh; fetches one if needed."""
        token = self._fresh()
        if token is not None:
            return token.value
        async with self._lock:
            # Another task may have refreshed while this one waited for the lock.
            token = self._fresh()
            if token is None:
                token = await self._refresh()
            return token.value

    async def _refresh(self) -> CachedToken:
        # The lifetime counts from before the request: the conservative end.
        started = self._now()
        value, lifetime = await self._fetch()
        early = max(lifetime - self._margin, lifetime / 2)
        token = CachedToken(
            value=value,
            refresh_at=started + timedelta(seconds=early),
            expires_at=started + timedelta(seconds=lifetime),
        )
        self._token = token
        return token

    def invalidate(self, value: str) -> None:
        """Forget ``value`` if it is still the cached token (Lark refused it).

        Comparing the value keeps concurrent callers that were all refused the same
        token from throwing away the fresh one the first of them already fetched.
        """
        if self._token is not None and self._token.value == value:
            self._token = None
