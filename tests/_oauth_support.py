"""Test support for users' authorization: the service on a virtual clock, its admin server
with the OAuth routes on a real port, the fake Lark, and an HTTP client that follows the
flow step by step (the browser test drives the same world with Chromium)."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from actors.service import LarkService, make_kernel
from kernel.http import AdminServer
from kernel.testing import VirtualClock
from tests._service_support import ServiceBackend, add_apps, running_service
from tests.fake_lark import FakeLark

__all__ = ("ADMIN_TOKEN", "OAuthWorld", "Page", "free_port", "oauth_world")

ADMIN_TOKEN = "test-admin-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Page:
    """A page as the browser got it: status, its ``data-problem`` (empty on success)."""

    status: int
    problem: str
    headers: Any
    text: str


@dataclass
class OAuthWorld:
    """The service (``base`` is its URL), the fake Lark, the clock, an HTTP client, and
    the environment that configures the service (for the command line)."""

    service: LarkService
    fake: FakeLark
    clock: VirtualClock
    base: str
    http: aiohttp.ClientSession
    env: dict[str, str]

    async def authorize(self, app_id: str = "cli_a") -> aiohttp.ClientResponse:
        """``GET /oauth/{app_id}/authorize`` without following the redirect."""
        async with self.http.get(
            f"{self.base}/oauth/{app_id}/authorize", allow_redirects=False
        ) as answer:
            await answer.read()
            return answer

    async def lark_redirect(
        self, app_id: str = "cli_a", *, decision: str = "allow", open_id: str = "ou_ann"
    ) -> str:
        """Authorize, consent on the fake's page: the callback URL Lark sends back to."""
        location = (await self.authorize(app_id)).headers["Location"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        async with self.http.post(
            f"{self.fake.url}/open-apis/authen/v1/authorize/consent",
            data={**query, "open_id": open_id, "decision": decision},
            allow_redirects=False,
        ) as answer:
            assert answer.status == 302, await answer.text()
            return answer.headers["Location"]

    async def open(self, url: str) -> Page:
        """The page at ``url`` (redirects not followed)."""
        async with self.http.get(url, allow_redirects=False) as answer:
            text = await answer.text()
            match = re.search(r'data-problem="([^"]*)"', text)
            return Page(answer.status, match.group(1) if match else "?", answer.headers, text)

    async def token(
        self, app_id: str = "cli_a", open_id: str = "ou_ann", admin: str | None = ADMIN_TOKEN
    ) -> tuple[int, Any]:
        headers = {} if admin is None else {"Authorization": f"Bearer {admin}"}
        async with self.http.get(
            f"{self.base}/tokens/{app_id}/{open_id}", headers=headers
        ) as answer:
            return answer.status, await answer.json()


@asynccontextmanager
async def oauth_world(
    kind: str,
    tmp_path: Path,
    fake: FakeLark,
    *,
    start: datetime | None = None,
    admin_token: str | None = ADMIN_TOKEN,
    configured: bool = True,
    **env: str,
) -> AsyncIterator[OAuthWorld]:
    """The service with app ``cli_a`` (secret set, administrator ``ou_admin_cli_a``) and
    the fake's user ``ou_ann`` (Ann); the callback URL registered with the fake."""
    backend = ServiceBackend(kind, tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if configured:
        env.setdefault("LARK_SCHEDULER_OAUTH__REDIRECT_BASE_URL", base)
    config = backend.config(fake, **env)
    full_env = backend.env(fake, **env)
    clock = VirtualClock(start or datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    fake.add_user("ou_ann", name="Ann")
    fake.register_redirect_uri("cli_a", f"{base}/oauth/callback")
    try:
        async with running_service(config, clock=clock) as service:
            await add_apps(service, fake, "cli_a")
            kernel = make_kernel(config, clock=clock, failure_store=service.store)
            admin = AdminServer(kernel, host="127.0.0.1", port=port, token=admin_token)
            service.add_routes(admin.app, admin_token=admin_token)
            async with admin, aiohttp.ClientSession() as http:
                yield OAuthWorld(service, fake, clock, base, http, full_env)
    finally:
        await backend.cleanup()
