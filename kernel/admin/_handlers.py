"""The admin API's handlers, guards and error middleware (served by :mod:`kernel.http`)."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import msgspec
from aiohttp import web

from ..errors import KernelError, KernelNotRunningError
from ..observe.failures import FailureRecord, MemoryFailureStore
from ..observe.metrics import CONTENT_TYPE, SchedulerMetrics, chunked
from ..observe.redaction import redact
from ._protocol import CLIENT_ERRORS, describe_bad_request, error_response
from .api_models import (
    FailureList,
    Health,
    JobInfo,
    JobList,
    JobRemovedAnswer,
    NoOptions,
    ReadyCheck,
    ReadyReport,
    RetryAccepted,
    RunAccepted,
)

if TYPE_CHECKING:
    from .http import AdminKernel, JobView

_MAX_LIMIT = 1000
DEFAULT_TOKEN_HINT = (
    "start the admin API with token=... (for example from an environment variable holding "
    "secrets.token_urlsafe(32))"
)
_MIN_TOKEN_LENGTH = 16
_log = logging.getLogger("scheduler.http")

Readiness = Callable[[], Awaitable[ReadyReport]]
_T = TypeVar("_T")


class ApiError(Exception):
    """An answer with an error status, turned into :class:`ErrorBody` by the middleware."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


_ENCODER = msgspec.json.Encoder()
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def _json(obj: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=_ENCODER.encode(obj), status=status, headers=headers, content_type="application/json"
    )


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers: dict[str, str] = {}
        if exc.status == 404:
            message = (
                f"no route {request.method} {request.path}; the admin API serves /healthz, "
                "/readyz, /metrics, /jobs[/{id}[/run|/pause|/resume]], "
                "/failures[/{id}[/retry]] and /openapi.json (the console is at /ui)"
            )
        elif exc.status == 405:
            allowed = sorted(getattr(exc, "allowed_methods", ()) or ())
            headers["Allow"] = ", ".join(allowed)
            message = (
                f"{request.method} is not allowed on {request.path}; use {' or '.join(allowed)}"
            )
        else:
            message = exc.text or exc.reason
        return error_response(
            exc.status, _HTTP_CODES.get(exc.status, "http_error"), message, headers
        )
    except CLIENT_ERRORS as exc:
        # A malformed body (a bad chunk, an undecodable encoding) found while reading it, or
        # a client gone mid-request: answered like aiohttp's parser errors, no traceback.
        why = describe_bad_request(exc)
        _log.info("admin API: %s %s: malformed body (%s)", request.method, request.path, why)
        response = error_response(400, "bad_request", f"the request body is malformed ({why})")
        response.force_close()
        return response
    except Exception:
        _log.exception("admin API: %s %s failed", request.method, request.path)
        return error_response(
            500, "internal_error", "internal error; the scheduler's log has the details"
        )


def _job_info(job: JobView) -> JobInfo:
    return JobInfo(
        id=job.id,
        name=job.name,
        trigger=str(job.trigger),
        next_run_time=job.next_run_time,
        paused=job.paused,
        func_ref=job.func_ref,
        coalesce=job.coalesce,
        max_instances=job.max_instances,
        misfire_grace_time=job.misfire_grace_time,
        timeout=job.timeout,
        running=job.running,
    )


def _redacted(record: FailureRecord) -> FailureRecord:
    return msgspec.structs.replace(
        record, message=redact(record.message), traceback=redact(record.traceback)
    )


def check_token(token: str | None) -> bytes | None:
    if token is None:
        return None
    if not isinstance(token, str) or len(token) < _MIN_TOKEN_LENGTH or token != token.strip():
        raise ValueError(
            f"the admin token must be a string of at least {_MIN_TOKEN_LENGTH} characters "
            "without surrounding spaces (make one with secrets.token_urlsafe(32)), "
            "or None to disable the endpoints that need it"
        )
    return token.encode()


class Admin:
    """The handlers, bound to one kernel and configuration."""

    def __init__(
        self,
        kernel: AdminKernel,
        token: bytes | None,
        metrics: SchedulerMetrics | None,
        readiness: Readiness | None,
        max_body: int,
        protect_jobs: bool,
        token_hint: str | None = None,
    ) -> None:
        self.kernel = kernel
        self.token = token
        self.token_hint = token_hint or DEFAULT_TOKEN_HINT
        self.metrics = metrics
        self.readiness = readiness
        self.max_body = max_body
        self.protect_jobs = protect_jobs

    # -- guards ----------------------------------------------------------------------------

    def authorize(self, request: web.Request) -> None:
        if self.token is None:
            raise ApiError(
                403,
                "admin_token_not_configured",
                f"{request.method} {request.path} needs an admin token, and none is configured; "
                f"{self.token_hint}, then send 'Authorization: Bearer <token>'",
            )
        challenge = {"WWW-Authenticate": 'Bearer realm="scheduler-admin"'}
        header = request.headers.get("Authorization")
        if not header:
            raise ApiError(
                401,
                "missing_token",
                f"{request.method} {request.path} needs 'Authorization: Bearer <token>'",
                challenge,
            )
        scheme, _, value = header.strip().partition(" ")
        presented = value.strip().encode("utf-8", "replace")
        # compare_digest runs in time independent of where the bytes differ.
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented, self.token):
            raise ApiError(401, "invalid_token", "the bearer token is not valid", challenge)

    async def read_no_options(self, request: web.Request) -> None:
        length = request.content_length
        if length is not None and length > self.max_body:
            raise ApiError(413, "body_too_large", self._too_large(length))
        body = bytearray()
        while chunk := await request.content.read(65536):
            body += chunk
            if len(body) > self.max_body:
                raise ApiError(413, "body_too_large", self._too_large(None))
        if not body.strip():
            return
        try:
            msgspec.json.decode(bytes(body), type=NoOptions)
        except msgspec.ValidationError as exc:
            raise ApiError(
                400,
                "invalid_body",
                f"this endpoint takes no options: send no body or {{}} ({exc})",
            ) from None
        except msgspec.DecodeError as exc:
            raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None

    def _too_large(self, length: int | None) -> str:
        size = "" if length is None else f" ({length} bytes)"
        return f"the body{size} is larger than the {self.max_body} bytes this API accepts"

    def job(self, job_id: str) -> JobView:
        try:
            return self.kernel.get_job(job_id)
        except LookupError:
            raise ApiError(
                404, "unknown_job", f"no job with id {job_id!r}; GET /jobs lists the jobs"
            ) from None

    def act(self, action: Callable[[str], _T], job_id: str) -> _T:
        try:
            return action(job_id)
        except LookupError:  # removed between the check and the action
            raise ApiError(
                404, "unknown_job", f"no job with id {job_id!r}; GET /jobs lists the jobs"
            ) from None
        except KernelError as exc:
            raise self.refused(exc) from None

    @staticmethod
    def refused(exc: Exception) -> ApiError:
        if isinstance(exc, KernelNotRunningError):
            return ApiError(409, "kernel_not_running", f"the kernel is not running: {exc}")
        return ApiError(409, "refused", redact(str(exc)))

    # -- routes ----------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return _json(Health())

    async def readyz(self, request: web.Request) -> web.Response:
        running = self.kernel.running
        checks = [
            ReadyCheck(
                name="kernel",
                ok=running,
                detail="running"
                if running
                else "the kernel is not running (not started or stopped)",
            )
        ]
        ready = running
        if self.readiness is not None:
            try:
                extra = await self.readiness()
            except Exception as exc:
                _log.exception("readiness check failed")
                extra = ReadyReport(
                    ready=False,
                    checks=(
                        ReadyCheck(
                            name="readiness",
                            ok=False,
                            detail=redact(
                                f"the readiness check raised {type(exc).__name__}: {exc}"
                            ),
                        ),
                    ),
                )
            ready = ready and extra.ready
            checks.extend(extra.checks)
        return _json(ReadyReport(ready=ready, checks=tuple(checks)), 200 if ready else 503)

    async def metrics_text(self, request: web.Request) -> web.StreamResponse:
        if self.metrics is None:
            raise ApiError(
                404,
                "metrics_disabled",
                "metrics are not enabled; pass metrics=SchedulerMetrics() attached to the kernel",
            )
        # Written a slice of jobs at a time, then sent a chunk at a time, the loop free in
        # between: a scrape of megabytes never stalls the kernel's fires.
        pieces = await self.metrics.scrape()
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
        response.content_length = sum(map(len, pieces))
        await response.prepare(request)
        if request.method == "HEAD":
            return response  # the length, no body
        try:
            for chunk in chunked(pieces):
                await response.write(chunk)
                # A yield, not a wait: write() only waits once the socket's buffer is full.
                await asyncio.sleep(0)
            await response.write_eof()
        except ConnectionResetError:
            # The scraper hung up (its scrape timeout, a restart): nothing is wrong here.
            _log.debug("GET /metrics: the client left before the end of the answer")
        return response

    async def list_jobs(self, request: web.Request) -> web.Response:
        self._no_query(request)
        if self.protect_jobs:
            self.authorize(request)
        return _json(JobList(jobs=[_job_info(j) for j in self.kernel.get_jobs()]))

    async def get_job(self, request: web.Request) -> web.Response:
        self._no_query(request)
        if self.protect_jobs:
            self.authorize(request)
        return _json(_job_info(self.job(request.match_info["job_id"])))

    async def run_job(self, request: web.Request) -> web.Response:
        job_id = await self._mutating(request)
        run_id = self.act(self.kernel.run_job, job_id)
        return _json(RunAccepted(job_id=job_id, run_id=run_id), 202)

    async def pause_job(self, request: web.Request) -> web.Response:
        job_id = await self._mutating(request)
        self.act(self.kernel.pause_job, job_id)
        return _json(_job_info(self.job(job_id)))

    async def resume_job(self, request: web.Request) -> web.Response:
        job_id = await self._mutating(request)
        self.act(self.kernel.resume_job, job_id)
        return _json(_job_info(self.job(job_id)))

    async def remove_job(self, request: web.Request) -> web.Response:
        job_id = await self._mutating(request)
        self.act(self.kernel.remove_job, job_id)
        return _json(JobRemovedAnswer(job_id=job_id))

    async def list_failures(self, request: web.Request) -> web.Response:
        job_id, limit = self._failure_query(request)
        self.authorize(request)
        records = await self.kernel.failure_store.list_failures(job_id=job_id, limit=limit)
        return _json(FailureList(failures=[_redacted(r) for r in records]))

    async def get_failure(self, request: web.Request) -> web.Response:
        self._no_query(request)
        self.authorize(request)
        return _json(_redacted(await self._failure(request.match_info["failure_id"])))

    async def retry_failure(self, request: web.Request) -> web.Response:
        self._no_query(request)
        self.authorize(request)
        await self.read_no_options(request)
        record = await self._failure(request.match_info["failure_id"])
        try:
            run_id = await self.kernel.retry_failure(record.id)
        except LookupError:
            raise ApiError(
                409,
                "job_gone",
                f"failure {record.id!r} belongs to job {record.job_id!r}, which no longer exists",
            ) from None
        except KernelError as exc:
            raise self.refused(exc) from None
        return _json(RetryAccepted(failure_id=record.id, job_id=record.job_id, run_id=run_id), 202)

    # -- helpers -------------------------------------------------------------------------

    async def _mutating(self, request: web.Request) -> str:
        self._no_query(request)
        self.authorize(request)
        await self.read_no_options(request)
        job_id = request.match_info["job_id"]
        self.job(job_id)  # 404 before acting
        return job_id

    async def _failure(self, failure_id: str) -> FailureRecord:
        record = await self.kernel.failure_store.get_failure(failure_id)
        if record is None:
            kept = (
                " (the in-memory store keeps only the newest records)"
                if isinstance(self.kernel.failure_store, MemoryFailureStore)
                else ""
            )
            raise ApiError(
                404,
                "unknown_failure",
                f"no failure record with id {failure_id!r}; GET /failures lists them{kept}",
            )
        return record

    @staticmethod
    def _no_query(request: web.Request) -> None:
        if request.query:
            names = ", ".join(sorted(set(request.query)))
            raise ApiError(
                400, "invalid_query", f"this endpoint takes no query parameters, got: {names}"
            )

    @staticmethod
    def _failure_query(request: web.Request) -> tuple[str | None, int]:
        query = request.query
        unknown = sorted(set(query) - {"job_id", "limit"})
        if unknown:
            raise ApiError(
                400,
                "invalid_query",
                f"unknown query parameter(s) {', '.join(unknown)}; "
                "/failures takes job_id and limit",
            )
        for name in ("job_id", "limit"):
            if len(query.getall(name, [])) > 1:
                raise ApiError(
                    400, "invalid_query", f"give the query parameter {name} at most once"
                )
        job_id = query.get("job_id")
        if job_id is not None and not job_id:
            raise ApiError(
                400, "invalid_query", "job_id must not be empty; leave it out for all jobs"
            )
        raw = query.get("limit", "100")
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= _MAX_LIMIT or not raw.isdigit():
            raise ApiError(
                400,
                "invalid_query",
                f"limit must be a whole number from 1 to {_MAX_LIMIT}, got {raw!r}",
            )
        return job_id, limit
