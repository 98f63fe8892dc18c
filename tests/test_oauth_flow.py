"""Users' authorization over HTTP: the authorize redirect, the callback's pages for every
outcome (nothing stored on a refusal), the state's rules, and what the logs keep."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from cryptography.fernet import Fernet

from actors.oauth import sign_state
from actors.oauth._state import STATE_KEY_PURPOSE
from tests._oauth_support import OAuthWorld, oauth_world
from tests._service_support import BACKENDS
from tests.fake_lark import FakeLark

pytestmark = pytest.mark.anyio


@pytest.fixture(params=BACKENDS)
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, fake_lark: FakeLark
) -> AsyncIterator[OAuthWorld]:
    async with oauth_world(request.param, tmp_path, fake_lark) as made:
        yield made


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


SAFE = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


async def test_a_user_authorises_an_app(
    world: OAuthWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    answer = await world.authorize()
    assert answer.status == 302
    location = answer.headers["Location"]
    assert location.startswith(f"{world.fake.url}/open-apis/authen/v1/authorize?")
    sent = query(location)
    assert (sent["app_id"], sent["redirect_uri"]) == ("cli_a", f"{world.base}/oauth/callback")
    assert {k: answer.headers[k] for k in SAFE} == SAFE

    callback = await world.lark_redirect()
    code = query(callback)["code"]
    done = await world.open(callback)
    assert (done.status, done.problem) == (200, "")
    assert {k: done.headers[k] for k in SAFE} == SAFE
    assert "default-src 'none'" in done.headers["Content-Security-Policy"]
    assert "Ann (ou_ann) authorised app App cli_a (cli_a)." in done.text
    assert "lasts until 2026-12-31 09:00 CST" in done.text
    assert [t for t in world.fake.issued_tokens if t in done.text] == []
    again = await world.open(callback)  # a reload is a replay: its own page
    assert (again.status, again.problem) == (409, "replayed_state")

    (token,) = await world.service.store.list_user_tokens()
    assert (token.open_id, token.name, token.has_credentials, token.invalid_reason) == (
        "ou_ann", "Ann", True, None
    )
    assert token.refresh_expires_at == world.clock.now() + timedelta(days=30)
    assert (world.fake.calls["oidc_token"], world.fake.calls["user_info"]) == (1, 1)
    assert world.service.monitor is not None
    assert world.service.monitor.states.gauge.get({"app_id": "cli_a", "state": "valid"}) == 1
    # The log says who authorised what; no code, state or token ever.
    assert "user ou_ann (Ann) authorised app cli_a" in caplog.text
    secrets = [code, sent["state"], *world.fake.issued_tokens]
    assert [s for s in secrets if s in caplog.text] == []


# -- every refusal: a clear page, nothing stored -----------------------------------------

Step = Callable[[OAuthWorld], Awaitable[str]]


async def _unknown_app(w: OAuthWorld) -> str:
    return f"{w.base}/oauth/cli_nope/authorize"


async def _no_secret(w: OAuthWorld) -> str:
    await w.service.store.add_app("cli_nosecret", "No secret")
    return f"{w.base}/oauth/cli_nosecret/authorize"


async def _missing_state(w: OAuthWorld) -> str:
    callback = await w.lark_redirect()
    return f"{w.base}/oauth/callback?{urlencode({'code': query(callback)['code']})}"


async def _forged_signature(w: OAuthWorld) -> str:
    callback = await w.lark_redirect()
    got = query(callback)
    payload, _, signature = got["state"].partition(".")
    forged = f"{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    return f"{w.base}/oauth/callback?{urlencode({'code': got['code'], 'state': forged})}"


async def _another_key(w: OAuthWorld) -> str:
    callback = await w.lark_redirect()
    state = sign_state(Fernet.generate_key() * 2, "cli_a", w.clock.now())
    return f"{w.base}/oauth/callback?{urlencode({'code': query(callback)['code'], 'state': state})}"


async def _expired_state(w: OAuthWorld) -> str:
    callback = await w.lark_redirect()
    await w.clock.advance(601)
    return callback


async def _replayed(w: OAuthWorld) -> str:
    callback = await w.lark_redirect()
    assert (await w.open(callback)).status == 200
    await w.service.store.delete_user_token("cli_a", "ou_ann")  # so "nothing stored" holds
    return callback


async def _denied(w: OAuthWorld) -> str:
    return await w.lark_redirect(decision="deny")


async def _lark_error(w: OAuthWorld) -> str:
    callback = await w.lark_redirect(decision="deny")
    return callback.replace("access_denied", "server_error")


async def _code_rejected(w: OAuthWorld) -> str:
    callback = await w.lark_redirect()
    return callback.replace(query(callback)["code"], "fake-code-never-issued")


async def _code_expired_at_lark(w: OAuthWorld) -> str:
    callback = await w.lark_redirect()
    w.fake.advance(301)  # codes live 5 minutes at Lark
    return callback


async def _lark_down(w: OAuthWorld) -> str:
    callback = await w.lark_redirect()
    w.fake.fail("oidc_token", status=503, times=None)
    return callback


async def _no_refresh_token(w: OAuthWorld) -> str:
    callback = await w.lark_redirect()
    grant = w.fake.grant_tokens

    def without_refresh(app_id: str, open_id: str) -> dict[str, object]:
        answer = grant(app_id, open_id)
        del answer["refresh_token"]
        return answer

    w.fake.grant_tokens = without_refresh  # type: ignore[method-assign]
    return callback


async def _app_disabled_meanwhile(w: OAuthWorld) -> str:
    callback = await w.lark_redirect()
    await w.service.store.disable_app("cli_a")
    return callback


async def _missing_code(w: OAuthWorld) -> str:
    callback = await w.lark_redirect()
    return f"{w.base}/oauth/callback?{urlencode({'state': query(callback)['state']})}"


async def _state_of_another_app(w: OAuthWorld) -> str:
    # A state is bound to its app: cli_b's state with a code cli_a's user got is cli_b's.
    await w.service.store.add_app("cli_b", "B", secret="secret-of-cli_b")
    w.fake.add_app("cli_b", "secret-of-cli_b")
    key = w.service.store.derive_key(STATE_KEY_PURPOSE)
    callback = await w.lark_redirect()
    state = sign_state(key, "cli_b", w.clock.now())
    return f"{w.base}/oauth/callback?{urlencode({'code': query(callback)['code'], 'state': state})}"


@pytest.mark.parametrize(
    ("step", "status", "problem", "words"),
    [
        pytest.param(_unknown_app, 404, "unknown_app", "No active app cli_nope", id="unknown-app"),
        pytest.param(_no_secret, 409, "no_secret", "apps update cli_nosecret --new-secret",
                     id="app-without-secret"),
        pytest.param(_missing_state, 400, "missing_state", "without the state", id="no-state"),
        pytest.param(_forged_signature, 400, "forged_state", "not signed by this service",
                     id="forged-state"),
        pytest.param(_another_key, 400, "forged_state", "not signed by this service",
                     id="state-of-another-service"),
        pytest.param(_expired_state, 400, "expired_state", "More than 10 minutes",
                     id="expired-state"),
        pytest.param(_replayed, 409, "replayed_state", "works once", id="replayed-state"),
        pytest.param(_denied, 403, "denied", "You declined", id="denied"),
        pytest.param(_lark_error, 400, "lark_error", "server_error", id="lark-error"),
        pytest.param(_missing_code, 400, "missing_code", "no authorization code",
                     id="no-code"),
        pytest.param(_code_rejected, 400, "code_rejected", "Lark answered code 20003",
                     id="code-rejected"),
        pytest.param(_code_expired_at_lark, 400, "code_rejected", "Lark answered code 20004",
                     id="code-expired"),
        pytest.param(_lark_down, 502, "lark_unavailable", "Try again", id="lark-down"),
        pytest.param(_no_refresh_token, 502, "lark_answer", "offline_access",
                     id="answer-without-refresh-token"),
        pytest.param(_app_disabled_meanwhile, 404, "unknown_app", "No active app cli_a",
                     id="app-disabled"),
        pytest.param(_state_of_another_app, 400, "code_rejected", "20003",
                     id="state-bound-to-its-app"),
    ],
)
async def test_every_refusal_has_a_clear_page_and_stores_nothing(
    world: OAuthWorld, step: Step, status: int, problem: str, words: str
) -> None:
    got = await world.open(await step(world))
    assert (got.status, got.problem) == (status, problem)
    assert got.headers["Cache-Control"] == "no-store"
    assert words in got.text
    assert await world.service.store.list_user_tokens() == []


async def test_a_refusal_links_back_to_the_start_when_the_app_is_known(
    world: OAuthWorld,
) -> None:
    page = await world.open(await _denied(world))
    assert f'href="{world.base}/oauth/cli_a/authorize"' in page.text


@pytest.mark.parametrize("kind", [pytest.param("sqlite", id="sqlite")])
async def test_without_redirect_base_url_the_pages_say_so(
    kind: str, tmp_path: Path, fake_lark: FakeLark
) -> None:
    async with oauth_world(kind, tmp_path, fake_lark, configured=False) as world:
        for url in (f"{world.base}/oauth/cli_a/authorize", f"{world.base}/oauth/callback"):
            page = await world.open(url)
            assert (page.status, page.problem) == (503, "not_configured")
    assert fake_lark.calls["oidc_token"] == 0


async def test_the_access_log_never_shows_the_code(
    world: OAuthWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scheduler.http.access")
    callback = await world.lark_redirect()
    await world.open(callback)
    code, state = query(callback)["code"], query(callback)["state"]
    lines = [r.getMessage() for r in caplog.records if r.name == "scheduler.http.access"]
    assert any("GET /oauth/callback" in line for line in lines), lines
    assert [line for line in lines if code in line or state in line] == []

