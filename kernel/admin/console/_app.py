"""The console's aiohttp application: its routes, and the jobs and failures pages."""

from __future__ import annotations

import logging
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING

from aiohttp import web

from kernel.clock import Clock, RealClock
from kernel.errors import KernelError, KernelNotRunningError
from kernel.redaction import redact
from kernel.triggers import resolve_timezone

from ._failures import failure_body, failures_body
from ._jobs import job_body, jobs_body, remove_body
from ._page import ConsolePage, ConsoleRequest, redirect, unsegment
from ._signin import SignIn
from ._site import ConsoleOptions, Refused, Site
from .history import RunHistory
from .html import h

if TYPE_CHECKING:
    from kernel.http import AdminKernel, JobView

__all__ = ("Console",)

log = logging.getLogger("scheduler.console")

_FAILURES_SHOWN = 100


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
        self.protect_jobs = protect_jobs
        self.history = RunHistory(options.history_size)
        clock = options.clock or getattr(kernel, "clock", None)
        zone = options.timezone or getattr(kernel, "timezone", None)
        timezone: tzinfo = resolve_timezone(zone) if zone is not None else UTC
        self.site = Site(
            token=token, token_hint=token_hint, options=options,
            clock=clock if clock is not None else RealClock(), timezone=timezone,
        )
        self.sessions = self.site.sessions
        self.app = self._make_app()

    @property
    def clock(self) -> Clock:
        return self.site.clock

    def add_page(self, page: ConsolePage) -> None:
        """Serve ``page`` at ``<console>/<page.path>`` and link it in the navigation."""
        self.site.add_page(page)

    # -- the application -------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        site, signin = self.site, SignIn(self.site)
        app = web.Application(middlewares=[site.middleware])
        r = app.router
        r.add_get("", self.index, name="console")
        r.add_get("/", self.slash)
        r.add_get("/static/{name}", site.static)
        r.add_get("/login", signin.login_form)
        r.add_post("/login", signin.login)
        r.add_post("/logout", signin.logout)
        r.add_get("/jobs/{job_id}", self.job)
        r.add_get("/jobs/{job_id}/remove", self.confirm_remove)
        r.add_post("/jobs/{job_id}/{action:pause|resume|run|remove}", self.job_action)
        r.add_get("/failures", self.failures)
        r.add_get("/failures/{failure_id}", self.failure)
        r.add_post("/failures/{failure_id}/retry", self.retry)
        r.add_get("/{page}", site.added_page)
        app.on_startup.append(self._attach)
        app.on_cleanup.append(self._detach)
        return app

    async def _attach(self, app: web.Application) -> None:
        if callable(getattr(self.kernel, "add_listener", None)):
            self.history.attach(self.kernel)  # type: ignore[arg-type]

    async def _detach(self, app: web.Application) -> None:
        self.history.detach()

    # -- jobs ----------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        ctx = self.site.context(request)
        if self.protect_jobs:
            self.site.need_sign_in(ctx, "Job listings", "jobs")
        return self.site.page(ctx, "Jobs", jobs_body(ctx, self.kernel.get_jobs(), self.history),
                          "jobs")

    async def slash(self, request: web.Request) -> web.Response:
        return redirect(self.site.context(request).base)

    def _job(self, ctx: ConsoleRequest) -> JobView:
        job_id = unsegment(ctx.request.match_info["job_id"])
        try:
            return self.kernel.get_job(job_id)
        except LookupError:
            body = h("p", {}, "There is no job with id ", h("code", {}, job_id),
                     " (it may have been removed).")
            raise Refused(self.site.page(ctx, "No such job", body, "jobs", 404)) from None

    async def job(self, request: web.Request) -> web.Response:
        ctx = self.site.context(request)
        if self.protect_jobs:
            self.site.need_sign_in(ctx, "Job listings", "jobs")
        job = self._job(ctx)
        failures: dict[str, str] = {}
        if ctx.signed_in:
            records = await self.kernel.failure_store.list_failures(
                job_id=job.id, limit=self.history.size
            )
            failures = {r.run_id: r.id for r in records}
        return self.site.page(ctx, f"Job {job.id}", job_body(ctx, job, self.history, failures),
                          "jobs")

    async def confirm_remove(self, request: web.Request) -> web.Response:
        ctx = self.site.context(request)
        self.site.need_sign_in(ctx, "Removing a job", "jobs")
        job = self._job(ctx)
        return self.site.page(ctx, f"Remove {job.id}?", remove_body(ctx, job), "jobs")

    async def job_action(self, request: web.Request) -> web.Response:
        ctx = self.site.context(request)
        form = await self.site.posted(ctx)
        assert ctx.session is not None
        job_id, action = unsegment(request.match_info["job_id"]), request.match_info["action"]
        back = self.site.next_url(ctx, form.get("next"), ctx.url("jobs", job_id))
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
        log.info("console: %s %s", action, job_id)
        return redirect(back)

    # -- failures ------------------------------------------------------------------------

    async def failures(self, request: web.Request) -> web.Response:
        ctx = self.site.context(request)
        self.site.need_sign_in(ctx, "Failure records", "failures")
        job_id = request.query.get("job") or None
        records = await self.kernel.failure_store.list_failures(
            job_id=job_id, limit=_FAILURES_SHOWN
        )
        job_ids = {job.id for job in self.kernel.get_jobs()} | {r.job_id for r in records}
        if job_id is not None:
            job_ids.add(job_id)
        title = f"Failures of {job_id}" if job_id else "Failures"
        body = failures_body(ctx, records, job_ids, job_id, _FAILURES_SHOWN)
        return self.site.page(ctx, title, body, "failures")

    async def failure(self, request: web.Request) -> web.Response:
        ctx = self.site.context(request)
        self.site.need_sign_in(ctx, "Failure records", "failures")
        failure_id = unsegment(request.match_info["failure_id"])
        record = await self.kernel.failure_store.get_failure(failure_id)
        if record is None:
            body = h("p", {}, "There is no failure record with id ", h("code", {}, failure_id),
                     " (the store may keep only the newest records).")
            return self.site.page(ctx, "No such failure", body, "failures", 404)
        try:
            self.kernel.get_job(record.job_id)
            exists = True
        except LookupError:
            exists = False
        return self.site.page(ctx, f"Failure of {record.job_id}",
                          failure_body(ctx, record, exists), "failures")

    async def retry(self, request: web.Request) -> web.Response:
        ctx = self.site.context(request)
        await self.site.posted(ctx)
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
        log.info("console: retry failure %s", failure_id)
        return redirect(ctx.url("failures", failure_id))



def _refusal(action: str, target: str, exc: KernelError) -> str:
    if isinstance(exc, KernelNotRunningError):
        return f"Could not {action} {target}: the scheduler is not running."
    return f"Could not {action} {target}: {redact(str(exc))}"
