"""A fake Lark (Feishu) Open API server for tests: aiohttp.web on 127.0.0.1.

It implements the endpoints :class:`actors.lark.LarkClient` uses (tenant and app
tokens, departments, users by department, messages, user-token refresh) and the users'
authorization (the authorize page a browser consents on, code exchange, user info; see
:mod:`tests._fake_lark_authen`), and lets a test misbehave on purpose:

* tokens that expire after ``token_lifetime`` seconds of the fake's own clock
  (:meth:`FakeLark.advance` moves it), and :meth:`FakeLark.invalidate_tokens`;
* rate limiting of the next K calls (:meth:`FakeLark.rate_limit`);
* HTTP failures on an endpoint or on page P of a listing, N times or forever
  (:meth:`FakeLark.fail`), and stalls (:meth:`FakeLark.stall`);
* refresh tokens that can be expired or revoked; authorization codes that expire after 5
  minutes of the fake's clock and work once; redirect URIs that must be registered;
* counters of calls per endpoint (:attr:`FakeLark.calls`), the messages sent
  (:attr:`FakeLark.sent`) and every token handed out (:attr:`FakeLark.issued_tokens`).

Use the ``fake_lark`` pytest fixture, ``async with FakeLark() as fake:``, or run it
alone: ``python -m tests.fake_lark --port 0`` prints its URL and serves until stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, get_args

import pytest
from aiohttp import web

from tests._fake_lark_authen import CODE_LIFETIME, AuthCode
from tests._fake_lark_handlers import (
    Endpoint,
    Failure,
    Handlers,
    IssuedToken,
    RefreshToken,
    SentMessage,
)

__all__ = (
    "ENDPOINTS",
    "FAKE_APP_ID",
    "FAKE_APP_SECRET",
    "AuthCode",
    "Endpoint",
    "Failure",
    "FakeLark",
    "IssuedToken",
    "RefreshToken",
    "SentMessage",
    "fake_lark",
    "main",
)

FAKE_APP_ID = "cli_fake0000000001"
FAKE_APP_SECRET = "fake-secret-do-not-log-0001"

#: Every endpoint the fake serves (as counted in ``FakeLark.calls``).
ENDPOINTS: tuple[Endpoint, ...] = get_args(Endpoint)


@dataclass
class FakeLark:
    """The fake server's state and controls; see the module docstring."""

    apps: dict[str, str] = field(default_factory=lambda: {FAKE_APP_ID: FAKE_APP_SECRET})
    token_lifetime: int = 7200
    user_token_lifetime: int = 7200
    refresh_token_lifetime: int = 30 * 86400
    #: open_department_id -> {"name", "parent_department_id", "department_id"}
    departments: dict[str, dict[str, str]] = field(default_factory=dict)
    users: list[dict[str, Any]] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    sent: list[SentMessage] = field(default_factory=list)
    issued_tokens: list[str] = field(default_factory=list)
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    #: Refresh tokens spent by a successful refresh, in order.
    refreshed: list[str] = field(default_factory=list)
    #: app_id -> the redirect URIs registered for it (Lark's Security Settings).
    redirect_uris: dict[str, set[str]] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    #: Called with (endpoint, call number of that endpoint) before each call is served.
    hooks: list[Callable[[str, int], None]] = field(default_factory=list)
    url: str = ""
    clock: float = 0.0
    rate_limited_calls: int = 0
    rate_limit_reset: int | None = 1
    rate_limit_endpoint: str | None = None
    rate_limit_retry_after: str | None = None
    stalls: dict[str, tuple[float, int]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = a free port); answers the base URL."""
        handlers = Handlers(self)
        app = web.Application(middlewares=[handlers.middleware])
        handlers.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_port = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound_port}"
        return self.url

    async def close(self) -> None:
        """Stop serving; stalled requests are released."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- directory --------------------------------------------------------------------

    def add_app(self, app_id: str, app_secret: str) -> None:
        self.apps[app_id] = app_secret

    def add_department(
        self, open_department_id: str, name: str = "", parent: str = "0"
    ) -> dict[str, str]:
        if parent != "0" and parent not in self.departments:
            raise ValueError(f"parent department {parent!r} does not exist; add it first")
        department = {
            "name": name or open_department_id,
            "parent_department_id": parent,
            "department_id": f"D{len(self.departments) + 1}",
        }
        self.departments[open_department_id] = department
        return department

    def add_user(
        self,
        open_id: str | None = None,
        *,
        departments: tuple[str, ...] = ("0",),
        name: str | None = None,
        status: dict[str, bool] | None = None,
    ) -> dict[str, Any]:
        """Add a user; ``status`` overrides ``is_activated=True`` and friends."""
        n = len(self.users) + 1
        open_id = open_id or f"ou_{n:08d}"
        user = {
            "open_id": open_id,
            "union_id": f"on_{open_id[3:]}",
            "user_id": f"u{n}",
            "name": name or f"User {n}",
            "en_name": f"User {n}",
            "email": f"user{n}@example.com",
            "mobile": f"+86130{n:08d}",
            "department_ids": list(departments),
            "status": {
                "is_frozen": False,
                "is_resigned": False,
                "is_activated": True,
                "is_exited": False,
                "is_unjoin": False,
                **(status or {}),
            },
        }
        self.users.append(user)
        return user

    def add_users(self, count: int, department: str = "0") -> list[dict[str, Any]]:
        return [self.add_user(departments=(department,)) for _ in range(count)]

    # -- misbehaviour -----------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (token and refresh-token expiry) forward."""
        self.clock += seconds

    def invalidate_tokens(self) -> None:
        """Every access token handed out so far is refused from now on (99991663)."""
        for token in self.tokens.values():
            token.valid = False

    def rate_limit(
        self,
        times: int,
        *,
        reset: int | None = 1,
        endpoint: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls (of ``endpoint``, or any) with 99991400 / 429.

        ``reset`` is the ``x-ogw-ratelimit-reset`` header in seconds; ``None`` omits it.
        ``retry_after`` is a ``Retry-After`` header (seconds or an HTTP date) to add.
        """
        self.rate_limited_calls = times
        self.rate_limit_reset = reset
        self.rate_limit_endpoint = endpoint
        self.rate_limit_retry_after = retry_after

    def fail(self, endpoint: Endpoint, **options: Any) -> Failure:
        """Inject a :class:`Failure` (keyword arguments as its fields)."""
        failure = Failure(endpoint, **options)
        self.failures.append(failure)
        return failure

    def stall(self, endpoint: Endpoint, seconds: float, times: int = 1) -> None:
        """Hold the next ``times`` answers of ``endpoint`` for ``seconds`` (real time)."""
        self.stalls[endpoint] = (seconds, times)

    def grant_user_token(
        self, app_id: str = FAKE_APP_ID, lifetime: int | None = None, open_id: str = ""
    ) -> str:
        """A new valid refresh token for a user of ``app_id``."""
        value = f"ur-{next(self._ids):06d}-fake-refresh"
        life = self.refresh_token_lifetime if lifetime is None else lifetime
        self.refresh_tokens[value] = RefreshToken(
            value, app_id, self.clock + life, open_id=open_id
        )
        self.issued_tokens.append(value)
        return value

    def grant_tokens(self, app_id: str, open_id: str) -> dict[str, Any]:
        """A new refresh token and user access token, as the OIDC endpoints answer them."""
        refresh = self.grant_user_token(app_id, open_id=open_id)
        access = f"u-fake{self.next_id():06d}-user-token"
        self.tokens[access] = IssuedToken(
            access, "user", app_id, self.clock + self.user_token_lifetime, open_id=open_id
        )
        self.issued_tokens.append(access)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": self.user_token_lifetime,
            "refresh_expires_in": self.refresh_token_lifetime,
            "scope": "auth:user.id:read",
        }

    def register_redirect_uri(self, app_id: str, redirect_uri: str) -> None:
        """Allow ``redirect_uri`` for ``app_id`` (Lark's Security Settings > Redirect URLs)."""
        self.redirect_uris.setdefault(app_id, set()).add(redirect_uri)

    def issue_code(self, app_id: str, open_id: str, redirect_uri: str) -> str:
        """A new authorization code, as the consent page hands it to the redirect URI."""
        value = f"fake-code-{self.next_id():06d}"
        self.codes[value] = AuthCode(
            value, app_id, open_id, redirect_uri, self.clock + CODE_LIFETIME
        )
        return value

    def expire_refresh_token(self, value: str) -> None:
        self.refresh_tokens[value].state = "expired"

    def revoke_refresh_token(self, value: str) -> None:
        self.refresh_tokens[value].state = "revoked"

    def take_failure(
        self, endpoint: str, page: int | None = None, department: str | None = None
    ) -> Failure | None:
        """The first armed failure matching this request, consuming one of its times."""
        for failure in self.failures:
            if failure.endpoint != endpoint or failure.times == 0:
                continue
            if failure.page is not None and failure.page != page:
                continue
            if failure.department is not None and failure.department != department:
                continue
            if failure.times is not None:
                failure.times -= 1
            return failure
        return None

    def next_id(self) -> int:
        return next(self._ids)

    async def wait_stall(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)


@pytest.fixture
async def fake_lark(anyio_backend: object) -> AsyncIterator[FakeLark]:
    """A running :class:`FakeLark` with the app ``FAKE_APP_ID`` / ``FAKE_APP_SECRET``.

    It asks for ``anyio_backend`` so that anyio's plugin keeps the ``parametrize`` ids
    of the tests that use it (its collection hook re-creates, without their parameters,
    async test items that do not depend on ``anyio_backend``).
    """
    async with FakeLark() as fake:
        yield fake


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeLark(token_lifetime=args.token_lifetime)
    for spec in args.app:
        app_id, _, secret = spec.partition(":")
        fake.add_app(app_id, secret)
    for redirect_uri in args.redirect_uri:
        for app_id in fake.apps:
            fake.register_redirect_uri(app_id, redirect_uri)
    for d in range(args.departments):
        fake.add_department(f"od-fake{d + 1:04d}", f"Department {d + 1}")
    for i in range(args.users):
        department = "0" if not fake.departments else list(fake.departments)[i % args.departments]
        fake.add_user(departments=(department,))
    url = await fake.start(args.host, args.port)
    print(url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.fake_lark --port 0``: serve, print the URL, run until stopped."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_lark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="APP_ID:SECRET",
        help=f"an extra app (the fake always knows {FAKE_APP_ID})",
    )
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        metavar="URL",
        help="a redirect URL every app accepts on its authorize page "
        "(e.g. http://127.0.0.1:8080/oauth/callback)",
    )
    parser.add_argument("--users", type=int, default=0, help="users spread over departments")
    parser.add_argument("--departments", type=int, default=0)
    parser.add_argument("--token-lifetime", type=int, default=7200, help="seconds")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
