"""Test support for the console: a kernel on a virtual clock with its admin app (console at
``/ui``) behind an aiohttp test client, and signing in as a browser would."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kernel import Kernel
from kernel.console import CONSOLE, Console, ConsoleOptions
from kernel.http import create_admin_app
from kernel.testing import VirtualClock

__all__ = (
    "T0",
    "TOKEN",
    "ConsoleWorld",
    "console_world",
    "csrf_of",
    "fail",
    "form_token_of",
    "main_of",
    "sign_in",
    "tick",
)

TOKEN = "console-admin-token-0123456789"
T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


async def tick() -> None:
    """A job that succeeds."""


async def fail() -> None:
    """A job that fails with a message holding a secret and markup."""
    raise RuntimeError("db password=hunter2 said <img src=x onerror=alert(1)>")


@dataclass
class ConsoleWorld:
    kernel: Kernel
    clock: VirtualClock
    client: TestClient[web.Request, web.Application]
    app: web.Application

    @property
    def console(self) -> Console:
        return self.app[CONSOLE]

    async def page(self, path: str, **kwargs: Any) -> tuple[int, str]:
        async with self.client.get(path, allow_redirects=False, **kwargs) as answer:
            return answer.status, await answer.text()


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    match = _CSRF.search(html)
    assert match is not None, "no form with a CSRF token on the page"
    return match.group(1)


form_token_of = csrf_of


def main_of(html: str) -> str:
    """The page's <main> (what a page says, without the layout)."""
    start, end = html.index("<main"), html.index("</main>")
    return html[start:end]


@asynccontextmanager
async def console_world(
    token: str | None = TOKEN, *, jobs: bool = True, prefix: str = "", **admin: Any
) -> AsyncIterator[ConsoleWorld]:
    """A started kernel (Asia/Shanghai, virtual clock at :data:`T0`) with jobs ``report``
    (cron 09:00 and 18:00), ``tick`` (every 5 minutes) and ``flaky`` (fails, every hour),
    and its admin app served (under ``prefix`` when given)."""
    clock = VirtualClock(T0)
    kernel = Kernel(timezone="Asia/Shanghai", clock=clock)
    if jobs:
        kernel.add_cron_job(tick, "0 9,18 * * *", job_id="report", name="Daily report")
        kernel.add_interval_job(tick, minutes=5, job_id="tick")
        kernel.add_interval_job(fail, hours=1, job_id="flaky")
    admin.setdefault("console", ConsoleOptions(refresh=0))
    app = create_admin_app(kernel, token=token, metrics=None, **admin)
    served = app
    if prefix:
        served = web.Application()
        served.add_subapp(prefix, app)
    async with kernel, TestClient(TestServer(served)) as client:
        yield ConsoleWorld(kernel, clock, client, app)


async def sign_in(world: ConsoleWorld, base: str = "/ui", token: str = TOKEN) -> str:
    """Sign in through the form; answers the session's CSRF token."""
    status, html = await world.page(f"{base}/login")
    assert status == 200, html
    async with world.client.post(
        f"{base}/login",
        data={"token": token, "csrf": form_token_of(html), "next": base},
        allow_redirects=False,
    ) as answer:
        assert answer.status == 303, await answer.text()
    status, html = await world.page(base)
    assert status == 200
    return csrf_of(html)
