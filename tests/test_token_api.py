"""The token API other services call: a valid user access token, refreshed within 5 minutes
of expiry (rotation stored at once), one refresh per user, refusals marked invalid."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from actors.oauth import TokenBroker
from tests._oauth_support import ADMIN_TOKEN, OAuthWorld, oauth_world
from tests._service_support import BACKENDS
from tests.fake_lark import FakeLark

pytestmark = pytest.mark.anyio

H = 3600.0


@pytest.fixture(params=BACKENDS)
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, fake_lark: FakeLark
) -> AsyncIterator[OAuthWorld]:
    async with oauth_world(request.param, tmp_path, fake_lark) as made:
        assert (await made.open(await made.lark_redirect())).status == 200
        yield made


async def stored_refresh_token(world: OAuthWorld) -> str:
    credentials = await world.service.store.get_user_credentials("cli_a", "ou_ann")
    assert credentials is not None
    return credentials.refresh_token


def gauge(world: OAuthWorld, state: str) -> float:
    assert world.service.monitor is not None
    return float(world.service.monitor.states.gauge.get({"app_id": "cli_a", "state": state}))


async def test_a_fresh_token_is_served_as_stored(world: OAuthWorld) -> None:
    status, body = await world.token()
    assert status == 200
    issued_access = world.fake.issued_tokens[-1]
    assert body == {
        "app_id": "cli_a",
        "open_id": "ou_ann",
        "access_token": issued_access,
        "token_type": "Bearer",
        "expires_at": (world.clock.now() + timedelta(hours=2)).isoformat(),
        "expires_in": 7200,
        "refresh_expires_at": (world.clock.now() + timedelta(days=30)).isoformat(),
        "refreshed": False,
    }
    assert world.fake.calls["refresh"] == 0


async def test_a_token_expiring_within_5_minutes_is_refreshed_and_rotated(
    world: OAuthWorld,
) -> None:
    first_refresh = await stored_refresh_token(world)
    await world.clock.advance(2 * H - 301)  # 5 min 1 s left: still served as is
    status, body = await world.token()
    assert (status, body["refreshed"], body["expires_in"]) == (200, False, 301)
    await world.clock.advance(2)  # 4 min 59 s left: refreshed first
    status, body = await world.token()
    assert (status, body["refreshed"], body["expires_in"]) == (200, True, 7200)
    assert body["access_token"] == world.fake.issued_tokens[-1]
    # The rotated refresh token is what is stored now; Lark spent the old one.
    rotated = await stored_refresh_token(world)
    assert rotated == world.fake.issued_tokens[-2] != first_refresh
    assert world.fake.refreshed == [first_refresh]
    assert world.fake.refresh_tokens[first_refresh].state == "revoked"
    status, again = await world.token()
    assert (status, again["refreshed"], again["access_token"]) == (200, False, body["access_token"])
    assert world.fake.calls["refresh"] == 1


async def test_one_refresh_at_a_time_per_user(world: OAuthWorld) -> None:
    await world.clock.advance(2 * H)
    world.fake.stall("refresh", 0.2)  # every caller arrives while the first refresh is out
    answers = await asyncio.gather(*(world.token() for _ in range(5)))
    assert {status for status, _ in answers} == {200}
    assert len({body["access_token"] for _, body in answers}) == 1
    assert [body["refreshed"] for _, body in answers].count(True) == 1
    assert world.fake.calls["refresh"] == 1


async def test_two_processes_refreshing_at_once_neither_marks_the_token_invalid(
    world: OAuthWorld,
) -> None:
    # Two brokers on one store are two replicas: no shared lock, only the row version.
    service = world.service
    assert service.clients is not None
    replicas = [
        TokenBroker(service.store, service.clients, world.clock, authorize_url=lambda a: None)
        for _ in range(2)
    ]
    await world.clock.advance(2 * H)
    world.fake.stall("refresh", 0.5)  # the first to ask Lark is answered last: it loses
    served = await asyncio.gather(*(r.access_token("cli_a", "ou_ann") for r in replicas))
    assert served[0].access_token == served[1].access_token
    (token,) = await service.store.list_user_tokens()
    assert token.invalid_reason is None
    assert world.fake.calls["refresh"] == 2  # the loser's refresh token was already spent


@pytest.mark.parametrize(
    ("spoil", "reason", "code"),
    [
        pytest.param("revoke", "revoked", 20064, id="revoked"),
        pytest.param("expire", "expired", 20037, id="expired-at-lark"),
        pytest.param("forget", "invalid", 20026, id="unknown-to-lark"),
    ],
)
async def test_a_refused_refresh_token_is_marked_invalid_and_reported(
    world: OAuthWorld, spoil: str, reason: str, code: int
) -> None:
    stored = await stored_refresh_token(world)
    if spoil == "revoke":
        world.fake.revoke_refresh_token(stored)
    elif spoil == "expire":
        world.fake.expire_refresh_token(stored)
    else:
        del world.fake.refresh_tokens[stored]
    await world.clock.advance(2 * H)
    status, body = await world.token()
    assert status == 409
    assert body == {
        "error": {
            "code": "reauthorization_required",
            "message": f"Lark refused the refresh token of user ou_ann for app cli_a ({reason}); "
            f"they must authorise the app again at {world.base}/oauth/cli_a/authorize",
            "authorize_url": f"{world.base}/oauth/cli_a/authorize",
        }
    }
    (token,) = await world.service.store.list_user_tokens()
    assert token.invalid_reason == reason
    assert gauge(world, "invalid") == 1
    assert gauge(world, "valid") == 0
    # Asked again: answered from the store, Lark is not asked again.
    assert (await world.token())[0] == 409
    assert world.fake.calls["refresh"] == 1
    # Authorising again makes it valid.
    assert (await world.open(await world.lark_redirect())).status == 200
    status, body = await world.token()
    assert (status, body["refreshed"]) == (200, False)
    assert gauge(world, "valid") == 1


async def test_an_expired_authorization_is_not_sent_to_lark(world: OAuthWorld) -> None:
    await world.clock.advance(30 * 86400)
    status, body = await world.token()
    assert status == 409
    assert body["error"]["code"] == "reauthorization_required"
    assert "expired on" in body["error"]["message"]
    assert world.fake.calls["refresh"] == 0


async def test_lark_failing_leaves_the_stored_token_alone(world: OAuthWorld) -> None:
    before = await stored_refresh_token(world)
    await world.clock.advance(2 * H)
    world.fake.fail("refresh", status=500, times=None)
    status, body = await world.token()
    assert (status, body["error"]["code"]) == (502, "lark_unavailable")
    assert await stored_refresh_token(world) == before
    (token,) = await world.service.store.list_user_tokens()
    assert token.invalid_reason is None


@pytest.mark.parametrize(
    ("app_id", "open_id", "admin", "status", "code"),
    [
        pytest.param("cli_a", "ou_ann", None, 401, "unauthorized", id="no-admin-token"),
        pytest.param("cli_a", "ou_ann", "wrong-token-0123456789", 401, "unauthorized",
                     id="wrong-admin-token"),
        pytest.param("cli_nope", "ou_ann", ADMIN_TOKEN, 404, "unknown_app", id="unknown-app"),
        pytest.param("cli_a", "ou_bob", ADMIN_TOKEN, 404, "no_token",
                     id="user-never-authorised"),
    ],
)
async def test_what_the_token_api_refuses(
    world: OAuthWorld, app_id: str, open_id: str, admin: str | None, status: int, code: str
) -> None:
    got, body = await world.token(app_id, open_id, admin=admin)
    assert (got, body["error"]["code"]) == (status, code)
    assert "access_token" not in body
    link = f"{world.base}/oauth/cli_a/authorize" if code == "no_token" else None
    assert body["error"].get("authorize_url") == link


@pytest.mark.parametrize("kind", [pytest.param("sqlite", id="sqlite")])
async def test_without_an_admin_token_the_token_api_is_closed(
    kind: str, tmp_path: Path, fake_lark: FakeLark
) -> None:
    async with oauth_world(kind, tmp_path, fake_lark, admin_token=None) as world:
        status, body = await world.token(admin="anything-0123456789")
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert "http.admin_token" in body["error"]["message"]


async def test_the_token_report_for_a_console(world: OAuthWorld) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with world.http.get(f"{world.base}/tokens?app_id=cli_a", headers=headers) as answer:
        assert answer.status == 200
        assert answer.headers["Cache-Control"] == "no-store"
        report = await answer.json()
    (app,) = report["apps"]
    assert app["counts"] == {"valid": 1, "warning": 0, "critical": 0, "expired": 0, "invalid": 0}
    (user,) = report["tokens"]
    assert (user["open_id"], user["name"], user["state"], user["reauthorize_url"]) == (
        "ou_ann", "Ann", "valid", f"{world.base}/oauth/cli_a/authorize"
    )
    assert [t for t in world.fake.issued_tokens if t in str(report)] == []
    async with world.http.get(f"{world.base}/tokens?expiring=7", headers=headers) as answer:
        assert (await answer.json())["tokens"] == []
    async with world.http.get(f"{world.base}/tokens?expiring=soon", headers=headers) as answer:
        assert answer.status == 400
        assert "expiring='soon' must be a number of days" in (await answer.text())
    async with world.http.get(f"{world.base}/tokens") as answer:
        assert answer.status == 401
