"""A person authorises an app in a real browser (Debian's chromium, driven by Playwright),
against the fake Lark; then the token is listed, served, refreshed and rotated, the expiry
job tells that person at 7, 3 and 0 days with a link that works, and a revoked refresh
token is reported. Time is the service's virtual clock: nothing sleeps."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from actors.cli import main
from tests._oauth_support import OAuthWorld, oauth_world
from tests.fake_lark import FakeLark

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

ADMIN = "ou_admin_cli_a"


async def consent(page: Any, url: str, *, allow: bool = True) -> None:
    """Open ``url`` (the service's authorize link), pick Ann on the fake Lark's page, answer."""
    await page.goto(url)
    assert await page.title() == "Authorize app"
    assert await page.inner_text("#app") == "cli_a"
    await page.select_option("#user", "ou_ann")
    async with page.expect_navigation():
        await page.click("#allow" if allow else "#deny")


async def cli(world: OAuthWorld, monkeypatch: pytest.MonkeyPatch, capsys: Any, *argv: str) -> str:
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert await asyncio.to_thread(main, list(argv)) == 0
    out: str = capsys.readouterr().out
    return out


def notices_to(fake: FakeLark, receive_id: str) -> list[str]:
    return [m.content["text"] for m in fake.sent if m.receive_id == receive_id]


async def run_expiry_at(world: OAuthWorld, days_left: float) -> None:
    """Move the clock to ``days_left`` days before the refresh token expires; run the job."""
    (token,) = await world.service.store.list_user_tokens()
    target = token.refresh_expires_at - timedelta(days=days_left)
    await world.clock.advance((target - world.clock.now()).total_seconds())
    await world.service.check_token_expiry()


async def test_authorise_in_a_browser_then_list_serve_refresh_notify_and_revoke(
    tmp_path: Path,
    fake_lark: FakeLark,
    browser_page: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    page = browser_page
    # The virtual clock starts at the real time, so that `tokens list` (real time) agrees.
    start = datetime.now(UTC).replace(microsecond=0)
    async with oauth_world("sqlite", tmp_path, fake_lark, start=start) as world:
        link = f"{world.base}/oauth/cli_a/authorize"

        # Declining first: a clear page, nothing stored, a button to start again.
        await consent(page, link, allow=False)
        assert page.url.startswith(f"{world.base}/oauth/callback?error=access_denied")
        assert await page.inner_text("h1") == "Authorization declined"
        assert await world.service.store.list_user_tokens() == []

        # Start again from that page's button, and authorise.
        async with page.expect_navigation():
            await page.click("a.button")
        assert await page.title() == "Authorize app"
        await page.select_option("#user", "ou_ann")
        async with page.expect_navigation() as navigation:
            await page.click("#allow")
        callback = await navigation.value
        assert callback.status == 200
        headers = await callback.all_headers()
        assert (headers["cache-control"], headers["referrer-policy"]) == ("no-store", "no-referrer")
        assert await page.inner_text("h1") == "Authorised"
        assert "Ann (ou_ann) authorised app App cli_a (cli_a)." in await page.inner_text("body")

        # Listed (never with a token) ...
        listed = json.loads(await cli(world, monkeypatch, capsys, "tokens", "list", "--json"))
        (row,) = listed["tokens"]
        assert (row["open_id"], row["name"], row["state"], row["reauthorize_url"]) == (
            "ou_ann", "Ann", "valid", link
        )
        assert [t for t in fake_lark.issued_tokens if t in json.dumps(listed)] == []

        # ... served by the token API ...
        status, body = await world.token()
        assert (status, body["refreshed"], body["access_token"]) == (
            200, False, fake_lark.issued_tokens[-1]
        )
        first_refresh = (await world.service.store.get_user_credentials("cli_a", "ou_ann"))
        assert first_refresh is not None

        # ... refreshed when it is about to expire, the refresh token rotated.
        await world.clock.advance(2 * 3600 - 60)
        status, body = await world.token()
        assert (status, body["refreshed"]) == (200, True)
        assert fake_lark.refreshed == [first_refresh.refresh_token]
        rotated = await world.service.store.get_user_credentials("cli_a", "ou_ann")
        assert rotated is not None
        assert rotated.refresh_token != first_refresh.refresh_token
        assert rotated.version == first_refresh.version + 1

        # The expiry job tells Ann at 7, 3 and 0 days, with the link; the admin a summary.
        for days_left, level, title in (
            (7, "warning", "Lark authorisation expiring (warning): app App cli_a"),
            (3, "critical", "Lark authorisation expiring (critical): app App cli_a"),
            (0, "expired", "Lark authorisation expired: app App cli_a"),
        ):
            await run_expiry_at(world, days_left)
            latest = notices_to(fake_lark, "ou_ann")[-1]
            assert latest.split("\n")[0] == title
            assert latest.endswith(f"Authorise the app again to keep it working: {link}")
            summary = notices_to(fake_lark, ADMIN)[-1]
            assert summary.split("\n")[0] == f"Lark authorisations of app App cli_a: 1 {level}"
        assert len(notices_to(fake_lark, "ou_ann")) == 3

        # The notice's link works: Ann authorises again from it, in the browser.
        notice_link = re.search(r"(http://\S+/authorize)$", notices_to(fake_lark, "ou_ann")[-1])
        assert notice_link is not None
        await consent(page, notice_link.group(1))
        assert await page.inner_text("h1") == "Authorised"
        (token,) = await world.service.store.list_user_tokens()
        assert token.refresh_expires_at == world.clock.now() + timedelta(days=30)

        # Lark revokes it: the token API, `tokens list` and the next notice all say so.
        credentials = await world.service.store.get_user_credentials("cli_a", "ou_ann")
        assert credentials is not None
        fake_lark.revoke_refresh_token(credentials.refresh_token)
        await world.clock.advance(2 * 3600)
        status, body = await world.token()
        assert status == 409
        assert body["error"]["code"] == "reauthorization_required"
        assert body["error"]["authorize_url"] == link
        assert "(revoked)" in body["error"]["message"]
        listed_text = await cli(world, monkeypatch, capsys, "tokens", "list")
        assert "invalid (revoked)" in listed_text
        assert "cli_a: 0 valid, 0 warning, 0 critical, 0 expired, 1 invalid" in listed_text
        await world.clock.advance(86400)  # today's "expired" notice went out already
        await world.service.check_token_expiry()
        revoked = notices_to(fake_lark, "ou_ann")[-1]
        assert revoked.split("\n")[0] == "Lark authorisation no longer valid: app App cli_a"
        assert "was revoked" in revoked
        assert revoked.endswith(link)
        assert world.service.monitor is not None
        gauge = world.service.monitor.states.gauge
        assert gauge.get({"app_id": "cli_a", "state": "invalid"}) == 1
