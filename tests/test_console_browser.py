"""The operator console in a real browser (Debian's chromium, driven by Playwright), against
the Lark service with its four built-in jobs and the fake Lark: a wrong token refused, sign
in, the jobs, pause and resume, run one (from the keyboard) and see the run, a failure
opened and retried, tokens and health, a narrow window, a POST without the CSRF token
refused, sign out. The service runs on the real clock (``health_check`` every second, so
the pages have runs to show); screenshots of the main pages are saved under the directory
the test prints (``CONSOLE_SCREENSHOTS_DIR`` chooses it)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from actors.lark import UserTokenGrant
from actors.service import JOB_IDS, LarkService, make_kernel
from kernel import Kernel
from kernel.console import CONSOLE, Console, ConsoleOptions
from kernel.http import AdminServer
from tests._oauth_support import free_port
from tests._service_support import ServiceBackend, add_apps, running_service
from tests.fake_lark import FakeLark

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

TOKEN = "browser-admin-token-0123456789"
SECRET_VALUES = ("u-secret-access", "ur-secret-refresh", "secret-of-cli_a")


@dataclass
class Served:
    service: LarkService
    kernel: Kernel
    console: Console
    fake: FakeLark
    base: str


async def _ran(served: Served, job_id: str, count: int) -> bool:
    return await _count(served.console, job_id, count)


@asynccontextmanager
async def console_service(tmp_path: Path, fake: FakeLark) -> AsyncIterator[Served]:
    """The Lark service's kernel and admin server as ``serve`` wires them, app ``cli_a``
    with three users' authorizations, ``health_check`` every second."""
    backend = ServiceBackend("sqlite", tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = backend.config(
        fake,
        LARK_SCHEDULER_OAUTH__REDIRECT_BASE_URL=base,
        LARK_SCHEDULER_JOBS__HEALTH_CHECK__MINUTES="",
        LARK_SCHEDULER_JOBS__HEALTH_CHECK__SECONDS="1",
    )
    now = datetime.now(UTC)
    try:
        async with running_service(config) as service:
            await add_apps(service, fake, "cli_a")
            for n, (open_id, name, days) in enumerate(
                [("ou_ann", "Ann", 40), ("ou_bob", "Bob", 5), ("ou_cat", "Cat", 2)]
            ):
                await service.store.save_user_authorization(
                    "cli_a", open_id, UserTokenGrant(
                        access_token=f"u-secret-access-{n}",
                        access_expires_at=now + timedelta(hours=2),
                        refresh_token=f"ur-secret-refresh-{n}",
                        refresh_expires_at=now + timedelta(days=days),
                    ), name=name,
                )
            kernel = make_kernel(config, failure_store=service.store)
            service.register_jobs(kernel)
            admin = AdminServer(
                kernel, port=port, token=TOKEN,
                console=ConsoleOptions(title="lark-scheduler", refresh=0),
            )
            service.add_routes(admin.app, admin_token=TOKEN)
            async with kernel, admin:
                yield Served(service, kernel, admin.app[CONSOLE], fake, base)
    finally:
        await backend.cleanup()


def screenshots_dir(tmp_path: Path) -> Path:
    chosen = os.environ.get("CONSOLE_SCREENSHOTS_DIR")
    path = Path(chosen) if chosen else tmp_path / "console-screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 15) -> None:
    """Wait (for real: the runs do real I/O) until ``check()`` holds."""
    for _ in range(round(seconds * 10)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"waited {seconds} s in vain: {what}")


async def flash(page: Any) -> str:
    return str(await page.inner_text(".flash"))


async def fits(page: Any) -> bool:
    """Whether the page is no wider than the window (no sideways scrolling)."""
    return bool(await page.evaluate("document.documentElement.scrollWidth <= innerWidth"))


async def click_and_wait(page: Any, selector: str) -> None:
    async with page.expect_navigation():
        await page.click(selector)


async def test_operate_the_service_from_the_console(
    tmp_path: Path, fake_lark: FakeLark, browser_page: Any
) -> None:
    page = browser_page
    shots = screenshots_dir(tmp_path)
    print(f"console screenshots: {shots}")
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    await page.set_viewport_size({"width": 1280, "height": 800})

    async with console_service(tmp_path, fake_lark) as served:
        base = served.base

        # Read-only before signing in: the jobs, no buttons, a link to sign in.
        await page.goto(f"{base}/ui")
        assert await page.locator("form").count() == 0
        await click_and_wait(page, "text=Sign in")
        assert await page.title() == "Sign in · lark-scheduler"

        # A wrong token is refused.
        await page.fill("#token", "not-the-admin-token-at-all")
        await click_and_wait(page, "form.login button")
        assert await page.inner_text("[role=alert]") == "That is not the admin token."
        assert page.url == f"{base}/ui/login"

        await page.fill("#token", TOKEN)
        await click_and_wait(page, "form.login button")
        assert page.url == f"{base}/ui"
        ids = await page.locator("tr[data-job]").evaluate_all(
            "rows => rows.map(r => r.dataset.job)"
        )
        assert ids == sorted(JOB_IDS)
        row = page.locator('tr[data-job="check_token_expiry"]')
        assert "at 09:00 and 18:00 every day (Asia/Shanghai)" in await row.inner_text()
        hover = await row.locator("time").get_attribute("title")
        assert hover is not None
        assert re.fullmatch(r"\d{4}-\d\d-\d\d (01|10):00:00 UTC", hover)  # 09:00/18:00 CST
        await until(lambda: _ran(served, "health_check", 3), "health_check ran")
        await page.reload()
        assert await fits(page), "the jobs table is wider than a 1280 px window"
        await page.screenshot(path=str(shots / "jobs.png"), full_page=True)

        # Pause and resume health_check.
        await click_and_wait(page, 'tr[data-job="health_check"] button:text-is("Pause")')
        assert await flash(page) == "Paused health_check."
        state = page.locator('tr[data-job="health_check"] td[data-label="State"]')
        # Paused; a run that had just started shows "running" too, and finishes.
        assert (await state.inner_text()).split()[0] == "paused"
        assert served.kernel.get_job("health_check").paused
        await click_and_wait(page, 'tr[data-job="health_check"] button:text-is("Resume")')
        assert await flash(page) == "Resumed health_check."
        assert (await state.inner_text()).split()[0] in {"scheduled", "running"}

        # Run cleanup_expired_tokens now, from the keyboard; the run appears on its page.
        await page.focus('tr[data-job="cleanup_expired_tokens"] button:text-is("Run now")')
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        said = await flash(page)
        match = re.fullmatch(r"Started run (\S+) of cleanup_expired_tokens\.", said)
        assert match is not None, said
        run_id = match.group(1)
        await click_and_wait(page, 'a.job-id:text-is("cleanup_expired_tokens")')
        run_row = page.locator(f'tr[data-run="{run_id}"]')

        async def run_done() -> bool:
            await page.reload()
            return await run_row.count() == 1 and "succeeded" in await run_row.inner_text()

        await until(run_done, "the manual run is listed as succeeded")
        assert "manual" in await run_row.inner_text()

        await until(lambda: _ran(served, "health_check", 6), "health_check ran 6 times")
        await page.goto(f"{base}/ui/jobs/health_check")
        assert await page.locator("figure.chart svg rect").count() >= 12
        await page.screenshot(path=str(shots / "job.png"), full_page=True)

        # A failing sync: its record, the redacted traceback, a retry that succeeds.
        served.fake.fail("tenant_token", status=500, times=None)
        await page.goto(f"{base}/ui")
        await click_and_wait(page, 'tr[data-job="sync_user_info"] button:text-is("Run now")')
        await until(lambda: _has_failure(served), "the sync failed and was recorded")
        await click_and_wait(page, "header nav >> text=Failures")
        await click_and_wait(page, 'tr[data-failure] a.failure-link')
        assert (await page.inner_text("h1")) == "Failure of sync_user_info"
        traceback = await page.inner_text("pre.traceback")
        assert "JobIncompleteError" in traceback
        await page.screenshot(path=str(shots / "failure.png"), full_page=True)
        served.fake.failures.clear()
        await click_and_wait(page, 'button:text-is("Retry")')
        assert (await flash(page)).startswith("Retry started: run ")

        async def retried() -> bool:
            await page.reload()
            retries = page.locator("ul.retries")
            return await retries.count() == 1 and "succeeded" in await retries.inner_text()

        await until(retried, "the retry is linked to the record and succeeded")

        # Tokens per app (never a token value) and health.
        await click_and_wait(page, "header nav >> text=Tokens")
        app = page.locator('section[data-app="cli_a"]')
        counts = await app.locator(".counts").inner_text()
        assert re.sub(r"\s+", " ", counts) == "valid 1 warning 1 critical 1 expired 0 invalid 0"
        assert await app.locator("tr[data-user]").evaluate_all(
            "rows => rows.map(r => r.dataset.user)"
        ) == ["ou_cat", "ou_bob", "ou_ann"]
        content = await page.content()
        assert not any(secret in content for secret in SECRET_VALUES)
        await page.screenshot(path=str(shots / "tokens.png"), full_page=True)
        await click_and_wait(page, "header nav >> text=Health")
        database = page.locator('tr[data-component="database"]')
        assert "ok" in await database.inner_text()
        await page.screenshot(path=str(shots / "health.png"), full_page=True)

        # A narrow window: nothing wider than the screen.
        await page.set_viewport_size({"width": 390, "height": 844})
        for path, name in [("/ui", "jobs-narrow.png"), ("/ui/jobs/health_check", None)]:
            await page.goto(f"{base}{path}")
            assert await fits(page), path
            if name:
                await page.screenshot(path=str(shots / name), full_page=True)
        await page.set_viewport_size({"width": 1280, "height": 800})

        # A POST without the CSRF token is refused, though the session cookie is sent.
        answer = await page.request.post(f"{base}/ui/jobs/health_check/pause", form={})
        assert answer.status == 403
        assert "security token is missing" in await answer.text()
        assert not served.kernel.get_job("health_check").paused

        # Sign out: the session is gone.
        await page.goto(f"{base}/ui")
        await click_and_wait(page, 'button:text-is("Sign out")')
        assert await page.inner_text("[role=status]") == "Signed out."
        await page.goto(f"{base}/ui/failures")
        assert page.url.startswith(f"{base}/ui/login?next=")

    # No script error, no Content-Security-Policy violation; the one failed load is the
    # refused sign-in's 401.
    assert problems == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]


async def _has_failure(served: Served) -> bool:
    return bool(await served.kernel.failure_store.list_failures(job_id="sync_user_info"))


async def test_the_script_refreshes_the_runs_in_place(browser_page: Any) -> None:
    page = browser_page
    kernel = Kernel(timezone="UTC")

    async def beat() -> None:
        pass

    kernel.add_interval_job(beat, seconds=1, job_id="beat")
    async with kernel, AdminServer(kernel, port=0, token=TOKEN,
                                   console=ConsoleOptions(refresh=1)) as admin:
        console = admin.app[CONSOLE]
        await until(lambda: _count(console, "beat", 1), "beat ran")
        await page.goto(f"{admin.url}/ui/jobs/beat")
        rows = page.locator("tr[data-run]")
        before = await rows.count()
        await page.evaluate("window.stillTheSamePage = true")
        await until(lambda: _more_rows(rows, before), "the runs table grew", seconds=8)
        assert await page.evaluate("window.stillTheSamePage === true")


async def _count(console: Console, job_id: str, count: int) -> bool:
    return len(console.history.runs(job_id)) >= count


async def _more_rows(rows: Any, before: int) -> bool:
    return bool(await rows.count() > before)
