"""The Lark (Feishu) Open API client the built-in jobs use.

One :class:`LarkClient` speaks for one app (``app_id`` / ``app_secret``). It obtains
the app's tenant access token (and app access token, for user-token refreshes),
caches it and refreshes it before it expires; lists the tenant's departments and
users; sends text and card messages; runs users' OAuth authorization (authen v1: the
authorize page's address, code exchange, user info, refresh).

Retries, backoff and error typing are described in :mod:`actors.lark._transport`.
Neither the app secret nor any token is ever logged or put into an error message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Self

import aiohttp
import msgspec

from ._authen import REFRESH_USER_TOKEN_PATH, Authen, authorize_url
from ._config import check_client_config
from ._tokens import TokenCache
from ._transport import Transport
from ._wire import (
    Answer,
    MessageData,
    Page,
    TokenAnswer,
    decode_data,
    protocol_error,
)
from .errors import LarkAuthError, LarkError
from .models import (
    AuthenUser,
    Department,
    DepartmentFailure,
    Directory,
    LarkUser,
    MessageReceipt,
    UserTokenGrant,
)

__all__ = (
    "APP_TOKEN_PATH",
    "DEPARTMENT_CHILDREN_PATH",
    "MESSAGES_PATH",
    "RECEIVE_ID_TYPES",
    "REFRESH_USER_TOKEN_PATH",
    "TENANT_TOKEN_PATH",
    "USERS_BY_DEPARTMENT_PATH",
    "LarkClient",
    "ReceiveIdType",
)

logger = logging.getLogger("actors.lark")

TENANT_TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
APP_TOKEN_PATH = "/open-apis/auth/v3/app_access_token/internal"
DEPARTMENT_CHILDREN_PATH = "/open-apis/contact/v3/departments/{department_id}/children"
USERS_BY_DEPARTMENT_PATH = "/open-apis/contact/v3/users/find_by_department"
MESSAGES_PATH = "/open-apis/im/v1/messages"

ReceiveIdType = Literal["open_id", "union_id", "user_id", "email", "chat_id"]
RECEIVE_ID_TYPES: frozenset[str] = frozenset({"open_id", "union_id", "user_id", "email", "chat_id"})

# Lark's largest page for both contact listings.
_MAX_PAGE_SIZE = 50
# Refresh app-level tokens this long before Lark says they expire (seconds).
_TOKEN_REFRESH_MARGIN = 300.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LarkClient:
    """An async client of the Lark Open API for one app.

    Use it as an async context manager (``async with LarkClient(...) as lark:``); it
    closes the aiohttp session it created, never one it was given. ``now``, ``sleep``,
    ``monotonic`` and ``rng`` are injectable so tests control time and jitter.
    """

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        *,
        base_url: str = "https://open.feishu.cn",
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        now: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        token_refresh_margin: float = _TOKEN_REFRESH_MARGIN,
    ) -> None:
        check_client_config(
            app_id, app_secret, base_url, timeout, max_retries, backoff_base, backoff_max
        )
        self.app_id = app_id
        self.base_url = base_url.rstrip("/")
        self._app_secret = app_secret
        self._given_session = session
        self._own_session: aiohttp.ClientSession | None = None
        self._now = now
        self._monotonic = monotonic
        self._rng = rng if rng is not None else random.Random()
        self._transport = Transport(
            base_url=self.base_url,
            session=self._session,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            sleep=sleep,
            rng=self._rng,
        )
        self._tenant_token = TokenCache(
            self._fetch_tenant_token, now=now, margin=token_refresh_margin
        )
        self._app_token = TokenCache(self._fetch_app_token, now=now, margin=token_refresh_margin)
        self._authen = Authen(self._transport, self._app_token, now)

    def __repr__(self) -> str:
        return f"LarkClient(app_id={self.app_id!r}, base_url={self.base_url!r})"

    async def __aenter__(self) -> Self:
        self._session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session this client created (a given session is left open)."""
        session, self._own_session = self._own_session, None
        if session is not None:
            await session.close()

    def _session(self) -> aiohttp.ClientSession:
        if self._given_session is not None:
            return self._given_session
        if self._own_session is None or self._own_session.closed:
            self._own_session = aiohttp.ClientSession()
        return self._own_session

    # -- app-level tokens -------------------------------------------------------------

    @property
    def tenant_token_expires_at(self) -> datetime | None:
        """When the cached tenant token expires (``None`` before the first call)."""
        cached = self._tenant_token.cached
        return None if cached is None else cached.expires_at

    async def _fetch_tenant_token(self, max_retries: int | None = None) -> tuple[str, int]:
        return await self._fetch_app_level_token(TENANT_TOKEN_PATH, "tenant", max_retries)

    async def _fetch_app_token(self) -> tuple[str, int]:
        return await self._fetch_app_level_token(APP_TOKEN_PATH, "app", None)

    async def _fetch_app_level_token(
        self, path: str, kind: Literal["tenant", "app"], max_retries: int | None
    ) -> tuple[str, int]:
        answer = await self._transport.request(
            "POST",
            path,
            json_body={"app_id": self.app_id, "app_secret": self._app_secret},
            max_retries=max_retries,
        )
        if answer.code != 0:
            raise LarkAuthError(
                f"Lark refused the credentials of app {self.app_id!r} ({answer.msg}); "
                "check app_id and app_secret",
                code=answer.code,
                msg=answer.msg,
                http_status=answer.http_status,
                log_id=answer.log_id,
            )
        try:
            fields = msgspec.json.decode(answer.body, type=TokenAnswer)
        except msgspec.DecodeError as exc:
            raise protocol_error(answer, f"the {kind} token answer has the wrong shape") from exc
        value = fields.tenant_access_token if kind == "tenant" else fields.app_access_token
        if not value or fields.expire <= 0:
            raise protocol_error(answer, f"the {kind} token answer lacks the token or 'expire'")
        logger.debug(
            "lark: obtained a new %s access token for app %s (lives %ds)",
            kind,
            self.app_id,
            fields.expire,
        )
        return value, fields.expire

    async def ping(self) -> float:
        """Ask Lark for a tenant token with a fresh request; the round trip in seconds.

        One attempt, no retries, the cache untouched: a reachability probe for the
        health job. Raises :class:`LarkUnavailableError`, :class:`LarkAuthError`, ...
        """
        started = self._monotonic()
        await self._fetch_tenant_token(max_retries=0)
        return self._monotonic() - started

    # -- calls ------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        token: TokenCache,
    ) -> Answer:
        answer = await self._transport.request(
            method, path, params=params, json_body=json_body, token=token
        )
        if answer.code != 0:
            raise LarkError(
                f"{method} {path}: Lark answered code {answer.code} ({answer.msg})",
                code=answer.code,
                msg=answer.msg,
                http_status=answer.http_status,
                log_id=answer.log_id,
            )
        return answer

    async def _pages(
        self, path: str, params: dict[str, str], page_type: type[Page[Any]]
    ) -> AsyncIterator[list[Any]]:
        """Every page of a listing, in order; raises on the first page that fails."""
        page_token = ""
        seen: set[str] = set()
        while True:
            query = dict(params)
            if page_token:
                query["page_token"] = page_token
            answer = await self._call("GET", path, params=query, token=self._tenant_token)
            page = decode_data(answer, page_type)
            yield page.items
            if not page.has_more:
                return
            if not page.page_token or page.page_token in seen:
                raise protocol_error(
                    answer, "has_more is true but page_token is missing or repeated"
                )
            seen.add(page.page_token)
            page_token = page.page_token

    async def iter_department_users(
        self, department_id: str = "0", page_size: int = _MAX_PAGE_SIZE
    ) -> AsyncIterator[LarkUser]:
        """The users directly in ``department_id`` (``"0"`` = root), page by page."""
        if not 1 <= page_size <= _MAX_PAGE_SIZE:
            raise ValueError(f"page_size {page_size} is out of range 1-{_MAX_PAGE_SIZE}")
        params = {
            "department_id": department_id,
            "department_id_type": "open_department_id",
            "user_id_type": "open_id",
            "page_size": str(page_size),
        }
        async for items in self._pages(USERS_BY_DEPARTMENT_PATH, params, Page[LarkUser]):
            for user in items:
                yield user

    async def list_departments(
        self, parent: str = "0", fetch_child: bool = True
    ) -> list[Department]:
        """The departments below ``parent`` (all descendants when ``fetch_child``)."""
        params = {
            "department_id_type": "open_department_id",
            "fetch_child": "true" if fetch_child else "false",
            "page_size": str(_MAX_PAGE_SIZE),
        }
        path = DEPARTMENT_CHILDREN_PATH.format(department_id=parent)
        departments: list[Department] = []
        async for items in self._pages(path, params, Page[Department]):
            departments.extend(items)
        return departments

    async def list_all_users(self) -> list[LarkUser]:
        """Every user of the root department and of every department below it.

        Deduplicated by ``open_id`` (first listing wins). Either the whole listing
        succeeds or this raises: a caller never sees a partial directory
        (:meth:`list_directory` skips departments that fail instead).
        """
        departments = await self.list_departments("0", fetch_child=True)
        users: dict[str, LarkUser] = {}
        for department_id in ["0", *(d.open_department_id for d in departments)]:
            async for user in self.iter_department_users(department_id):
                users.setdefault(user.open_id, user)
        return list(users.values())

    async def list_directory(self) -> Directory:
        """Every user of the root department and of every department below it, skipping a
        department whose listing fails instead of failing the whole listing.

        One department can fail while the rest lists, e.g. the root (``"0"``) when the
        app's contact scope does not include all members. Each skipped department is logged
        and reported in :attr:`Directory.failed`; users are deduplicated by ``open_id``.
        Raises when the department tree itself cannot be listed, when Lark refuses the
        app's credentials, or when no department at all could be listed.
        """
        departments = await self.list_departments("0", fetch_child=True)
        ids = ["0", *(d.open_department_id for d in departments)]
        users: dict[str, LarkUser] = {}
        failed: list[DepartmentFailure] = []
        first_error: LarkError | None = None
        for department_id in ids:
            try:
                listed = [user async for user in self.iter_department_users(department_id)]
            except LarkAuthError:
                raise  # the credentials, not the department: every other one would fail too
            except LarkError as error:
                first_error = first_error or error
                failed.append(
                    DepartmentFailure(
                        department_id=department_id, error=f"{type(error).__name__}: {error}"
                    )
                )
                logger.warning(
                    "lark: app %s: users of department %s could not be listed; skipped: %s",
                    self.app_id,
                    department_id,
                    error,
                )
                continue
            for user in listed:
                users.setdefault(user.open_id, user)
        if first_error is not None and len(failed) == len(ids):
            raise first_error
        return Directory(users=tuple(users.values()), departments=len(ids), failed=tuple(failed))

    async def send_text(
        self,
        receive_id: str,
        text: str,
        receive_id_type: ReceiveIdType = "open_id",
        *,
        idempotency_key: str | None = None,
    ) -> MessageReceipt:
        """Send a text message; see :meth:`send_card` for ``idempotency_key``."""
        content = json.dumps({"text": text}, ensure_ascii=False)
        return await self._send_message(
            receive_id, receive_id_type, "text", content, idempotency_key
        )

    async def send_card(
        self,
        receive_id: str,
        card: dict[str, Any],
        receive_id_type: ReceiveIdType = "open_id",
        *,
        idempotency_key: str | None = None,
    ) -> MessageReceipt:
        """Send an interactive card (``msg_type`` ``interactive``).

        ``idempotency_key`` becomes Lark's ``uuid``: Lark sends at most one message per
        key within an hour, so the retries of one call never post twice. A random key is
        drawn when none is given.
        """
        content = json.dumps(card, ensure_ascii=False)
        return await self._send_message(
            receive_id, receive_id_type, "interactive", content, idempotency_key
        )

    async def _send_message(
        self,
        receive_id: str,
        receive_id_type: str,
        msg_type: str,
        content: str,
        idempotency_key: str | None,
    ) -> MessageReceipt:
        if receive_id_type not in RECEIVE_ID_TYPES:
            raise ValueError(
                f"receive_id_type {receive_id_type!r} is not one of {sorted(RECEIVE_ID_TYPES)}"
            )
        if not receive_id:
            raise ValueError("receive_id is empty; pass the recipient's open_id (ou_...)")
        key = idempotency_key or str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        answer = await self._call(
            "POST",
            MESSAGES_PATH,
            params={"receive_id_type": receive_id_type},
            json_body={
                "receive_id": receive_id,
                "msg_type": msg_type,
                "content": content,
                "uuid": key,
            },
            token=self._tenant_token,
        )
        data = decode_data(answer, MessageData)
        return MessageReceipt(message_id=data.message_id)

    # -- users' authorization (authen v1) -----------------------------------------------

    def authorize_url(self, redirect_uri: str, state: str, scope: str = "") -> str:
        """The Lark page where a person authorises this app; Lark then sends the browser to
        ``redirect_uri`` with ``code`` and ``state`` (see :mod:`actors.lark._authen`)."""
        return authorize_url(self.base_url, self.app_id, redirect_uri, state, scope)

    async def exchange_code(self, code: str) -> UserTokenGrant:
        """The user's tokens for the authorization ``code`` Lark sent to the redirect URI.

        Raises :class:`LarkError` when Lark refuses the code (unknown, expired after 5
        minutes, used once already, issued to another app).
        """
        return await self._authen.exchange_code(code)

    async def user_info(self, access_token: str) -> AuthenUser:
        """Who the user of ``access_token`` is (``open_id``, ``name``, ...)."""
        return await self._authen.user_info(access_token)

    async def refresh_user_token(self, refresh_token: str) -> UserTokenGrant:
        """Exchange a user's refresh token for new access and refresh tokens.

        Raises :class:`LarkRefreshTokenError` (``reason`` ``invalid`` / ``expired`` /
        ``revoked``) when the user must authorise the app again. Lark rotates refresh
        tokens: store the returned one, the old one stops working.
        """
        return await self._authen.refresh(refresh_token)
