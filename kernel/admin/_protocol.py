"""What the admin server does below the application: requests aiohttp cannot parse, and the
access log.

aiohttp answers a request it cannot parse (a raw non-ASCII byte in the URL, a request line
over 8,190 bytes, a malformed header or chunk) itself, before any middleware runs: in plain
text, after logging ``Error handling request`` with a full traceback. Any client could fill
the log that way. :func:`serve_json_errors` makes a runner's server answer those with the
API's JSON error body and log one line without a traceback; exceptions that are not about a
malformed request (a bug) keep their traceback.

:class:`AccessLogger` writes one line per request without the query string (a query can
carry a credential, e.g. a token someone sent as ``?admin_token=...``) and without headers.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from ..observe.redaction import redact
from .api_models import ErrorBody, ErrorDetail

__all__ = (
    "CLIENT_ERRORS",
    "AccessLogger",
    "describe_bad_request",
    "error_response",
    "serve_json_errors",
)

_log = logging.getLogger("scheduler.http")
_MAX_DETAIL = 120
_ENCODER = msgspec.json.Encoder()


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """The API's JSON error body (:class:`~kernel.api_models.ErrorBody`) with ``status``."""
    body = ErrorBody(error=ErrorDetail(code=code, message=message))
    return web.Response(
        body=_ENCODER.encode(body), status=status, headers=headers, content_type="application/json"
    )


def describe_bad_request(exc: BaseException | None, message: str | None = None) -> str:
    """One short, redacted line saying why a request could not be parsed."""
    text = message if message else (str(exc) if exc is not None else "")
    if isinstance(exc, HttpProcessingError) and exc.message:
        text = exc.message
    elif isinstance(exc, web.RequestPayloadError):
        cause = exc.__cause__
        if isinstance(cause, HttpProcessingError) and cause.message:
            text = cause.message
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(first) > _MAX_DETAIL:
        first = first[:_MAX_DETAIL] + "..."
    name = type(exc).__name__ if exc is not None else "BadRequest"
    return redact(f"{name}: {first}" if first else name)


#: What a client causes (malformed HTTP, a body that does not decode, a dropped
#: connection), as opposed to a bug.
CLIENT_ERRORS = (HttpProcessingError, web.RequestPayloadError, ConnectionError)


def _client_error(exc: object) -> bool:
    return isinstance(exc, CLIENT_ERRORS)


class _JsonErrorRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, answering and logging protocol errors as the API does."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500 and not _client_error(exc):
            # Not a malformed request: something broke. Keep aiohttp's traceback for it.
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
            code, text = "internal_error", "internal error; the scheduler's log has the details"
        else:
            why = describe_bad_request(exc, message)
            _log.info("admin API: refused a malformed request from %s (%s)", request.remote, why)
            code = "bad_request" if status == 400 else "http_error"
            text = f"the request is not valid HTTP/1.1 ({why}); send a well-formed request"
        if request.writer.output_size > 0:
            raise ConnectionError("the answer was already being sent; closing the connection")
        response = error_response(status, code, text)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if _client_error(exc):
            assert isinstance(exc, BaseException)
            what = args[0] % args[1:] if args else "connection error"
            _log.info("admin API: %s (%s)", what, describe_bad_request(exc))
            return
        super().log_exception(*args, **kwargs)


class _JsonErrorServer(web.Server):
    """An aiohttp server whose connections use :class:`_JsonErrorRequestHandler`."""

    def __call__(self) -> web.RequestHandler:
        handler = super().__call__()
        # Same memory layout (the subclass adds no slots): only the methods change.
        handler.__class__ = _JsonErrorRequestHandler
        return handler


def serve_json_errors(runner: web.BaseRunner) -> None:
    """Make ``runner``'s server (after ``setup()``) answer unparsable requests in JSON."""
    server = runner.server
    if server is None:
        raise RuntimeError("call runner.setup() first")
    if type(server) is web.Server:
        server.__class__ = _JsonErrorServer


class AccessLogger(AbstractAccessLogger):
    """``127.0.0.1 "POST /jobs/x/run" 202 57 0.002s``: no query string, no headers."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = request.rel_url.raw_path
        if request.rel_url.raw_query_string:
            path += "?<query not logged>"
        self.logger.info(
            '%s "%s %s" %d %d %.3fs',
            request.remote,
            request.method,
            redact(path),
            response.status,
            response.body_length,
            time,
        )
