"""LarkClient's authen v1 calls (authorize page address, code exchange, user info, refresh)
against the fake, whose pages and answers follow lark-oapi's shapes."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from actors.lark import (
    AuthenUser,
    LarkClient,
    LarkError,
    LarkTokenInvalidError,
    UserTokenGrant,
    authorize_url,
)
from tests.fake_lark import FAKE_APP_ID, FakeLark
from tests.lark_helpers import START

REDIRECT = "http://127.0.0.1:9/oauth/callback"


@pytest.mark.parametrize(
    ("scope", "query"),
    [
        pytest.param("", {"app_id": ["cli_a"], "redirect_uri": [REDIRECT], "state": ["s.1"]},
                     id="no-scope"),
        pytest.param(
            "contact:user.base:readonly offline_access",
            {"app_id": ["cli_a"], "redirect_uri": [REDIRECT], "state": ["s.1"],
             "scope": ["contact:user.base:readonly offline_access"]},
            id="scope",
        ),
    ],
)
def test_authorize_url(scope: str, query: dict[str, list[str]]) -> None:
    url = authorize_url("https://open.feishu.cn/", "cli_a", REDIRECT, "s.1", scope)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https", "open.feishu.cn", "/open-apis/authen/v1/authorize"
    )
    assert parse_qs(parts.query) == query


async def consent(
    fake: FakeLark, url: str, *, decision: str = "allow", open_id: str = "ou_ann"
) -> tuple[int, dict[str, list[str]]]:
    """Open the authorize page and press a button, as a browser would; answer the redirect."""
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as page:
            assert page.status == 200, await page.text()
            assert "Authorize app" in await page.text()
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        form = {**query, "open_id": open_id, "decision": decision}
        async with http.post(
            f"{fake.url}/open-apis/authen/v1/authorize/consent", data=form, allow_redirects=False
        ) as answer:
            location = urlsplit(answer.headers.get("Location", ""))
            assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
            return answer.status, parse_qs(location.query)


@pytest.fixture
def ann(fake_lark: FakeLark) -> FakeLark:
    fake_lark.add_user("ou_ann", name="Ann")
    fake_lark.register_redirect_uri(FAKE_APP_ID, REDIRECT)
    return fake_lark


async def test_a_code_is_exchanged_once_for_the_users_tokens(
    lark: LarkClient, ann: FakeLark
) -> None:
    status, query = await consent(ann, lark.authorize_url(REDIRECT, "s.1"))
    assert status == 302
    assert query["state"] == ["s.1"]
    (code,) = query["code"]
    grant = await lark.exchange_code(code)
    assert grant == UserTokenGrant(
        access_token=ann.issued_tokens[-1],
        access_expires_at=START + timedelta(hours=2),
        refresh_token=ann.issued_tokens[-2],
        refresh_expires_at=START + timedelta(days=30),
        scope="auth:user.id:read",
    )
    # With the app access token, as lark-oapi's CreateOidcAccessTokenRequest.
    assert (ann.calls["app_token"], ann.calls["tenant_token"], ann.calls["oidc_token"]) == (
        1, 0, 1
    )
    assert await lark.user_info(grant.access_token) == AuthenUser(
        open_id="ou_ann", union_id="on_ann", user_id="u1", name="Ann", en_name="User 1",
        email="user1@example.com", tenant_key="fake-tenant",
    )
    with pytest.raises(LarkError) as used:
        await lark.exchange_code(code)
    assert used.value.code == 20003
    assert "works once" in str(used.value)
    assert code not in str(used.value)
    # The refreshed token speaks for the same user.
    refreshed = await lark.refresh_user_token(grant.refresh_token)
    assert (await lark.user_info(refreshed.access_token)).open_id == "ou_ann"


async def test_an_expired_code_is_refused(lark: LarkClient, ann: FakeLark) -> None:
    _, query = await consent(ann, lark.authorize_url(REDIRECT, "s.1"))
    ann.advance(300)
    with pytest.raises(LarkError) as caught:
        await lark.exchange_code(query["code"][0])
    assert caught.value.code == 20004


async def test_a_code_of_another_app_is_refused(make_client: object, ann: FakeLark) -> None:
    ann.add_app("cli_other", "other-secret")
    ann.register_redirect_uri("cli_other", REDIRECT)
    ours = make_client()  # type: ignore[operator]
    theirs = make_client(app_id="cli_other", app_secret="other-secret")  # type: ignore[operator]
    _, query = await consent(ann, theirs.authorize_url(REDIRECT, "s.1"))
    with pytest.raises(LarkError) as caught:
        await ours.exchange_code(query["code"][0])
    assert caught.value.code == 20003


async def test_a_denial_comes_back_as_access_denied(lark: LarkClient, ann: FakeLark) -> None:
    status, query = await consent(ann, lark.authorize_url(REDIRECT, "s.1"), decision="deny")
    assert (status, query) == (302, {"error": ["access_denied"], "state": ["s.1"]})
    assert ann.codes == {}


@pytest.mark.parametrize(
    ("app_id", "redirect_uri", "error"),
    [
        pytest.param("cli_nope", REDIRECT, "20001", id="unknown-app"),
        pytest.param(FAKE_APP_ID, "http://127.0.0.1:9/elsewhere", "20029", id="unregistered"),
    ],
)
async def test_the_authorize_page_refuses_what_lark_refuses(
    ann: FakeLark, app_id: str, redirect_uri: str, error: str
) -> None:
    url = authorize_url(ann.url, app_id, redirect_uri, "s.1")
    async with aiohttp.ClientSession() as http, http.get(url) as page:
        assert page.status == 400
        assert error in await page.text()


async def test_user_info_with_a_refused_token(lark: LarkClient, ann: FakeLark) -> None:
    with pytest.raises(LarkTokenInvalidError):
        await lark.user_info("u-never-issued")
    assert ann.calls["user_info"] == 2  # refused, then refused again: never a third time
