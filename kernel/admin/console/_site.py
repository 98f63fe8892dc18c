"""What every console page shares: the request's context (session, zone, now), the layout
with its navigation and messages, the guards (signed in? a valid CSRF token?), HTML error
pages, the static files and the pages an application adds."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import tzinfo
from importlib import resources
from urllib.parse import urlsplit

from aiohttp import web

from kernel.admin._protocol import CLIENT_ERRORS, describe_bad_request
from kernel.clock import Clock

from ._page import (
    SECURITY_HEADERS,
    ConsolePage,
    ConsoleRequest,
    NavItem,
    html_response,
    layout,
    redirect,
)
from ._session import Sessions, same_token
from .history import DEFAULT_HISTORY_SIZE
from .html import Markup, h, join

__all__ = ("LOGIN_COOKIE", "SESSION_COOKIE", "ConsoleOptions", "Refused", "Site", "set_cookie")

log = logging.getLogger("scheduler.console")

SESSION_COOKIE = "scheduler_console"
LOGIN_COOKIE = "scheduler_console_login"
_STATIC = {
    "console.css": "text/css",
    "console.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}
_RESERVED = frozenset({"static", "login", "logout", "jobs", "failures"})
_PAGE_PATH = re.compile(r"[a-z0-9][a-z0-9_-]*")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ConsoleOptions:
    """How the console is served.

    ``path``: where it is mounted in the admin app. ``title``: the name in its header.
    ``history_size``: runs kept in memory per job for the job pages (a job that never ran
    keeps none). ``session_idle`` / ``session_lifetime``: seconds a sign-in lasts unused /
    at most. ``timezone``: the zone times are shown in (default: the kernel's).
    ``clock``: the clock of "now" and of sessions (default: the kernel's).
    ``refresh``: seconds between the pages' background refreshes of the jobs table and a
    job's runs (0: never; the pages work without the script too).
    """

    path: str = "/ui"
    title: str = "Scheduler"
    history_size: int = DEFAULT_HISTORY_SIZE
    session_idle: float = 8 * 3600
    session_lifetime: float = 24 * 3600
    timezone: tzinfo | str | None = None
    clock: Clock | None = None
    refresh: float = 30

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or self.path.rstrip("/") == "":
            raise ValueError(f"console path {self.path!r} must start with / and not be / alone")
        for name in ("session_idle", "session_lifetime"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 60 <= value <= 30 * 86400):
                raise ValueError(f"{name}={value!r} must be a number of seconds from 60 to "
                                 "2592000 (30 days)")
        if not (isinstance(self.refresh, int | float) and (self.refresh == 0 or
                                                           1 <= self.refresh <= 3600)):
            raise ValueError(f"refresh={self.refresh!r} must be 0 (off) or a number of "
                             "seconds from 1 to 3600")


class Refused(Exception):
    """Answer ``response`` instead of the page (a redirect to sign in, a refusal page)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__("refused")
        self.response = response


class Site:
    """The parts of the console every page uses, for one admin token and configuration."""

    def __init__(
        self,
        *,
        token: str | None,
        token_hint: str,
        options: ConsoleOptions,
        clock: Clock,
        timezone: tzinfo,
    ) -> None:
        self.options = options
        self.token = None if token is None else token.encode()
        self.token_hint = token_hint
        self.clock = clock
        self.timezone = timezone
        self.sessions = Sessions(
            clock, idle=options.session_idle, lifetime=options.session_lifetime
        )
        self.pages: dict[str, ConsolePage] = {}
        self._static = {
            name: resources.files("kernel.admin.console").joinpath("static", name).read_bytes()
            for name in _STATIC
        }

    def add_page(self, page: ConsolePage) -> None:
        """Serve ``page`` at ``<console>/<page.path>`` and link it in the navigation."""
        if page.path in _RESERVED or not _PAGE_PATH.fullmatch(page.path):
            raise ValueError(
                f"console page path {page.path!r} must be one URL segment of lowercase "
                f"letters, digits, '-' and '_', other than {', '.join(sorted(_RESERVED))}"
            )
        if page.path in self.pages:
            raise ValueError(f"a console page is already served at {page.path!r}")
        self.pages[page.path] = page

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except Refused as refused:
            response = refused.response
        except web.HTTPException as exc:
            response = await self._http_error(request, exc)
        except CLIENT_ERRORS as exc:
            why = describe_bad_request(exc)
            log.info("console: %s %s: malformed request (%s)", request.method, request.path,
                      why)
            response = await self.error(request, 400, "Bad request",
                                         "The request could not be read; try again.")
            response.force_close()
        except Exception:
            log.exception("console: %s %s failed", request.method, request.path)
            response = await self.error(
                request, 500, "Something went wrong",
                "The page could not be shown; the scheduler's log has the details.",
            )
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def _http_error(self, request: web.Request, exc: web.HTTPException) -> web.Response:
        if exc.status == 404:
            return await self.error(request, 404, "Not found",
                                     f"There is no console page at {request.path}.")
        if exc.status == 405:
            allowed = sorted(getattr(exc, "allowed_methods", ()) or ())
            response = await self.error(
                request, 405, "Method not allowed",
                f"{request.method} is not allowed here; use {' or '.join(allowed)}.",
            )
            response.headers["Allow"] = ", ".join(allowed)
            return response
        if exc.status == 413:
            return await self.error(request, 413, "Too large", "The form sent is too large.")
        return await self.error(request, exc.status, exc.reason, exc.text or exc.reason)

    async def error(self, request: web.Request, status: int, title: str, text: str) -> (
        web.Response
    ):
        ctx = self.context(request)
        body = join(h("p", {}, text), h("p", {}, h("a", {"href": ctx.base}, "Back to the jobs")))
        return self.page(ctx, title, body, "", status)

    # -- context, guards -----------------------------------------------------------------

    def context(self, request: web.Request) -> ConsoleRequest:
        base = str(request.app.router["console"].url_for())
        session = None
        if self.token is not None:
            session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        return ConsoleRequest(
            request=request,
            base=base,
            now=self.clock.now(),
            timezone=self.timezone,
            session=session,
            can_sign_in=self.token is not None,
            token_hint=self.token_hint,
        )

    def nav(self, ctx: ConsoleRequest) -> list[NavItem]:
        items = [NavItem("Jobs", ctx.base, "jobs"), NavItem("Failures", ctx.url("failures"),
                                                            "failures")]
        items.extend(NavItem(p.title, ctx.url(p.path), p.path) for p in self.pages.values())
        return items

    def page(self, ctx: ConsoleRequest, title: str, body: Markup, current: str,
              status: int = 200) -> web.Response:
        # The script's background refresh must not eat the messages meant for the person.
        refreshing = "X-Console-Refresh" in ctx.request.headers
        flashes = ctx.session.take_flashes() if ctx.session and not refreshing else []
        text = layout(ctx, title, body, nav=self.nav(ctx), current=current,
                      product=self.options.title, flashes=flashes,
                      refresh=self.options.refresh)
        return html_response(text, status)

    def need_sign_in(self, ctx: ConsoleRequest, what: str, current: str) -> None:
        if ctx.signed_in:
            return
        if not ctx.can_sign_in:
            body = h("p", {}, f"{what} need an admin token, and none is configured: "
                              f"{self.token_hint}. Then sign in here.")
            raise Refused(self.page(ctx, "Admin token needed", body, current, 403))
        raise Refused(redirect(ctx.url("login", next=ctx.request.path_qs)))

    async def posted(self, ctx: ConsoleRequest) -> dict[str, str]:
        """The form of a signed-in POST whose CSRF token matches; anything else refused."""
        form = {k: v for k, v in (await ctx.request.post()).items() if isinstance(v, str)}
        if not ctx.can_sign_in:
            body = h("p", {}, f"This console is read-only: {self.token_hint}.")
            raise Refused(self.page(ctx, "Read-only", body, "", 403))
        if ctx.session is None:
            raise Refused(redirect(ctx.url("login", next=ctx.base)))
        cross_site = ctx.request.headers.get("Sec-Fetch-Site", "same-origin") == "cross-site"
        if cross_site or not same_token(ctx.session.csrf, form.get("csrf")):
            log.info("console: refused %s %s without a valid CSRF token", ctx.request.method,
                      ctx.request.path)
            body = h("p", {}, "The form's security token is missing or out of date, so "
                              "nothing was done. Go back, reload the page and try again.")
            raise Refused(self.page(ctx, "Form refused", body, "", 403))
        return form

    def next_url(self, ctx: ConsoleRequest, target: str | None, default: str) -> str:
        """``target`` if it is a page of this console, else ``default`` (no open redirect)."""
        if not target:
            return default
        parts = urlsplit(target)
        inside = target == ctx.base or target.startswith(ctx.base + "/") or (
            target.startswith(ctx.base + "?")
        )
        if parts.scheme or parts.netloc or not inside or "\\" in target or "//" in target:
            return default
        return target

    # -- static files and added pages -----------------------------------------------------

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = self._static.get(name)
        if body is None:
            raise web.HTTPNotFound()
        etag = hashlib.sha256(body).hexdigest()[:16]
        headers = {"Cache-Control": "no-cache", "ETag": f'"{etag}"'}
        if request.headers.get("If-None-Match") == f'"{etag}"':
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type=_STATIC[name], charset="utf-8",
                            headers=headers)

    async def added_page(self, request: web.Request) -> web.Response:
        ctx = self.context(request)
        page = self.pages.get(request.match_info["page"])
        if page is None:
            raise web.HTTPNotFound()
        if page.needs_sign_in:
            self.need_sign_in(ctx, page.title, page.path)
        return self.page(ctx, page.title, await page.render(ctx), page.path)


def set_cookie(
    response: web.Response, ctx: ConsoleRequest, name: str, value: str,
    max_age: int | None = None,
) -> None:
    forwarded = ctx.request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    # A Secure cookie is only sent back over HTTPS; claiming HTTPS falsely only breaks the
    # claimant's own sign-in, so the proxy's header is enough to turn it on.
    secure = ctx.request.secure or forwarded == "https"
    response.set_cookie(
        name, value, path=ctx.base, httponly=True, samesite="Strict", secure=secure,
        max_age=max_age,
    )
