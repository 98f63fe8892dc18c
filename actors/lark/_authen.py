"""Lark's authen v1 endpoints: a user's authorization code flow (OIDC), as lark-oapi has them.

* ``GET /open-apis/authen/v1/authorize?app_id=&redirect_uri=&state=[&scope=]`` is a page a
  person opens; Lark sends the browser back to ``redirect_uri?code=...&state=...`` (or
  ``?error=access_denied&state=...``). :func:`authorize_url` builds its address.
* ``POST /open-apis/authen/v1/oidc/access_token`` with the *app* access token and
  ``{"grant_type": "authorization_code", "code": ...}`` answers the user's tokens (``data``:
  ``access_token``, ``refresh_token``, ``token_type``, ``expires_in``,
  ``refresh_expires_in``, ``scope``). A code lives 5 minutes and works once.
* ``POST /open-apis/authen/v1/oidc/refresh_access_token`` with the app access token and
  ``{"grant_type": "refresh_token", "refresh_token": ...}`` answers the same shape; the old
  refresh token stops working (rotation).
* ``GET /open-apis/authen/v1/user_info`` with the *user* access token answers who the user is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlencode

from ._tokens import TokenCache
from ._transport import Transport
from ._wire import Answer, UserTokenData, decode_data, protocol_error, refused
from .errors import REFRESH_TOKEN_REASONS, LarkRefreshTokenError
from .models import AuthenUser, UserTokenGrant

__all__ = (
    "ACCESS_TOKEN_PATH",
    "AUTHORIZE_PATH",
    "REFRESH_USER_TOKEN_PATH",
    "USER_INFO_PATH",
    "Authen",
    "authorize_url",
)

AUTHORIZE_PATH = "/open-apis/authen/v1/authorize"
ACCESS_TOKEN_PATH = "/open-apis/authen/v1/oidc/access_token"
REFRESH_USER_TOKEN_PATH = "/open-apis/authen/v1/oidc/refresh_access_token"
USER_INFO_PATH = "/open-apis/authen/v1/user_info"


def authorize_url(
    base_url: str, app_id: str, redirect_uri: str, state: str, scope: str = ""
) -> str:
    """The Lark page where a person authorises ``app_id``; ``scope`` is left out when empty."""
    query = {"app_id": app_id, "redirect_uri": redirect_uri, "state": state}
    if scope:
        query["scope"] = scope
    return f"{base_url.rstrip('/')}{AUTHORIZE_PATH}?{urlencode(query)}"


class Authen:
    """The authen v1 calls of one app, over its transport and app access token."""

    def __init__(
        self, transport: Transport, app_token: TokenCache, now: Callable[[], datetime]
    ) -> None:
        self._transport = transport
        self._app_token = app_token
        self._now = now

    async def exchange_code(self, code: str) -> UserTokenGrant:
        """The user's tokens for an authorization code; :class:`LarkError` when Lark
        refuses the code (unknown, expired, used already, issued to another app)."""
        if not code:
            raise ValueError("code is empty; pass the code Lark added to the redirect")
        started = self._now()
        answer = await self._transport.request(
            "POST",
            ACCESS_TOKEN_PATH,
            json_body={"grant_type": "authorization_code", "code": code},
            token=self._app_token,
        )
        if answer.code != 0:
            raise refused(
                answer,
                f"Lark refused the authorization code ({answer.msg}); the user must start "
                "the authorization again (a code works once, for 5 minutes)",
            )
        return _grant(answer, started)

    async def refresh(self, refresh_token: str) -> UserTokenGrant:
        """New access and refresh tokens; :class:`LarkRefreshTokenError` when the user must
        authorise the app again."""
        if not refresh_token:
            raise ValueError("refresh_token is empty; pass the user's stored refresh token")
        started = self._now()
        answer = await self._transport.request(
            "POST",
            REFRESH_USER_TOKEN_PATH,
            json_body={"grant_type": "refresh_token", "refresh_token": refresh_token},
            token=self._app_token,
        )
        reason = REFRESH_TOKEN_REASONS.get(answer.code)
        if reason is not None:
            raise LarkRefreshTokenError(
                f"the user's refresh token is {reason} ({answer.msg}); "
                "the user must authorise the app again",
                reason=reason,
                code=answer.code,
                msg=answer.msg,
                http_status=answer.http_status,
                log_id=answer.log_id,
            )
        if answer.code != 0:
            raise refused(
                answer,
                f"POST {REFRESH_USER_TOKEN_PATH}: Lark answered code {answer.code} ({answer.msg})",
            )
        return _grant(answer, started)

    async def user_info(self, access_token: str) -> AuthenUser:
        """Who the user of ``access_token`` is."""
        if not access_token:
            raise ValueError("access_token is empty; pass the user's access token")

        async def fixed() -> tuple[str, int]:
            # A user token cannot be re-fetched: a refused one is refused again, and the
            # transport then raises LarkTokenInvalidError.
            return access_token, 3600

        user_token = TokenCache(fixed, now=self._now, margin=0.0)
        answer = await self._transport.request("GET", USER_INFO_PATH, token=user_token)
        if answer.code != 0:
            raise refused(
                answer, f"GET {USER_INFO_PATH}: Lark answered code {answer.code} ({answer.msg})"
            )
        user = decode_data(answer, AuthenUser)
        if not user.open_id:
            raise protocol_error(answer, "the answer has no open_id")
        return user


def _grant(answer: Answer, started: datetime) -> UserTokenGrant:
    """The tokens of an OIDC answer; lifetimes count from before the request was sent."""
    data = decode_data(answer, UserTokenData)
    if not data.access_token or not data.refresh_token:
        raise protocol_error(answer, "the answer lacks access_token or refresh_token")
    return UserTokenGrant(
        access_token=data.access_token,
        access_expires_at=started + timedelta(seconds=data.expires_in),
        refresh_token=data.refresh_token,
        refresh_expires_at=started + timedelta(seconds=data.refresh_expires_in),
        scope=data.scope,
    )

