"""The console's aiohttp application: routes, sign-in, CSRF checks, HTML errors."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, tzinfo
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web

from kernel._http_protocol import CLIENT_ERRORS, describe_bad_request
from kernel.clock import Clock, RealClock
from kernel.errors import KernelError, KernelNotRunningError
from kernel.redaction import redact
from kernel.triggers import resolve_timezone

from ._failures import failure_body, failures_body
from ._jobs import job_body, jobs_body, remove_body
from ._page import (
    SECURITY_HEADERS,
    ConsolePage,
    ConsoleRequest,
    NavItem,
    html_response,
    layout,
    redirect,
    unsegment,
)
from ._session import Sessions, same_token
from .history import DEFAULT_HISTORY_SIZE, RunHistory
from .html import Markup, h, join

if TYPE_CHECKING:
    from kernel.http import AdminKernel, JobView

__all__ = ("LOGIN_COOKIE", "SESSION_COOKIE", "Console", "ConsoleOptions")

_log = logging.getLogger("scheduler.console")

SESSION_COOKIE = "scheduler_console"
LOGIN_COOKIE = "scheduler_console_login"
_FAILURES_SHOWN = 100
_STATIC = {
    "console.css": "text/css",
    "console.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}
_ACTIONS = ("pause", "resume", "run", "remove")

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


class _Refused(Exception):
    """Answer ``response`` instead of the page (a redirect to sign in, a refusal page)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__("refused")
        self.response = response


class Console:
    """The operator console of one kernel: jobs, runs, failures, and added pages."""

    def __init__(
        self,
        kernel: AdminKernel,
        *,
        token: str | None,
        token_hint: str,
        protect_jobs: bool = False,
        options: ConsoleOptions | None = None,
    ) -> None:
        self.kernel = kernel
        self.options = options = options or ConsoleOptions()
        self._token = None if token is None else token.encode()
        self.token_hint = token_hint
        self.protect_jobs = protect_jobs
        self.history = RunHistory(options.history_size)
        clock = options.clock or getattr(kernel, "clock", None)
        self.clock: Clock = clock if clock is not None else RealClock()
        zone = options.timezone or getattr(kernel, "timezone", None)
        self.timezone: tzinfo = resolve_timezone(zone) if zone is not None else UTC
        self.sessions = Sessions(
            self.clock, idle=options.session_idle, lifetime=options.session_lifetime
        )
        self.pages: dict[str, ConsolePage] = {}
        self._static = {
            name: resources.files("kernel.console").joinpath("static", name).read_bytes()
            for name in _STATIC
        }
        self.app = self._make_app()

    # -- the application -------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("", self.index, name="console")
        r.add_get("/", self.slash)
        r.add_get("/static/{name}", self.static)
        r.add_get("/login", self.login_form)
        r.add_post("/login", self.login)
        r.add_post("/logout", self.logout)
        r.add_get("/jobs/{job_id}", self.job)
        r.add_get("/jobs/{job_id}/remove", self.confirm_remove)
        r.add_post("/jobs/{job_id}/{action:pause|resume|run|remove}", self.job_action)
        r.add_get("/failures", self.failures)
        r.add_get("/failures/{failure_id}", self.failure)
        r.add_post("/failures/{failure_id}/retry", self.retry)
        r.add_get("/{page}", self.added_page)
        app.on_startup.append(self._attach)
        app.on_cleanup.append(self._detach)
        return app

    async def _attach(self, app: web.Application) -> None:
        if callable(getattr(self.kernel, "add_listener", None)):
            self.history.attach(self.kernel)  # type: ignore[arg-type]

    async def _detach(self, app: web.Application) -> None:
        self.history.detach()

    def add_page(self, page: ConsolePage) -> None:
        """Serve ``page`` at ``<console>/<page.path>`` and link it in the navigation."""
        reserved = {"static", "login", "logout", "jobs", "failures"}
        if page.path in reserved or not page.path or "/" in page.path:
            raise ValueError(
                f"console page path {page.path!r} must be one URL segment other than "
                f"{', '.join(sorted(reserved))}"
            )
        if page.path in self.pages:
            raise ValueError(f"a console page is already served at {page.path!r}")
        self.pages[page.path] = page

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except _Refused as refused:
            response = refused.response
        except web.HTTPException as exc:
            response = await self._http_error(request, exc)
        except CLIENT_ERRORS as exc:
            why = describe_bad_request(exc)
            _log.info("console: %s %s: malformed request (%s)", request.method, request.path,
                      why)
            response = await self._error(request, 400, "Bad request",
                                         "The request could not be read; try again.")
            response.force_close()
        except Exception:
            _log.exception("console: %s %s failed", request.method, request.path)
            response = await self._error(
                request, 500, "Something went wrong",
                "The page could not be shown; the scheduler's log has the details.",
            )
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def _http_error(self, request: web.Request, exc: web.HTTPException) -> web.Response:
        if exc.status == 404:
            return await self._error(request, 404, "Not found",
                                     f"There is no console page at {request.path}.")
        if exc.status == 405:
            allowed = sorted(getattr(exc, "allowed_methods", ()) or ())
            response = await self._error(
                request, 405, "Method not allowed",
                f"{request.method} is not allowed here; use {' or '.join(allowed)}.",
            )
            response.headers["Allow"] = ", ".join(allowed)
            return response
        if exc.status == 413:
            return await self._error(request, 413, "Too large", "The form sent is too large.")
        return await self._error(request, exc.status, exc.reason, exc.text or exc.reason)

    async def _error(self, request: web.Request, status: int, title: str, text: str) -> (
        web.Response
    ):
        ctx = self._context(request)
        body = join(h("p", {}, text), h("p", {}, h("a", {"href": ctx.base}, "Back to the jobs")))
        return self._page(ctx, title, body, "", status)

    # -- context, guards -----------------------------------------------------------------

    def _context(self, request: web.Request) -> ConsoleRequest:
        base = str(request.app.router["console"].url_for())
        session = None
        if self._token is not None:
            session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        return ConsoleRequest(
            request=request,
            base=base,
            now=self.clock.now(),
            timezone=self.timezone,
            session=session,
            can_sign_in=self._token is not None,
            token_hint=self.token_hint,
        )

    def _nav(self, ctx: ConsoleRequest) -> list[NavItem]:
        items = [NavItem("Jobs", ctx.base, "jobs"), NavItem("Failures", ctx.url("failures"),
                                                            "failures")]
        items.extend(NavItem(p.title, ctx.url(p.path), p.path) for p in self.pages.values())
        return items

    def _page(self, ctx: ConsoleRequest, title: str, body: Markup, current: str,
              status: int = 200) -> web.Response:
        # The script's background refresh must not eat the messages meant for the person.
        refreshing = "X-Console-Refresh" in ctx.request.headers
        flashes = ctx.session.take_flashes() if ctx.session and not refreshing else []
        text = layout(ctx, title, body, nav=self._nav(ctx), current=current,
                      product=self.options.title, flashes=flashes,
                      refresh=self.options.refresh)
        return html_response(text, status)

    def _need_sign_in(self, ctx: ConsoleRequest, what: str, current: str) -> None:
        if ctx.signed_in:
            return
        if not ctx.can_sign_in:
            body = h("p", {}, f"{what} need an admin token, and none is configured: "
                              f"{self.token_hint}. Then sign in here.")
            raise _Refused(self._page(ctx, "Admin token needed", body, current, 403))
        raise _Refused(redirect(ctx.url("login", next=ctx.request.path_qs)))

    async def _posted(self, ctx: ConsoleRequest) -> dict[str, str]:
        """The form of a signed-in POST whose CSRF token matches; anything else refused."""
        form = {k: v for k, v in (await ctx.request.post()).items() if isinstance(v, str)}
        if not ctx.can_sign_in:
            body = h("p", {}, f"This console is read-only: {self.token_hint}.")
            raise _Refused(self._page(ctx, "Read-only", body, "", 403))
        if ctx.session is None:
            raise _Refused(redirect(ctx.url("login", next=ctx.base)))
        cross_site = ctx.request.headers.get("Sec-Fetch-Site", "same-origin") == "cross-site"
        if cross_site or not same_token(ctx.session.csrf, form.get("csrf")):
            _log.info("console: refused %s %s without a valid CSRF token", ctx.request.method,
                      ctx.request.path)
            body = h("p", {}, "The form's security token is missing or out of date, so "
                              "nothing was done. Go back, reload the page and try again.")
            raise _Refused(self._page(ctx, "Form refused", body, "", 403))
        return form

    def _next(self, ctx: ConsoleRequest, target: str | None, default: str) -> str:
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

    # -- jobs ----------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        ctx = self._context(request)
        if self.protect_jobs:
            self._need_sign_in(ctx, "Job listings", "jobs")
        return self._page(ctx, "Jobs", jobs_body(ctx, self.kernel.get_jobs(), self.history),
                          "jobs")

    async def slash(self, request: web.Request) -> web.Response:
        return redirect(self._context(request).base)

    def _job(self, ctx: ConsoleRequest) -> JobView:
        job_id = unsegment(ctx.request.match_info["job_id"])
        try:
            return self.kernel.get_job(job_id)
        except LookupError:
            body = h("p", {}, "There is no job with id ", h("code", {}, job_id),
                     " (it may have been removed).")
            raise _Refused(self._page(ctx, "No such job", body, "jobs", 404)) from None

    async def job(self, request: web.Request) -> web.Response:
        ctx = self._context(request)
        if self.protect_jobs:
            self._need_sign_in(ctx, "Job listings", "jobs")
        job = self._job(ctx)
        failures: dict[str, str] = {}
        if ctx.signed_in:
            records = await self.kernel.failure_store.list_failures(
                job_id=job.id, limit=self.history.size
            )
            failures = {r.run_id: r.id for r in records}
        return self._page(ctx, f"Job {job.id}", job_body(ctx, job, self.history, failures),
                          "jobs")

    async def confirm_remove(self, request: web.Request) -> web.Response:
        ctx = self._context(request)
        self._need_sign_in(ctx, "Removing a job", "jobs")
        job = self._job(ctx)
        return self._page(ctx, f"Remove {job.id}?", remove_body(ctx, job), "jobs")

    async def job_action(self, request: web.Request) -> web.Response:
        ctx = self._context(request)
        form = await self._posted(ctx)
        assert ctx.session is not None
        job_id, action = unsegment(request.match_info["job_id"]), request.match_info["action"]
        back = self._next(ctx, form.get("next"), ctx.url("jobs", job_id))
        try:
            if action == "pause":
                self.kernel.pause_job(job_id)
                ctx.session.flash("ok", f"Paused {job_id}.")
            elif action == "resume":
                self.kernel.resume_job(job_id)
                ctx.session.flash("ok", f"Resumed {job_id}.")
            elif action == "run":
                run_id = self.kernel.run_job(job_id)
                ctx.session.flash("ok", f"Started run {run_id} of {job_id}.")
            else:
                self.kernel.remove_job(job_id)
                ctx.session.flash("ok", f"Removed {job_id}.")
                back = ctx.base
        except LookupError:
            ctx.session.flash("error", f"There is no job {job_id} (it may have been removed).")
            back = ctx.base
        except KernelError as exc:
            ctx.session.flash("error", _refusal(action, job_id, exc))
        _log.info("console: %s %s", action, job_id)
        return redirect(back)

    # -- failures ------------------------------------------------------------------------

    async def failures(self, request: web.Request) -> web.Response:
        ctx = self._context(request)
        self._need_sign_in(ctx, "Failure records", "failures")
        job_id = request.query.get("job") or None
        records = await self.kernel.failure_store.list_failures(
            job_id=job_id, limit=_FAILURES_SHOWN
        )
        job_ids = {job.id for job in self.kernel.get_jobs()} | {r.job_id for r in records}
        if job_id is not None:
            job_ids.add(job_id)
        title = f"Failures of {job_id}" if job_id else "Failures"
        body = failures_body(ctx, records, job_ids, job_id, _FAILURES_SHOWN)
        return self._page(ctx, title, body, "failures")

    async def failure(self, request: web.Request) -> web.Response:
        ctx = self._context(request)
        self._need_sign_in(ctx, "Failure records", "failures")
        failure_id = unsegment(request.match_info["failure_id"])
        record = await self.kernel.failure_store.get_failure(failure_id)
        if record is None:
            body = h("p", {}, "There is no failure record with id ", h("code", {}, failure_id),
                     " (the store may keep only the newest records).")
            return self._page(ctx, "No such failure", body, "failures", 404)
        try:
            self.kernel.get_job(record.job_id)
            exists = True
        except LookupError:
            exists = False
        return self._page(ctx, f"Failure of {record.job_id}",
                          failure_body(ctx, record, exists), "failures")

    async def retry(self, request: web.Request) -> web.Response:
        ctx = self._context(request)
        await self._posted(ctx)
        assert ctx.session is not None
        failure_id = unsegment(request.match_info["failure_id"])
        try:
            run_id = await self.kernel.retry_failure(failure_id)
        except LookupError:
            ctx.session.flash("error", "This failure's job no longer exists, or the record is "
                                       "gone: nothing was retried.")
        except KernelError as exc:
            ctx.session.flash("error", _refusal("retry", failure_id, exc))
        else:
            ctx.session.flash("ok", f"Retry started: run {run_id}.")
        _log.info("console: retry failure %s", failure_id)
        return redirect(ctx.url("failures", failure_id))

    # -- sign-in ---------------------------------------------------------------------------

    async def login_form(self, request: web.Request) -> web.Response:
        ctx = self._context(request)
        target = self._next(ctx, request.query.get("next"), ctx.base)
        if ctx.signed_in:
            return redirect(target)
        return self._login_page(ctx, target, request.query.get("signed_out") == "1", None)

    def _login_page(self, ctx: ConsoleRequest, target: str, signed_out: bool,
                    error: str | None, status: int = 200) -> web.Response:
        if not ctx.can_sign_in:
            body = join(
                h("p", {}, "No admin token is configured, so nobody can sign in and this "
                           f"console is read-only. {self.token_hint[:1].upper()}"
                           f"{self.token_hint[1:]}."),
                h("p", {}, h("a", {"href": ctx.base}, "See the jobs (read-only)")),
            )
            return self._page(ctx, "Sign in", body, "login")
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
                            "value": self.sessions.form_token(nonce)}),
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
        response = self._page(ctx, "Sign in", body, "login", status)
        _set_cookie(response, ctx, LOGIN_COOKIE, nonce, max_age=3600)
        return response

    async def login(self, request: web.Request) -> web.Response:
        ctx = self._context(request)
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        target = self._next(ctx, form.get("next"), ctx.base)
        if self._token is None:
            return self._login_page(ctx, target, False, None)
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not self.sessions.check_form_token(nonce, form.get("csrf")):
            _log.info("console: refused a sign-in without a valid CSRF token")
            return self._login_page(ctx, target, False, "The sign-in form had expired; "
                                    "enter the token again.", 403)
        given = form.get("token", "").strip().encode("utf-8", "replace")
        # Compare digests: constant time whatever the lengths.
        if not hmac.compare_digest(hashlib.sha256(given).digest(),
                                   hashlib.sha256(self._token).digest()):
            _log.warning("console: refused a sign-in from %s: wrong admin token",
                         request.remote)
            return self._login_page(ctx, target, False, "That is not the admin token.", 401)
        session_id, _ = self.sessions.start()
        _log.info("console: signed in from %s", request.remote)
        response = redirect(target)
        _set_cookie(response, ctx, SESSION_COOKIE, session_id)
        response.del_cookie(LOGIN_COOKIE, path=ctx.base)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        ctx = self._context(request)
        await self._posted(ctx)
        self.sessions.end(request.cookies.get(SESSION_COOKIE))
        response = redirect(ctx.url("login", signed_out="1"))
        response.del_cookie(SESSION_COOKIE, path=ctx.base)
        return response

    # -- static files and added pages ------------------------------------------------------

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
        ctx = self._context(request)
        page = self.pages.get(request.match_info["page"])
        if page is None:
            raise web.HTTPNotFound()
        if page.needs_sign_in:
            self._need_sign_in(ctx, page.title, page.path)
        return self._page(ctx, page.title, await page.render(ctx), page.path)


def _set_cookie(
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


def _refusal(action: str, target: str, exc: KernelError) -> str:
    if isinstance(exc, KernelNotRunningError):
        return f"Could not {action} {target}: the scheduler is not running."
    return f"Could not {action} {target}: {redact(str(exc))}"
