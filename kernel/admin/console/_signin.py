"""Signing in with the admin token (a session cookie in exchange) and signing out."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from aiohttp import web

from ._page import ConsoleRequest, redirect
from ._site import LOGIN_COOKIE, SESSION_COOKIE, Site, set_cookie
from .html import h, join

__all__ = ("SignIn",)

log = logging.getLogger("scheduler.console")


class SignIn:
    """The sign-in form, its answer and sign-out, for one :class:`Site`."""

    def __init__(self, site: Site) -> None:
        self.site = site

    async def login_form(self, request: web.Request) -> web.Response:
        ctx = self.site.context(request)
        target = self.site.next_url(ctx, request.query.get("next"), ctx.base)
        if ctx.signed_in:
            return redirect(target)
        return self._login_page(ctx, target, request.query.get("signed_out") == "1", None)

    def _login_page(self, ctx: ConsoleRequest, target: str, signed_out: bool,
                    error: str | None, status: int = 200) -> web.Response:
        if not ctx.can_sign_in:
            body = join(
                h("p", {}, "No admin token is configured, so nobody can sign in and this "
                           f"console is read-only. {self.site.token_hint[:1].upper()}"
                           f"{self.site.token_hint[1:]}."),
                h("p", {}, h("a", {"href": ctx.base}, "See the jobs (read-only)")),
            )
            return self.site.page(ctx, "Sign in", body, "login")
        nonce = ctx.request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        message = None
        if error:
            message = h("p", {"class": "flash error", "role": "alert"}, error)
        elif signed_out:
            message = h("p", {"class": "flash ok", "role": "status"}, "Signed out.")
        body = join(
            message,
            h(
                "form", {"method": "post", "action": ctx.url("login"), "class": "login"},
                h("input", {"type": "hidden", "name": "csrf",
                            "value": self.site.sessions.form_token(nonce)}),
                h("input", {"type": "hidden", "name": "next", "value": target}),
                h("label", {"for": "token"}, "Admin token"),
                h("input", {"type": "password", "id": "token", "name": "token",
                            "required": True, "autocomplete": "off", "autofocus": True,
                            "spellcheck": "false"}),
                h("button", {"type": "submit", "class": "primary"}, "Sign in"),
            ),
            h("p", {"class": "muted small"},
              "The token the service was started with (http.admin_token). Signing in keeps "
              "a session cookie in this browser until you sign out."),
        )
        response = self.site.page(ctx, "Sign in", body, "login", status)
        set_cookie(response, ctx, LOGIN_COOKIE, nonce, max_age=3600)
        return response

    async def login(self, request: web.Request) -> web.Response:
        ctx = self.site.context(request)
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        target = self.site.next_url(ctx, form.get("next"), ctx.base)
        if self.site.token is None:
            return self._login_page(ctx, target, False, None)
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not self.site.sessions.check_form_token(nonce, form.get("csrf")):
            log.info("console: refused a sign-in without a valid CSRF token")
            return self._login_page(ctx, target, False, "The sign-in form had expired; "
                                    "enter the token again.", 403)
        given = form.get("token", "").strip().encode("utf-8", "replace")
        # Compare digests: constant time whatever the lengths.
        if not hmac.compare_digest(hashlib.sha256(given).digest(),
                                   hashlib.sha256(self.site.token).digest()):
            log.warning("console: refused a sign-in from %s: wrong admin token",
                         request.remote)
            return self._login_page(ctx, target, False, "That is not the admin token.", 401)
        session_id, _ = self.site.sessions.start()
        log.info("console: signed in from %s", request.remote)
        response = redirect(target)
        set_cookie(response, ctx, SESSION_COOKIE, session_id)
        response.del_cookie(LOGIN_COOKIE, path=ctx.base)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        ctx = self.site.context(request)
        await self.site.posted(ctx)
        self.site.sessions.end(request.cookies.get(SESSION_COOKIE))
        response = redirect(ctx.url("login", signed_out="1"))
        response.del_cookie(SESSION_COOKIE, path=ctx.base)
        return response
