"""The HTTP routes of users' authorization, mounted on the service's admin server.

=================================  =====  ==================================================
route                              token  answer
=================================  =====  ==================================================
``GET /oauth/{app_id}/authorize``  no     302 to Lark's authorize page, or an error page
``GET /oauth/callback``            no     the success page, or an error page (HTML)
``GET /tokens/{app_id}/{open_id}`` yes    200 a valid user access token (JSON), refreshed
                                          first when it expires within 5 minutes
``GET /tokens?app_id=&expiring=``  yes    200 :class:`~actors.jobs.token_states.TokenReport`
                                          (states per app and user; never a token)
=================================  =====  ==================================================

"token": ``Authorization: Bearer <http.admin_token>``, compared in constant time; without a
configured token those routes answer 403. Token API errors are JSON
``{"error": {"code", "message", "authorize_url"}}``: 401/403 the admin token, 404
``unknown_app`` / ``no_token``, 409 ``reauthorization_required`` (Lark refused the refresh
token, or it expired: ``authorize_url`` is where the user fixes it), 502
``lark_unavailable``, 503 ``store_unavailable``. Every answer is ``Cache-Control: no-store``.

The callback's query holds a one-time code: :class:`OAuthQueryFilter` masks ``code`` and
``state`` in the access log's lines. The routes are added with
:func:`kernel.openapi.add_operations`, so the admin app's ``/openapi.json`` describes them
(:class:`TokenAnswer`, :class:`TokenErrorBody`, :class:`~actors.jobs.token_states.TokenReport`).
"""

from __future__ import annotations

import hmac
import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Annotated

import msgspec
from aiohttp import web

from actors.jobs.token_states import TokenReport
from actors.oauth._pages import SAFE_HEADERS, page
from actors.oauth.broker import TokenBroker, TokenError
from actors.oauth.flow import AuthorizationFlow, FlowError
from kernel.openapi import Answer, Operation, Query, add_operations

__all__ = (
    "ACCESS_LOGGER",
    "OAuthQueryFilter",
    "ReportSource",
    "TokenAnswer",
    "TokenErrorBody",
    "TokenErrorDetail",
    "add_oauth_routes",
    "install_access_log_filter",
)

logger = logging.getLogger("actors.oauth")

#: The logger kernel.http's AdminServer writes its access log to.
ACCESS_LOGGER = "scheduler.http.access"

#: Answers the token report: ``report(app_id, expiring_days)``.
ReportSource = Callable[[str | None, float | None], Awaitable[TokenReport]]

_ENCODER = msgspec.json.Encoder()
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_SENSITIVE_QUERY = re.compile(r"([?&](?:code|state)=)[^&\s\"]*")


class OAuthQueryFilter(logging.Filter):
    """Masks the values of ``code`` and ``state`` in a log record's request line."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as usual
            return True
        masked = _SENSITIVE_QUERY.sub(r"\1***", text)
        if masked != text:
            record.msg, record.args = masked, None
        line = getattr(record, "first_request_line", None)
        if isinstance(line, str):
            record.first_request_line = _SENSITIVE_QUERY.sub(r"\1***", line)
        return True


def install_access_log_filter() -> None:
    """Put :class:`OAuthQueryFilter` on the admin server's access logger (once)."""
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, OAuthQueryFilter) for f in access.filters):
        access.addFilter(OAuthQueryFilter())


class TokenErrorDetail(msgspec.Struct, frozen=True, omit_defaults=True):
    """What went wrong, and where the user fixes it when they can (``authorize_url``)."""

    code: str
    message: str
    authorize_url: str | None = None


class TokenErrorBody(msgspec.Struct, frozen=True):
    """The body of every error answer of the token API."""

    error: TokenErrorDetail


class TokenAnswer(msgspec.Struct, frozen=True):
    """``GET /tokens/{app_id}/{open_id}``: a user access token valid for ``expires_in``
    seconds more (``refreshed``: it was refreshed for this request)."""

    app_id: str
    open_id: str
    access_token: str
    token_type: str
    expires_at: str
    expires_in: int
    refresh_expires_at: str
    refreshed: bool


def _json(obj: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=_ENCODER.encode(obj),
        status=status,
        content_type="application/json",
        headers={**_NO_STORE, **(headers or {})},
    )


def _error(
    status: int, code: str, message: str, authorize_url: str | None = None, **headers: str
) -> web.Response:
    return _json(TokenErrorBody(TokenErrorDetail(code, message, authorize_url)), status, headers)


class _Routes:
    def __init__(
        self,
        flow: AuthorizationFlow,
        broker: TokenBroker,
        report: ReportSource,
        admin_token: str | None,
    ) -> None:
        self._flow = flow
        self._broker = broker
        self._report = report
        self._admin_token = None if admin_token is None else admin_token.encode()

    # -- pages ----------------------------------------------------------------------------

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        try:
            location = await self._flow.start(request.match_info["app_id"])
        except FlowError as exc:
            return _flow_page(exc)
        return web.Response(status=302, headers={**SAFE_HEADERS, "Location": location})

    async def callback(self, request: web.Request) -> web.StreamResponse:
        try:
            done = await self._flow.finish(request.query)
        except FlowError as exc:
            return _flow_page(exc)
        except Exception:
            # Not the query in the message: it holds the one-time code.
            logger.exception("OAuth callback failed unexpectedly")
            return page(
                "Something went wrong",
                ["The service failed to complete the authorization; its log has the details. "
                 "Nothing was stored."],
                status=500,
                problem="internal_error",
            )
        token, app = done.token, done.app
        until = token.refresh_expires_at.astimezone(self._flow.timezone)
        who = f"{token.name} ({token.open_id})" if token.name else token.open_id
        return page(
            "Authorised",
            [
                f"{who} authorised app {app.name} ({app.app_id}).",
                f"The authorization lasts until {until:%Y-%m-%d %H:%M %Z} unless it is renewed "
                "by use; you will get a Lark message with a link before it runs out.",
                "You can close this page.",
            ],
            ok=True,
        )

    # -- token API ------------------------------------------------------------------------

    def _refusal(self, request: web.Request) -> web.Response | None:
        if self._admin_token is None:
            return _error(
                403,
                "forbidden",
                "the token API needs http.admin_token (LARK_SCHEDULER_ADMIN_TOKEN), and none "
                "is configured",
            )
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self._admin_token
        ):
            return _error(
                401,
                "unauthorized",
                "send the admin token as 'Authorization: Bearer <http.admin_token>'",
                **{"WWW-Authenticate": "Bearer"},
            )
        return None

    async def token(self, request: web.Request) -> web.StreamResponse:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        app_id, open_id = request.match_info["app_id"], request.match_info["open_id"]
        try:
            served = await self._broker.access_token(app_id, open_id)
        except TokenError as exc:
            return _error(exc.status, exc.code, exc.message, exc.authorize_url)
        return _json(
            TokenAnswer(
                app_id=served.app_id,
                open_id=served.open_id,
                access_token=served.access_token,
                token_type="Bearer",
                expires_at=served.expires_at.isoformat(),
                expires_in=served.expires_in,
                refresh_expires_at=served.refresh_expires_at.isoformat(),
                refreshed=served.refreshed,
            )
        )

    async def tokens(self, request: web.Request) -> web.StreamResponse:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        expiring: float | None = None
        text = request.query.get("expiring")
        if text:
            try:
                expiring = float(text)
            except ValueError:
                expiring = math.nan
            if not math.isfinite(expiring) or expiring < 0:
                return _error(
                    400, "bad_request", f"expiring={text!r} must be a number of days >= 0, e.g. 7"
                )
        return _json(await self._report(request.query.get("app_id") or None, expiring))


def _flow_page(exc: FlowError) -> web.Response:
    link = ("Start again", exc.retry_url) if exc.retry_url else None
    return page(exc.title, exc.lines, status=exc.status, link=link, problem=exc.problem)


def add_oauth_routes(
    app: web.Application,
    *,
    flow: AuthorizationFlow,
    broker: TokenBroker,
    report: ReportSource,
    admin_token: str | None,
) -> None:
    """Add the routes above to ``app`` (before it starts), and mask the callback's query in
    the access log."""
    routes = _Routes(flow, broker, report, admin_token)
    add_operations(app, _operations(routes))
    install_access_log_filter()


def _page(description: str) -> Answer:
    return Answer(description, media_type="text/html")


def _operations(routes: _Routes) -> list[Operation]:
    # Registered and documented together (kernel.openapi): /openapi.json lists them.
    unauthorised = {
        401: Answer("missing or wrong admin token", TokenErrorBody),
        403: Answer("no admin token is configured", TokenErrorBody),
    }
    app_id = {"app_id": "the Lark app's id (cli_...)"}
    return [
        Operation("GET", "/oauth/callback", routes.callback,
                  "Where Lark sends the user's browser back with the code", {
                      200: _page("authorised: the tokens are stored"),
                      400: _page("missing, forged or expired state, or Lark's error"),
                      403: _page("the user declined"),
                      404: _page("the app is no longer registered"),
                      409: _page("the link was already used, or the app has no secret"),
                      502: _page("Lark could not be reached; nothing was stored"),
                      503: _page("oauth.redirect_base_url is not set"),
                  },
                  query=(
                      Query("code", str, "the one-time code Lark issued"),
                      Query("state", str, "the signed state of the authorize step"),
                      Query("error", str, "Lark's error, when the user declined"),
                  ),
                  tags=("oauth",), operation_id="oauth_callback"),
        Operation("GET", "/oauth/{app_id}/authorize", routes.authorize,
                  "Send a user's browser to Lark's authorize page for the app", {
                      302: Answer("to Lark's authorize page (Location)", media_type=None),
                      404: _page("unknown or disabled app"),
                      409: _page("the app has no secret"),
                      503: _page("oauth.redirect_base_url is not set"),
                  },
                  tags=("oauth",), operation_id="oauth_authorize", path_params=app_id),
        Operation("GET", "/tokens", routes.tokens,
                  "Users' authorization states per app (never a token)", {
                      200: Answer("the report", TokenReport),
                      400: Answer("expiring is not a number of days >= 0", TokenErrorBody),
                      **unauthorised,
                  },
                  query=(
                      Query("app_id", str, "only this app (default: every active app)"),
                      Query("expiring", Annotated[float, msgspec.Meta(ge=0)],
                            "only users whose authorization expires within this many days, "
                            "or was refused"),
                  ),
                  bearer=True, tags=("tokens",), operation_id="token_report"),
        Operation("GET", "/tokens/{app_id}/{open_id}", routes.token,
                  "A valid user access token, refreshed first when it expires within 5 min", {
                      200: Answer("the token", TokenAnswer),
                      404: Answer("unknown_app, or no_token: the user never authorised it",
                                  TokenErrorBody),
                      409: Answer("reauthorization_required: see authorize_url",
                                  TokenErrorBody),
                      502: Answer("lark_unavailable: the stored token is unchanged",
                                  TokenErrorBody),
                      503: Answer("store_unavailable", TokenErrorBody),
                      **unauthorised,
                  },
                  bearer=True, tags=("tokens",), operation_id="user_token",
                  path_params={**app_id, "open_id": "the user's open_id"}),
    ]
