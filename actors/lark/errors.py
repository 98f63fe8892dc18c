"""Every exception the Lark Open API client raises on purpose lives here.

All of them carry what Lark said (``code``, ``msg``), the HTTP status and Lark's
``log_id`` when there was one, so a failure can be traced in Lark's console. None of
them ever carries a secret or a token.
"""

from __future__ import annotations

from typing import Literal

__all__ = (
    "REFRESH_TOKEN_REASONS",
    "LarkAuthError",
    "LarkError",
    "LarkProtocolError",
    "LarkRateLimitError",
    "LarkRefreshTokenError",
    "LarkTokenInvalidError",
    "LarkUnavailableError",
    "RefreshTokenReason",
)

RefreshTokenReason = Literal["invalid", "expired", "revoked"]

#: Lark's answer codes for a refresh token that cannot be used, and what each means.
REFRESH_TOKEN_REASONS: dict[int, RefreshTokenReason] = {
    20026: "invalid",
    20037: "expired",
    20064: "revoked",
}


class LarkError(Exception):
    """Lark answered with a non-zero ``code`` (or could not be asked at all).

    ``code`` is ``None`` when no Lark answer code is known (a transport failure or a
    body that is not Lark's JSON envelope).
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        msg: str = "",
        http_status: int | None = None,
        log_id: str | None = None,
    ) -> None:
        details = []
        if code is not None:
            details.append(f"code={code}")
        if http_status is not None:
            details.append(f"http_status={http_status}")
        if log_id:
            details.append(f"log_id={log_id}")
        super().__init__(f"{message} [{', '.join(details)}]" if details else message)
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.log_id = log_id


class LarkAuthError(LarkError):
    """The app's credentials were refused: check ``app_id`` and ``app_secret``."""


class LarkRateLimitError(LarkError):
    """Lark kept answering ``99991400`` / HTTP 429 after every retry."""


class LarkTokenInvalidError(LarkError):
    """The access token was refused even after it was refreshed once."""


class LarkRefreshTokenError(LarkError):
    """A user's refresh token cannot be used; the user must authorise the app again.

    ``reason`` is ``"invalid"`` (20026), ``"expired"`` (20037) or ``"revoked"`` (20064).
    """

    def __init__(
        self,
        message: str,
        *,
        reason: RefreshTokenReason,
        code: int | None = None,
        msg: str = "",
        http_status: int | None = None,
        log_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code, msg=msg, http_status=http_status, log_id=log_id)
        self.reason: RefreshTokenReason = reason


class LarkUnavailableError(LarkError):
    """Lark answered HTTP 5xx, timed out or could not be reached, after every retry."""


class LarkProtocolError(LarkError):
    """Lark's answer was not JSON, or not the shape this endpoint documents."""
