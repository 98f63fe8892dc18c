"""The request handlers of :class:`tests.fake_lark.FakeLark`, over its state (the authen v1
consent page and code exchange are in :mod:`tests._fake_lark_authen`).

Answer codes follow the Lark Open Platform where the client depends on them
(99991400, 99991661, 99991663, 20026, 20037, 20064); the rest (10003, 10014, 40003,
99992402) are the fake's best guesses and only need to be non-zero.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web

from tests._fake_lark_authen import AuthenHandlers

if TYPE_CHECKING:
    from tests.fake_lark import FakeLark

__all__ = ("Endpoint", "Failure", "Handlers", "IssuedToken", "RefreshToken", "SentMessage")

Endpoint = Literal[
    "tenant_token",
    "app_token",
    "departments",
    "users",
    "messages",
    "refresh",
    "authorize",
    "consent",
    "oidc_token",
    "user_info",
]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_LISTINGS = frozenset({"departments", "users"})
_RECEIVE_ID_TYPES = frozenset({"open_id", "union_id", "user_id", "email", "chat_id"})
_MSG_TYPES = frozenset({"text", "interactive", "post", "image", "share_chat"})


def _answer(payload: dict[str, Any], status: int = 200, **headers: str) -> web.Response:
    return web.json_response(payload, status=status, headers=headers or None)


def _error(code: int, msg: str, status: int = 400, *, key: str = "msg") -> web.Response:
    log_id = f"fake-log-{code}"
    return _answer({"code": code, key: msg, "error": {"log_id": log_id}}, status)


def _ok(data: dict[str, Any], *, key: str = "msg") -> web.Response:
    return _answer({"code": 0, key: "success", "data": data})


def _encode_page_token(endpoint: str, scope: str, offset: int) -> str:
    raw = json.dumps([endpoint, scope, offset]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_page_token(token: str, endpoint: str, scope: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        got_endpoint, got_scope, offset = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if got_endpoint != endpoint or got_scope != scope or not isinstance(offset, int):
        return None
    return offset


async def _json_body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


@dataclass
class SentMessage:
    """A message the fake accepted."""

    app_id: str
    receive_id_type: str
    receive_id: str
    msg_type: str
    content: dict[str, Any]
    uuid: str | None
    message_id: str


@dataclass
class Failure:
    """An injected failure: answer ``status`` (and ``code``) instead of serving.

    ``page`` (1-based) limits it to that page of a listing, ``department`` to listings
    of that department. ``times=None`` fails forever. ``after_effect`` lets the request
    take effect first (the message is sent) and then loses the answer.
    """

    endpoint: Endpoint
    status: int = 500
    code: int | None = None
    times: int | None = 1
    page: int | None = None
    department: str | None = None
    after_effect: bool = False


@dataclass
class IssuedToken:
    """An access token the fake handed out; ``expires_at`` is on the fake's clock.
    ``open_id`` is the user of a user access token."""

    value: str
    kind: Literal["tenant", "app", "user"]
    app_id: str
    expires_at: float
    valid: bool = True
    open_id: str = ""


@dataclass
class RefreshToken:
    """A user's refresh token and its state on the fake's clock."""

    value: str
    app_id: str
    expires_at: float
    state: Literal["valid", "expired", "revoked"] = "valid"
    open_id: str = ""


class Handlers:
    """Routes and handlers; every handler reads and updates the state of ``fake``."""

    def __init__(self, fake: FakeLark) -> None:
        self.fake = fake
        self.authen = AuthenHandlers(fake, self)

    error = staticmethod(_error)
    ok = staticmethod(_ok)
    json_body = staticmethod(_json_body)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(
            "/open-apis/auth/v3/tenant_access_token/internal",
            self._tenant_token,
            name="tenant_token",
        )
        app.router.add_post(
            "/open-apis/auth/v3/app_access_token/internal", self._app_token, name="app_token"
        )
        app.router.add_get(
            "/open-apis/contact/v3/departments/{department_id}/children",
            self._departments,
            name="departments",
        )
        app.router.add_get(
            "/open-apis/contact/v3/users/find_by_department", self._users, name="users"
        )
        app.router.add_post("/open-apis/im/v1/messages", self._messages, name="messages")
        app.router.add_post(
            "/open-apis/authen/v1/oidc/refresh_access_token", self._refresh, name="refresh"
        )
        self.authen.add_routes(app)

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        endpoint = request.match_info.route.name
        if endpoint is None:
            return await handler(request)
        self.fake.calls[endpoint] += 1
        for hook in list(self.fake.hooks):
            hook(endpoint, self.fake.calls[endpoint])
        seconds, times = self.fake.stalls.get(endpoint, (0.0, 0))
        if times > 0:
            self.fake.stalls[endpoint] = (seconds, times - 1)
            await self.fake.wait_stall(seconds)
        if self.fake.rate_limited_calls > 0 and self.fake.rate_limit_endpoint in (None, endpoint):
            self.fake.rate_limited_calls -= 1
            headers = {"x-ogw-ratelimit-limit": "50"}
            if self.fake.rate_limit_reset is not None:
                headers["x-ogw-ratelimit-reset"] = str(self.fake.rate_limit_reset)
            if self.fake.rate_limit_retry_after is not None:
                headers["Retry-After"] = self.fake.rate_limit_retry_after
            return _answer(
                {"code": 99991400, "msg": "request trigger frequency limit"}, 429, **headers
            )
        if endpoint in _LISTINGS:
            # Listings check failures per page, in the handler.
            return await handler(request)
        failure = self.fake.take_failure(endpoint)
        if failure is None:
            return await handler(request)
        if failure.after_effect:
            await handler(request)
        return _failure_response(failure)

    def check_token(
        self, request: web.Request, kind: str
    ) -> tuple[IssuedToken | None, web.Response | None]:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[len("Bearer ") :]:
            return None, _error(99991661, "Missing access token for authorization.")
        token = self.fake.tokens.get(header[len("Bearer ") :])
        if (
            token is None
            or not token.valid
            or token.kind != kind
            or self.fake.clock >= token.expires_at
        ):
            return None, _error(99991663, "Invalid access token for authorization.")
        return token, None

    async def _tenant_token(self, request: web.Request) -> web.Response:
        return await self._issue(request, "tenant")

    async def _app_token(self, request: web.Request) -> web.Response:
        return await self._issue(request, "app")

    async def _issue(self, request: web.Request, kind: Literal["tenant", "app"]) -> web.Response:
        body = await _json_body(request)
        if body is None or body.get("app_id") not in self.fake.apps:
            return _error(10003, "invalid param")
        app_id = body["app_id"]
        if body.get("app_secret") != self.fake.apps[app_id]:
            return _error(10014, "app secret invalid")
        value = f"{kind[0]}-fake{self.fake.next_id():06d}-{kind}-token"
        self.fake.tokens[value] = IssuedToken(
            value, kind, app_id, self.fake.clock + self.fake.token_lifetime
        )
        self.fake.issued_tokens.append(value)
        return _answer(
            {
                "code": 0,
                "msg": "ok",
                f"{kind}_access_token": value,
                "expire": self.fake.token_lifetime,
            }
        )

    async def _departments(self, request: web.Request) -> web.Response:
        _, refused = self.check_token(request, "tenant")
        if refused is not None:
            return refused
        parent = request.match_info["department_id"]
        if parent != "0" and parent not in self.fake.departments:
            return _error(40003, f"department {parent} not found")
        recursive = request.query.get("fetch_child") == "true"
        below = []
        frontier = [parent]
        while frontier:
            current = frontier.pop(0)
            children = [
                d
                for d, info in self.fake.departments.items()
                if info["parent_department_id"] == current
            ]
            below.extend(children)
            if recursive:
                frontier.extend(children)
        items = [
            {"open_department_id": d, "status": {"is_deleted": False}, **self.fake.departments[d]}
            for d in below
        ]
        return self._page(request, "departments", parent, items)

    async def _users(self, request: web.Request) -> web.Response:
        _, refused = self.check_token(request, "tenant")
        if refused is not None:
            return refused
        department = request.query.get("department_id", "")
        if department != "0" and department not in self.fake.departments:
            return _error(40003, f"department {department!r} not found")
        members = [u for u in self.fake.users if department in u["department_ids"]]
        return self._page(request, "users", department, members)

    def _page(
        self, request: web.Request, endpoint: str, scope: str, items: list[Any]
    ) -> web.Response:
        try:
            page_size = int(request.query.get("page_size", "10"))
        except ValueError:
            page_size = 0
        if not 1 <= page_size <= 50:
            return _error(99992402, "field validation failed: page_size must be 1-50")
        offset = 0
        token = request.query.get("page_token", "")
        if token:
            decoded = _decode_page_token(token, endpoint, scope)
            if decoded is None:
                return _error(99992402, "field validation failed: page_token is invalid")
            offset = decoded
        failure = self.fake.take_failure(endpoint, offset // page_size + 1, scope)
        if failure is not None:
            return _failure_response(failure)
        has_more = offset + page_size < len(items)
        data: dict[str, Any] = {"items": items[offset : offset + page_size], "has_more": has_more}
        if has_more:
            data["page_token"] = _encode_page_token(endpoint, scope, offset + page_size)
        return _ok(data)

    async def _messages(self, request: web.Request) -> web.Response:
        token, refused = self.check_token(request, "tenant")
        if refused is not None:
            return refused
        assert token is not None
        receive_id_type = request.query.get("receive_id_type", "")
        if receive_id_type not in _RECEIVE_ID_TYPES:
            return _error(99992402, "field validation failed: receive_id_type")
        body = await _json_body(request)
        if body is None or not body.get("receive_id") or body.get("msg_type") not in _MSG_TYPES:
            return _error(230001, "invalid request: receive_id or msg_type")
        try:
            content = json.loads(body["content"]) if isinstance(body.get("content"), str) else None
        except ValueError:
            content = None
        if not isinstance(content, dict) or (body["msg_type"] == "text" and "text" not in content):
            return _error(230001, "invalid request: content must be a JSON object string")
        uuid = body.get("uuid")
        for sent in self.fake.sent:
            if uuid and sent.uuid == uuid and sent.app_id == token.app_id:
                return _ok({"message_id": sent.message_id, "msg_type": sent.msg_type})
        message = SentMessage(
            app_id=token.app_id,
            receive_id_type=receive_id_type,
            receive_id=body["receive_id"],
            msg_type=body["msg_type"],
            content=content,
            uuid=uuid,
            message_id=f"om_fake{self.fake.next_id():08d}",
        )
        self.fake.sent.append(message)
        return _ok({"message_id": message.message_id, "msg_type": message.msg_type})

    async def _refresh(self, request: web.Request) -> web.Response:
        token, refused = self.check_token(request, "app")
        if refused is not None:
            return refused
        assert token is not None
        body = await _json_body(request)
        if body is None or body.get("grant_type") != "refresh_token":
            return _error(20003, "invalid grant_type", key="message")
        current = self.fake.refresh_tokens.get(str(body.get("refresh_token", "")))
        if current is None or current.app_id != token.app_id:
            return _error(20026, "refresh token is invalid", key="message")
        if current.state == "revoked":
            return _error(20064, "refresh token has been revoked", key="message")
        if current.state == "expired" or self.fake.clock >= current.expires_at:
            return _error(20037, "refresh token has expired", key="message")
        # Lark rotates refresh tokens: the old one is spent.
        current.state = "revoked"
        self.fake.refreshed.append(current.value)
        return _ok(self.fake.grant_tokens(token.app_id, current.open_id), key="message")


def _failure_response(failure: Failure) -> web.Response:
    if failure.code is None:
        # A gateway's error page: not Lark's JSON envelope.
        return web.Response(status=failure.status, text="injected failure")
    return _error(failure.code, "injected failure", failure.status)
