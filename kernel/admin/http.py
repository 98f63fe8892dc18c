"""The admin HTTP API: health, readiness, metrics, jobs and failure records (aiohttp).

Mount :func:`create_admin_app` in your own aiohttp application
(``app.add_subapp("/scheduler", create_admin_app(kernel, token=...))``) or run the small
:class:`AdminServer`, which binds ``127.0.0.1`` unless told otherwise.

======================================  =====  =============================================
route                                   token  answer
======================================  =====  =============================================
``GET /healthz``                        no     200 :class:`Health`
``GET /readyz``                         no     200/503 :class:`ReadyReport`
``GET /metrics``                        no     200 Prometheus text format
``GET /jobs``                           no*    200 :class:`JobList`
``GET /jobs/{id}``                      no*    200 :class:`JobInfo`
``POST /jobs/{id}/run``                 yes    202 :class:`RunAccepted`
``POST /jobs/{id}/pause``               yes    200 :class:`JobInfo`
``POST /jobs/{id}/resume``              yes    200 :class:`JobInfo`
``DELETE /jobs/{id}``                   yes    200 :class:`JobRemovedAnswer`
``GET /failures?job_id=&limit=``        yes    200 :class:`FailureList`
``GET /failures/{id}``                  yes    200 :class:`FailureRecord`
``POST /failures/{id}/retry``           yes    202 :class:`RetryAccepted`
``GET /openapi.json``                   no     200 this table as an OpenAPI 3.1 document
``/ui``                                 login  the operator console (:mod:`kernel.console`)
======================================  =====  =============================================

The routes are registered from :mod:`kernel.openapi` operations, so ``/openapi.json`` is
generated from the handlers' own msgspec models; routes another module adds to the app with
:func:`kernel.openapi.add_operations` are in it too.

Authentication: ``Authorization: Bearer <token>``, compared in constant time. Job listings
carry no secrets (a job's ``args``/``kwargs`` are never shown), so they are readable without
the token (*: unless ``protect_jobs=True``); failure records hold exception messages and
tracebacks, which can carry sensitive data, so they need the token, like every mutating
endpoint. With no token configured those endpoints answer 403 and say how to configure one:
the API is never open by default.

Errors are JSON (:class:`kernel.api_models.ErrorBody`): 400 bad query or body, 401 missing
or wrong token, 403 no token configured, 404 unknown route/job/failure, 405 wrong method,
409 the kernel refused (not running, job gone), 413 body larger than ``max_body``. A
mutating endpoint accepts an empty body or ``{}``. Messages and tracebacks in answers pass
through :func:`kernel.redaction.redact`.

:class:`AdminServer` also answers what aiohttp cannot parse (a raw non-ASCII byte in the URL,
a request line over 8,190 bytes, a malformed header or chunk) with a JSON 400 and one log
line, never a traceback, and its access log (``scheduler.http.access``) leaves out query
strings and headers, which can carry credentials. An application that mounts
:func:`create_admin_app` in its own server keeps that server's own behaviour for those.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from ..observe.failures import FailureStore
from ..observe.metrics import SchedulerMetrics
from ._handlers import Admin, Readiness, check_token, error_middleware
from ._protocol import AccessLogger, serve_json_errors
from ._routes import admin_operations
from .console import ConsoleOptions, add_console
from .openapi import add_operations, serve_openapi

__all__ = (
    "DEFAULT_MAX_BODY",
    "AdminKernel",
    "AdminServer",
    "JobView",
    "Readiness",
    "create_admin_app",
)

DEFAULT_MAX_BODY = 64 * 1024
_log = logging.getLogger("scheduler.http")


class JobView(Protocol):
    """What the API shows of a job (``kernel.Job`` has these)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def trigger(self) -> object: ...
    @property
    def next_run_time(self) -> datetime | None: ...
    @property
    def paused(self) -> bool: ...
    @property
    def func_ref(self) -> str: ...
    @property
    def coalesce(self) -> bool: ...
    @property
    def max_instances(self) -> int: ...
    @property
    def misfire_grace_time(self) -> float | None: ...
    @property
    def timeout(self) -> float | None: ...
    @property
    def running(self) -> int: ...


class AdminKernel(Protocol):
    """What the admin API needs of a kernel (``kernel.Kernel`` has these)."""

    @property
    def running(self) -> bool: ...
    @property
    def failure_store(self) -> FailureStore: ...
    def get_jobs(self) -> Sequence[JobView]: ...
    def get_job(self, job_id: str) -> JobView: ...
    def run_job(self, job_id: str) -> str: ...
    def pause_job(self, job_id: str) -> object: ...
    def resume_job(self, job_id: str) -> object: ...
    def remove_job(self, job_id: str) -> object: ...
    async def retry_failure(self, failure_id: str) -> str: ...


def create_admin_app(
    kernel: AdminKernel,
    *,
    token: str | None,
    metrics: SchedulerMetrics | None,
    readiness: Readiness | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    protect_jobs: bool = False,
    token_hint: str | None = None,
    console: bool | ConsoleOptions = True,
) -> web.Application:
    """The admin API as an aiohttp application, to serve or to mount with ``add_subapp``.

    ``token``: the bearer token for mutating endpoints and failure records (at least 16
    characters), or ``None`` to refuse those with 403. ``metrics``: served at ``/metrics``
    (attach it to the kernel yourself). ``readiness``: an extra async check whose report is
    merged into ``/readyz``. ``max_body``: the largest request body accepted, in bytes.
    ``protect_jobs``: require the token for ``GET /jobs`` too. ``token_hint``: how the
    operator configures the token in your application (e.g. "set MY_APP_ADMIN_TOKEN and
    restart"), said by the 403 answers when there is none. ``console``: mount the operator
    console (:mod:`kernel.console`) at ``/ui``, with :class:`~kernel.console.ConsoleOptions`
    if given; ``False`` leaves it out.
    """
    if max_body < 2:
        raise ValueError(f"max_body={max_body} must be at least 2 bytes (room for '{{}}')")
    admin = Admin(
        kernel, check_token(token), metrics, readiness, max_body, protect_jobs, token_hint
    )
    app = web.Application(middlewares=[error_middleware], client_max_size=max_body)
    # One table registers the routes and documents them: /openapi.json cannot drift.
    add_operations(app, admin_operations(admin, protect_jobs=protect_jobs))
    serve_openapi(app)
    if console:
        add_console(
            app,
            kernel,
            token=token,
            token_hint=admin.token_hint,
            protect_jobs=protect_jobs,
            options=console if isinstance(console, ConsoleOptions) else None,
        )
    return app


class AdminServer:
    """The admin API on its own small server; ``async with AdminServer(kernel, token=...)``.

    Binds ``host`` (default ``127.0.0.1``: loopback only) and ``port`` (``0`` picks a free
    one; :attr:`port` tells which after :meth:`start`); the other arguments are
    :func:`create_admin_app`'s.
    """

    def __init__(
        self,
        kernel: AdminKernel,
        *,
        host: str = "127.0.0.1",
        port: int = 9180,
        token: str | None = None,
        metrics: SchedulerMetrics | None = None,
        readiness: Readiness | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        protect_jobs: bool = False,
        token_hint: str | None = None,
        console: bool | ConsoleOptions = True,
    ) -> None:
        self.host = host
        self._port = port
        self.app = create_admin_app(
            kernel,
            token=token,
            metrics=metrics,
            readiness=readiness,
            max_body=max_body,
            protect_jobs=protect_jobs,
            token_hint=token_hint,
            console=console,
        )
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The port served (the one picked when constructed with ``port=0``)."""
        if self._runner is not None:
            for address in self._runner.addresses:
                if isinstance(address, tuple):
                    return int(address[1])
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Start serving."""
        if self._runner is not None:
            raise RuntimeError("the admin server is already started")
        runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log=logging.getLogger("scheduler.http.access"),
            access_log_class=AccessLogger,
        )
        await runner.setup()
        try:
            serve_json_errors(runner)
            await web.TCPSite(runner, self.host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        _log.info("Admin API listening on %s", self.url)

    async def stop(self) -> None:
        """Stop serving and close the connections."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> AdminServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()
