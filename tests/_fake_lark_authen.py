"""The fake Lark's authen v1 side: the authorize (consent) page, code exchange, user info.

Shapes follow lark-oapi (``GetAuthorizeRequest``, ``CreateOidcAccessTokenRequestBody`` /
``ResponseBody``, ``GetUserInfoResponseBody``):

* ``GET /open-apis/authen/v1/authorize?app_id=&redirect_uri=&state=[&scope=]`` shows a
  consent page: pick a user, then *Authorize* or *Deny*. Like Lark, it refuses an unknown app
  and a ``redirect_uri`` the app has not registered (:meth:`FakeLark.register_redirect_uri`),
  and then sends the browser to ``redirect_uri?code=...&state=...`` or
  ``redirect_uri?error=access_denied&state=...``.
* ``POST /open-apis/authen/v1/oidc/access_token`` (app access token) exchanges a code, once,
  within 5 minutes of the fake's clock, for the app it was issued to.
* ``GET /open-apis/authen/v1/user_info`` (user access token) answers the user.

Error codes 20003 (code not found or used), 20004 (code expired) and 20029 (redirect URI not
registered) are the fake's best reading of Lark's documentation; only non-zero matters.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

if TYPE_CHECKING:
    from tests._fake_lark_handlers import Handlers
    from tests.fake_lark import FakeLark

__all__ = ("AuthCode", "AuthenHandlers")

CODE_LIFETIME = 300.0


@dataclass
class AuthCode:
    """An authorization code the consent page handed out; ``expires_at`` on the fake's clock."""

    value: str
    app_id: str
    open_id: str
    redirect_uri: str
    expires_at: float
    used: bool = False


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html")


def _with_query(url: str, **params: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


class AuthenHandlers:
    """Routes and handlers of the authen v1 endpoints, over the state of ``fake``."""

    def __init__(self, fake: FakeLark, handlers: Handlers) -> None:
        self.fake = fake
        self.handlers = handlers

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(
            "/open-apis/authen/v1/authorize", self._authorize_page, name="authorize"
        )
        app.router.add_post(
            "/open-apis/authen/v1/authorize/consent", self._consent, name="consent"
        )
        app.router.add_post(
            "/open-apis/authen/v1/oidc/access_token", self._access_token, name="oidc_token"
        )
        app.router.add_get("/open-apis/authen/v1/user_info", self._user_info, name="user_info")

    def _refusal(self, params: Any) -> web.Response | None:
        app_id = params.get("app_id", "")
        if app_id not in self.fake.apps:
            return _page("App not found", f"<p id='error'>20001: no app {html.escape(app_id)}</p>",
                         400)
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in self.fake.redirect_uris.get(app_id, set()):
            return _page(
                "Redirect URL not allowed",
                f"<p id='error'>20029: {html.escape(redirect_uri)} is not a redirect URL of "
                "this app; add it under Security Settings</p>",
                400,
            )
        return None

    async def _authorize_page(self, request: web.Request) -> web.Response:
        refused = self._refusal(request.query)
        if refused is not None:
            return refused
        fields = "".join(
            f"<input type='hidden' name='{name}' "
            f"value='{html.escape(request.query.get(name, ''))}'>"
            for name in ("app_id", "redirect_uri", "state", "scope")
        )
        options = "".join(
            f"<option value='{html.escape(u['open_id'])}'>{html.escape(u['name'])}</option>"
            for u in self.fake.users
        )
        app_id = html.escape(request.query["app_id"])
        body = (
            f"<p>App <b id='app'>{app_id}</b> asks to act on your behalf.</p>"
            "<form method='post' action='/open-apis/authen/v1/authorize/consent'>"
            f"{fields}<label>Sign in as <select name='open_id' id='user'>{options}</select>"
            "</label> <button name='decision' value='allow' id='allow'>Authorize</button> "
            "<button name='decision' value='deny' id='deny'>Deny</button></form>"
        )
        return _page("Authorize app", body)

    async def _consent(self, request: web.Request) -> web.Response:
        form = await request.post()
        refused = self._refusal(form)
        if refused is not None:
            return refused
        redirect_uri = str(form["redirect_uri"])
        state = str(form.get("state", ""))
        if form.get("decision") != "allow":
            raise web.HTTPFound(_with_query(redirect_uri, error="access_denied", state=state))
        open_id = str(form.get("open_id", ""))
        if not any(u["open_id"] == open_id for u in self.fake.users):
            return _page("Unknown user", "<p id='error'>pick a user of the tenant</p>", 400)
        code = self.fake.issue_code(str(form["app_id"]), open_id, redirect_uri)
        raise web.HTTPFound(_with_query(redirect_uri, code=code, state=state))

    async def _access_token(self, request: web.Request) -> web.Response:
        token, refused = self.handlers.check_token(request, "app")
        if refused is not None:
            return refused
        assert token is not None
        body = await self.handlers.json_body(request)
        if body is None or body.get("grant_type") != "authorization_code":
            return self.handlers.error(20001, "invalid grant_type", key="message")
        code = self.fake.codes.get(str(body.get("code", "")))
        if code is None or code.used or code.app_id != token.app_id:
            return self.handlers.error(20003, "authorization code not found", key="message")
        if self.fake.clock >= code.expires_at:
            return self.handlers.error(20004, "authorization code has expired", key="message")
        code.used = True
        return self.handlers.ok(self.fake.grant_tokens(code.app_id, code.open_id), key="message")

    async def _user_info(self, request: web.Request) -> web.Response:
        token, refused = self.handlers.check_token(request, "user")
        if refused is not None:
            return refused
        assert token is not None
        user = next(u for u in self.fake.users if u["open_id"] == token.open_id)
        data = {key: user[key] for key in ("name", "en_name", "open_id", "union_id", "user_id",
                                           "email", "mobile")}
        data["tenant_key"] = "fake-tenant"
        data["avatar_url"] = "https://example.invalid/avatar.png"
        return self.handlers.ok(data)
